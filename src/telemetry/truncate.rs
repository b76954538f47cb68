//! Attribute value length limits (`OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`). The SDK has count
//! limits but no length limit, so the limit is applied when a span ends, before it is queued
//! for export: string values (and each string of a string array) on the span, its events and
//! its links are cut to at most the limit in characters, never inside a UTF-8 sequence.

use std::time::Duration;

use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// Wraps a span processor so that every span it receives has its attribute values cut to
/// `max_chars` characters.
#[derive(Debug)]
pub(crate) struct ValueLengthLimit<P> {
    inner: P,
    max_chars: usize,
}

impl<P> ValueLengthLimit<P> {
    pub(crate) fn new(inner: P, max_chars: usize) -> Self {
        Self { inner, max_chars }
    }
}

impl<P: SpanProcessor> SpanProcessor for ValueLengthLimit<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        truncate_span(&mut span, self.max_chars);
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Cuts every string attribute value of `span`, its events and its links to `max_chars`.
pub(crate) fn truncate_span(span: &mut SpanData, max_chars: usize) {
    truncate_attributes(&mut span.attributes, max_chars);
    for event in &mut span.events.events {
        truncate_attributes(&mut event.attributes, max_chars);
    }
    for link in &mut span.links.links {
        truncate_attributes(&mut link.attributes, max_chars);
    }
}

fn truncate_attributes(attributes: &mut [KeyValue], max_chars: usize) {
    for kv in attributes {
        match &mut kv.value {
            Value::String(s) => truncate_value(s, max_chars),
            Value::Array(Array::String(items)) => {
                for s in items {
                    truncate_value(s, max_chars);
                }
            }
            // Numbers and booleans have no length; other variants are not strings.
            _ => {}
        }
    }
}

pub(crate) fn truncate_value(value: &mut StringValue, max_chars: usize) {
    // `nth` finds the byte offset of the first character past the limit, if there is one; a
    // value within the limit is left as is, without copying.
    if let Some((cut, _)) = value.as_str().char_indices().nth(max_chars) {
        *value = StringValue::from(value.as_str()[..cut].to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(s: &str, max: usize) -> String {
        let mut v = StringValue::from(s.to_owned());
        truncate_value(&mut v, max);
        v.as_str().to_owned()
    }

    #[test]
    fn cuts_on_character_boundaries() {
        assert_eq!(cut("abcdef", 3), "abc");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("ab", 3), "ab");
        assert_eq!(cut("héllo wörld", 5), "héllo");
        assert_eq!(cut("日本語テキスト", 2), "日本");
        assert_eq!(cut("abc", 0), "");
    }

    #[test]
    fn cuts_string_arrays_and_leaves_other_values() {
        let mut attrs = vec![
            KeyValue::new("s", "123456"),
            KeyValue::new("n", 1234567_i64),
            KeyValue::new("b", true),
            KeyValue::new(
                "a",
                Value::Array(Array::String(vec!["abcdef".into(), "xy".into()])),
            ),
        ];
        truncate_attributes(&mut attrs, 4);
        assert_eq!(attrs[0].value, Value::from("1234"));
        assert_eq!(attrs[1].value, Value::I64(1234567));
        assert_eq!(attrs[2].value, Value::Bool(true));
        assert_eq!(
            attrs[3].value,
            Value::Array(Array::String(vec!["abcd".into(), "xy".into()]))
        );
    }
}
