//! In-memory telemetry for tests: every span, log record and metric a run produces, ready to
//! assert on.
//!
//! [`TestTelemetry`] wires the same processors as production — [`RunIdSpanProcessor`] and
//! [`RunIdLogProcessor`] first — in front of in-memory exporters, so a test sees exactly the
//! attributes an OTLP collector would receive.
//!
//! ```
//! use dagtel::RunId;
//! use dagtel::otel::RunScope;
//! use dagtel::otel::testing::{SpanDataExt as _, TestTelemetry};
//! use opentelemetry::Context;
//! use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
//!
//! let telemetry = TestTelemetry::new();
//! let tracer = telemetry.tracer_provider().tracer("test");
//!
//! let run = Context::new().with_value(RunScope::new(RunId::from("run-1"), "etl"));
//! let root = run.with_span(tracer.start_with_context("run", &run));
//! tracer.start_with_context("node", &root).end();
//! root.span().end();
//!
//! let node = telemetry.span("node").unwrap();
//! assert_eq!(node.attribute_str("dag.run.id").as_deref(), Some("run-1"));
//! assert_eq!(telemetry.children(&telemetry.span("run").unwrap()), [node]);
//! ```
//!
//! # `tracing` spans and events
//!
//! [`TestTelemetry::subscriber`] routes `tracing` into the instance. A subscriber set with
//! `tracing::subscriber::with_default` or `set_default` is *thread-local*: rayon workers and
//! tokio tasks on other threads do not see it. Tests that run work on other threads need the
//! subscriber installed *globally*, and a process has one global subscriber, so
//! [`TestTelemetry::global`] installs one shared instance for the whole test binary. Tests in
//! that binary run in parallel against it; each asserts only on its own run with
//! [`TestTelemetry::spans_of_run`] and [`TestTelemetry::logs_of_run`] (every record under a run
//! carries `dag.run.id`). Metrics carry no run id: a test that checks metrics gives the code
//! under test the meter provider of its own [`TestTelemetry::new`].

mod ext;
mod metrics;

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor, SpanData,
};
use tracing::Subscriber;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use ext::{LogRecordExt, SpanDataExt};
pub use metrics::HistogramSummary;

use crate::otel::logs::{bridge_layer, span_layer};
use crate::processors::{RunIdLogProcessor, RunIdSpanProcessor};

/// Metrics are exported only when a test asks for them; the reader's own timer never fires in
/// practice.
const METRIC_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// In-memory span, log and metric pipelines with dagtel's processors; see the
/// [module docs](self).
#[derive(Debug)]
pub struct TestTelemetry {
    span_exporter: InMemorySpanExporter,
    log_exporter: InMemoryLogExporter,
    metric_exporter: InMemoryMetricExporter,
    tracer_provider: SdkTracerProvider,
    logger_provider: SdkLoggerProvider,
    meter_provider: SdkMeterProvider,
    /// What every [`hooks`](Self::hooks) shares (one collection callback for all).
    hook_metrics: std::sync::OnceLock<crate::otel::SharedMetrics>,
    /// The exemplars hooks from [`hooks`](Self::hooks) keep (`trace_based`).
    exemplars: std::sync::Arc<crate::otel::exemplars::Exemplars>,
    /// Held while a metric snapshot is taken (see [`metrics`](Self::metrics)).
    collecting: std::sync::Mutex<()>,
}

/// Why [`TestTelemetry::global`] could not route `tracing` into the shared instance.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GlobalInstallError {
    /// Something else installed the global `tracing` subscriber or `log` logger first.
    #[error(
        "TestTelemetry::global could not install its subscriber ({reason}); it must be the \
         only global tracing subscriber and `log` logger in the test binary"
    )]
    AlreadyInstalled {
        /// What tracing-subscriber reported.
        reason: String,
    },
}

