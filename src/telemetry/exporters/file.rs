//! The embedded default: OTLP/JSON lines under `<telemetry dir>/<run id>/`, one file per
//! signal (`traces.jsonl`, `logs.jsonl`, `metrics.jsonl`).
//!
//! Each line is one `ExportTraceServiceRequest` / `ExportLogsServiceRequest` /
//! `ExportMetricsServiceRequest` in the OTLP/JSON encoding (hex trace and span ids, 64-bit
//! integers as strings, enums as numbers): what the OpenTelemetry Collector's `file` exporter
//! writes and its `otlpjsonfile` receiver reads, so a directory can be replayed into any
//! backend. The messages are built by opentelemetry-proto's transforms and serialized by its
//! serde support; nothing here encodes OTLP by hand.
//!
//! Exporters run on the batch processor's (or periodic reader's) thread, so the writes never
//! happen on a pipeline thread. Each line is written with one `write` call on a file opened
//! for appending, so lines from the three exporters of one signal never interleave.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use serde::Serialize;

use crate::otel::exemplars::Exemplars;
use crate::telemetry::{Signal, TelemetryError};

/// The file name a signal is written to.
pub fn file_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "traces.jsonl",
        Signal::Logs => "logs.jsonl",
        Signal::Metrics => "metrics.jsonl",
    }
}

/// An append-only file of JSON lines.
struct JsonLines {
    path: PathBuf,
    file: Mutex<File>,
}

impl fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLines")
            .field("path", &self.path)
            .finish()
    }
}

impl JsonLines {
    fn open(dir: &Path, signal: Signal) -> Result<Self, TelemetryError> {
        let path = dir.join(file_name(signal));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| TelemetryError::TelemetryDir {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    fn append<T: Serialize>(&self, message: &T) -> OTelSdkResult {
        let mut line = serde_json::to_vec(message)
            .map_err(|e| OTelSdkError::InternalFailure(format!("OTLP/JSON encoding: {e}")))?;
        line.push(b'\n');
        // A poisoned lock only means another export panicked mid-write; the file is still
        // usable, and appends stay whole lines.
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        file.write_all(&line).map_err(|e| {
            OTelSdkError::InternalFailure(format!("writing {}: {e}", self.path.display()))
        })
    }
}

/// Writes spans to `traces.jsonl`.
#[derive(Debug)]
pub(crate) struct FileSpanExporter {
    out: JsonLines,
    resource: ResourceAttributesWithSchema,
}

impl FileSpanExporter {
    pub(crate) fn open(dir: &Path) -> Result<Self, TelemetryError> {
        Ok(Self {
            out: JsonLines::open(dir, Signal::Traces)?,
            resource: ResourceAttributesWithSchema::default(),
        })
    }
}

impl SpanExporter for FileSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        self.out.append(&request)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// Writes log records to `logs.jsonl`.
#[derive(Debug)]
pub(crate) struct FileLogExporter {
    out: JsonLines,
    resource: ResourceAttributesWithSchema,
}

impl FileLogExporter {
    pub(crate) fn open(dir: &Path) -> Result<Self, TelemetryError> {
        Ok(Self {
            out: JsonLines::open(dir, Signal::Logs)?,
            resource: ResourceAttributesWithSchema::default(),
        })
    }
}

impl LogExporter for FileLogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let request = ExportLogsServiceRequest {
            resource_logs: group_logs_by_resource_and_scope(&batch, &self.resource),
        };
        self.out.append(&request)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// Writes metrics to `metrics.jsonl`.
#[derive(Debug)]
pub(crate) struct FileMetricExporter {
    out: JsonLines,
    temporality: Temporality,
    /// Attached to dagtel's histograms, when exemplars are kept.
    exemplars: Option<Arc<Exemplars>>,
}

impl FileMetricExporter {
    pub(crate) fn open(
        dir: &Path,
        temporality: Temporality,
        exemplars: Option<Arc<Exemplars>>,
    ) -> Result<Self, TelemetryError> {
        Ok(Self {
            out: JsonLines::open(dir, Signal::Metrics)?,
            temporality,
            exemplars,
        })
    }
}

impl PushMetricExporter for FileMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let mut request = ExportMetricsServiceRequest::from(metrics);
        if let Some(exemplars) = &self.exemplars {
            exemplars.attach(&mut request);
        }
        self.out.append(&request)
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        self.temporality
    }
}
