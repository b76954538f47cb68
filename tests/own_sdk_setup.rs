//! dagtel inside a program that sets OpenTelemetry up itself: its processors, sampler and rayon
//! pool keep working as the program configured them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dagtel::otel::testing::{LogRecordExt as _, SpanDataExt as _, TestTelemetry};
use dagtel::otel::{OtelHooks, carry};
use dagtel::processors::{RunIdLogProcessor, RunIdSpanProcessor};
use dagtel::{DagBuilder, Executor, Inputs, Request};
use opentelemetry::logs::Severity;
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    InMemoryLogExporter, LogProcessor, SdkLogRecord, SdkLoggerProvider, SimpleLogProcessor,
};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{
    SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample, Span, SpanData,
    SpanProcessor,
};
use tracing_subscriber::layer::SubscriberExt as _;

/// The program's own severity filter, answered through `event_enabled`.
#[derive(Debug)]
struct AtLeast<P>(Severity, P);

impl<P: LogProcessor> LogProcessor for AtLeast<P> {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.1.emit(record, scope)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.1.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.1.shutdown_with_timeout(timeout)
    }
    fn event_enabled(&self, level: Severity, _: &str, _: Option<&str>) -> bool {
        level >= self.0
    }
}

#[test]
fn the_run_id_log_processor_leaves_the_programs_log_filter_alone() {
    for with_run_ids in [false, true] {
        let exporter = InMemoryLogExporter::default();
        let mut builder = SdkLoggerProvider::builder();
        if with_run_ids {
            builder = builder.with_log_processor(RunIdLogProcessor::new());
        }
        let provider = builder
            .with_log_processor(AtLeast(
                Severity::Warn,
                SimpleLogProcessor::new(exporter.clone()),
            ))
            .build();
        let bridge =
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&provider);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(bridge), || {
            tracing::info!("below the filter");
            tracing::warn!("passes");
        });
        let exported = exporter.get_emitted_logs().expect("logs");
        assert_eq!(exported.len(), 1, "run-id processor: {with_run_ids}");
    }
}

/// A program's tail sampling: record everything, decide in its own processor.
#[derive(Debug, Clone)]
struct RecordOnly;

impl ShouldSample for RecordOnly {
    fn should_sample(
        &self,
        _: Option<&Context>,
        _: opentelemetry::trace::TraceId,
        _: &str,
        _: &opentelemetry::trace::SpanKind,
        _: &[opentelemetry::KeyValue],
        _: &[opentelemetry::trace::Link],
    ) -> SamplingResult {
        SamplingResult {
            decision: SamplingDecision::RecordOnly,
            attributes: Vec::new(),
            trace_state: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Names(Arc<Mutex<Vec<String>>>);

impl SpanProcessor for Names {
    fn on_start(&self, _: &mut Span, _: &Context) {}
    fn on_end(&self, span: SpanData) {
        self.0.lock().unwrap().push(span.name.to_string());
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[test]
fn a_root_recorded_but_not_sampled_keeps_its_node_spans() {
    let seen = Names::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_sampler(RecordOnly)
        .with_span_processor(RunIdSpanProcessor::wrap(seen.clone()))
        .build();
    let meter_provider = SdkMeterProvider::builder().build();
    let mut g = DagBuilder::new("tail");
    let a = g.node("a").run((), |_, ()| Ok(1u32));
    let b = g.node("b").run(a, |_, a| Ok(a + 1));
    let plan = g.build().unwrap().plan(&Request::new().output(b)).unwrap();
    Executor::sequential()
        .hook(OtelHooks::new(&tracer_provider, &meter_provider))
        .run(&plan, Inputs::new())
        .unwrap();
    let mut names = seen.0.lock().unwrap().clone();
    names.sort();
    assert_eq!(names, ["a", "b", "run tail"]);
}

#[test]
fn jobs_of_a_shared_pool_are_not_the_nodes_while_it_waits_in_carry_join() {
    let telemetry = TestTelemetry::global().expect("test telemetry");
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    let mut g = DagBuilder::new("shared-pool");
    let a = g.node("waits").run((), |_, ()| {
        carry::join(
            || std::thread::sleep(Duration::from_millis(1)),
            || std::thread::sleep(Duration::from_millis(60)),
        );
        Ok(1u32)
    });
    let plan = g.build().unwrap().plan(&Request::new().output(a)).unwrap();
    let executor = Executor::parallel()
        .pool(Arc::clone(&pool))
        .hook(telemetry.hooks());
    // The program's own jobs, submitted to the shared pool all along.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (stop, pool) = (Arc::clone(&stop), Arc::clone(&pool));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                pool.spawn(|| {
                    tracing::info_span!("unrelated_job")
                        .in_scope(|| tracing::info!(target: "unrelated", "program job"));
                    std::thread::sleep(Duration::from_millis(2));
                });
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(10));
    for _ in 0..5 {
        executor.run(&plan, Inputs::new()).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    pool.install(|| ()); // the last jobs have started
    std::thread::sleep(Duration::from_millis(50));

    let records: Vec<_> = telemetry
        .logs()
        .into_iter()
        .filter(|r| r.body_str() == Some("program job"))
        .collect();
    let jobs = telemetry.spans_named("unrelated_job");
    assert!(
        records.len() > 50,
        "the program's jobs ran: {}",
        records.len()
    );
    let stamped = records.iter().filter(|r| r.run_id().is_some()).count();
    let in_runs = jobs.iter().filter(|s| s.run_id().is_some()).count();
    assert_eq!((stamped, in_runs), (0, 0), "of {} jobs", records.len());
}
