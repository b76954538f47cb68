//! In-memory exporters (`ExporterKind::Memory`): nothing leaves the process, and tests read
//! what was exported through [`MemoryExporters`]. Records are kept after shutdown so they can
//! be read once the guard has flushed everything.

use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{InMemoryLogExporter, LogBatch, LogExporter};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, Temporality};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData, SpanExporter};

/// Handles to the in-memory exporters of the signals configured with `memory`. Each handle
/// shares its store with the exporter, so reading it shows everything exported so far (call
/// [`TelemetryGuard::force_flush`](crate::telemetry::TelemetryGuard::force_flush) or shut the
/// guard down first: batch processors export in the background).
#[derive(Clone, Debug, Default)]
pub struct MemoryExporters {
    /// Finished spans, when traces go to memory.
    pub spans: Option<InMemorySpanExporter>,
    /// Emitted log records, when logs go to memory.
    pub logs: Option<InMemoryLogExporter>,
    /// Collected metrics, when metrics go to memory.
    pub metrics: Option<InMemoryMetricExporter>,
}

/// An in-memory exporter whose shutdown keeps the records (the SDK's clears them).
#[derive(Debug)]
pub(crate) struct Retained<E>(pub(crate) E);

impl SpanExporter for Retained<InMemorySpanExporter> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.export(batch).await
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

impl LogExporter for Retained<InMemoryLogExporter> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        self.0.export(batch).await
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

impl PushMetricExporter for Retained<InMemoryMetricExporter> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        self.0.export(metrics).await
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        self.0.temporality()
    }
}
