//! OpenTelemetry hooks: span topology, fan-in links, failures, skips, retries, scopes and
//! metrics, under sequential and parallel execution.

use std::collections::HashMap;

use dagtel::otel::conventions as conv;
use dagtel::otel::testing::{SpanDataExt, TestTelemetry};
use dagtel::*;
use opentelemetry::Value;
use opentelemetry::trace::{SpanId, Status};
use opentelemetry_sdk::trace::SpanData;

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attribute(key)
}

fn by_name(spans: &[SpanData]) -> HashMap<String, Vec<&SpanData>> {
    let mut map: HashMap<String, Vec<&SpanData>> = HashMap::new();
    for s in spans {
        map.entry(s.name.to_string()).or_default().push(s);
    }
    map
}

fn executors() -> Vec<(&'static str, Executor)> {
    vec![
        ("sequential", Executor::sequential()),
        ("parallel", Executor::parallel().threads(4)),
    ]
}

#[test]
fn run_stage_task_and_node_spans_nest_and_fan_in_links_name_their_parents() {
    for (mode, executor) in executors() {
        let telemetry = TestTelemetry::new();
        let mut g = DagBuilder::new("frb");
        let n = g.input::<u32>("n");
        let beams: Vec<_> = (0..3)
            .map(|b| {
                g.node(format!("search_{b}"))
                    .stage("search")
                    .run(n, move |ctx, n| {
                        ctx.entity(format!("cand-{b}"));
                        Ok(n + b)
                    })
            })
            .collect();
        let cluster = g.node("cluster").stage("cluster").run(beams, |ctx, beams| {
            ctx.entity("event-1");
            Ok(beams.iter().copied().sum::<u32>())
        });
        let a = g.node("archive").task("store").run(cluster, |_, c| Ok(*c));
        let r = g.node("register").task("store").run(a, |_, c| Ok(*c + 1));
        let dag = g.build().unwrap();
        let plan = dag.plan(&Request::new().output(r)).unwrap();
        let run = executor
            .hook(telemetry.hooks())
            .run(&plan, Inputs::new().set(n, 1))
            .unwrap();
        let spans = telemetry.spans();
        let named = by_name(&spans);
        let one = |name: &str| -> &SpanData {
            let found = &named[name];
            assert_eq!(found.len(), 1, "{mode}: one span named {name}");
            found[0]
        };
        let root = one("run frb");
        assert_eq!(root.parent_span_id, SpanId::INVALID, "{mode}");
        assert_eq!(
            attr(root, conv::RUN_ID).map(|v| v.as_str().to_string()),
            Some(run.record().run_id.to_string())
        );
        let search = one("stage search");
        assert_eq!(search.parent_span_id, root.span_context.span_id(), "{mode}");
        for b in 0..3 {
            let beam = one(&format!("search_{b}"));
            assert_eq!(beam.parent_span_id, search.span_context.span_id(), "{mode}");
            assert_eq!(
                attr(beam, conv::ENTITY_ID).map(|v| v.as_str().to_string()),
                Some(format!("cand-{b}"))
            );
        }
        let cluster_stage = one("stage cluster");
        let cluster = one("cluster");
        assert_eq!(cluster.parent_span_id, cluster_stage.span_context.span_id());
        assert_eq!(cluster.links.len(), 3, "{mode}: one link per beam");
        for (b, link) in cluster.links.iter().enumerate() {
            let beam = one(&format!("search_{b}"));
            assert_eq!(link.span_context, beam.span_context, "{mode}");
            let get = |k: &str| {
                link.attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == k)
                    .map(|kv| kv.value.as_str().to_string())
            };
            assert_eq!(get(conv::LINK_PARENT), Some(format!("search_{b}")));
            assert_eq!(get(conv::LINK_PARENT_ENTITY), Some(format!("cand-{b}")));
        }
        let task = one("task store");
        assert_eq!(task.parent_span_id, root.span_context.span_id());
        for node in ["archive", "register"] {
            assert_eq!(
                one(node).parent_span_id,
                task.span_context.span_id(),
                "{mode}"
            );
            assert!(one(node).links.is_empty(), "{mode}: one parent, no link");
        }
        let trace = root.span_context.trace_id();
        assert!(spans.iter().all(|s| s.span_context.trace_id() == trace));
        assert_eq!(spans.len(), 1 + 2 + 3 + 1 + 1 + 2, "{mode}");
    }
}

