//! TestTelemetry: the global instance receives `tracing` from every thread, tests sharing it
//! stay apart by run id, and the assertion helpers find what they are asked for.

use std::sync::Arc;

use dagtel::RunId;
use dagtel::otel::carry;
use dagtel::otel::testing::{HistogramSummary, LogRecordExt as _, SpanDataExt as _, TestTelemetry};
use dagtel::otel::{NodeScope, RunScope};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Link, Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use rayon::prelude::*;

fn global() -> &'static TestTelemetry {
    TestTelemetry::global().expect("the only global subscriber in this test binary")
}

/// A run's root span and a running node, on the global instance's tracer.
fn run_and_node(run_id: &str, node: &str) -> (Context, Context) {
    let tracer = global().tracer_provider().tracer("test");
    let run_cx = Context::new().with_value(RunScope::new(RunId::from(run_id), "etl"));
    let run = run_cx.with_span(tracer.start_with_context("run", &run_cx));
    let node = run
        .with_span(tracer.start_with_context("node", &run))
        .with_value(Arc::new(NodeScope::new(node)));
    (run, node)
}

#[test]
fn global_returns_one_shared_instance() {
    assert!(std::ptr::eq(global(), global()));
}

#[test]
fn tracing_in_carried_rayon_work_reaches_the_global_instance() {
    let (run, node) = run_and_node("run-global-rayon", "fan");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    {
        let _attached = node.clone().attach();
        carry::install(&pool, || {
            (0..32).into_par_iter().for_each(carry::carry_fn(|i| {
                tracing::info_span!("item", i).in_scope(|| tracing::info!(i, "item done"));
            }));
        });
    }
    node.span().end();
    run.span().end();

    let spans = global().spans_of_run("run-global-rayon");
    let node_span = spans.iter().find(|s| s.name == "node").unwrap();
    let items: Vec<_> = spans.iter().filter(|s| s.name == "item").collect();
    assert_eq!(items.len(), 32);
    assert!(items.iter().all(|s| s.is_child_of(node_span)));

    let logs = global().logs_of_run("run-global-rayon");
    assert_eq!(logs.len(), 32);
    for record in &logs {
        assert_eq!(record.body_str(), Some("item done"));
        assert_eq!(record.attribute_str("dag.node.name"), Some("fan"));
        // Correlated with the `tracing` span the event was in.
        let span_id = record.trace_context().unwrap().span_id;
        assert!(items.iter().any(|s| s.span_context.span_id() == span_id));
    }
}

#[test]
fn tracing_in_carried_tokio_tasks_reaches_the_global_instance() {
    let (run, node) = run_and_node("run-global-tokio", "fetch");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    {
        let _attached = node.clone().attach();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                carry::spawn_on(runtime.handle(), async move {
                    tokio::task::yield_now().await;
                    tracing::info!(i, "fetched");
                })
            })
            .collect();
        runtime.block_on(async {
            for task in tasks {
                task.await.unwrap();
            }
        });
    }
    node.span().end();
    run.span().end();

    let logs = global().logs_of_run("run-global-tokio");
    assert_eq!(logs.len(), 8);
    assert!(
        logs.iter()
            .all(|r| r.attribute_str("dag.node.name") == Some("fetch"))
    );
}

#[test]
fn span_helpers_find_children_links_and_attributes() {
    let telemetry = TestTelemetry::new();
    let tracer = telemetry.tracer_provider().tracer("test");
    let run_cx = Context::new().with_value(RunScope::new(RunId::from("run-helpers"), "etl"));
    let root = run_cx.with_span(tracer.start_with_context("run", &run_cx));

    let mut a = tracer.start_with_context("task.a", &root);
    a.set_attribute(KeyValue::new("rows", 42));
    let a_cx = a.span_context().clone();
    a.end();
    let mut b = tracer.start_with_context("task.b", &root);
    b.add_link(a_cx, vec![]);
    b.end();
    tracer
        .start_with_context("unrelated", &Context::new())
        .end();
    root.span().end();

    let run = telemetry.span("run").unwrap();
    let a = telemetry.span("task.a").unwrap();
    let b = telemetry.span("task.b").unwrap();
    let names: Vec<_> = telemetry
        .children(&run)
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["task.a", "task.b"]);
    assert!(b.links_to(&a));
    assert!(!a.links_to(&b));
    assert_eq!(b.span_links().len(), 1);
    assert_eq!(a.attribute_str("rows").as_deref(), Some("42"));
    assert_eq!(a.attribute("missing"), None);
    assert_eq!(telemetry.spans_named("unrelated").len(), 1);
    assert_eq!(telemetry.spans_of_run("run-helpers").len(), 3);

    telemetry.reset();
    assert!(telemetry.spans().is_empty());
}

#[test]
fn span_links_given_at_creation_are_found() {
    let telemetry = TestTelemetry::new();
    let tracer = telemetry.tracer_provider().tracer("test");
    let first = tracer.start("first");
    let first_cx = first.span_context().clone();
    drop(first); // ends it
    tracer
        .span_builder("second")
        .with_links(vec![Link::with_context(first_cx)])
        .start(&tracer)
        .end();

    let second = telemetry.span("second").unwrap();
    assert!(second.links_to(&telemetry.span("first").unwrap()));
}

#[test]
fn counters_and_histograms_are_read_by_name_and_attributes() {
    let telemetry = TestTelemetry::new();
    let meter = telemetry.meter_provider().meter("test");
    let runs = meter.u64_counter("dag.runs").build();
    let duration = meter.f64_histogram("dag.node.duration").build();
    let etl = [KeyValue::new("dag.name", "etl")];

    runs.add(1, &etl);
    runs.add(2, &etl);
    runs.add(5, &[KeyValue::new("dag.name", "report")]);
    for v in [1.0, 2.0, 3.0] {
        duration.record(v, &[KeyValue::new("dag.node.name", "clean")]);
    }
    duration.record(10.0, &[KeyValue::new("dag.node.name", "load")]);

    assert_eq!(telemetry.counter("dag.runs", &etl), Some(3.0));
    assert_eq!(telemetry.counter("dag.runs", &[]), Some(8.0));
    assert_eq!(
        telemetry.counter("dag.runs", &[KeyValue::new("dag.name", "nope")]),
        None
    );
    assert_eq!(
        telemetry.histogram(
            "dag.node.duration",
            &[KeyValue::new("dag.node.name", "clean")]
        ),
        Some(HistogramSummary {
            count: 3,
            sum: 6.0,
            min: Some(1.0),
            max: Some(3.0),
        })
    );
    let all = telemetry.histogram("dag.node.duration", &[]).unwrap();
    assert_eq!((all.count, all.sum, all.max), (4, 16.0, Some(10.0)));

    // Values are cumulative: collecting again sees the same totals plus new measurements.
    runs.add(1, &etl);
    assert_eq!(telemetry.counter("dag.runs", &etl), Some(4.0));
}
