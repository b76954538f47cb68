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
        let values = match metric.data() {
            AggregatedMetrics::U64(data) => sum_points(data, wanted),
            AggregatedMetrics::I64(data) => sum_points(data, wanted),
            AggregatedMetrics::F64(data) => sum_points(data, wanted),
        };
        for value in values {
            *total.get_or_insert(0.0) += value;
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
    for metric in metrics_named(snapshots, name) {
        let points = match metric.data() {
            AggregatedMetrics::U64(data) => histogram_points(data, wanted),
            AggregatedMetrics::I64(data) => histogram_points(data, wanted),
            AggregatedMetrics::F64(data) => histogram_points(data, wanted),
        };
        for point in points {
            merged = Some(match merged {
                Some(m) => m.merge(point),
                None => point,
            });
        }
    }
    merged
}

impl HistogramSummary {
    fn merge(self, other: Self) -> Self {
        Self {
            count: self.count + other.count,
            sum: self.sum + other.sum,
            min: extreme(self.min, other.min, f64::min),
            max: extreme(self.max, other.max, f64::max),
        }
    }
}

/// The number types an instrument records; values are compared as `f64` whatever the type.
trait AsF64: Copy {
    fn as_f64(self) -> f64;
}

impl AsF64 for u64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl AsF64 for i64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl AsF64 for f64 {
    fn as_f64(self) -> f64 {
        self
    }
}

/// The values of the matching points, when `data` is a sum.
fn sum_points<T: AsF64>(data: &MetricData<T>, wanted: &[KeyValue]) -> Vec<f64> {
    let MetricData::Sum(sum) = data else {
        return Vec::new();
    };
    sum.data_points()
        .filter(|p| matches(p.attributes(), wanted))
        .map(|p| p.value().as_f64())
        .collect()
}

/// The matching points, each as a summary, when `data` is a histogram.
fn histogram_points<T: AsF64>(data: &MetricData<T>, wanted: &[KeyValue]) -> Vec<HistogramSummary> {
    let MetricData::Histogram(histogram) = data else {
        return Vec::new();
    };
    histogram
        .data_points()
        .filter(|p| matches(p.attributes(), wanted))
        .map(|p| HistogramSummary {
            count: p.count(),
            sum: p.sum().as_f64(),
            min: p.min().map(AsF64::as_f64),
            max: p.max().map(AsF64::as_f64),
        })
        .collect()
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