#[test]
fn failures_mark_node_task_stage_and_run_spans_and_skips_are_visible() {
    let telemetry = TestTelemetry::new();
    let mut g = DagBuilder::new("fails");
    let n = g.input::<u32>("n");
    let bad = g
        .node("bad")
        .stage("s")
        .task("t")
        .run(n, |_, _| -> NodeResult<u32> {
            Err(NodeError::msg("disk full"))
        });
    let after = g.node("after").stage("s").task("t").run(bad, |_, b| Ok(*b));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(after)).unwrap();
    let err = Executor::sequential()
        .hook(telemetry.hooks())
        .run(&plan, Inputs::new().set(n, 1));
    assert!(err.is_err());
    let spans = telemetry.spans();
    let named = by_name(&spans);
    let bad = named["bad"][0];
    assert!(
        matches!(&bad.status, Status::Error { description } if description.contains("disk full"))
    );
    let exception = bad.events.iter().find(|e| e.name == "exception").unwrap();
    assert!(exception.attributes.iter().any(
        |kv| kv.key.as_str() == "exception.message" && kv.value.as_str().contains("disk full")
    ));
    let after = named["after"][0];
    assert_eq!(attr(after, conv::STATUS).unwrap().as_str(), "skipped");
    assert_eq!(attr(after, conv::SKIP_CAUSE).unwrap().as_str(), "bad");
    assert_eq!(after.status, Status::Unset);
    for name in ["task t", "stage s", "run fails"] {
        assert!(
            matches!(named[name][0].status, Status::Error { .. }),
            "{name} should be Error"
        );
    }
}

fn kv(key: &'static str, value: &str) -> opentelemetry::KeyValue {
    opentelemetry::KeyValue::new(key, value.to_string())
}

