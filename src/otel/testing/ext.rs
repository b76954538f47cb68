//! Assertion helpers on exported spans and log records.

use std::borrow::Cow;

use opentelemetry::Value;
use opentelemetry::logs::AnyValue;
use opentelemetry::trace::Link;
use opentelemetry_sdk::logs::SdkLogRecord;
use opentelemetry_sdk::trace::SpanData;

use crate::otel::conventions::RUN_ID;

/// Lookups on an exported span.
pub trait SpanDataExt {
    /// The value of the attribute `key`.
    fn attribute(&self, key: &str) -> Option<&Value>;

    /// The value of the attribute `key` as text (any value type is rendered).
    fn attribute_str(&self, key: &str) -> Option<Cow<'_, str>> {
        self.attribute(key).map(Value::as_str)
    }

    /// The `dag.run.id` the span was stamped with.
    fn run_id(&self) -> Option<String> {
        self.attribute_str(RUN_ID).map(Cow::into_owned)
    }

    /// Whether `parent` is this span's parent (same trace, parent span id).
    fn is_child_of(&self, parent: &SpanData) -> bool;

    /// The span's links.
    fn span_links(&self) -> &[Link];

    /// Whether the span links to `other`.
    fn links_to(&self, other: &SpanData) -> bool {
        self.span_links()
            .iter()
            .any(|l| l.span_context == other.span_context)
    }
}

impl SpanDataExt for SpanData {
    fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    fn is_child_of(&self, parent: &SpanData) -> bool {
        self.span_context.trace_id() == parent.span_context.trace_id()
            && self.parent_span_id == parent.span_context.span_id()
    }

    fn span_links(&self) -> &[Link] {
        &self.links.links
    }
}

/// Lookups on an exported log record.
pub trait LogRecordExt {
    /// The value of the attribute `key` (the last one, if the record has several).
    fn attribute(&self, key: &str) -> Option<&AnyValue>;

    /// The value of the attribute `key` when it is a string.
    fn attribute_str(&self, key: &str) -> Option<&str> {
        match self.attribute(key)? {
            AnyValue::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The `dag.run.id` the record was stamped with.
    fn run_id(&self) -> Option<String> {
        self.attribute_str(RUN_ID).map(str::to_owned)
    }

    /// The body when it is a string (a `tracing` event's message).
    fn body_str(&self) -> Option<&str>;
}

impl LogRecordExt for SdkLogRecord {
    fn attribute(&self, key: &str) -> Option<&AnyValue> {
        self.attributes_iter()
            .filter(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
            .last()
    }

    fn body_str(&self) -> Option<&str> {
        match self.body()? {
            AnyValue::String(s) => Some(s.as_str()),
            _ => None,
        }
    }
}
