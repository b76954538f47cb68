//! What user code inside a node emits (OpenTelemetry spans, `tracing` spans and events, `log`
//! records, node reports) nests under the node's span and carries the run id, on the node's
//! thread, in rayon and tokio work started through `otel::carry`, and in async nodes.
//!
//! `tracing` needs a global subscriber for rayon and tokio threads, so every test here shares
//! [`TestTelemetry::global`] and looks only at its own run's data.

use std::time::Duration;

use dagtel::otel::conventions as conv;
use dagtel::otel::testing::{LogRecordExt, SpanDataExt, TestTelemetry};
use dagtel::otel::{carry, root_span_link};
use dagtel::*;
use opentelemetry::logs::AnyValue;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::SpanData;

fn telemetry() -> &'static TestTelemetry {
    TestTelemetry::global().expect("no other global subscriber in this test binary")
}

fn user_span(name: &'static str) {
    let tracer = telemetry().tracer_provider().tracer("user-code");
    let mut span = tracer.start(name);
    span.end();
}

/// Every span of `run`'s trace, checked to carry its run id.
fn trace_of(run: &RunId) -> Vec<SpanData> {
    let t = telemetry();
    let mine = t.spans_of_run(run.as_str());
    // The run's root; a new trace a node starts carries the run id too, but is not the run's.
    let root = mine
        .iter()
        .find(|s| {
            s.parent_span_id == opentelemetry::trace::SpanId::INVALID
                && s.attribute_str(conv::EXECUTION_MODE).is_some()
        })
        .expect("a root span");
    let trace = root.span_context.trace_id();
    let all: Vec<SpanData> = t
        .spans()
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .collect();
    assert_eq!(
        all.len(),
        mine.iter()
            .filter(|s| s.span_context.trace_id() == trace)
            .count(),
        "every span of the trace carries the run id"
    );
    all
}

/// Runs `g` for `output` with `n = 1` under the shared telemetry's hooks; returns the run's id
/// and every span of its trace.
fn run_traced(
    executor: Executor,
    g: DagBuilder,
    n: Handle<u32>,
    output: Handle<u32>,
) -> (RunId, Vec<SpanData>) {
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(output)).unwrap();
    let run = executor
        .hook(telemetry().hooks())
        .run(&plan, Inputs::new().set(n, 1))
        .unwrap();
    let run_id = run.record().run_id.clone();
    let spans = trace_of(&run_id);
    (run_id, spans)
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one span named {name}");
    found[0]
}

#[test]
fn user_spans_and_logs_nest_under_the_node_on_every_thread() {
    for executor in [Executor::sequential(), Executor::parallel().threads(3)] {
        let mut g = DagBuilder::new("user-code");
        let n = g.input::<u32>("n");
        let work = g.node("work").run(n, |ctx, n| {
            ctx.entity("block-7");
            user_span("otel.api");
            {
                let span = tracing::info_span!("tracing.span");
                let _entered = span.enter();
                tracing::info!(rows = 10, "inside a tracing span");
            }
            tracing::warn!("directly in the node");
            log::info!("from the log crate");
            let (a, b) = carry::join(
                || {
                    user_span("rayon.left");
                    tracing::info!("left half");
                    1
                },
                || {
                    user_span("rayon.right");
                    2
                },
            );
            Ok(n + a + b)
        });
        let (run_id, spans) = run_traced(executor, g, n, work);
        let node = named(&spans, "work");
        for child in ["otel.api", "tracing.span", "rayon.left", "rayon.right"] {
            assert!(
                named(&spans, child).is_child_of(node),
                "{child} under the node span"
            );
        }

        let logs = telemetry().logs_of_run(run_id.as_str());
        let bodies: Vec<&str> = logs.iter().filter_map(|l| l.body_str()).collect();
        for body in [
            "inside a tracing span",
            "directly in the node",
            "from the log crate",
            "left half",
        ] {
            let log = logs
                .iter()
                .find(|l| l.body_str() == Some(body))
                .unwrap_or_else(|| panic!("log {body:?} in {bodies:?}"));
            assert_eq!(log.attribute_str(conv::NODE_NAME), Some("work"), "{body}");
            assert_eq!(
                log.attribute_str(conv::ENTITY_ID),
                Some("block-7"),
                "{body}"
            );
            let trace = log.trace_context().expect("correlated with a span");
            assert_eq!(trace.trace_id, node.span_context.trace_id(), "{body}");
            // The bridge sets only the observed time; the processor copies it to the event time.
            let observed = log.observed_timestamp().expect("observed time");
            assert_eq!(log.timestamp(), Some(observed), "{body}: event time");
        }
        let direct = logs
            .iter()
            .find(|l| l.body_str() == Some("directly in the node"))
            .unwrap();
        assert_eq!(
            direct.trace_context().unwrap().span_id,
            node.span_context.span_id()
        );
    }
}