#[test]
fn every_retry_attempt_is_a_span_and_metrics_match_the_run_record() {
    for (mode, executor) in executors() {
        let telemetry = TestTelemetry::new();
        let mut g = DagBuilder::new("retries");
        let n = g.input::<u32>("n");
        let flaky = g
            .node("flaky")
            .retry(RetryPolicy::attempts(3))
            .run(n, |ctx, n| {
                if ctx.attempt() < 3 {
                    Err(NodeError::msg(format!("attempt {} failed", ctx.attempt())))
                } else {
                    Ok(*n)
                }
            });
        let broken = g
            .node("broken")
            .stage("s")
            .run(n, |_, _| -> NodeResult<u32> { Err(NodeError::msg("no")) });
        let child = g.node("child").stage("s").run(broken, |_, b| Ok(*b));
        let grandchild = g.node("grandchild").run(child, |_, b| Ok(*b));
        let fine = g.node("fine").run(flaky, |_, f| Ok(*f));
        let dag = g.build().unwrap();
        let plan = dag
            .plan(&Request::new().output(fine).output(grandchild))
            .unwrap();
        let err = executor
            .failure_policy(FailurePolicy::Continue)
            .hook(telemetry.hooks())
            .run(&plan, Inputs::new().set(n, 1))
            .unwrap_err();
        let record = err.record().expect("a run that started has a record");

        let attempts = telemetry.spans_named("flaky");
        assert_eq!(attempts.len(), 3, "{mode}");
        for span in &attempts {
            let attempt = span
                .attribute(conv::NODE_ATTEMPT)
                .unwrap()
                .as_str()
                .to_string();
            let retrying = span.attribute(conv::NODE_WILL_RETRY).is_some();
            assert_eq!(retrying, attempt != "3", "{mode}: attempt {attempt}");
            assert_eq!(matches!(span.status, Status::Error { .. }), attempt != "3");
        }
        // Its child links to nothing (one parent) but its parent is the final attempt.
        let fine_span = telemetry.span("fine").unwrap();
        assert!(fine_span.links.is_empty());

        let retries = telemetry.counter(conv::METRIC_NODE_RETRIES, &[kv(conv::NODE_NAME, "flaky")]);
        assert_eq!(retries, Some(2.0), "{mode}");
        let failed = record.count(NodeStatus::Failed) as f64;
        let skipped = record.count(NodeStatus::Skipped) as f64;
        assert_eq!(failed, 1.0);
        assert_eq!(skipped, 2.0);
        // Errors count failed attempts: the final failure plus the two retried ones.
        assert_eq!(
            telemetry.counter(conv::METRIC_NODE_ERRORS, &[]),
            Some(failed + 2.0)
        );
        assert_eq!(
            telemetry.counter(conv::METRIC_NODE_SKIPPED, &[]),
            Some(skipped)
        );
        let attempts_run: u32 = record
            .nodes()
            .filter(|n| n.status != NodeStatus::Skipped)
            .map(|n| n.attempts)
            .sum();
        let durations = telemetry
            .histogram(conv::METRIC_NODE_DURATION, &[])
            .unwrap();
        assert_eq!(durations.count, u64::from(attempts_run), "{mode}");
        let runs = telemetry.histogram(conv::METRIC_RUN_DURATION, &[kv(conv::STATUS, "error")]);
        assert_eq!(runs.map(|h| h.count), Some(1));
        let stage = telemetry.histogram(conv::METRIC_STAGE_DURATION, &[kv(conv::STAGE_NAME, "s")]);
        assert_eq!(stage.map(|h| h.count), Some(1));
    }
}

#[test]
fn a_nodes_layer_tag_selects_its_instrumentation_scope() {
    let telemetry = TestTelemetry::new();
    let hooks =
        dagtel::otel::OtelHooks::builder(telemetry.tracer_provider(), telemetry.meter_provider())
            .scope_for_layer("storage", "frb.storage")
            .build();
    let mut g = DagBuilder::new("layers");
    let n = g.input::<u32>("n");
    let a = g
        .node("ingest")
        .tag("layer", "ingest")
        .stage("load")
        .version("v2")
        .run(n, |_, n| Ok(*n));
    let b = g
        .node("store")
        .tag("layer", "storage")
        .task("archive")
        .run(a, |_, n| Ok(*n));
    let c = g.node("plain").run(b, |_, n| Ok(*n));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(c)).unwrap();
    let executor = Executor::parallel().threads(2).hook(hooks);
    // Labels and layer tracers are built on a graph's first run and reused by later ones.
    for run in 0..2 {
        telemetry.reset();
        executor.run(&plan, Inputs::new().set(n, 1)).unwrap();
        let span = |name: &str| telemetry.span(name).unwrap();
        let scope = |name: &str| span(name).instrumentation_scope.name().to_string();
        assert_eq!(scope("ingest"), "dagtel.ingest", "run {run}");
        assert_eq!(scope("store"), "frb.storage", "run {run}");
        assert_eq!(scope("plain"), "dagtel", "run {run}");
        assert_eq!(scope("run layers"), "dagtel", "run {run}");
        let attr = |name: &str, key: &str| span(name).attribute_str(key).map(|v| v.into_owned());
        assert_eq!(attr("ingest", conv::NODE_LAYER).as_deref(), Some("ingest"));
        assert_eq!(attr("ingest", conv::STAGE_NAME).as_deref(), Some("load"));
        assert_eq!(attr("ingest", conv::NODE_VERSION).as_deref(), Some("v2"));
        assert_eq!(attr("ingest", conv::TASK_ID), None, "one-node task");
        assert_eq!(attr("store", conv::TASK_ID).as_deref(), Some("archive"));
        assert_eq!(attr("store", conv::NODE_LAYER).as_deref(), Some("storage"));
        assert_eq!(attr("store", conv::STAGE_NAME), None);
        assert_eq!(attr("plain", conv::NODE_LAYER), None);
        assert_eq!(attr("plain", conv::NODE_VERSION), None);
    }
}

