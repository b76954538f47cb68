//! The log processor that stamps the run id, the node and its entity.

use std::time::Duration;

use opentelemetry::logs::{AnyValue, LogRecord as _, Severity};
use opentelemetry::{Array, InstrumentationScope, Key, StringValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};

use crate::otel::context::stamp;
use crate::otel::conventions::{ENTITY_ID, NODE_NAME, RUN_ID};
use crate::otel::node_events::{EVENT_TARGET, for_each_report_attribute};

/// Adds `dag.run.id` to every log record emitted while a run is active, and `dag.node.name`
/// and `dag.entity.id` (once declared) while a node body runs. The records of a node's reports
/// (`ctx.event`, `ctx.artifact`) also get the report's attributes, each with its own name and
/// type. A record without an event time (bridged `tracing` events have only the time the SDK
/// observed them) gets its observed time as its event time.
///
/// The scopes are read from the emitting thread's current OpenTelemetry context, which is where
/// a log record's trace correlation comes from too. Work moved to other threads keeps them when
/// it is started with the [`carry`](crate::otel::carry) helpers.
///
/// **Order matters**: log processors run in the order they were added and each sees the
/// changes of the ones before it, so add this processor *before* the exporting processor
/// (`with_log_processor(RunIdLogProcessor::new())` then `with_batch_exporter(..)`); added after,
/// the exporter has already taken the record without the attributes.
///
/// ```
/// use dagtel::RunId;
/// use dagtel::otel::{NodeScope, RunScope};
/// use dagtel::processors::RunIdLogProcessor;
/// use opentelemetry::Context;
/// use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
/// use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
/// use std::sync::Arc;
///
/// let exporter = InMemoryLogExporter::default();
/// let provider = SdkLoggerProvider::builder()
///     .with_log_processor(RunIdLogProcessor::new()) // first
///     .with_simple_exporter(exporter.clone())
///     .build();
/// let logger = provider.logger("example");
///
/// let node = Arc::new(NodeScope::new("clean"));
/// let cx = Context::new()
///     .with_value(RunScope::new(RunId::from("run-1"), "etl"))
///     .with_value(node.clone());
/// {
///     let _attached = cx.attach();
///     let mut record = logger.create_log_record();
///     record.set_body("cleaned".into());
///     logger.emit(record);
/// }
///
/// let logs = exporter.get_emitted_logs().unwrap();
/// let attrs: Vec<_> = logs[0].record.attributes_iter().map(|(k, _)| k.as_str()).collect();
/// assert_eq!(attrs, ["dag.run.id", "dag.node.name"]);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct RunIdLogProcessor {
    _private: (),
}

impl RunIdLogProcessor {
    /// The processor; it holds no state, so one instance serves any number of runs.
    pub fn new() -> Self {
        Self::default()
    }
}

impl LogProcessor for RunIdLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, _scope: &InstrumentationScope) {
        // Bridged `tracing` events carry only the time the SDK observed them, which is when
        // they happened; without an event time some backends file the record at 1970.
        if record.timestamp().is_none()
            && let Some(observed) = record.observed_timestamp()
        {
            record.set_timestamp(observed);
        }
        let stamp = stamp();
        if let Some(run_id) = stamp.run_id {
            record.add_attribute(Key::from_static_str(RUN_ID), StringValue::from(run_id));
        }
        if let Some(node) = stamp.node {
            record.add_attribute(Key::from_static_str(NODE_NAME), StringValue::from(node));
        }
        if let Some(entity) = stamp.entity {
            record.add_attribute(Key::from_static_str(ENTITY_ID), StringValue::from(entity));
        }
        if record.target().map(|t| t.as_ref()) == Some(EVENT_TARGET) {
            for_each_report_attribute(|kv| {
                record.add_attribute(kv.key.clone(), any_value(kv.value.clone()));
            });
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    /// No vote: the SDK enables an event when any processor does, and this one exports
    /// nothing itself; answering `true` would override the filters of the processors that do.
    fn event_enabled(&self, _level: Severity, _target: &str, _name: Option<&str>) -> bool {
        false
    }
}

/// A span attribute value as a log record attribute value.
fn any_value(value: Value) -> AnyValue {
    fn list<T: Into<AnyValue>>(items: Vec<T>) -> AnyValue {
        items.into_iter().collect()
    }
    match value {
        Value::Bool(b) => b.into(),
        Value::I64(i) => i.into(),
        Value::F64(f) => f.into(),
        Value::String(s) => s.into(),
        Value::Array(Array::Bool(items)) => list(items),
        Value::Array(Array::I64(items)) => list(items),
        Value::Array(Array::F64(items)) => list(items),
        Value::Array(Array::String(items)) => list(items),
        // Later variants of a non-exhaustive enum: their text.
        other => other.to_string().into(),
    }
}
