//! Exemplars: for each series of dagtel's duration histograms, the last measurement seen in
//! each bucket, with the trace and span it was measured in, so that a backend (Grafana over
//! Prometheus or Mimir, say) can jump from a slow bucket to the trace of a node that fell in it.
//!
//! opentelemetry_sdk 0.33 records no exemplars (its data points carry none and cannot be
//! given any), so dagtel keeps them itself: the hooks offer each duration with its span to an
//! [`Exemplars`] reservoir, and the exporters that dagtel builds (OTLP over gRPC and HTTP, the
//! OTLP/JSON file) add them to the data points of the request they send with
//! [`Exemplars::attach`]. A program with its own metric exporter can call `attach` too.
//!
//! Which measurements are offered follows `OTEL_METRICS_EXEMPLAR_FILTER`
//! ([`ExemplarFilter`]): `trace_based` (the default) keeps measurements made in a sampled
//! span, `always_on` every measurement (those of sampled-out runs carry no trace or span
//! id), `always_off` none. The reservoir is the specification's aligned-histogram one with
//! "last seen" replacement: one exemplar per bucket, so its size is bounded by the number of
//! series times the number of buckets.
//!
//! ```
//! use dagtel::otel::conventions as conv;
//! use dagtel::otel::testing::TestTelemetry;
//! use dagtel::{DagBuilder, Executor, Inputs, Request};
//! use opentelemetry::KeyValue;
//!
//! let mut g = DagBuilder::new("etl");
//! let load = g.node("load").run((), |_, ()| Ok(3u32));
//! let plan = g.build()?.plan(&Request::new().output(load))?;
//!
//! let telemetry = TestTelemetry::new();
//! Executor::parallel().hook(telemetry.hooks()).run(&plan, Inputs::new())?;
//! telemetry.metrics(); // a collection: what the exporters would send now
//!
//! let series = [
//!     KeyValue::new(conv::DAG_NAME, "etl"),
//!     KeyValue::new(conv::NODE_NAME, "load"),
//!     KeyValue::new(conv::STATUS, "ok"),
//! ];
//! let exemplars = telemetry.exemplars(conv::METRIC_NODE_DURATION, &series);
//! let load_span = telemetry.spans().into_iter().find(|s| s.name == "load").unwrap();
//! assert_eq!(exemplars.len(), 1);
//! assert_eq!(exemplars[0].span_id, Some(load_span.span_context.span_id()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId, TraceId};
use opentelemetry::{KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Exemplar as ProtoExemplar, exemplar, metric};

use super::conventions as conv;
use super::metrics::DURATION_BUCKETS;
use crate::sync::lock;
pub use crate::telemetry::config::ExemplarFilter;

/// Buckets of a duration histogram: one more than its boundaries.
const BUCKETS: usize = DURATION_BUCKETS.len() + 1;

/// One exemplar as a caller reads it (see [`Exemplars::get`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Exemplar {
    /// The measured value (seconds, for durations).
    pub value: f64,
    /// When it was measured (the end of what was timed).
    pub time: SystemTime,
    /// The trace it was measured in; `None` outside a span (`always_on` only).
    pub trace_id: Option<TraceId>,
    /// The span it was measured in; `None` outside a span (`always_on` only).
    pub span_id: Option<SpanId>,
    /// Attributes of the measurement that its series does not carry: `dag.node.name` when
    /// node metrics are kept per layer or stage.
    pub filtered_attributes: Vec<KeyValue>,
}

/// How many series of one histogram a reservoir keeps by default: the SDK's default
/// cardinality limit, past which the SDK keeps no series of their own either.
pub const DEFAULT_SERIES_LIMIT: usize = 2000;

/// How many exports in a row a series may see without a new measurement before it is
/// forgotten (unless a hook still holds it for a graph that is alive).
const IDLE_EXPORTS: u32 = 32;