fn fan_in(width: usize) -> (Dag, Handle<u32>, Handle<u32>) {
    let mut g = DagBuilder::new("wide");
    let n = g.input::<u32>("n");
    let parents: Vec<_> = (0..width)
        .map(|i| {
            g.node(format!("p{i:03}"))
                .run(n, move |_, n| Ok(n + i as u32))
        })
        .collect();
    let sink = g
        .node("sink")
        .run(parents, |_, ps| Ok(ps.iter().copied().sum::<u32>()));
    (g.build().unwrap(), n, sink)
}

#[test]
fn a_fan_in_wider_than_the_link_limit_keeps_the_limit_and_says_so() {
    let telemetry = TestTelemetry::new();
    let hooks =
        dagtel::otel::OtelHooks::builder(telemetry.tracer_provider(), telemetry.meter_provider())
            .max_links(4)
            .build();
    let (dag, n, sink) = fan_in(10);
    let plan = dag.plan(&Request::new().output(sink)).unwrap();
    Executor::parallel()
        .threads(3)
        .hook(hooks)
        .run(&plan, Inputs::new().set(n, 1))
        .unwrap();
    let sink = telemetry.span("sink").unwrap();
    assert_eq!(sink.links.len(), 4);
    assert_eq!(
        sink.attribute_str(conv::NODE_PARENT_COUNT).as_deref(),
        Some("10")
    );
    assert_eq!(
        sink.attribute_str(conv::LINKS_TRUNCATED).as_deref(),
        Some("true")
    );
    assert_eq!(
        sink.attribute_str(conv::LINKS_DROPPED).as_deref(),
        Some("6")
    );
    // The kept links are the first parents in dependency order.
    for (i, link) in sink.links.iter().enumerate() {
        let parent = telemetry.span(&format!("p{i:03}")).unwrap();
        assert_eq!(link.span_context, parent.span_context);
    }
}

#[test]
fn the_default_link_limit_is_the_span_link_limit() {
    let telemetry = TestTelemetry::new();
    let (dag, n, sink) = fan_in(200);
    let plan = dag.plan(&Request::new().output(sink)).unwrap();
    Executor::sequential()
        .hook(telemetry.hooks())
        .run(&plan, Inputs::new().set(n, 1))
        .unwrap();
    let sink = telemetry.span("sink").unwrap();
    assert_eq!(sink.links.len(), dagtel::otel::DEFAULT_MAX_LINKS);
    assert_eq!(
        sink.links.dropped_count, 0,
        "the SDK dropped nothing on its own"
    );
    assert_eq!(
        sink.attribute_str(conv::LINKS_DROPPED).as_deref(),
        Some("72")
    );
}

#[test]
fn link_every_edge_links_single_parents_too() {
    let telemetry = TestTelemetry::new();
    let hooks =
        dagtel::otel::OtelHooks::builder(telemetry.tracer_provider(), telemetry.meter_provider())
            .link_every_edge(true)
            .build();
    let mut g = DagBuilder::new("chain");
    let n = g.input::<u32>("n");
    let a = g.node("a").run(n, |_, n| Ok(*n));
    let b = g.node("b").run(a, |_, n| Ok(*n));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(b)).unwrap();
    Executor::sequential()
        .hook(hooks)
        .run(&plan, Inputs::new().set(n, 1))
        .unwrap();
    let (a, b) = (telemetry.span("a").unwrap(), telemetry.span("b").unwrap());
    assert!(b.links_to(&a));
    assert!(a.links.is_empty(), "inputs have no span to link to");
}

