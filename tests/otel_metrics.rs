//! Node metrics recorded by `OtelHooks`: one duration series per node and status, with the
//! stage when there is one, and counters for errors, retries and skips; the same series
//! across runs of one graph, and separate series for separate graphs.

mod common;

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
