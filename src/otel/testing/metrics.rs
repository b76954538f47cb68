//! Reading counter and histogram values out of exported metrics.

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};

/// A histogram merged over the data points that matched: counts and sums add up, the
/// extremes are the extremes of all points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramSummary {
    /// How many values were recorded.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest value, when the aggregation records it.
    pub min: Option<f64>,
    /// The largest value, when the aggregation records it.
    pub max: Option<f64>,
}

/// Sum of the matching points of the counter `name`.
pub(super) fn sum(snapshots: &[ResourceMetrics], name: &str, wanted: &[KeyValue]) -> Option<f64> {
    let mut total = None;
    for metric in metrics_named(snapshots, name) {
        let mut add = |value: f64| *total.get_or_insert(0.0) += value;
        match metric.data() {
            AggregatedMetrics::U64(MetricData::Sum(s)) => s
                .data_points()
                .filter(|p| matches(p.attributes(), wanted))
                .for_each(|p| add(p.value() as f64)),
            AggregatedMetrics::I64(MetricData::Sum(s)) => s
                .data_points()
                .filter(|p| matches(p.attributes(), wanted))
                .for_each(|p| add(p.value() as f64)),
            AggregatedMetrics::F64(MetricData::Sum(s)) => s
                .data_points()
                .filter(|p| matches(p.attributes(), wanted))
                .for_each(|p| add(p.value())),
            _ => {}
        }
    }
    total
}

/// The matching points of the histogram `name`, merged.
pub(super) fn histogram(
    snapshots: &[ResourceMetrics],
    name: &str,
    wanted: &[KeyValue],
) -> Option<HistogramSummary> {
    let mut merged: Option<HistogramSummary> = None;
    let mut merge = |count: u64, sum: f64, min: Option<f64>, max: Option<f64>| {
        let m = merged.get_or_insert(HistogramSummary {
            count: 0,
            sum: 0.0,
            min,
            max,
        });
        m.count += count;
        m.sum += sum;
        m.min = extreme(m.min, min, f64::min);
        m.max = extreme(m.max, max, f64::max);
    };
    for metric in metrics_named(snapshots, name) {
        match metric.data() {
            AggregatedMetrics::U64(MetricData::Histogram(h)) => h
                .data_points()
                .filter(|p| matches(p.attributes(), wanted))
                .for_each(|p| {
                    merge(
                        p.count(),
                        p.sum() as f64,
                        p.min().map(|v| v as f64),
                        p.max().map(|v| v as f64),
                    )
                }),
            AggregatedMetrics::I64(MetricData::Histogram(h)) => h
                .data_points()
                .filter(|p| matches(p.attributes(), wanted))
                .for_each(|p| {
                    merge(
                        p.count(),
                        p.sum() as f64,
                        p.min().map(|v| v as f64),
                        p.max().map(|v| v as f64),
                    )
                }),
            AggregatedMetrics::F64(MetricData::Histogram(h)) => h
                .data_points()
                .filter(|p| matches(p.attributes(), wanted))
                .for_each(|p| merge(p.count(), p.sum(), p.min(), p.max())),
            _ => {}
        }
    }
    merged
}

fn metrics_named<'a>(
    snapshots: &'a [ResourceMetrics],
    name: &'a str,
) -> impl Iterator<Item = &'a Metric> {
    snapshots
        .iter()
        .flat_map(|r| r.scope_metrics())
        .flat_map(|s| s.metrics())
        .filter(move |m| m.name() == name)
}

/// Whether a point's attributes include every wanted pair.
fn matches<'a>(have: impl Iterator<Item = &'a KeyValue>, wanted: &[KeyValue]) -> bool {
    let have: Vec<&KeyValue> = have.collect();
    wanted.iter().all(|w| have.contains(&w))
}

fn extreme(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}