/// A reservoir of exemplars for dagtel's duration histograms; see the [module docs](self).
///
/// Its memory is bounded: at most [`DEFAULT_SERIES_LIMIT`] series per histogram (see
/// [`with_series_limit`](Self::with_series_limit); measurements of further series get no
/// exemplar), each with at most one exemplar per bucket. A series that has had no new
/// measurement for 32 exports and that no live graph's hooks hold is forgotten, so graphs
/// built and dropped one per request do not accumulate.
#[derive(Debug)]
pub struct Exemplars {
    filter: ExemplarFilter,
    series_limit: usize,
    /// Each histogram's series, by metric name, then by [`series_key`] of the attributes.
    series: Mutex<HashMap<String, HashMap<String, Arc<SeriesExemplars>>>>,
}

/// The buckets of one series: what a hook keeps per node so that offering an exemplar does
/// not look the series up. Only buckets that have an exemplar take room (most series see one
/// or two buckets, and a graph may have a series per node).
#[derive(Debug, Default)]
pub(crate) struct SeriesExemplars {
    /// By bucket index, ascending.
    buckets: Mutex<Vec<(u8, Sample)>>,
    /// Whether a measurement was offered since the last export.
    fresh: AtomicBool,
    /// Exports in a row that found it without a new measurement.
    idle: AtomicU32,
}

/// A measurement kept in a bucket.
#[derive(Clone, Debug)]
struct Sample {
    value: f64,
    /// Unix nanoseconds.
    time: u64,
    trace_id: TraceId,
    span_id: SpanId,
    node: Option<StringValue>,
}

/// Where a measurement was made: its span's ids (invalid outside a sampled span) and whether
/// that span is sampled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) sampled: bool,
}

impl Origin {
    /// No span.
    pub(crate) const NONE: Origin = Origin {
        trace_id: TraceId::INVALID,
        span_id: SpanId::INVALID,
        sampled: false,
    };

    /// The span `context` describes, if it is sampled: the ids of a span that is not
    /// exported would point at nothing.
    pub(crate) fn of(context: &SpanContext) -> Self {
        if !context.is_valid() || !context.is_sampled() {
            return Self::NONE;
        }
        Self {
            trace_id: context.trace_id(),
            span_id: context.span_id(),
            sampled: context.is_sampled(),
        }
    }
}

