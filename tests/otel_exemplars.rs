//! Exemplars of the duration histograms: each points at the span the duration was measured
//! in (node attempts, tasks, stages, runs), under sequential and parallel execution; series
//! per layer name the node; sampled-out runs keep none with the `trace_based` filter.

mod common;

use common::sampled_out::off_provider;

use std::collections::HashMap;

use common::metric_graph::staged_and_failing;
use dagtel::otel::exemplars::{ExemplarFilter, Exemplars};
use dagtel::otel::testing::TestTelemetry;
use dagtel::otel::{NodeSeries, OtelHooks, conventions as conv};
use dagtel::*;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::SpanData;
use std::sync::Arc;

fn kv(key: &'static str, value: impl Into<opentelemetry::Value>) -> KeyValue {
    KeyValue::new(key, value)
}

fn node_series(dag: &str, node: &str, status: &'static str) -> Vec<KeyValue> {
    vec![
        kv(conv::DAG_NAME, dag.to_string()),
        kv(conv::NODE_NAME, node.to_string()),
        kv(conv::STATUS, status),
    ]
}

/// The upper bound of the histogram bucket `value` falls in.
fn bucket_of(value: f64) -> usize {
    otel::metrics::DURATION_BUCKETS.partition_point(|b| *b < value)
}

/// A graph `dag` of one node, `a`.
fn one_node(dag: &str) -> Plan {
    let mut g = DagBuilder::new(dag);
    let a = g.node("a").run((), |_, ()| Ok(1u8));
    g.build().unwrap().plan(&Request::new().output(a)).unwrap()
}

/// `n` nodes, each reading the one before it and the one at half its index.
fn layered(n: usize) -> Plan {
    let mut g = DagBuilder::new("layered");
    let mut nodes: Vec<Handle<u64>> = Vec::new();
    for i in 0..n {
        let parents: Vec<Handle<u64>> = if i == 0 {
            Vec::new()
        } else {
            vec![nodes[i - 1], nodes[i / 2]]
        };
        let node = g.node(format!("n{i}")).run(parents, |_, p| {
            Ok(p.iter().copied().copied().sum::<u64>() + 1)
        });
        nodes.push(node);
    }
    let last = nodes[n - 1];
    g.build()
        .unwrap()
        .plan(&Request::new().output(last))
        .unwrap()
}

#[test]
fn every_node_duration_exemplar_points_at_its_node_span_under_both_executors() {
    for (mode, executor) in [
        ("sequential", Executor::sequential()),
        ("parallel", Executor::parallel().threads(4)),
    ] {
        let telemetry = TestTelemetry::new();
        let plan = layered(60);
        let executor = executor.hook(telemetry.hooks());
        executor.run(&plan, Inputs::new()).unwrap();
        telemetry.metrics();
        let spans: HashMap<String, SpanData> = telemetry
            .spans()
            .into_iter()
            .map(|s| (s.name.to_string(), s))
            .collect();
        let dag = plan.dag().name().to_string();
        let mut checked = 0;
        for node in plan.nodes() {
            let span = &spans[node.name()];
            let exemplars = telemetry.exemplars(
                conv::METRIC_NODE_DURATION,
                &node_series(&dag, node.name(), "ok"),
            );
            assert_eq!(
                exemplars.len(),
                1,
                "{mode} {}: one run, one bucket",
                node.name()
            );
            let e = &exemplars[0];
            assert_eq!(e.span_id, Some(span.span_context.span_id()), "{mode}");
            assert_eq!(e.trace_id, Some(span.span_context.trace_id()), "{mode}");
            // Measured inside the span; how close the two clocks agree is the machine's
            // business, not something to assert.
            assert!(e.value.is_finite() && e.value >= 0.0, "{mode}: {}", e.value);
            assert!(e.time >= span.start_time, "{mode}: measured as it ended");
            assert!(
                e.filtered_attributes.is_empty(),
                "the series names the node"
            );
            checked += 1;
        }
        assert_eq!(checked, 60, "{mode}");
    }
}

