//! Node metrics recorded by `OtelHooks`: one duration series per node and status, with the
//! stage when there is one, and counters for errors, retries and skips; the same series
//! across runs of one graph, and separate series for separate graphs.

mod common;

use common::sampled_out::off_provider;

use common::metric_graph::staged_and_failing;
use dagtel::otel::testing::TestTelemetry;
use dagtel::otel::{OtelHooks, conventions as conv};
use dagtel::*;
use opentelemetry::KeyValue;

fn kv(key: &'static str, value: &'static str) -> KeyValue {
    KeyValue::new(key, value)
}

fn hooks(telemetry: &TestTelemetry) -> OtelHooks {
    OtelHooks::new(telemetry.tracer_provider(), telemetry.meter_provider())
}

/// See [`staged_and_failing`].
fn graph(name: &str) -> (Plan, Handle<u32>) {
    let mut g = DagBuilder::new(name);
    let x = g.input::<u32>("x");
    let (b, after) = staged_and_failing(&mut g, x);
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(b).output(after)).unwrap();
    (plan, x)
}

#[test]
fn node_metrics_keep_one_series_per_node_and_status_across_runs_and_graphs() {
    let telemetry = TestTelemetry::new();
    let (plan, x) = graph("first");
    let (other, other_x) = graph("second");
    for executor in [Executor::sequential(), Executor::parallel().threads(2)] {
        // Continue: with fail-fast, `bad` failing first would skip `a` and `b` in some runs.
        let executor = executor
            .failure_policy(FailurePolicy::Continue)
            .hook(hooks(&telemetry));
        for _ in 0..3 {
            assert!(executor.run(&plan, Inputs::new().set(x, 1)).is_err());
        }
        assert!(executor.run(&other, Inputs::new().set(other_x, 1)).is_err());
    }
    let duration = |attrs: &[KeyValue]| {
        telemetry
            .histogram(conv::METRIC_NODE_DURATION, attrs)
            .map(|h| h.count)
    };
    let first = kv(conv::DAG_NAME, "first");
    let second = kv(conv::DAG_NAME, "second");
    let ok = kv(conv::STATUS, "ok");
    let a = [
        first.clone(),
        kv(conv::NODE_NAME, "a"),
        kv(conv::STAGE_NAME, "s"),
        ok.clone(),
    ];
    assert_eq!(duration(&a), Some(6), "3 runs by each of 2 executors");
    let b = [first.clone(), kv(conv::NODE_NAME, "b"), ok.clone()];
    assert_eq!(duration(&b), Some(6));
    assert_eq!(
        duration(&[second.clone(), kv(conv::NODE_NAME, "b"), ok.clone()]),
        Some(2)
    );
    // `b` has no stage: its series carries none.
    assert_eq!(
        duration(&[kv(conv::NODE_NAME, "b"), kv(conv::STAGE_NAME, "s")]),
        None
    );
    // Every attempt of `bad` failed: its durations carry the error status, never ok.
    let bad = kv(conv::NODE_NAME, "bad");
    assert_eq!(
        duration(&[first.clone(), bad.clone(), kv(conv::STATUS, "error")]),
        Some(12),
        "2 attempts per run"
    );
    assert_eq!(duration(&[bad.clone(), ok]), None);
    let counter = |name, attrs: &[KeyValue]| telemetry.counter(name, attrs);
    assert_eq!(
        counter(conv::METRIC_NODE_ERRORS, &[first.clone(), bad.clone()]),
        Some(12.0)
    );
    assert_eq!(
        counter(conv::METRIC_NODE_RETRIES, &[first.clone(), bad]),
        Some(6.0)
    );
    let after = [first, kv(conv::NODE_NAME, "after")];
    assert_eq!(counter(conv::METRIC_NODE_SKIPPED, &after), Some(6.0));
    assert_eq!(duration(&after), None, "a skipped node has no duration");
    assert_eq!(counter(conv::METRIC_NODE_SKIPPED, &[second]), Some(2.0));
}