impl Exemplars {
    /// An empty reservoir that keeps what `filter` admits.
    pub fn new(filter: ExemplarFilter) -> Self {
        Self {
            filter,
            series_limit: DEFAULT_SERIES_LIMIT,
            series: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps at most `limit` series per histogram (for a meter provider whose views raise the
    /// cardinality limit of dagtel's instruments).
    pub fn with_series_limit(mut self, limit: usize) -> Self {
        self.series_limit = limit;
        self
    }

    /// The filter measurements pass.
    pub fn filter(&self) -> ExemplarFilter {
        self.filter
    }

    /// Whether a measurement made in `origin` is kept.
    pub(crate) fn admits(&self, origin: &Origin) -> bool {
        match self.filter {
            ExemplarFilter::AlwaysOn => true,
            ExemplarFilter::AlwaysOff => false,
            ExemplarFilter::TraceBased => origin.sampled,
        }
    }

    /// The buckets of the series of histogram `metric` with `attributes`, created if new and
    /// the histogram has fewer than the limit.
    pub(crate) fn series(
        &self,
        metric: &str,
        attributes: &[KeyValue],
    ) -> Option<Arc<SeriesExemplars>> {
        let key = series_key(attributes.iter().map(sdk_pair));
        let mut all = lock(&self.series);
        let by_attributes = match all.get_mut(metric) {
            Some(found) => found,
            None => all.entry(metric.to_owned()).or_default(),
        };
        if let Some(found) = by_attributes.get(&key) {
            return Some(Arc::clone(found));
        }
        if by_attributes.len() >= self.series_limit {
            return None;
        }
        Some(Arc::clone(by_attributes.entry(key).or_default()))
    }

    /// The series of histogram `metric` whose attributes are `key`, if kept.
    fn find(&self, metric: &str, key: &str) -> Option<Arc<SeriesExemplars>> {
        lock(&self.series).get(metric)?.get(key).cloned()
    }

    /// Offers one measurement of histogram `metric` in the series `attributes`.
    pub(crate) fn offer(
        &self,
        metric: &str,
        attributes: &[KeyValue],
        value: f64,
        origin: Origin,
        node: Option<StringValue>,
    ) {
        if self.admits(&origin)
            && let Some(series) = self.series(metric, attributes)
        {
            series.offer(value, unix_nanos(SystemTime::now()), origin, node);
        }
    }

    /// The exemplars of the series of histogram `metric` whose attributes are exactly
    /// `attributes` (in any order), one per bucket that has one, in bucket order.
    pub fn get(&self, metric: &str, attributes: &[KeyValue]) -> Vec<Exemplar> {
        let key = series_key(attributes.iter().map(sdk_pair));
        let Some(series) = self.find(metric, &key) else {
            return Vec::new();
        };
        let buckets = lock(&series.buckets);
        buckets
            .iter()
            .map(|(_, sample)| sample.exemplar())
            .collect()
    }

    /// Adds the exemplars of every dagtel histogram data point in `request`: for an
    /// explicit-bucket point with dagtel's boundaries, the exemplar of each bucket that
    /// counted a measurement; for other points, every exemplar of the series. Existing
    /// exemplars of a point are kept when the reservoir has none for it.
    pub fn attach(&self, request: &mut ExportMetricsServiceRequest) {
        let metrics = request
            .resource_metrics
            .iter_mut()
            .flat_map(|rm| &mut rm.scope_metrics)
            .flat_map(|sm| &mut sm.metrics)
            .filter(|m| m.name.starts_with("dag."));
        for m in metrics {
            let name = &m.name;
            // One short lock per point: hooks offering at once never wait for a whole export.
            let find = |attributes: &[ProtoKeyValue]| {
                self.find(name, &series_key(attributes.iter().map(proto_pair)))
            };
            match &mut m.data {
                Some(metric::Data::Histogram(h)) => {
                    for point in &mut h.data_points {
                        if let Some(found) = find(&point.attributes) {
                            let counted = (point.explicit_bounds == DURATION_BUCKETS
                                && point.bucket_counts.len() == BUCKETS)
                                .then_some(&point.bucket_counts[..]);
                            set(&mut point.exemplars, found.proto(counted));
                        }
                    }
                }
                Some(metric::Data::ExponentialHistogram(h)) => {
                    for point in &mut h.data_points {
                        if let Some(found) = find(&point.attributes) {
                            set(&mut point.exemplars, found.proto(None));
                        }
                    }
                }
                _ => {}
            }
        }
        self.forget_idle();
    }

    /// Forgets the series that have had no measurement for [`IDLE_EXPORTS`] exports and
    /// that no hook holds (a hook holds the node series of the graphs it has run while they
    /// are alive).
    fn forget_idle(&self) {
        let mut all = lock(&self.series);
        for by_attributes in all.values_mut() {
            by_attributes.retain(|_, series| {
                if series.fresh.swap(false, Ordering::Relaxed) {
                    series.idle.store(0, Ordering::Relaxed);
                    return true;
                }
                let idle = series.idle.fetch_add(1, Ordering::Relaxed) + 1;
                idle < IDLE_EXPORTS || Arc::strong_count(series) > 1
            });
        }
        all.retain(|_, by_attributes| !by_attributes.is_empty());
    }
}

fn set(exemplars: &mut Vec<ProtoExemplar>, found: Vec<ProtoExemplar>) {
    if !found.is_empty() {
        *exemplars = found;
    }
}

impl SeriesExemplars {
    /// Keeps a measurement made at `time` (Unix nanoseconds) as its bucket's exemplar
    /// ("last seen").
    pub(crate) fn offer(&self, value: f64, time: u64, origin: Origin, node: Option<StringValue>) {
        if value.is_nan() {
            return;
        }
        let sample = Sample {
            value,
            time,
            trace_id: origin.trace_id,
            span_id: origin.span_id,
            node,
        };
        let index = bucket(value) as u8;
        self.fresh.store(true, Ordering::Relaxed);
        let mut buckets = lock(&self.buckets);
        match buckets.binary_search_by_key(&index, |(i, _)| *i) {
            // Durations deferred to a collection arrive after later ones recorded at once:
            // the later measurement stays.
            Ok(at) if buckets[at].1.time > time => {}
            Ok(at) => buckets[at].1 = sample,
            Err(at) => buckets.insert(at, (index, sample)),
        }
    }

    /// The exemplars as OTLP messages: of the buckets with a count in `counted` when given,
    /// of every bucket otherwise.
    fn proto(&self, counted: Option<&[u64]>) -> Vec<ProtoExemplar> {
        let buckets = lock(&self.buckets);
        buckets
            .iter()
            .filter(|(i, _)| counted.is_none_or(|counts| counts[usize::from(*i)] > 0))
            .map(|(_, sample)| sample.proto())
            .collect()
    }
}

impl Sample {
    fn exemplar(&self) -> Exemplar {
        Exemplar {
            value: self.value,
            time: UNIX_EPOCH + Duration::from_nanos(self.time),
            trace_id: (self.trace_id != TraceId::INVALID).then_some(self.trace_id),
            span_id: (self.span_id != SpanId::INVALID).then_some(self.span_id),
            filtered_attributes: self.filtered(),
        }
    }

    fn filtered(&self) -> Vec<KeyValue> {
        self.node
            .iter()
            .map(|node| KeyValue::new(conv::NODE_NAME, node.clone()))
            .collect()
    }

    fn proto(&self) -> ProtoExemplar {
        let ids = self.trace_id != TraceId::INVALID && self.span_id != SpanId::INVALID;
        ProtoExemplar {
            filtered_attributes: self.filtered().iter().map(ProtoKeyValue::from).collect(),
            time_unix_nano: self.time,
            span_id: if ids {
                self.span_id.to_bytes().to_vec()
            } else {
                Vec::new()
            },
            trace_id: if ids {
                self.trace_id.to_bytes().to_vec()
            } else {
                Vec::new()
            },
            value: Some(exemplar::Value::AsDouble(self.value)),
        }
    }
}

/// Nanoseconds since the Unix epoch (0 before it).
pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// The explicit bucket `value` falls in: bucket `i` holds values in
/// `(bounds[i-1], bounds[i]]`, as OpenTelemetry defines them.
fn bucket(value: f64) -> usize {
    DURATION_BUCKETS.partition_point(|bound| *bound < value)
}

/// A series' identity within its histogram: its attribute pairs sorted by key, each part
/// length-prefixed so that no value can be mistaken for a separator.
fn series_key<K: AsRef<str>, V: AsRef<str>>(pairs: impl Iterator<Item = (K, V)>) -> String {
    let mut pairs: Vec<(K, V)> = pairs.collect();
    pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
    let mut key = String::with_capacity(64);
    let mut part = |s: &str| {
        key.push_str(&s.len().to_string());
        key.push(':');
        key.push_str(s);
    };
    for (k, v) in &pairs {
        part(k.as_ref());
        part(v.as_ref());
    }
    key
}

/// An SDK attribute as text.
fn sdk_pair(kv: &KeyValue) -> (&str, std::borrow::Cow<'_, str>) {
    (kv.key.as_str(), kv.value.as_str())
}

/// A proto attribute as the text an SDK value of the same content shows.
fn proto_pair(kv: &ProtoKeyValue) -> (&str, std::borrow::Cow<'_, str>) {
    use std::borrow::Cow;
    let value = match kv.value.as_ref().and_then(|v: &AnyValue| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Cow::Borrowed(s.as_str()),
        Some(any_value::Value::BoolValue(b)) => Cow::Owned(b.to_string()),
        Some(any_value::Value::IntValue(i)) => Cow::Owned(i.to_string()),
        Some(any_value::Value::DoubleValue(d)) => Cow::Owned(Value::F64(*d).as_str().into_owned()),
        _ => Cow::Borrowed(""),
    };
    (kv.key.as_str(), value)
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{TraceFlags, TraceState};
    use opentelemetry_proto::tonic::metrics::v1::{
        Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
    };

    use super::*;

    fn sampled(span: u64) -> Origin {
        Origin::of(&SpanContext::new(
            TraceId::from_bytes([7; 16]),
            SpanId::from_bytes(span.to_be_bytes()),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ))
    }

    fn attrs() -> Vec<KeyValue> {
        vec![
            KeyValue::new(conv::DAG_NAME, "d"),
            KeyValue::new(conv::NODE_NAME, "n"),
            KeyValue::new(conv::STATUS, "ok"),
        ]
    }

    /// A request with one explicit-bucket point of `metric` for the series `attrs()` (listed
    /// in another order), counting one measurement in each of `buckets`.
    fn request(metric: &str, buckets: &[usize]) -> ExportMetricsServiceRequest {
        let mut counts = vec![0; BUCKETS];
        for &b in buckets {
            counts[b] += 1;
        }
        let mut attributes: Vec<ProtoKeyValue> = attrs().iter().map(ProtoKeyValue::from).collect();
        attributes.reverse();
        let point = HistogramDataPoint {
            attributes,
            bucket_counts: counts,
            explicit_bounds: DURATION_BUCKETS.to_vec(),
            ..Default::default()
        };
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: metric.into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![point],
                            aggregation_temporality: 2,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn attached(request: &ExportMetricsServiceRequest) -> &[ProtoExemplar] {
        match &request.resource_metrics[0].scope_metrics[0].metrics[0].data {
            Some(metric::Data::Histogram(h)) => &h.data_points[0].exemplars,
            _ => unreachable!(),
        }
    }

    #[test]
    fn buckets_follow_the_histogram_boundaries() {
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(0.001), 0, "a bound belongs to the bucket it closes");
        assert_eq!(bucket(0.0011), 1);
        assert_eq!(bucket(14400.0), DURATION_BUCKETS.len() - 1);
        assert_eq!(bucket(1e9), DURATION_BUCKETS.len(), "the overflow bucket");
    }

    #[test]
    fn the_last_measurement_of_each_bucket_is_kept_and_attached_where_the_point_counted_one() {
        let exemplars = Exemplars::new(ExemplarFilter::TraceBased);
        let metric = conv::METRIC_NODE_DURATION;
        exemplars.offer(metric, &attrs(), 0.0005, sampled(1), None);
        exemplars.offer(metric, &attrs(), 0.0007, sampled(2), None);
        exemplars.offer(metric, &attrs(), 2.0, sampled(3), None);
        exemplars.offer(metric, &attrs(), 3.0, Origin::NONE, None); // no sampled span
        let kept = exemplars.get(metric, &attrs());
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].value, 0.0007);
        assert_eq!(
            kept[0].span_id,
            Some(SpanId::from_bytes(2u64.to_be_bytes()))
        );
        assert_eq!(kept[1].value, 2.0);

        let mut both = request(metric, &[0, bucket(2.0)]);
        exemplars.attach(&mut both);
        let sent = attached(&both);
        assert_eq!(sent.len(), 2, "attributes match in any order");
        assert_eq!(sent[0].span_id, 2u64.to_be_bytes().to_vec());
        assert_eq!(sent[0].trace_id, vec![7; 16]);
        assert_eq!(sent[0].value, Some(exemplar::Value::AsDouble(0.0007)));
        assert!(sent[0].time_unix_nano > 0);

        let mut first_only = request(metric, &[0]);
        exemplars.attach(&mut first_only);
        assert_eq!(attached(&first_only).len(), 1, "no count, no exemplar");

        let mut other_metric = request("dag.task.duration", &[0]);
        exemplars.attach(&mut other_metric);
        assert!(attached(&other_metric).is_empty(), "another series");
    }

    #[test]
    fn always_on_keeps_measurements_without_a_span_and_sends_no_ids() {
        let exemplars = Exemplars::new(ExemplarFilter::AlwaysOn);
        let node = Some(StringValue::from("block_7"));
        exemplars.offer(
            conv::METRIC_NODE_DURATION,
            &attrs(),
            0.5,
            Origin::NONE,
            node,
        );
        let mut sent = request(conv::METRIC_NODE_DURATION, &[bucket(0.5)]);
        exemplars.attach(&mut sent);
        let sent = attached(&sent);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].span_id.is_empty() && sent[0].trace_id.is_empty());
        assert_eq!(sent[0].filtered_attributes[0].key, conv::NODE_NAME);
        let never = Exemplars::new(ExemplarFilter::AlwaysOff);
        never.offer(conv::METRIC_NODE_DURATION, &attrs(), 0.5, sampled(1), None);
        assert!(never.get(conv::METRIC_NODE_DURATION, &attrs()).is_empty());
    }

    #[test]
    fn a_measurement_deferred_to_a_collection_does_not_replace_a_later_one() {
        let series = SeriesExemplars::default();
        series.offer(0.0005, 2_000, sampled(2), None);
        series.offer(0.0006, 1_000, sampled(1), None); // earlier, offered later
        let buckets = lock(&series.buckets);
        assert_eq!(buckets.len(), 1);
        assert_eq!(buckets[0].1.span_id, SpanId::from_bytes(2u64.to_be_bytes()));
    }

    #[test]
    fn series_are_limited_per_histogram_and_idle_ones_forgotten_unless_held() {
        let exemplars = Exemplars::new(ExemplarFilter::TraceBased).with_series_limit(2);
        let node = |name: &'static str| vec![KeyValue::new(conv::NODE_NAME, name)];
        let metric = conv::METRIC_NODE_DURATION;
        exemplars.offer(metric, &node("a"), 0.5, sampled(1), None);
        let held = exemplars.series(metric, &node("b")).unwrap();
        held.offer(0.5, 1, sampled(2), None);
        exemplars.offer(metric, &node("c"), 0.5, sampled(3), None);
        assert!(
            exemplars.get(metric, &node("c")).is_empty(),
            "past the limit"
        );
        exemplars.offer(conv::METRIC_RUN_DURATION, &node("c"), 0.5, sampled(3), None);
        assert_eq!(
            exemplars.get(conv::METRIC_RUN_DURATION, &node("c")).len(),
            1
        );

        let mut nothing = ExportMetricsServiceRequest::default();
        for _ in 0..IDLE_EXPORTS {
            exemplars.attach(&mut nothing);
        }
        assert_eq!(
            exemplars.get(metric, &node("a")).len(),
            1,
            "not idle long enough"
        );
        exemplars.attach(&mut nothing);
        assert!(exemplars.get(metric, &node("a")).is_empty(), "forgotten");
        assert_eq!(
            exemplars.get(metric, &node("b")).len(),
            1,
            "a hook holds it"
        );
        exemplars.offer(metric, &node("c"), 0.5, sampled(3), None);
        assert_eq!(exemplars.get(metric, &node("c")).len(), 1, "room again");
    }

    #[test]
    fn series_keys_cannot_be_forged_by_separators_in_values() {
        let a = series_key([("k", "a1:kb")].into_iter());
        let b = series_key([("k", "a"), ("kb", "")].into_iter());
        assert_ne!(a, b);
    }
}