#[test]
fn async_nodes_keep_their_context_across_awaits_and_tokio_tasks() {
    let mut g = DagBuilder::new("async-user-code");
    let n = g.input::<u32>("n");
    let fetch = g.node("fetch").run_async(n, |ctx, n| async move {
        ctx.entity("obs-1");
        tokio::time::sleep(Duration::from_millis(2)).await;
        user_span("after.await");
        tracing::info!("async log");
        let spawned = carry::spawn(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            user_span("tokio.task");
            tracing::info!("spawned task log");
        });
        spawned.await?;
        Ok(*n + 1)
    });
    let (run_id, spans) = run_traced(Executor::parallel().threads(2), g, n, fetch);
    let node = named(&spans, "fetch");
    for child in ["after.await", "tokio.task"] {
        assert!(
            named(&spans, child).is_child_of(node),
            "{child} under the node span"
        );
    }
    let logs = telemetry().logs_of_run(run_id.as_str());
    for body in ["async log", "spawned task log"] {
        let log = logs.iter().find(|l| l.body_str() == Some(body)).unwrap();
        assert_eq!(log.attribute_str(conv::NODE_NAME), Some("fetch"));
        assert_eq!(log.attribute_str(conv::ENTITY_ID), Some("obs-1"));
    }
}

#[test]
fn node_reports_become_span_events_logs_and_metrics() {
    let mut g = DagBuilder::new("reports");
    let n = g.input::<u32>("n");
    let node = g.node("classify").run(n, |ctx, n| {
        ctx.event(
            "candidates.scored",
            serde_json::json!({"count": 3, "best": 0.97, "beams": ["b1", "b2"], "meta": {"model": "v2"}}),
        );
        ctx.artifact("plot", serde_json::json!({"path": "/tmp/plot.png", "bytes": 2048}));
        ctx.dataset("events", 120, 8);
        Ok(*n)
    });
    let (run_id, spans) = run_traced(Executor::sequential(), g, n, node);
    let span = named(&spans, "classify");
    let event = span
        .events
        .iter()
        .find(|e| e.name == "candidates.scored")
        .expect("span event");
    let get = |e: &opentelemetry::trace::Event, k: &str| {
        e.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(get(event, "count"), Some(opentelemetry::Value::I64(3)));
    assert_eq!(get(event, "best"), Some(opentelemetry::Value::F64(0.97)));
    assert_eq!(
        get(event, "meta").map(|v| v.as_str().into_owned()),
        Some(r#"{"model":"v2"}"#.to_string()),
        "nested values become JSON strings"
    );
    let artifact = span
        .events
        .iter()
        .find(|e| e.name == conv::EVENT_ARTIFACT)
        .unwrap();
    assert_eq!(
        get(artifact, conv::ARTIFACT_NAME).map(|v| v.as_str().into_owned()),
        Some("plot".into())
    );
    assert_eq!(
        get(artifact, "payload.bytes"),
        Some(opentelemetry::Value::I64(2048))
    );
    assert!(span.events.iter().any(|e| e.name == conv::EVENT_DATASET));

    // The log records carry the same attributes, with their types.
    let logs = telemetry().logs_of_run(run_id.as_str());
    let record = |body: &str| {
        logs.iter()
            .find(|l| l.body_str() == Some(body))
            .unwrap_or_else(|| panic!("a log record {body}"))
    };
    let scored = record("candidates.scored");
    assert_eq!(scored.attribute("count"), Some(&AnyValue::Int(3)));
    assert_eq!(scored.attribute("best"), Some(&AnyValue::Double(0.97)));
    assert_eq!(
        scored.attribute("beams"),
        Some(&["b1", "b2"].into_iter().collect::<AnyValue>())
    );
    assert_eq!(scored.attribute_str("meta"), Some(r#"{"model":"v2"}"#));
    assert_eq!(scored.attribute_str(conv::NODE_NAME), Some("classify"));
    let artifact = record(conv::EVENT_ARTIFACT);
    assert_eq!(artifact.attribute_str(conv::ARTIFACT_NAME), Some("plot"));
    assert_eq!(
        artifact.attribute("payload.bytes"),
        Some(&AnyValue::Int(2048))
    );
}

#[test]
fn detached_work_links_to_the_run_root() {
    let mut g = DagBuilder::new("detached");
    let n = g.input::<u32>("n");
    let node = g.node("kick").run(n, |_, n| {
        let link = root_span_link().expect("inside a run");
        let tracer = telemetry().tracer_provider().tracer("background");
        // A new trace (empty parent) that links back to the run.
        let mut span = tracer
            .span_builder("background.job")
            .with_links(vec![link])
            .start_with_context(&tracer, &opentelemetry::Context::new());
        span.end();
        Ok(*n)
    });
    let (_, spans) = run_traced(Executor::sequential(), g, n, node);
    let root = named(&spans, "run detached");
    let job = telemetry()
        .spans()
        .into_iter()
        .find(|s| s.name == "background.job" && s.links_to(root))
        .expect("the detached span links to the root");
    assert_ne!(job.span_context.trace_id(), root.span_context.trace_id());
    assert_eq!(
        job.attribute_str(conv::RUN_ID),
        root.attribute_str(conv::RUN_ID),
        "the new trace, started in the node, carries the run id"
    );
    assert!(root_span_link().is_none(), "no run outside a node");
    let _ = opentelemetry::Context::current()
        .span()
        .span_context()
        .is_valid();
}

#[test]
fn reports_go_to_the_node_span_even_inside_a_user_span() {
    let mut g = DagBuilder::new("reports-nested");
    let n = g.input::<u32>("n");
    let node = g.node("work").run(n, |ctx, n| {
        ctx.entity("first");
        let span = tracing::info_span!("user.child");
        let _entered = span.enter();
        ctx.entity("second");
        ctx.event("inside.child", serde_json::json!({"k": 1}));
        ctx.artifact("file", serde_json::json!({"bytes": 3}));
        Ok(*n)
    });
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(node)).unwrap();
    let run = Executor::sequential()
        .hook(telemetry().hooks())
        .run(&plan, Inputs::new().set(n, 1))
        .unwrap();
    let spans = trace_of(&run.record().run_id);
    let node = named(&spans, "work");
    let child = named(&spans, "user.child");
    let names = |s: &SpanData| {
        s.events
            .iter()
            .map(|e| e.name.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(node),
        ["inside.child", conv::EVENT_ARTIFACT],
        "once each, on the node"
    );
    assert!(
        names(child).is_empty(),
        "nothing on the user's span: {:?}",
        names(child)
    );
    let entities: Vec<_> = node
        .attributes
        .iter()
        .filter(|kv| kv.key.as_str() == conv::ENTITY_ID)
        .map(|kv| kv.value.as_str().into_owned())
        .collect();
    assert_eq!(entities, ["first"], "the first declaration wins, once");
    let logs = telemetry().logs_of_run(run.record().run_id.as_str());
    let event_log = logs
        .iter()
        .find(|l| l.body_str() == Some("inside.child"))
        .unwrap();
    assert_eq!(
        event_log.trace_context().unwrap().span_id,
        node.span_context.span_id()
    );
}

#[test]
fn a_sampled_out_run_has_no_spans_but_its_logs_still_name_run_and_node() {
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
        .with_span_processor(dagtel::processors::RunIdSpanProcessor::wrap(
            opentelemetry_sdk::trace::SimpleSpanProcessor::new(exporter.clone()),
        ))
        .build();
    let hooks = dagtel::otel::OtelHooks::new(&provider, telemetry().meter_provider());
    let mut g = DagBuilder::new("sampled-out");
    let n = g.input::<u32>("n");
    let a = g.node("a").stage("s").run(n, |ctx, n| {
        ctx.entity("e-1");
        tracing::info!("log from a sampled-out run");
        Ok(*n)
    });
    let b = g.node("b").task("grp").run(a, |_, a| Ok(*a));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(b)).unwrap();
    let run = Executor::parallel()
        .threads(2)
        .hook(hooks)
        .run(&plan, Inputs::new().set(n, 1))
        .unwrap();
    assert!(
        exporter.get_finished_spans().unwrap().is_empty(),
        "no span at all"
    );
    let logs = telemetry().logs_of_run(run.record().run_id.as_str());
    let log = logs
        .iter()
        .find(|l| l.body_str() == Some("log from a sampled-out run"))
        .expect("the log record carries the run id");
    assert_eq!(log.attribute_str(conv::NODE_NAME), Some("a"));
    assert_eq!(log.attribute_str(conv::ENTITY_ID), Some("e-1"));
}