#[test]
fn an_external_executor_driving_the_lifecycle_gets_the_same_trace() {
    use dagtel::hooks::{Lifecycle, RunInfo};
    let telemetry = TestTelemetry::new();
    let lifecycle = Lifecycle::new().hook(telemetry.hooks());
    let run = lifecycle.start_run(RunInfo::new("external").node_count(3));
    let metas = [
        NodeMeta::new("left"),
        NodeMeta::new("right"),
        NodeMeta::new("join").with_deps(["left", "right"]),
    ];
    for meta in &metas {
        let task = TaskMeta::single(meta);
        let mut node = run.node(None, meta, &task);
        node.run(|| {
            // The node's context is current while its body runs.
            assert!(dagtel::otel::NodeScope::current().is_some_and(|s| s.name() == meta.name()));
        });
        node.finish(NodeOutcome::Succeeded);
    }
    assert_eq!(run.finish(), Outcome::Succeeded);
    let root = telemetry.span("run external").unwrap();
    let join = telemetry.span("join").unwrap();
    assert!(join.is_child_of(&root));
    assert_eq!(join.links.len(), 2, "fan-in links found by name");
    assert!(join.links_to(&telemetry.span("left").unwrap()));
    assert!(join.links_to(&telemetry.span("right").unwrap()));
    let mode = root
        .attribute_str(conv::EXECUTION_MODE)
        .map(|m| m.into_owned());
    assert_eq!(mode.as_deref(), Some("external"));
}

fn run_ids(span: &SpanData) -> Vec<String> {
    span.attributes
        .iter()
        .filter(|kv| kv.key.as_str() == conv::RUN_ID)
        .map(|kv| kv.value.as_str().into_owned())
        .collect()
}

#[test]
fn the_root_span_has_its_run_id_once_with_or_without_the_processor() {
    let mut g = DagBuilder::new("ids");
    let n = g.input::<u32>("n");
    let a = g.node("a").run(n, |_, n| Ok(*n));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(a)).unwrap();

    // With the processor (TestTelemetry installs it): once on the root, once on the node.
    let telemetry = TestTelemetry::new();
    let run = Executor::sequential()
        .hook(telemetry.hooks())
        .run(&plan, Inputs::new().set(n, 1))
        .unwrap();
    let id = run.record().run_id.to_string();
    assert_eq!(
        run_ids(&telemetry.span("run ids").unwrap()),
        std::slice::from_ref(&id)
    );
    assert_eq!(run_ids(&telemetry.span("a").unwrap()), [id]);

    // A user's SDK setup without the processor still gets the run id on the root.
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let meter = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
    let run = Executor::sequential()
        .hook(dagtel::otel::OtelHooks::new(&provider, &meter))
        .run(&plan, Inputs::new().set(n, 1))
        .unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let root = spans.iter().find(|s| s.name == "run ids").unwrap();
    assert_eq!(run_ids(root), [run.record().run_id.to_string()]);
}

#[test]
fn a_run_inside_a_node_is_its_own_run_under_that_node() {
    let telemetry = std::sync::Arc::new(TestTelemetry::new());
    let mut inner = DagBuilder::new("inner");
    let x = inner.input::<u32>("x");
    let y = inner.node("inner_node").run(x, |_, x| Ok(x * 2));
    let inner_plan = inner
        .build()
        .unwrap()
        .plan(&Request::new().output(y))
        .unwrap();

    let mut outer = DagBuilder::new("outer");
    let n = outer.input::<u32>("n");
    let t = telemetry.clone();
    let out = outer.node("outer_node").run(n, move |_, n| {
        let run = Executor::sequential()
            .hook(t.hooks())
            .run(&inner_plan, Inputs::new().set(x, *n))
            .map_err(|e| NodeError::msg(e.to_string()))?;
        Ok(*run.outputs().get(y).unwrap())
    });
    let plan = outer
        .build()
        .unwrap()
        .plan(&Request::new().output(out))
        .unwrap();
    let run = Executor::sequential()
        .hook(telemetry.hooks())
        .run(&plan, Inputs::new().set(n, 2))
        .unwrap();
    let outer_id = run.record().run_id.to_string();
    let outer_node = telemetry.span("outer_node").unwrap();
    let inner_root = telemetry.span("run inner").unwrap();
    assert!(inner_root.is_child_of(&outer_node));
    let inner_ids = run_ids(&inner_root);
    assert_eq!(inner_ids.len(), 1);
    assert_ne!(inner_ids[0], outer_id, "the inner run has its own id");
    assert_eq!(run_ids(&telemetry.span("inner_node").unwrap()), inner_ids);
}

