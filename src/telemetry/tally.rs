//! Delivery accounting. Neither `shutdown()` nor `force_flush()` tells whether data reached its
//! destination (a batch processor returns `Ok` even when every export failed), so every
//! exporter is wrapped in [`Counted`], which records what each export call carried and whether
//! it succeeded, and every batch processor is fronted by a [`Submitted`] counter. What was
//! submitted but neither exported nor failed was dropped: the queue was full, or the record was
//! still queued when shutdown gave up.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry::logs::Severity;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// Counts for one exporter; shared between the wrappers and the guard.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    submitted: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    pub(crate) fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }

    pub(crate) fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    fn record(&self, count: usize, result: &OTelSdkResult) {
        let counter = if result.is_ok() {
            &self.exported
        } else {
            &self.failed
        };
        counter.fetch_add(count as u64, Ordering::Relaxed);
    }
}

/// An exporter that counts the records of every export call by outcome.
pub(crate) struct Counted<E> {
    inner: E,
    tally: Arc<Tally>,
}

impl<E> Counted<E> {
    pub(crate) fn new(inner: E, tally: Arc<Tally>) -> Self {
        Self { inner, tally }
    }
}

impl<E: fmt::Debug> fmt::Debug for Counted<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counted")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let count = batch.len();
        let result = self.inner.export(batch).await;
        self.tally.record(count, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: LogExporter> LogExporter for Counted<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let count = batch.iter().count();
        let result = self.inner.export(batch).await;
        self.tally.record(count, &result);
        result
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

/// Metrics are counted in metric streams (one instrument's data in one export), and counted as
/// submitted when exported or failed: a periodic reader has no queue that could drop them.
impl<E: PushMetricExporter> PushMetricExporter for Counted<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let count = metrics
            .scope_metrics()
            .map(|scope| scope.metrics().count())
            .sum::<usize>();
        // Counted before the export: one still in flight when shutdown gives up shows as
        // dropped (submitted, neither exported nor failed), not as nothing.
        self.tally
            .submitted
            .fetch_add(count as u64, Ordering::Relaxed);
        let result = self.inner.export(metrics).await;
        self.tally.record(count, &result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// A processor in front of a batch processor that counts what is handed to it.
#[derive(Debug)]
pub(crate) struct Submitted<P> {
    inner: P,
    tally: Arc<Tally>,
}

impl<P> Submitted<P> {
    pub(crate) fn new(inner: P, tally: Arc<Tally>) -> Self {
        Self { inner, tally }
    }
}

impl<P: SpanProcessor> SpanProcessor for Submitted<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.tally.submitted.fetch_add(1, Ordering::Relaxed);
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

impl<P: LogProcessor> LogProcessor for Submitted<P> {
    fn emit(&self, data: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.tally.submitted.fetch_add(1, Ordering::Relaxed);
        self.inner.emit(data, scope);
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
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{
        InMemoryMetricExporter, PeriodicReader, SdkMeterProvider, Temporality,
    };

    /// An exporter whose exports never end (a collector that does not answer).
    struct Stuck;

    impl PushMetricExporter for Stuck {
        async fn export(&self, _: &ResourceMetrics) -> OTelSdkResult {
            std::future::pending().await
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: std::time::Duration) -> OTelSdkResult {
            Ok(())
        }
        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }

    #[test]
    fn a_metric_export_in_flight_counts_as_submitted() {
        let memory = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(memory.clone()).build())
            .build();
        provider.meter("t").u64_counter("c").build().add(1, &[]);
        provider.force_flush().unwrap();
        let metrics = memory.get_finished_metrics().unwrap().remove(0);

        let tally = Arc::new(Tally::default());
        let counted = Counted::new(Stuck, Arc::clone(&tally));
        let export = std::pin::pin!(counted.export(&metrics));
        let waker = std::task::Waker::noop();
        let polled = export.poll(&mut std::task::Context::from_waker(waker));
        assert!(polled.is_pending());
        assert_eq!(
            (tally.submitted(), tally.exported(), tally.failed()),
            (1, 0, 0),
            "in flight: the report counts it as dropped"
        );
    }
}
