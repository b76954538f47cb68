//! Settings and readers shared by the telemetry tests.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};

use dagtel::telemetry::config::{ExporterKind, PerSignal, Settings};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
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
