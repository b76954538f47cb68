//! The span processor that stamps the run id.

use std::time::Duration;

use opentelemetry::trace::Span as _;
use opentelemetry::{Context, Key, KeyValue, StringValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use crate::otel::RunScope;
use crate::otel::context;
use crate::otel::conventions::RUN_ID;

/// Stamps `dag.run.id` on every span started while a run is active.
///
/// The run id is read from the span's *parent* context in
/// [`on_start`](SpanProcessor::on_start), not from the thread's current context: a span may
/// be started with an explicit parent on a thread where another run is attached, and `on_end`
/// runs wherever the span happens to end. A parent context outside any run (a new trace that
/// a node body starts, or any span in a run without hooks) gets the run of the node running on
/// the thread, the same run id the node's log records carry. Spans started outside any run
/// are left untouched.
///
/// Spans from the raw OpenTelemetry API, from `tracing` spans (through tracing-opentelemetry,
/// whose parent is the current OpenTelemetry context) and from third-party crates are all
/// stamped, as long as their parent context descends from the run's root context — use the
/// [`carry`](crate::otel::carry) helpers to keep that true on other threads and tasks.
///
/// Cost per span: one context lookup and, under a run, one attribute whose value shares the
/// run id's allocation; a parent without a run adds a look at the thread's running node. It
/// works in any SDK setup, in any place among the processors: the attribute is set when the
/// span starts, before any processor sees it end. Prefer [`wrap`](Self::wrap) around the
/// exporting processor to adding it beside: with two processors the SDK copies every ended
/// span once for each.
///
/// ```
/// use dagtel::RunId;
/// use dagtel::otel::RunScope;
/// use dagtel::processors::RunIdSpanProcessor;
/// use opentelemetry::Context;
/// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(RunIdSpanProcessor::new())
///     .with_simple_exporter(exporter.clone())
///     .build();
/// let tracer = provider.tracer("example");
///
/// let run = Context::new().with_value(RunScope::new(RunId::from("run-1"), "etl"));
/// tracer.start_with_context("load", &run).end();
///
/// let spans = exporter.get_finished_spans().unwrap();
/// let run_id = spans[0].attributes.iter().find(|kv| kv.key.as_str() == "dag.run.id");
/// assert_eq!(run_id.unwrap().value.as_str(), "run-1");
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct RunIdSpanProcessor {
    _private: (),
}

impl RunIdSpanProcessor {
    /// The processor; it holds no state, so one instance serves any number of runs.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same stamping in front of `inner` (typically the batch processor), as one
    /// processor.
    ///
    /// Prefer this to adding the two side by side: with several processors the SDK clones
    /// every ended span once per extra processor (a few hundred nanoseconds per span), even
    /// for a processor like this one that ignores `on_end`.
    pub fn wrap<P: SpanProcessor>(inner: P) -> WithRunId<P> {
        WithRunId(inner)
    }
}

fn stamp(span: &mut Span, cx: &Context) {
    let run_id = match cx.get::<RunScope>() {
        Some(run) if run.stamps_itself() => return,
        Some(run) => run.run_id_value(),
        // A parent outside any run's context (a new trace started in a node's body, or a span
        // in a run without hooks): the run of the node running here, as its logs have it.
        None => match context::stamp().run_id {
            Some(run_id) => StringValue::from(run_id),
            None => return,
        },
    };
    span.set_attribute(KeyValue::new(Key::from_static_str(RUN_ID), run_id));
}

impl SpanProcessor for RunIdSpanProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        stamp(span, cx);
    }

    fn on_end(&self, _span: SpanData) {}

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// [`RunIdSpanProcessor`]'s stamping in front of another processor; see
/// [`RunIdSpanProcessor::wrap`].
#[derive(Debug)]
pub struct WithRunId<P>(P);

impl<P: SpanProcessor> SpanProcessor for WithRunId<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        stamp(span, cx);
        self.0.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource);
    }
}
