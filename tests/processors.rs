//! The run-id processors stamp spans and log records from every source while a run is active,
//! and nothing outside one.

use std::sync::{Arc, Barrier, Mutex};

use dagtel::RunId;
use dagtel::otel::logs::RunAwareFormat;
use dagtel::otel::testing::{LogRecordExt as _, SpanDataExt as _, TestTelemetry};
use dagtel::otel::{NodeScope, RunScope};
use opentelemetry::Context;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use tracing_subscriber::util::SubscriberInitExt as _;

fn run_cx(id: &str) -> Context {
    Context::new().with_value(RunScope::new(RunId::from(id), "etl"))
}

/// A run's context with its root span started, as the run hooks do.
fn run_with_root(telemetry: &TestTelemetry, id: &str) -> Context {
    let tracer = telemetry.tracer_provider().tracer("test");
    let cx = run_cx(id);
    let root = tracer.start_with_context("run", &cx);
    cx.with_span(root)
}

fn node_cx(parent: &Context, name: &str) -> (Context, Arc<NodeScope>) {
    let node = Arc::new(NodeScope::new(name));
    (parent.with_value(node.clone()), node)
}

#[test]
fn raw_api_spans_under_a_run_carry_its_id() {
    let telemetry = TestTelemetry::new();
    let tracer = telemetry.tracer_provider().tracer("test");
    let run = run_with_root(&telemetry, "run-raw");

    let node = run.with_span(tracer.start_with_context("node", &run));
    tracer.start_with_context("user.work", &node).end();
    node.span().end();
    run.span().end();

    for name in ["run", "node", "user.work"] {
        let span = telemetry.span(name).unwrap();
        assert_eq!(span.run_id().as_deref(), Some("run-raw"), "{name}");
    }
}

#[test]
fn spans_outside_a_run_are_not_stamped() {
    let telemetry = TestTelemetry::new();
    let tracer = telemetry.tracer_provider().tracer("test");
    tracer.start_with_context("lonely", &Context::new()).end();
    tracer.start("also.lonely").end();

    let spans = telemetry.spans();
    assert_eq!(spans.len(), 2);
    assert!(spans.iter().all(|s| s.run_id().is_none()));
}

#[test]
fn the_parent_context_decides_not_the_current_one() {
    let telemetry = TestTelemetry::new();
    let tracer = telemetry.tracer_provider().tracer("test");
    let _current = run_cx("run-current").attach();

    tracer
        .start_with_context("explicit", &run_cx("run-parent"))
        .end();
    tracer.start("implicit").end();

    let explicit = telemetry.span("explicit").unwrap();
    assert_eq!(explicit.run_id().as_deref(), Some("run-parent"));
    let implicit = telemetry.span("implicit").unwrap();
    assert_eq!(implicit.run_id().as_deref(), Some("run-current"));
}

#[test]
fn tracing_spans_under_an_attached_run_are_stamped_and_nested() {
    let telemetry = TestTelemetry::new();
    let run = run_with_root(&telemetry, "run-tracing");
    let (node, _scope) = node_cx(&run, "clean");

    tracing::subscriber::with_default(telemetry.subscriber(), || {
        let _attached = node.clone().attach();
        let outer = tracing::info_span!("library.call");
        let _entered = outer.enter();
        tracing::info_span!("library.inner").in_scope(|| {});
    });
    run.span().end();

    let outer = telemetry.span("library.call").unwrap();
    let inner = telemetry.span("library.inner").unwrap();
    assert_eq!(outer.run_id().as_deref(), Some("run-tracing"));
    assert_eq!(inner.run_id().as_deref(), Some("run-tracing"));
    assert!(outer.is_child_of(&telemetry.span("run").unwrap()));
    assert!(inner.is_child_of(&outer));
    assert_eq!(
        (
            outer.instrumentation_scope.name(),
            outer.instrumentation_scope.version()
        ),
        (
            dagtel::otel::logs::TRACING_SCOPE,
            Some(env!("CARGO_PKG_VERSION"))
        ),
        "the tracing bridge's scope carries the dagtel version, as the hooks' scopes do"
    );
}