/// a, b -> c (a fan-in), and d reading c.
fn diamond() -> (Dag, Handle<u32>, Handle<u32>, Handle<u32>) {
    let mut g = DagBuilder::new("diamond");
    let n = g.input::<u32>("n");
    let a = g.node("a").run(n, |_, n| Ok(*n));
    let b = g.node("b").run(n, |_, n| Ok(*n + 1));
    let c = g.node("c").run((a, b), |_, (a, b)| Ok(*a + *b));
    (g.build().unwrap(), n, b, c)
}

/// The span named `name` in trace `trace`.
fn in_trace<'a>(
    spans: &'a [SpanData],
    name: &str,
    trace: opentelemetry::trace::TraceId,
) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name && s.span_context.trace_id() == trace)
        .unwrap_or_else(|| panic!("no {name} in trace {trace}"))
}

#[test]
fn consecutive_runs_of_one_plan_link_to_their_own_spans() {
    for (mode, executor) in executors() {
        let telemetry = TestTelemetry::new();
        let (dag, n, _, c) = diamond();
        let plan = dag.plan(&Request::new().output(c)).unwrap();
        let executor = executor.hook(telemetry.hooks());
        for _ in 0..3 {
            executor.run(&plan, Inputs::new().set(n, 1)).unwrap();
        }
        let spans = telemetry.spans();
        let cs: Vec<&SpanData> = spans.iter().filter(|s| s.name == "c").collect();
        assert_eq!(cs.len(), 3, "{mode}");
        for c in cs {
            let trace = c.span_context.trace_id();
            assert_eq!(c.links.len(), 2, "{mode}");
            assert!(c.links_to(in_trace(&spans, "a", trace)), "{mode}");
            assert!(c.links_to(in_trace(&spans, "b", trace)), "{mode}");
        }
    }
}

#[test]
fn a_run_reusing_an_earlier_runs_arrays_does_not_link_to_that_runs_spans() {
    let telemetry = TestTelemetry::new();
    let hooks =
        dagtel::otel::OtelHooks::builder(telemetry.tracer_provider(), telemetry.meter_provider())
            .link_every_edge(true)
            .build();
    let executor = Executor::sequential().hook(hooks);
    let (dag, n, b, c) = diamond();
    let full = dag.plan(&Request::new().output(c)).unwrap();
    executor.run(&full, Inputs::new().set(n, 1)).unwrap();
    // Same graph, `b` overridden: it has no span in the second run.
    let partial = dag
        .plan(&Request::new().output(c).overrides(["b"]))
        .unwrap();
    executor
        .run(&partial, Inputs::new().set(n, 1).set(b, 5))
        .unwrap();
    let spans = telemetry.spans();
    let cs: Vec<&SpanData> = spans.iter().filter(|s| s.name == "c").collect();
    assert_eq!(cs.len(), 2);
    let has_b = |c: &SpanData| {
        spans
            .iter()
            .any(|o| o.name == "b" && o.span_context.trace_id() == c.span_context.trace_id())
    };
    let second = cs.iter().find(|c| !has_b(c)).expect("the second run's c");
    let trace = second.span_context.trace_id();
    assert_eq!(second.links.len(), 1, "only a, not the first run's b");
    assert!(second.links_to(in_trace(&spans, "a", trace)));
}

