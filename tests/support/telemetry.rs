//! Settings and readers shared by the telemetry tests.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};

use dagtel::telemetry::TelemetryGuard;
use dagtel::telemetry::config::{ExporterKind, PerSignal, Settings};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::de::DeserializeOwned;

/// A fresh directory under cargo's per-target scratch space.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("telemetry-tests")
        .join(format!("{name}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Default settings with every signal going to `kinds`, no detectors (faster, and the tests
/// do not depend on the host), files under a fresh scratch directory.
pub fn settings(name: &str, kinds: &[ExporterKind]) -> Settings {
    let mut s = Settings::default();
    s.exporters = PerSignal {
        traces: kinds.to_vec(),
        logs: kinds.to_vec(),
        metrics: kinds.to_vec(),
    };
    s.detectors = Vec::new();
    s.telemetry_dir = scratch_dir(name);
    s
}

/// Every line of a JSON-lines file, decoded.
pub fn read_lines<T: DeserializeOwned>(path: &Path) -> Vec<T> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: undecodable line {line}: {e}", path.display()))
        })
        .collect()
}

pub fn traces(dir: &Path) -> Vec<ExportTraceServiceRequest> {
    read_lines(&dir.join("traces.jsonl"))
}

pub fn logs(dir: &Path) -> Vec<ExportLogsServiceRequest> {
    read_lines(&dir.join("logs.jsonl"))
}

pub fn metrics(dir: &Path) -> Vec<ExportMetricsServiceRequest> {
    read_lines(&dir.join("metrics.jsonl"))
}

/// Every metric of `requests`, in the order received.
pub fn all_metrics(requests: &[ExportMetricsServiceRequest]) -> impl Iterator<Item = &Metric> {
    requests
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
}

/// Every span of `requests`, in the order received.
pub fn all_spans(requests: &[ExportTraceServiceRequest]) -> impl Iterator<Item = &Span> {
    requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
}

/// Emits a `tracing` event with `text` through the global subscriber and says whether the
/// guard's memory log exporter received it.
pub fn event_reaches_memory_logs(guard: &TelemetryGuard, text: &str) -> bool {
    tracing::info!("{text}");
    guard.force_flush();
    let logs = guard.memory().logs.as_ref().expect("a memory log exporter");
    let logs = logs.get_emitted_logs().expect("emitted logs");
    logs.iter()
        .any(|l| format!("{:?}", l.record.body()).contains(text))
}

/// Runs a one-node graph (`step`) with `guard`'s hooks.
pub fn run_one_node(guard: &TelemetryGuard) {
    let mut g = dagtel::DagBuilder::new("one");
    let step = g.node("step").run((), |_, ()| Ok(1u8));
    let plan = g.build().unwrap();
    let plan = plan.plan(&dagtel::Request::new().output(step)).unwrap();
    dagtel::Executor::parallel()
        .hook(guard.hooks())
        .run(&plan, dagtel::Inputs::new())
        .unwrap();
}

/// The string value of attribute `key`, if present.
pub fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}
