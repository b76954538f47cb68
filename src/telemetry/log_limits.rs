//! Log record attribute limits (`OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT`,
//! `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT`). The SDK applies neither, and its log records
//! cannot lose or shorten an attribute once added, so a record over a limit is copied into a
//! fresh record that keeps the first attributes (up to the count) with their string values cut
//! to the length, never inside a UTF-8 sequence. Records within the limits pass untouched.

use std::time::Duration;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::{InstrumentationScope, Key};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord, SdkLogger, SdkLoggerProvider};

use super::truncate::truncate_value;
use crate::otel::conventions as conv;

/// The attributes that tie a record to its run and node, kept first under the count limit.
const CORRELATION: [&str; 3] = [conv::RUN_ID, conv::NODE_NAME, conv::ENTITY_ID];

/// Wraps a log processor so that every record it receives respects the limits.
#[derive(Debug)]
pub(crate) struct LogRecordLimits<P> {
    inner: P,
    max_count: usize,
    max_chars: Option<usize>,
    /// Only makes empty records: the SDK has no other way to build one.
    blank: SdkLogger,
}

impl<P> LogRecordLimits<P> {
    pub(crate) fn new(inner: P, max_count: usize, max_chars: Option<usize>) -> Self {
        let blank = SdkLoggerProvider::builder()
            .build()
            .logger("dagtel.log_limits");
        Self {
            inner,
            max_count,
            max_chars,
            blank,
        }
    }

    fn within(&self, record: &SdkLogRecord) -> bool {
        let mut count = 0;
        for (_, value) in record.attributes_iter() {
            count += 1;
            if count > self.max_count || self.max_chars.is_some_and(|max| too_long(value, max)) {
                return false;
            }
        }
        true
    }

    /// A copy of `record` within the limits.
    fn limited(&self, record: &SdkLogRecord) -> SdkLogRecord {
        let mut copy = self.blank.create_log_record();
        if let Some(name) = record.event_name() {
            copy.set_event_name(name);
        }
        if let Some(target) = record.target() {
            copy.set_target(target.clone());
        }
        if let Some(t) = record.timestamp() {
            copy.set_timestamp(t);
        }
        if let Some(t) = record.observed_timestamp() {
            copy.set_observed_timestamp(t);
        }
        if let Some(text) = record.severity_text() {
            copy.set_severity_text(text);
        }
        if let Some(number) = record.severity_number() {
            copy.set_severity_number(number);
        }
        if let Some(body) = record.body() {
            copy.set_body(body.clone());
        }
        if let Some(tc) = record.trace_context() {
            copy.set_trace_context(tc.trace_id, tc.span_id, tc.trace_flags);
        }
        // dagtel's correlation attributes (run, node, entity) come first, whatever their
        // place: `RunIdLogProcessor` appends them after the record's own, and a record that
        // loses them belongs to no run.
        let correlation = |key: &Key| CORRELATION.contains(&key.as_str());
        let first = record.attributes_iter().filter(|(key, _)| correlation(key));
        let rest = record
            .attributes_iter()
            .filter(|(key, _)| !correlation(key));
        for (key, value) in first.chain(rest).take(self.max_count) {
            let mut value = value.clone();
            if let Some(max) = self.max_chars {
                shorten(&mut value, max);
            }
            copy.add_attribute(key.clone(), value);
        }
        copy
    }
}

fn too_long(value: &AnyValue, max: usize) -> bool {
    match value {
        AnyValue::String(s) => s.as_str().chars().nth(max).is_some(),
        AnyValue::ListAny(items) => items.iter().any(|v| too_long(v, max)),
        _ => false,
    }
}

fn shorten(value: &mut AnyValue, max: usize) {
    match value {
        AnyValue::String(s) => truncate_value(s, max),
        AnyValue::ListAny(items) => items.iter_mut().for_each(|v| shorten(v, max)),
        _ => {}
    }
}

impl<P: LogProcessor> LogProcessor for LogRecordLimits<P> {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if self.within(record) {
            self.inner.emit(record, scope);
        } else {
            self.inner.emit(&mut self.limited(record), scope);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn event_enabled(&self, level: Severity, target: &str, name: Option<&str>) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An exporter's processor that wants no debug records.
    #[derive(Debug)]
    struct InfoAndUp;

    impl LogProcessor for InfoAndUp {
        fn emit(&self, _: &mut SdkLogRecord, _: &InstrumentationScope) {}
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
        fn event_enabled(&self, level: Severity, _: &str, _: Option<&str>) -> bool {
            level >= Severity::Info
        }
    }

    #[test]
    fn the_limits_pass_on_what_the_processor_wants() {
        let limits = LogRecordLimits::new(InfoAndUp, 8, None);
        assert!(!limits.event_enabled(Severity::Debug, "t", None));
        assert!(limits.event_enabled(Severity::Warn, "t", None));
    }
}