#[test]
fn concurrent_runs_of_one_plan_do_not_mix_links() {
    let telemetry = TestTelemetry::new();
    let mut g = DagBuilder::new("concurrent");
    let n = g.input::<u32>("n");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let parents: Vec<_> = (0..4)
        .map(|i| {
            let barrier = std::sync::Arc::clone(&barrier);
            g.node(format!("p{i}")).run(n, move |_, n| {
                if i == 2 {
                    // Both runs are past their first parents and before their last ones.
                    barrier.wait();
                }
                Ok(n + i)
            })
        })
        .collect();
    let sink = g
        .node("sink")
        .run(parents, |_, ps| Ok(ps.iter().copied().sum::<u32>()));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(sink)).unwrap();
    let executor = Executor::sequential().hook(telemetry.hooks());
    std::thread::scope(|s| {
        for k in 0..2 {
            let (executor, plan) = (&executor, &plan);
            s.spawn(move || executor.run(plan, Inputs::new().set(n, k)).unwrap());
        }
    });
    let spans = telemetry.spans();
    let sinks: Vec<&SpanData> = spans.iter().filter(|s| s.name == "sink").collect();
    assert_eq!(sinks.len(), 2);
    assert_ne!(
        sinks[0].span_context.trace_id(),
        sinks[1].span_context.trace_id()
    );
    for sink in sinks {
        let trace = sink.span_context.trace_id();
        assert_eq!(sink.links.len(), 4);
        for (i, link) in sink.links.iter().enumerate() {
            assert_eq!(
                link.span_context,
                in_trace(&spans, &format!("p{i}"), trace).span_context
            );
        }
    }
}

#[test]
fn fan_in_links_under_a_remote_parent_carry_its_trace_state() {
    use opentelemetry::trace::{
        SpanContext, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    let telemetry = TestTelemetry::new();
    let remote = SpanContext::new(
        TraceId::from(0x1234_u128),
        SpanId::from(0x56_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("vendor", "x")]).unwrap(),
    );
    let parent = opentelemetry::Context::new().with_remote_span_context(remote.clone());
    let hooks =
        dagtel::otel::OtelHooks::builder(telemetry.tracer_provider(), telemetry.meter_provider())
            .parent(parent)
            .build();
    let (dag, n, _, c) = diamond();
    let plan = dag.plan(&Request::new().output(c)).unwrap();
    Executor::sequential()
        .hook(hooks)
        .run(&plan, Inputs::new().set(n, 1))
        .unwrap();
    let (a, b, c) = (
        telemetry.span("a").unwrap(),
        telemetry.span("b").unwrap(),
        telemetry.span("c").unwrap(),
    );
    assert_eq!(a.span_context.trace_id(), remote.trace_id());
    assert_eq!(a.span_context.trace_state(), remote.trace_state());
    assert!(c.links_to(&a) && c.links_to(&b), "{:?}", c.links);
}