#[test]
fn later_runs_replace_the_exemplar_of_their_bucket() {
    let telemetry = TestTelemetry::new();
    let plan = one_node("again");
    let executor = Executor::parallel().hook(telemetry.hooks());
    let runs = 20;
    for _ in 0..runs {
        executor.run(&plan, Inputs::new()).unwrap();
    }
    telemetry.metrics();
    let exemplars =
        telemetry.exemplars(conv::METRIC_NODE_DURATION, &node_series("again", "a", "ok"));
    // No-op runs mostly share the first bucket, but a busy machine can push one into the
    // next: what holds whatever the timing is one exemplar per bucket, of one of our runs,
    // and the last run's in its bucket (the reservoir's own tests pin values).
    let mut buckets: Vec<usize> = exemplars.iter().map(|e| bucket_of(e.value)).collect();
    buckets.sort_unstable();
    buckets.dedup();
    assert_eq!(
        buckets.len(),
        exemplars.len(),
        "one per bucket: {exemplars:?}"
    );
    assert!(
        exemplars.len() < runs,
        "runs of one bucket share it: {exemplars:?}"
    );
    let spans = telemetry.spans_named("a");
    assert_eq!(spans.len(), runs);
    let ours: Vec<_> = spans.iter().map(|s| s.span_context.span_id()).collect();
    assert!(
        exemplars
            .iter()
            .all(|e| e.span_id.is_some_and(|id| ours.contains(&id)))
    );
    let last = spans.iter().max_by_key(|s| s.end_time).unwrap();
    assert!(
        exemplars
            .iter()
            .any(|e| e.span_id == Some(last.span_context.span_id())),
        "the last run replaced the exemplar of its bucket: {exemplars:?}"
    );
}

#[test]
fn failed_attempts_stages_tasks_and_runs_have_exemplars_of_their_own_spans() {
    let telemetry = TestTelemetry::new();
    let mut g = DagBuilder::new("mixed");
    let x = g.input::<u32>("x");
    let (b, after) = staged_and_failing(&mut g, x);
    let grouped = g.node("grouped").task("pair").run(b, |_, b| Ok(*b));
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(grouped).output(after))
        .unwrap();
    let executor = Executor::parallel()
        .failure_policy(FailurePolicy::Continue)
        .hook(telemetry.hooks());
    let _ = executor.run(&plan, Inputs::new().set(x, 1));
    telemetry.metrics();

    // `bad` failed twice: the bucket keeps the later attempt.
    let failed = telemetry.exemplars(
        conv::METRIC_NODE_DURATION,
        &node_series("mixed", "bad", "error"),
    );
    let mut attempts = telemetry.spans_named("bad");
    attempts.sort_by_key(|s| s.end_time);
    assert_eq!(attempts.len(), 2);
    let [first, second] = [&attempts[0], &attempts[1]].map(|s| s.span_context.span_id());
    // Both attempts mostly share a bucket, then the later one is kept; a busy machine can
    // put them in two, each keeping its own.
    match failed.as_slice() {
        [only] => assert_eq!(only.span_id, Some(second)),
        [one, other] => {
            assert_ne!(bucket_of(one.value), bucket_of(other.value));
            let ids = [one.span_id, other.span_id];
            assert!(
                ids.contains(&Some(first)) && ids.contains(&Some(second)),
                "{failed:?}"
            );
        }
        _ => panic!("one exemplar per bucket of `bad`'s attempts: {failed:?}"),
    }

    let staged = telemetry.exemplars(
        conv::METRIC_NODE_DURATION,
        &[
            node_series("mixed", "a", "ok"),
            vec![kv(conv::STAGE_NAME, "s")],
        ]
        .concat(),
    );
    assert_eq!(
        staged[0].span_id,
        Some(telemetry.span("a").unwrap().span_context.span_id())
    );

    let stage = telemetry.exemplars(
        conv::METRIC_STAGE_DURATION,
        &[
            kv(conv::DAG_NAME, "mixed"),
            kv(conv::STATUS, "ok"),
            kv(conv::STAGE_NAME, "s"),
        ],
    );
    assert_eq!(
        stage[0].span_id,
        Some(telemetry.span("stage s").unwrap().span_context.span_id())
    );

    let task = telemetry.exemplars(
        conv::METRIC_TASK_DURATION,
        &[kv(conv::DAG_NAME, "mixed"), kv(conv::STATUS, "ok")],
    );
    assert_eq!(
        task[0].span_id,
        Some(telemetry.span("task pair").unwrap().span_context.span_id())
    );

    let root = telemetry.span("run mixed").unwrap();
    let run = telemetry.exemplars(
        conv::METRIC_RUN_DURATION,
        &[kv(conv::DAG_NAME, "mixed"), kv(conv::STATUS, "error")],
    );
    assert_eq!(run[0].span_id, Some(root.span_context.span_id()));
    assert_eq!(run[0].trace_id, Some(root.span_context.trace_id()));
}

