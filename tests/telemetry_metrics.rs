//! Metrics through the bootstrap: a run's duration histograms use dagtel's buckets and carry
//! only the bounded attribute keys (a run id added by a caller is dropped by the view), and
//! the exported counts match the run record.

#[path = "support/telemetry.rs"]
mod support;

use dagtel::otel::conventions as conv;
use dagtel::otel::metrics::{DURATION_BUCKETS, bounded_keys};
use dagtel::telemetry::config::ExporterKind;
use dagtel::telemetry::{InstallOptions, install};
use dagtel::*;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use support::settings;

#[test]
fn run_metrics_are_bounded_and_match_the_record() {
    let s = settings("run-metrics", &[ExporterKind::File]);
    let guard = install(&s, "svc", InstallOptions::new().local()).unwrap();

    let mut g = DagBuilder::new("metrics");
    let n = g.input::<u32>("n");
    let a = g.node("a").stage("s").run(n, |_, n| Ok(*n));
    let b = g
        .node("b")
        .run(a, |_, _| -> NodeResult<u32> { Err(NodeError::msg("no")) });
    let c = g.node("c").run(b, |_, b| Ok(*b));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(c).output(a)).unwrap();
    let err = Executor::parallel()
        .threads(2)
        .failure_policy(FailurePolicy::Continue)
        .hook(guard.hooks())
        .run(&plan, Inputs::new().set(n, 1))
        .unwrap_err();
    let record = err.record().unwrap().clone();
    // A caller recording on a dagtel instrument with an unbounded attribute.
    guard
        .meter_provider()
        .unwrap()
        .meter("caller")
        .f64_histogram(conv::METRIC_NODE_DURATION)
        .build()
        .record(
            0.5,
            &[
                KeyValue::new(conv::RUN_ID, "run-x"),
                KeyValue::new(conv::NODE_NAME, "x"),
            ],
        );

    let dir = guard.telemetry_dir().unwrap().to_owned();
    let report = guard.shutdown();
    assert!(report.is_complete(), "{report}");
    let metrics = exported_metrics(&dir);
    let allowed: Vec<String> = bounded_keys().iter().map(|k| k.to_string()).collect();
    let mut node_points = 0;
    for metric in metrics
        .iter()
        .filter(|m| m.name == conv::METRIC_NODE_DURATION)
    {
        let Some(Data::Histogram(h)) = &metric.data else {
            panic!("{} is an explicit-bucket histogram", metric.name)
        };
        for point in &h.data_points {
            assert_eq!(point.explicit_bounds, DURATION_BUCKETS.to_vec());
            for kv in &point.attributes {
                assert!(
                    allowed.contains(&kv.key),
                    "unbounded key {} on {}",
                    kv.key,
                    metric.name
                );
            }
            node_points += point.count;
        }
    }
    let ran = record
        .nodes()
        .filter(|n| n.status != NodeStatus::Skipped)
        .count() as u64;
    assert_eq!(
        node_points,
        ran + 1,
        "one point per attempt, plus the caller's"
    );
    let counter = |name: &str| -> i64 {
        metrics
            .iter()
            .filter(|m| m.name == name)
            .map(|m| match &m.data {
                Some(Data::Sum(sum)) => sum
                    .data_points
                    .iter()
                    .map(|p| match p.value {
                        Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(v)) => v,
                        _ => 0,
                    })
                    .sum::<i64>(),
                _ => 0,
            })
            .sum()
    };
    assert_eq!(
        counter(conv::METRIC_NODE_ERRORS),
        record.count(NodeStatus::Failed) as i64
    );
    assert_eq!(
        counter(conv::METRIC_NODE_SKIPPED),
        record.count(NodeStatus::Skipped) as i64
    );
}

/// Durations of first-try successes wait to be recorded in batches; a shutdown while the
/// hooks are still alive (an executor kept for later runs) must export them all the same.
#[test]
fn shutdown_exports_node_durations_while_the_hooks_are_alive() {
    let s = settings("durations-at-shutdown", &[ExporterKind::File]);
    let guard = install(&s, "svc", InstallOptions::new().local()).unwrap();
    let mut g = DagBuilder::new("kept");
    let n = g.input::<u32>("n");
    let a = g.node("a").run(n, |_, n| Ok(*n + 1));
    let b = g.node("b").run(a, |_, a| Ok(*a * 2));
    let plan = g.build().unwrap().plan(&Request::new().output(b)).unwrap();
    let executor = Executor::parallel().threads(2).hook(guard.hooks());
    for i in 0..3 {
        executor.run(&plan, Inputs::new().set(n, i)).unwrap();
    }

    let dir = guard.telemetry_dir().unwrap().to_owned();
    let report = guard.shutdown();
    assert!(report.is_complete(), "{report}");
    let points: u64 = node_duration_points(&dir).iter().map(|p| p.count).sum();
    assert_eq!(points, 6, "two nodes, three runs, one point each");
    drop(executor);
}

/// `DAGTEL_NODE_METRICS=layer` (here set in the settings) reaches the guard's hooks: node
/// durations are exported per layer, through the bootstrap's view, with no node name.
#[test]
fn the_configured_node_series_reaches_the_exported_metrics() {
    let mut s = settings("node-series", &[ExporterKind::File]);
    s.metrics.node_series = dagtel::otel::NodeSeries::Layer;
    let guard = install(&s, "svc", InstallOptions::new().local()).unwrap();
    let mut g = DagBuilder::new("layers");
    let n = g.input::<u32>("n");
    let a = g.node("a").tag("layer", "io").run(n, |_, n| Ok(*n + 1));
    let b = g.node("b").tag("layer", "io").run(a, |_, a| Ok(*a * 2));
    let c = g.node("c").run(b, |_, b| Ok(*b + 3));
    let plan = g.build().unwrap().plan(&Request::new().output(c)).unwrap();
    let executor = Executor::sequential().hook(guard.hooks());
    for i in 0..2 {
        executor.run(&plan, Inputs::new().set(n, i)).unwrap();
    }
    drop(executor);

    let dir = guard.telemetry_dir().unwrap().to_owned();
    let report = guard.shutdown();
    assert!(report.is_complete(), "{report}");
    let mut by_layer: Vec<(Option<String>, u64)> = node_duration_points(&dir)
        .into_iter()
        .map(|p| {
            assert!(
                support::attr(&p.attributes, conv::NODE_NAME).is_none(),
                "no node name: {:?}",
                p.attributes
            );
            let layer = support::attr(&p.attributes, conv::NODE_LAYER).map(str::to_owned);
            (layer, p.count)
        })
        .collect();
    by_layer.sort();
    assert_eq!(
        by_layer,
        [(None, 2), (Some("io".to_owned()), 4)],
        "`c` alone without a layer; `a` and `b` share `io`; two runs"
    );
}

/// Every `dag.node.duration` point the file exporter wrote under `dir`.
fn node_duration_points(
    dir: &std::path::Path,
) -> Vec<opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint> {
    exported_metrics(dir)
        .into_iter()
        .filter(|m| m.name == conv::METRIC_NODE_DURATION)
        .filter_map(|m| match m.data {
            Some(Data::Histogram(h)) => Some(h.data_points),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Every metric the file exporter wrote under `dir`, from all its exports.
fn exported_metrics(dir: &std::path::Path) -> Vec<opentelemetry_proto::tonic::metrics::v1::Metric> {
    support::metrics(dir)
        .into_iter()
        .flat_map(|r| r.resource_metrics)
        .flat_map(|rm| rm.scope_metrics)
        .flat_map(|sm| sm.metrics)
        .collect()
}