#[test]
fn wide_requests_and_groups_list_their_first_names_and_count_them_all() {
    let telemetry = TestTelemetry::new();
    let mut g = DagBuilder::new("wide");
    let x = g.input::<u32>("x");
    let failing: Vec<Handle<u32>> = (0..70)
        .map(|i| {
            g.node(format!("f{i}"))
                .run(x, |_, _| -> NodeResult<u32> { Err(NodeError::msg("down")) })
        })
        .collect();
    let grouped: Vec<Handle<u32>> = (0..70)
        .map(|i| g.node(format!("g{i}")).task("all").run(x, |_, x| Ok(*x)))
        .collect();
    let dag = g.build().unwrap();
    let strings = |v: &Value| match v {
        Value::Array(opentelemetry::Array::String(items)) => {
            items.iter().map(|s| s.as_str().to_string()).collect()
        }
        other => panic!("not a string array: {other:?}"),
    };
    let int = |v: Option<&Value>| match v {
        Some(Value::I64(n)) => *n,
        other => panic!("not an int: {other:?}"),
    };

    let request = failing.iter().fold(Request::new(), |r, h| r.output(*h));
    let plan = dag.plan(&request).unwrap();
    let _ = Executor::sequential()
        .failure_policy(FailurePolicy::Continue)
        .hook(telemetry.hooks())
        .run(&plan, Inputs::new().set(x, 1));
    let root = telemetry.span("run wide").unwrap();
    let listed: Vec<String> = strings(attr(&root, conv::OUTPUTS).unwrap());
    let first: Vec<String> = plan.outputs()[..conv::MAX_LISTED_NAMES]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(listed, first);
    assert_eq!(int(attr(&root, conv::OUTPUT_COUNT)), 70);
    assert_eq!(strings(attr(&root, conv::INPUTS).unwrap()), ["x"]);
    assert_eq!(int(attr(&root, conv::INPUT_COUNT)), 1);
    assert!(
        attr(&root, conv::OVERRIDE_COUNT).is_none(),
        "none overridden"
    );
    let Status::Error { description } = &root.status else {
        panic!("{:?}", root.status);
    };
    assert!(
        description.starts_with("70 node(s) failed: "),
        "{description}"
    );
    assert!(description.ends_with(" and 6 more"), "{description}");
    assert_eq!(
        description.matches(", ").count(),
        conv::MAX_LISTED_NAMES - 1
    );

    telemetry.reset();
    let request = grouped.iter().fold(Request::new(), |r, h| r.output(*h));
    let plan = dag.plan(&request).unwrap();
    Executor::parallel()
        .hook(telemetry.hooks())
        .run(&plan, Inputs::new().set(x, 1))
        .unwrap();
    let task = telemetry.span("task all").unwrap();
    let nodes: Vec<String> = strings(attr(&task, conv::TASK_NODES).unwrap());
    let want: Vec<String> = (0..conv::MAX_LISTED_NAMES)
        .map(|i| format!("g{i}"))
        .collect();
    assert_eq!(nodes, want, "the group's first nodes, in order");
    assert_eq!(int(attr(&task, conv::TASK_NODE_COUNT)), 70);
}

/// With `TaskSpans::All` every task, one-node tasks included, gets a span between its stage
/// (or the run) and its node, and a `dag.task.duration` point; on the parallel executor too.
#[test]
fn every_task_gets_a_span_and_a_duration_with_task_spans_all() {
    use dagtel::otel::TaskSpans;
    for (mode, executor) in executors() {
        let telemetry = TestTelemetry::new();
        let hooks = telemetry.hooks_builder().task_spans(TaskSpans::All).build();
        let mut g = DagBuilder::new("all-tasks");
        let a = g.node("a").run((), |_, ()| Ok(1u32));
        let b = g.node("b").run((), |_, ()| Ok(2u32));
        let sum = g.node("sum").run((a, b), |_, (a, b)| Ok(*a + *b));
        let plan = plan_of_output(g, sum);
        executor.hook(hooks).run(&plan, Inputs::new()).unwrap();
        let run = telemetry.span("run all-tasks").expect("the run span");
        for node in ["a", "b", "sum"] {
            let task = telemetry
                .span(&format!("task {node}"))
                .unwrap_or_else(|| panic!("a span for task {node}"));
            let span = telemetry.span(node).unwrap();
            assert_eq!(
                (task.is_child_of(&run), span.is_child_of(&task)),
                (true, true),
                "{mode}: task {node} under the run, node {node} under its task"
            );
        }
        let points = telemetry
            .histogram(conv::METRIC_TASK_DURATION, &[])
            .map(|h| h.count);
        assert_eq!(points, Some(3), "{mode}: one task duration per task");
    }
}

fn plan_of_output<T>(g: DagBuilder, out: Handle<T>) -> Plan {
    g.build()
        .unwrap()
        .plan(&Request::new().output(out))
        .unwrap()
}
