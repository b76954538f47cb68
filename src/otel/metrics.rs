//! The metric instruments runs record, and the views that keep their cardinality bounded.
//!
//! Every instrument is recorded with at most `dag.name`, `dag.node.name` (or `dag.node.layer`,
//! see [`NodeSeries`](super::NodeSeries)), `dag.stage.name` and `dag.status`: values fixed by
//! the graph's declaration, never by data or by the run (the run id is never a metric
//! attribute), so the number of series is bounded by the graph's size.

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};
use opentelemetry::{Key, KeyValue};
use opentelemetry_sdk::metrics::{Aggregation, Instrument, InstrumentKind, Stream};

use super::conventions as conv;

/// Histogram bucket boundaries in seconds, for pipelines whose steps take from a millisecond
/// to several hours.
pub const DURATION_BUCKETS: [f64; 19] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0, 14400.0,
];

/// The instruments of one hook (and of the node events recorded through its node contexts).
#[derive(Debug)]
pub struct Instruments {
    pub(crate) run_duration: Histogram<f64>,
    pub(crate) stage_duration: Histogram<f64>,
    pub(crate) task_duration: Histogram<f64>,
    pub(crate) node_duration: Histogram<f64>,
    pub(crate) node_errors: Counter<u64>,
    pub(crate) node_retries: Counter<u64>,
    pub(crate) node_skipped: Counter<u64>,
    pub(crate) artifacts: Counter<u64>,
    pub(crate) dataset_rows: Gauge<u64>,
    pub(crate) dataset_columns: Gauge<u64>,
}

impl Instruments {
    /// Creates every instrument on `meter`.
    pub fn new(meter: &Meter) -> Self {
        let histogram = |name: &'static str, what: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(what)
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build()
        };
        // Counts carry an annotation unit (`{error}`), as OpenTelemetry's conventions ask: a
        // plain `1` reads as a ratio to the Prometheus translation, which would add `_ratio`.
        let counter = |name: &'static str, unit: &'static str, what: &'static str| {
            meter
                .u64_counter(name)
                .with_unit(unit)
                .with_description(what)
                .build()
        };
        let gauge = |name: &'static str, unit: &'static str, what: &'static str| {
            meter
                .u64_gauge(name)
                .with_unit(unit)
                .with_description(what)
                .build()
        };
        Self {
            run_duration: histogram(conv::METRIC_RUN_DURATION, "Wall time of a run."),
            stage_duration: histogram(conv::METRIC_STAGE_DURATION, "Wall time of a stage."),
            task_duration: histogram(conv::METRIC_TASK_DURATION, "Wall time of a task."),
            node_duration: histogram(conv::METRIC_NODE_DURATION, "Wall time of a node attempt."),
            node_errors: counter(
                conv::METRIC_NODE_ERRORS,
                "{error}",
                "Node attempts that failed.",
            ),
            node_retries: counter(
                conv::METRIC_NODE_RETRIES,
                "{retry}",
                "Node attempts that were retried.",
            ),
            node_skipped: counter(
                conv::METRIC_NODE_SKIPPED,
                "{node}",
                "Nodes skipped after a failure or cancellation.",
            ),
            artifacts: counter(
                conv::METRIC_ARTIFACTS,
                "{artifact}",
                "Artifacts nodes reported.",
            ),
            dataset_rows: gauge(
                conv::METRIC_DATASET_ROWS,
                "{row}",
                "Rows of the last dataset a node reported.",
            ),
            dataset_columns: gauge(
                conv::METRIC_DATASET_COLUMNS,
                "{column}",
                "Columns of the last dataset a node reported.",
            ),
        }
    }
}

/// A view for a meter provider: dagtel's instruments keep only the bounded attribute keys,
/// whatever a caller adds, and duration histograms use [`DURATION_BUCKETS`]. Install with
/// `SdkMeterProvider::builder().with_view(dagtel::otel::metrics::view)` (the telemetry bootstrap
/// does).
pub fn view(instrument: &Instrument) -> Option<Stream> {
    bounded_view(instrument, None)
}

/// [`view`] with another aggregation for dagtel's histograms (e.g. base-2 exponential).
pub fn bounded_view(instrument: &Instrument, histograms: Option<Aggregation>) -> Option<Stream> {
    if !instrument.name().starts_with("dag.") {
        return None;
    }
    let mut stream = Stream::builder().with_allowed_attribute_keys(bounded_keys());
    if instrument.kind() == InstrumentKind::Histogram {
        stream = stream.with_aggregation(histograms.unwrap_or_else(|| {
            Aggregation::ExplicitBucketHistogram {
                boundaries: DURATION_BUCKETS.to_vec(),
                record_min_max: true,
            }
        }));
    }
    stream.build().ok()
}

/// The only attribute keys dagtel's metrics carry.
pub fn bounded_keys() -> [Key; 5] {
    [
        Key::from_static_str(conv::DAG_NAME),
        Key::from_static_str(conv::NODE_NAME),
        Key::from_static_str(conv::NODE_LAYER),
        Key::from_static_str(conv::STAGE_NAME),
        Key::from_static_str(conv::STATUS),
    ]
}

pub(crate) fn status(value: &'static str) -> KeyValue {
    KeyValue::new(conv::STATUS, value)
}