#[test]
fn tracing_events_become_records_with_run_node_and_entity() {
    let telemetry = TestTelemetry::new();
    let run = run_with_root(&telemetry, "run-events");
    let (node, scope) = node_cx(&run, "load");

    tracing::subscriber::with_default(telemetry.subscriber(), || {
        let _attached = node.attach();
        tracing::info!("before the entity is known");
        scope.set_entity("customer-42");
        tracing::warn!(rows = 3, "after");
    });
    tracing::subscriber::with_default(telemetry.subscriber(), || {
        tracing::info!("outside the run");
    });

    let logs = telemetry.logs();
    assert_eq!(logs.len(), 3);
    let [before, after, outside] = &logs[..] else {
        unreachable!()
    };
    assert_eq!(before.run_id().as_deref(), Some("run-events"));
    assert_eq!(before.attribute_str("dag.node.name"), Some("load"));
    assert_eq!(before.attribute("dag.entity.id"), None);
    assert_eq!(after.attribute_str("dag.entity.id"), Some("customer-42"));
    assert_eq!(after.body_str(), Some("after"));
    // Correlated with the span that was current: the run's root.
    let root = run.span().span_context().clone();
    assert_eq!(after.trace_context().unwrap().span_id, root.span_id());
    assert_eq!(outside.run_id(), None);
    assert_eq!(outside.attribute("dag.node.name"), None);
}

#[test]
fn log_crate_records_are_stamped() {
    let telemetry = TestTelemetry::new();
    let run = run_cx("run-log-crate");
    // `set_default` also installs the `log` -> `tracing` bridge.
    let _default = telemetry.subscriber().set_default();
    {
        let _attached = run.attach();
        log::info!(target: "legacy_crate", "from the log facade");
    }

    let logs = telemetry.logs();
    let record = logs
        .iter()
        .find(|r| r.body_str() == Some("from the log facade"))
        .unwrap();
    assert_eq!(record.run_id().as_deref(), Some("run-log-crate"));
}

#[test]
fn the_telemetry_pipelines_own_diagnostics_are_not_exported() {
    let telemetry = TestTelemetry::new();
    let _default = telemetry.subscriber().set_default();
    tracing::info!(target: "opentelemetry_sdk", "export failed");
    tracing::info!(target: "hyper_util::client", "connecting");
    log::info!(target: "reqwest::connect", "via the log facade");
    tracing::info_span!(target: "tonic::transport", "grpc").in_scope(|| {});
    tracing::info!(target: "my_app", "kept");
    log::info!(target: "my_legacy", "kept too");

    let bodies: Vec<_> = telemetry
        .logs()
        .iter()
        .map(|r| r.body_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(bodies, ["kept", "kept too"]);
    assert!(telemetry.spans().is_empty());
}

#[test]
fn concurrent_runs_sharing_providers_stamp_their_own_ids() {
    let telemetry = TestTelemetry::new();
    let tracer = telemetry.tracer_provider().tracer("test");
    let logger = telemetry.logger_provider().logger("test");
    let barrier = Barrier::new(2);

    std::thread::scope(|s| {
        for run_id in ["run-a", "run-b"] {
            let (tracer, logger, barrier) = (&tracer, &logger, &barrier);
            let telemetry = &telemetry;
            s.spawn(move || {
                let run = run_with_root(telemetry, run_id);
                let _attached = run.clone().attach();
                for i in 0..50 {
                    if i % 10 == 0 {
                        barrier.wait(); // interleave the two runs
                    }
                    tracer.start(format!("{run_id}/span")).end();
                    let mut record = logger.create_log_record();
                    record.set_body(format!("{run_id}/log").into());
                    logger.emit(record);
                }
                run.span().end();
            });
        }
    });

    let spans = telemetry.spans();
    assert_eq!(spans.len(), 102);
    for span in &spans {
        let run_id = span.run_id().unwrap();
        assert!(
            span.name == "run" || span.name.starts_with(&*run_id),
            "{span:?}"
        );
    }
    let logs = telemetry.logs();
    assert_eq!(logs.len(), 100);
    for record in &logs {
        let run_id = record.run_id().unwrap();
        assert!(record.body_str().unwrap().starts_with(&run_id));
    }
    assert_eq!(telemetry.spans_of_run("run-a").len(), 51);
    assert_eq!(telemetry.logs_of_run("run-b").len(), 50);
}

#[test]
fn console_lines_name_the_run_and_the_node() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .event_format(RunAwareFormat::new().without_time())
        .with_writer(move || SharedBuf(writer.clone()))
        .finish();
    let (node, _scope) = node_cx(&run_cx("run-console"), "clean");

    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "app", "no run");
        let _attached = node.attach();
        tracing::info_span!("parse").in_scope(|| tracing::warn!(target: "app", n = 1, "bad row"));
    });

    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text,
        " INFO app: no run\n WARN run=run-console node=clean parse: app: bad row n=1\n"
    );
}

struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