#[test]
fn layer_series_exemplars_name_the_node_they_were_measured_in() {
    let telemetry = TestTelemetry::new();
    let mut g = DagBuilder::new("blocks");
    let blocks: Vec<Handle<u64>> = (0..20)
        .map(|i| {
            g.node(format!("block_{i}"))
                .tag("layer", "ingest")
                .run((), move |_, ()| Ok(i))
        })
        .collect();
    let total = g
        .node("total")
        .run(blocks, |_, b| Ok(b.iter().copied().copied().sum::<u64>()));
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(total))
        .unwrap();
    let hooks = telemetry
        .hooks_builder()
        .node_series(NodeSeries::Layer)
        .build();
    Executor::parallel()
        .hook(hooks)
        .run(&plan, Inputs::new())
        .unwrap();
    telemetry.metrics();
    let exemplars = telemetry.exemplars(
        conv::METRIC_NODE_DURATION,
        &[
            kv(conv::DAG_NAME, "blocks"),
            kv(conv::NODE_LAYER, "ingest"),
            kv(conv::STATUS, "ok"),
        ],
    );
    assert!(!exemplars.is_empty());
    for e in &exemplars {
        let [node] = &e.filtered_attributes[..] else {
            panic!("{e:?}");
        };
        assert_eq!(node.key.as_str(), conv::NODE_NAME);
        let span = telemetry.span(node.value.as_str().as_ref()).unwrap();
        assert_eq!(e.span_id, Some(span.span_context.span_id()));
    }
}

#[test]
fn sampled_out_runs_keep_exemplars_only_with_always_on_and_without_ids() {
    let telemetry = TestTelemetry::new();
    let off = off_provider();
    let plan = one_node("dropped");
    let series = node_series("dropped", "a", "ok");
    for (filter, kept) in [
        (ExemplarFilter::TraceBased, false),
        (ExemplarFilter::AlwaysOff, false),
        (ExemplarFilter::AlwaysOn, true),
    ] {
        let reservoir = Arc::new(Exemplars::new(filter));
        let hooks = OtelHooks::builder(&off, telemetry.meter_provider())
            .exemplars(Arc::clone(&reservoir))
            .build();
        Executor::parallel()
            .hook(hooks)
            .run(&plan, Inputs::new())
            .unwrap();
        telemetry.metrics();
        let found = reservoir.get(conv::METRIC_NODE_DURATION, &series);
        assert_eq!(!found.is_empty(), kept, "{filter:?}: {found:?}");
        if let Some(e) = found.first() {
            assert_eq!((e.trace_id, e.span_id), (None, None), "no span to point at");
        }
        let run = reservoir.get(
            conv::METRIC_RUN_DURATION,
            &[kv(conv::DAG_NAME, "dropped"), kv(conv::STATUS, "ok")],
        );
        assert_eq!(!run.is_empty(), kept, "{filter:?}");
        if let Some(e) = run.first() {
            assert_eq!(
                (e.trace_id, e.span_id),
                (None, None),
                "the root is not exported"
            );
        }
    }
}

#[test]
fn hooks_without_exemplars_keep_none() {
    let telemetry = TestTelemetry::new();
    let plan = one_node("none");
    let hooks = telemetry.hooks_builder().without_exemplars().build();
    Executor::parallel()
        .hook(hooks)
        .run(&plan, Inputs::new())
        .unwrap();
    assert!(
        telemetry
            .histogram(conv::METRIC_NODE_DURATION, &[])
            .is_some()
    );
    assert!(
        telemetry
            .exemplars(conv::METRIC_NODE_DURATION, &node_series("none", "a", "ok"))
            .is_empty()
    );
}

#[test]
fn nodes_driven_by_a_callers_own_executor_get_exemplars_of_their_spans() {
    use dagtel::hooks::{Lifecycle, RunInfo};
    use dagtel::{NodeMeta, TaskMeta};
    let telemetry = TestTelemetry::new();
    let lifecycle = Lifecycle::new().hook(telemetry.hooks());
    let meta = NodeMeta::new("load");
    let task = TaskMeta::single(&meta);
    let run = lifecycle.start_run(RunInfo::new("external"));
    let mut node = run.node(None, &meta, &task);
    node.run(|| std::thread::sleep(std::time::Duration::from_millis(2)));
    node.finish(NodeOutcome::Succeeded);
    run.finish();
    let span = telemetry.span("load").unwrap();
    let exemplars = telemetry.exemplars(
        conv::METRIC_NODE_DURATION,
        &node_series("external", "load", "ok"),
    );
    assert_eq!(exemplars.len(), 1, "{exemplars:?}");
    assert_eq!(exemplars[0].span_id, Some(span.span_context.span_id()));
    assert!(exemplars[0].value >= 0.002);
}