/// `NodeSeries::Layer` and `NodeSeries::Stage` record node metrics per layer or per stage,
/// with no node name, in sampled runs (from `after_node`) and sampled-out ones (from the run
/// record) alike.
#[test]
fn node_series_by_layer_or_stage_carry_no_node_name() {
    use dagtel::otel::NodeSeries;

    let mut g = DagBuilder::new("grouped");
    let x = g.input::<u32>("x");
    let a = g.node("a").tag("layer", "io").run(x, |_, x| Ok(*x));
    let b = g.node("b").tag("layer", "io").run(x, |_, x| Ok(*x + 1));
    let c = g
        .node("c")
        .tag("layer", "compute")
        .stage("s")
        .run((a, b), |_, (a, b)| Ok(*a + *b));
    let d = g.node("d").run(c, |_, c| Ok(*c * 2));
    let bad = g
        .node("bad")
        .tag("layer", "io")
        .retry(RetryPolicy::attempts(2))
        .run(x, |_, _| -> NodeResult<u32> { Err(NodeError::msg("no")) });
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(d).output(bad))
        .unwrap();
    let grouped = kv(conv::DAG_NAME, "grouped");
    let ok = kv(conv::STATUS, "ok");
    for sampled in [true, false] {
        for series in [NodeSeries::Layer, NodeSeries::Stage] {
            let telemetry = TestTelemetry::new();
            let off = off_provider();
            let tracer = if sampled {
                telemetry.tracer_provider()
            } else {
                &off
            };
            let hooks = OtelHooks::builder(tracer, telemetry.meter_provider())
                .node_series(series)
                .build();
            let executor = Executor::parallel()
                .threads(2)
                .failure_policy(FailurePolicy::Continue)
                .hook(hooks);
            for _ in 0..3 {
                assert!(executor.run(&plan, Inputs::new().set(x, 1)).is_err());
            }
            drop(executor);
            let case = format!("{series:?}, sampled {sampled}");
            let duration = |attrs: &[KeyValue]| {
                telemetry
                    .histogram(conv::METRIC_NODE_DURATION, attrs)
                    .map(|h| h.count)
            };
            for node in ["a", "b", "c", "d", "bad"] {
                let name = [kv(conv::NODE_NAME, node)];
                assert_eq!(duration(&name), None, "{case}: no node name");
                assert_eq!(
                    telemetry.counter(conv::METRIC_NODE_ERRORS, &name),
                    None,
                    "{case}"
                );
            }
            assert_eq!(
                duration(&[grouped.clone(), ok.clone()]),
                Some(12),
                "{case}: 4 successful nodes x 3 runs, in whatever series"
            );
            let io = kv(conv::NODE_LAYER, "io");
            let stage = kv(conv::STAGE_NAME, "s");
            let errors = |attrs: &[KeyValue]| telemetry.counter(conv::METRIC_NODE_ERRORS, attrs);
            match series {
                NodeSeries::Layer => {
                    assert_eq!(duration(&[io.clone(), ok.clone()]), Some(6), "{case}");
                    assert_eq!(
                        duration(&[kv(conv::NODE_LAYER, "compute"), stage, ok.clone()]),
                        Some(3),
                        "{case}"
                    );
                    assert_eq!(errors(&[grouped.clone(), io]), Some(6.0), "{case}");
                }
                _ => {
                    assert_eq!(duration(&[stage, ok.clone()]), Some(3), "{case}");
                    assert_eq!(duration(&[io]), None, "{case}: no layer");
                    assert_eq!(errors(std::slice::from_ref(&grouped)), Some(6.0), "{case}");
                }
            }
        }
    }
}

/// Durations waiting to be recorded keep neither the plan nor the graph: a service that
/// builds a graph per request frees each one (its bodies and their data) with the caller's
/// last reference, not at the next metric collection, and its durations are still exported.
#[test]
fn waiting_durations_keep_no_graph_alive() {
    let telemetry = TestTelemetry::new();
    let executor = Executor::sequential().hook(hooks(&telemetry));
    let data = std::sync::Arc::new(vec![7u8; 1 << 16]);
    for _ in 0..3 {
        let mut g = DagBuilder::new("per-request");
        let held = std::sync::Arc::clone(&data);
        let a = g.node("a").run((), move |_, ()| Ok(held.len()));
        let plan = g.build().unwrap().plan(&Request::new().output(a)).unwrap();
        executor.run(&plan, Inputs::new()).unwrap();
    }
    assert_eq!(
        std::sync::Arc::strong_count(&data),
        1,
        "each graph's body and its data went with the graph"
    );
    let count = telemetry
        .histogram(conv::METRIC_NODE_DURATION, &[kv(conv::NODE_NAME, "a")])
        .map(|h| h.count);
    assert_eq!(count, Some(3), "one duration per request, all exported");
}

/// Every instrument has the unit the conventions give it: seconds for durations, annotations
/// for counts.
#[test]
fn every_instrument_has_its_documented_unit() {
    let telemetry = TestTelemetry::new();
    let mut g = DagBuilder::new("units");
    let x = g.input::<u32>("x");
    let (b, after) = staged_and_failing(&mut g, x);
    let report = g.node("report").run(b, |ctx, b| {
        ctx.artifact("table", serde_json::json!({"rows": 3}));
        ctx.dataset("table", 3, 2);
        Ok(*b)
    });
    let dag = g.build().unwrap();
    let plan = dag
        .plan(&Request::new().output(report).output(after))
        .unwrap();
    let _ = Executor::sequential()
        .failure_policy(FailurePolicy::Continue)
        .hook(hooks(&telemetry))
        .run(&plan, Inputs::new().set(x, 1));
    let metrics = telemetry.metrics();
    let mut units: Vec<(String, String)> = metrics
        .iter()
        .flat_map(|r| r.scope_metrics())
        .flat_map(|s| s.metrics())
        .filter(|m| m.name().starts_with("dag."))
        .map(|m| (m.name().to_string(), m.unit().to_string()))
        .collect();
    units.sort();
    units.dedup();
    let expected: Vec<(String, String)> = [
        ("dag.artifacts", "{artifact}"),
        ("dag.dataset.columns", "{column}"),
        ("dag.dataset.rows", "{row}"),
        ("dag.node.duration", "s"),
        ("dag.node.errors", "{error}"),
        ("dag.node.retries", "{retry}"),
        ("dag.node.skipped", "{node}"),
        ("dag.run.duration", "s"),
        ("dag.stage.duration", "s"),
    ]
    .iter()
    .map(|(n, u)| (n.to_string(), u.to_string()))
    .collect();
    assert_eq!(units, expected);
}