impl Default for TestTelemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl TestTelemetry {
    /// Fresh providers with empty in-memory exporters.
    ///
    /// Spans and log records are exported synchronously as they end or are emitted, so they
    /// are visible at once; metrics are collected when [`metrics`](Self::metrics) asks.
    pub fn new() -> Self {
        let span_exporter = InMemorySpanExporter::default();
        let log_exporter = InMemoryLogExporter::default();
        let metric_exporter = InMemoryMetricExporter::default();
        let tracer_provider = SdkTracerProvider::builder()
            .with_span_processor(RunIdSpanProcessor::wrap(SimpleSpanProcessor::new(
                span_exporter.clone(),
            )))
            .build();
        let logger_provider = SdkLoggerProvider::builder()
            .with_log_processor(RunIdLogProcessor::new())
            .with_simple_exporter(log_exporter.clone())
            .build();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(metric_exporter.clone())
                    .with_interval(METRIC_INTERVAL)
                    .build(),
            )
            .build();
        Self {
            span_exporter,
            log_exporter,
            metric_exporter,
            tracer_provider,
            logger_provider,
            meter_provider,
            hook_metrics: std::sync::OnceLock::new(),
            exemplars: std::sync::Arc::new(crate::otel::exemplars::Exemplars::new(
                crate::otel::exemplars::ExemplarFilter::TraceBased,
            )),
            collecting: std::sync::Mutex::new(()),
        }
    }

    /// One instance shared by the whole process, with [`subscriber`](Self::subscriber)
    /// installed as the global `tracing` subscriber and `log` logger on first use.
    ///
    /// # Errors
    ///
    /// When another global subscriber or `log` logger was installed first; every later call
    /// returns the same error.
    pub fn global() -> Result<&'static TestTelemetry, GlobalInstallError> {
        static GLOBAL: OnceLock<Result<TestTelemetry, GlobalInstallError>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let telemetry = TestTelemetry::new();
                telemetry.subscriber().try_init().map_err(|e| {
                    GlobalInstallError::AlreadyInstalled {
                        reason: e.to_string(),
                    }
                })?;
                Ok(telemetry)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A `tracing` subscriber that sends `tracing` spans to [`tracer_provider`] and events to
    /// [`logger_provider`], without the telemetry pipeline's own diagnostics (see
    /// [`logs`](crate::otel::logs)). Set it for one thread with
    /// `tracing::subscriber::with_default`, or globally (see the [module docs](self)).
    ///
    /// [`tracer_provider`]: Self::tracer_provider
    /// [`logger_provider`]: Self::logger_provider
    pub fn subscriber(&self) -> impl Subscriber + Send + Sync + 'static {
        tracing_subscriber::registry()
            .with(span_layer(&self.tracer_provider))
            .with(bridge_layer(&self.logger_provider))
    }

    /// The tracer provider: [`RunIdSpanProcessor`], then an in-memory exporter.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    /// The logger provider: [`RunIdLogProcessor`], then an in-memory exporter.
    pub fn logger_provider(&self) -> &SdkLoggerProvider {
        &self.logger_provider
    }

    /// The meter provider, read on demand by [`metrics`](Self::metrics).
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        &self.meter_provider
    }

    /// Every finished span, in the order they ended.
    pub fn spans(&self) -> Vec<SpanData> {
        // Spans are exported as they end; the flush only guards against a future batch setup,
        // and the in-memory exporter cannot fail.
        let _ = self.tracer_provider.force_flush();
        self.span_exporter.get_finished_spans().unwrap_or_default()
    }

    /// The first finished span named `name`.
    pub fn span(&self, name: &str) -> Option<SpanData> {
        self.spans().into_iter().find(|s| s.name == name)
    }

    /// Every finished span named `name`.
    pub fn spans_named(&self, name: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// The finished spans whose parent is `parent`, in the order they ended.
    pub fn children(&self, parent: &SpanData) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.is_child_of(parent))
            .collect()
    }

    /// The finished spans stamped with the run id `run_id`.
    pub fn spans_of_run(&self, run_id: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.run_id().as_deref() == Some(run_id))
            .collect()
    }

    /// Every emitted log record, in emission order.
    pub fn logs(&self) -> Vec<SdkLogRecord> {
        let _ = self.logger_provider.force_flush();
        self.log_exporter
            .get_emitted_logs()
            .unwrap_or_default()
            .into_iter()
            .map(|log| log.record)
            .collect()
    }

    /// The log records stamped with the run id `run_id`.
    pub fn logs_of_run(&self, run_id: &str) -> Vec<SdkLogRecord> {
        self.logs()
            .into_iter()
            .filter(|r| r.run_id().as_deref() == Some(run_id))
            .collect()
    }

    /// Collects the meter provider now and returns what it exported: one snapshot with the
    /// cumulative value of every instrument so far.
    ///
    /// Safe to call from tests running at once on one instance (a shared
    /// [`global`](Self::global)): collections are taken one at a time.
    pub fn metrics(&self) -> Vec<ResourceMetrics> {
        // Reset, collect and read as one step: interleaved, one caller's reset would wipe
        // another's snapshot, or a read would see two snapshots and add them up.
        let _one_at_a_time = crate::sync::lock(&self.collecting);
        self.metric_exporter.reset();
        let _ = self.meter_provider.force_flush();
        self.metric_exporter
            .get_finished_metrics()
            .unwrap_or_default()
    }

    /// The sum of the counter (or up-down counter) `name` over the data points whose attributes
    /// include every pair in `attributes` (`&[]` for the total); `None` when no point matches.
    ///
    /// ```
    /// use dagtel::otel::testing::TestTelemetry;
    /// use opentelemetry::KeyValue;
    /// use opentelemetry::metrics::MeterProvider as _;
    ///
    /// let telemetry = TestTelemetry::new();
    /// let runs = telemetry.meter_provider().meter("test").u64_counter("app.runs").build();
    /// runs.add(2, &[KeyValue::new("dag.name", "etl")]);
    /// runs.add(1, &[KeyValue::new("dag.name", "report")]);
    ///
    /// assert_eq!(telemetry.counter("app.runs", &[KeyValue::new("dag.name", "etl")]), Some(2.0));
    /// assert_eq!(telemetry.counter("app.runs", &[]), Some(3.0));
    /// assert_eq!(telemetry.counter("dag.missing", &[]), None);
    /// ```
    pub fn counter(&self, name: &str, attributes: &[opentelemetry::KeyValue]) -> Option<f64> {
        metrics::sum(&self.metrics(), name, attributes)
    }

    /// The histogram `name` merged over the data points whose attributes include every pair
    /// in `attributes`; `None` when no point matches.
    pub fn histogram(
        &self,
        name: &str,
        attributes: &[opentelemetry::KeyValue],
    ) -> Option<HistogramSummary> {
        metrics::histogram(&self.metrics(), name, attributes)
    }

    /// [`OtelHooks`](crate::otel::OtelHooks) recording into these providers, with the default
    /// options.
    pub fn hooks(&self) -> crate::otel::OtelHooks {
        self.hooks_builder().build()
    }

    /// The builder behind [`hooks`](Self::hooks), for hooks with more options that record
    /// into these providers and exemplars.
    pub fn hooks_builder(&self) -> crate::otel::OtelHooksBuilder {
        let shared = self.hook_metrics.get_or_init(|| {
            crate::otel::SharedMetrics::new(&self.meter_provider)
                .with_exemplars(Some(std::sync::Arc::clone(&self.exemplars)))
        });
        crate::otel::OtelHooks::builder_sharing(&self.tracer_provider, shared)
    }

    /// The exemplars of histogram `name`'s series whose attributes are exactly `attributes`
    /// (what the OTLP and file exporters would attach to its data point), as recorded by
    /// hooks from [`hooks`](Self::hooks) with the `trace_based` filter. Node durations of
    /// runs from dagtel's executor reach the reservoir when metrics are collected
    /// ([`metrics`](Self::metrics) or any method that reads them).
    pub fn exemplars(
        &self,
        name: &str,
        attributes: &[opentelemetry::KeyValue],
    ) -> Vec<crate::otel::exemplars::Exemplar> {
        self.exemplars.get(name, attributes)
    }

    /// The reservoir behind [`exemplars`](Self::exemplars), for an exporter of the caller's
    /// to [`attach`](crate::otel::exemplars::Exemplars::attach).
    pub fn exemplar_reservoir(&self) -> &std::sync::Arc<crate::otel::exemplars::Exemplars> {
        &self.exemplars
    }

    /// Forgets every span, log record and metric snapshot exported so far (instruments keep
    /// their cumulative values).
    pub fn reset(&self) {
        self.span_exporter.reset();
        self.log_exporter.reset();
        self.metric_exporter.reset();
    }
}
