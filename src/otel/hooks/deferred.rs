//! Node durations recorded off the pipeline's threads.
//!
//! Recording a duration histogram point per node as the run ends was the largest telemetry
//! cost left on the caller's thread of a sampled-out run (35-70 ns a node: a lock per point,
//! and cache misses over one series per node), and a sizeable one in sampled runs. So a run
//! leaves the durations of its first-try successes here, in plan order, and they are
//! recorded:
//!
//! * by one background thread shared by every hook (`dagtel-metrics`), once [`WAKE_AT`]
//!   values wait: several runs at a time, node by node, so that each series' memory (the
//!   handle, its aggregator, its lock) is fetched once for all the runs' points instead of
//!   once per point, and the thread competes with the pipeline's threads in rare bursts
//!   instead of after every run;
//! * when the meter provider collects (a periodic export, `force_flush`, `shutdown`): a
//!   callback registered with the meter records what is pending first, waiting for points
//!   being recorded, so a collection always sees every run that ended before it started;
//! * when the hooks are dropped.
//!
//! The points and series are exactly those the run would have recorded itself. What is
//! pending is bounded: past [`MAX_PENDING`] values (the background thread is behind) a run
//! records everything pending itself. If the thread cannot be started, the run that reaches
//! [`WAKE_AT`] records what is pending. Fewer than [`WAKE_AT`] values wait for the next
//! collection (or the hooks' drop): they are exported no later than if they had been
//! recorded at once, since only a collection exports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use opentelemetry::StringValue;
use opentelemetry::metrics::{Meter, ObservableGauge};
use opentelemetry::trace::{SpanId, TraceId};

use super::bound::GraphMetrics;
use super::node_metrics::{NodeSeries, node_metric_attrs};
use crate::graph::NodeMeta;
use crate::otel::conventions::METRIC_NODE_DURATION;
use crate::otel::exemplars::{Exemplars, Origin, SeriesExemplars};
use crate::otel::metrics::Instruments;
use crate::outcome::NodeOutcome;
use crate::sync::lock;

/// How many durations may wait (about 8 MB; 24 MB when exemplars are kept) before runs
/// record them themselves.
pub(crate) const MAX_PENDING: usize = 1 << 20;

/// How many durations wait (about 2 MB; about 26 runs of a 10,000-node graph) before the
/// background thread is woken to record them.
pub(crate) const WAKE_AT: usize = 1 << 18;

/// Spare duration buffers kept for later runs.
const SPARE: usize = 64;

/// One run's durations.
pub(super) struct Batch {
    /// The graph index of each planned node, in plan order (the plan's own list, shared by
    /// its runs). A batch keeps neither the plan nor the graph: they keep the node bodies,
    /// and with them the caller's data, which must not outlive the caller's last reference
    /// nor be dropped in a metric collection.
    pub(super) nodes: Arc<[u32]>,
    pub(super) dag: Option<Arc<str>>,
    pub(super) metrics: Arc<GraphMetrics>,
    /// The series the hook that ran it records node metrics in.
    pub(super) series: NodeSeries,
    /// Seconds of each planned node, in plan order, for those that succeeded at their first
    /// attempt; NaN for the others.
    pub(super) durations: Vec<f64>,
    /// What the durations' exemplars need, when exemplars are kept.
    pub(super) exemplars: Option<BatchExemplars>,
}

/// The spans a run's durations were measured in.
pub(super) struct BatchExemplars {
    pub(super) reservoir: Arc<Exemplars>,
    /// The run's trace; invalid for a sampled-out run (whose nodes have no span).
    pub(super) trace_id: TraceId,
    /// Each planned node's span id (0: none) and end (Unix nanoseconds), in plan order.
    pub(super) nodes: Vec<(u64, u64)>,
}

impl BatchExemplars {
    /// Offers node `i`'s duration to `series`.
    fn offer(&self, i: usize, seconds: f64, series: &SeriesExemplars, node: Option<StringValue>) {
        let Some(&(span, end)) = self.nodes.get(i) else {
            return;
        };
        let origin = if span == 0 || self.trace_id == TraceId::INVALID {
            Origin::NONE
        } else {
            Origin {
                trace_id: self.trace_id,
                span_id: SpanId::from_bytes(span.to_be_bytes()),
                sampled: true,
            }
        };
        if self.reservoir.admits(&origin) {
            series.offer(seconds, end, origin, node);
        }
    }
}

/// One hook's durations waiting to be recorded.
pub(super) struct Deferred {
    shared: Arc<Shared>,
    /// Keeps the collection callback registered; it never observes a value, so it exports
    /// nothing.
    _collect: ObservableGauge<u64>,
}

struct Shared {
    instruments: Arc<Instruments>,
    /// [`MAX_PENDING`], except in tests.
    max_pending: usize,
    /// [`WAKE_AT`], except in tests.
    wake_at: usize,
    pending: Mutex<Pending>,
    /// Recorded batches' buffers, for later runs (a run's buffer would otherwise be
    /// allocated on its thread and freed on the recording one).
    spare: Mutex<Vec<Vec<f64>>>,
    /// Held while taken points are recorded: a collection waits for them.
    recording: Mutex<()>,
    /// Whether the background thread has been asked to record this hook's points.
    scheduled: AtomicBool,
}

#[derive(Default)]
struct Pending {
    batches: Vec<Batch>,
    values: usize,
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values = self
            .shared
            .pending
            .lock()
            .map(|p| p.values)
            .unwrap_or_default();
        f.debug_struct("Deferred")
            .field("pending", &values)
            .finish()
    }
}

impl Deferred {
    /// Registers the collection callback on `meter` (weakly: it keeps nothing alive).
    pub(super) fn new(meter: &Meter, instruments: Arc<Instruments>) -> Self {
        Self::with_limits(meter, instruments, MAX_PENDING, WAKE_AT)
    }

    fn with_limits(
        meter: &Meter,
        instruments: Arc<Instruments>,
        max_pending: usize,
        wake_at: usize,
    ) -> Self {
        let shared = Arc::new(Shared {
            instruments,
            max_pending,
            wake_at,
            pending: Mutex::new(Pending::default()),
            spare: Mutex::new(Vec::new()),
            recording: Mutex::new(()),
            scheduled: AtomicBool::new(false),
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        let collect = meter
            .u64_observable_gauge("dag.internal.deferred_durations")
            .with_description("Never exported: records pending node durations at collection.")
            .with_callback(move |_| {
                if let Some(shared) = weak.upgrade() {
                    shared.record_pending();
                }
            })
            .build();
        Self {
            shared,
            _collect: collect,
        }
    }

    /// An empty buffer for a run's durations, recycled if one is spare.
    pub(super) fn buffer(&self, len: usize) -> Vec<f64> {
        let mut buffer = lock(&self.shared.spare).pop().unwrap_or_default();
        buffer.clear();
        buffer.reserve(len);
        buffer
    }

    /// Leaves a run's durations to be recorded off this thread.
    pub(super) fn push(&self, batch: Batch) {
        let shared = &self.shared;
        if batch.durations.is_empty() {
            return;
        }
        let (overflow, wake) = {
            let mut pending = lock(&shared.pending);
            pending.values += batch.durations.len();
            pending.batches.push(batch);
            (
                pending.values > shared.max_pending,
                pending.values >= shared.wake_at,
            )
        };
        if overflow || (wake && !shared.schedule()) {
            shared.record_pending();
        }
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        self.shared.record_pending();
    }
}

impl Shared {
    /// Asks the background thread to record this hook's points; `false` if there is none.
    fn schedule(self: &Arc<Self>) -> bool {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return true; // asked already, and not started yet
        }
        let sent = match recorder() {
            Some(thread) => thread
                .lock()
                .map(|sender| sender.send(Arc::clone(self)).is_ok())
                .unwrap_or(false),
            None => false,
        };
        if !sent {
            // Nobody will clear it: the next wake-up must not take this ask for a pending one.
            self.scheduled.store(false, Ordering::Release);
        }
        sent
    }

    /// Records every pending point, after any being recorded elsewhere.
    fn record_pending(&self) {
        let recording = lock(&self.recording);
        let mut batches = std::mem::take(&mut *lock(&self.pending)).batches;
        // Runs of the same plan are recorded together, node by node.
        batches.sort_by_key(|b| {
            (
                Arc::as_ptr(&b.nodes) as *const u32 as usize,
                b.dag.is_none(),
            )
        });
        let mut rest = &batches[..];
        while let Some(first) = rest.first() {
            let same = rest
                .iter()
                .take_while(|b| {
                    Arc::ptr_eq(&b.nodes, &first.nodes)
                        && Arc::ptr_eq(&b.metrics, &first.metrics)
                        && b.dag == first.dag
                        && b.series == first.series
                })
                .count();
            self.record_runs(&rest[..same]);
            rest = &rest[same..];
        }
        drop(recording);
        let mut spare = lock(&self.spare);
        for batch in &mut batches {
            if spare.len() < SPARE {
                spare.push(std::mem::take(&mut batch.durations));
            }
        }
        drop(spare);
        // The rest of the batches is dropped with no lock held.
    }

    /// Records the durations of runs of one plan, node by node.
    fn record_runs(&self, runs: &[Batch]) {
        let Some(first) = runs.first() else {
            return;
        };
        let ok = NodeOutcome::Succeeded;
        let len = runs.iter().map(|b| b.durations.len()).max().unwrap_or(0);
        let reservoir = runs
            .iter()
            .find_map(|b| b.exemplars.as_ref())
            .map(|e| &e.reservoir);
        for (i, &index) in first.nodes.iter().enumerate().take(len) {
            let mut values = runs
                .iter()
                .filter_map(|b| b.durations.get(i))
                .filter(|v| !v.is_nan())
                .peekable();
            if values.peek().is_none() {
                continue;
            }
            let Some(slot) = first.metrics.slot(index) else {
                continue;
            };
            let Some(meta) = first.metrics.metas.get(index as usize) else {
                continue;
            };
            let handle = slot.get_or_init(|| {
                let (attrs, len) = node_metric_attrs(first.dag.as_ref(), meta, &ok, first.series);
                self.instruments.node_duration.bind(&attrs[..len])
            });
            for &seconds in values {
                handle.record(seconds);
            }
            if let Some(reservoir) = reservoir {
                offer_exemplars(runs, reservoir, i, index, meta);
            }
        }
    }
}

/// Offers node `i`'s durations (graph index `index`) of `runs` as exemplars to `reservoir`,
/// for the runs that keep them.
fn offer_exemplars(runs: &[Batch], reservoir: &Exemplars, i: usize, index: u32, meta: &NodeMeta) {
    let Some(batch) = runs.first() else {
        return;
    };
    let series = batch.metrics.exemplar_series(index, || {
        let ok = NodeOutcome::Succeeded;
        let (attrs, len) = node_metric_attrs(batch.dag.as_ref(), meta, &ok, batch.series);
        reservoir.series(METRIC_NODE_DURATION, &attrs[..len])
    });
    let Some(series) = series else {
        return;
    };
    let node = (batch.series != NodeSeries::Node).then(|| StringValue::from(meta.shared_name()));
    for run in runs {
        if let (Some(exemplars), Some(&seconds)) = (&run.exemplars, run.durations.get(i)) {
            exemplars.offer(i, seconds, series, node.clone());
        }
    }
}

/// The background thread every hook's points are recorded on, started on first use.
fn recorder() -> Option<&'static Mutex<Sender<Arc<Shared>>>> {
    static RECORDER: OnceLock<Option<Mutex<Sender<Arc<Shared>>>>> = OnceLock::new();
    RECORDER
        .get_or_init(|| {
            let (sender, receiver) = channel::<Arc<Shared>>();
            std::thread::Builder::new()
                .name("dagtel-metrics".into())
                .spawn(move || {
                    for shared in receiver {
                        // Cleared first: a run that ends meanwhile schedules it again.
                        shared.scheduled.store(false, Ordering::Release);
                        // One hook's failure (a panicking SDK aggregator, say) must not end
                        // the thread every hook shares.
                        let record = std::panic::AssertUnwindSafe(|| shared.record_pending());
                        let _ = std::panic::catch_unwind(record);
                    }
                })
                .ok()
                .map(|_| Mutex::new(sender))
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::DagBuilder;
    use crate::otel::hooks::bound::BoundCache;
    use crate::otel::testing::TestTelemetry;
    use crate::plan::Request;

    #[test]
    fn points_are_recorded_by_the_next_collection_and_a_full_queue_is_recorded_at_once() {
        let telemetry = TestTelemetry::new();
        let meter = opentelemetry::metrics::MeterProvider::meter(telemetry.meter_provider(), "t");
        let instruments = Arc::new(Instruments::new(&meter));
        // A limit of 3 and a background thread that is never told: only the limit and the
        // collection record.
        let deferred = Deferred::with_limits(&meter, Arc::clone(&instruments), 3, 1);
        deferred.shared.scheduled.store(true, Ordering::Release);
        let mut g = DagBuilder::new("pending");
        let a = g.node("a").run((), |_, ()| Ok(1u8));
        let plan = g.build().unwrap().plan(&Request::new().output(a)).unwrap();
        let metrics = BoundCache::default().for_dag(plan.dag());
        let index = plan.dag().index_of("a").unwrap();
        let run = |seconds: f64| Batch {
            nodes: Arc::clone(&plan.inner.nodes),
            dag: Some(Arc::from("pending")),
            metrics: Arc::clone(&metrics),
            series: NodeSeries::Node,
            durations: vec![seconds],
            exemplars: None,
        };
        let count = || {
            telemetry
                .histogram(crate::otel::conventions::METRIC_NODE_DURATION, &[])
                .map(|h| (h.count, h.sum))
        };
        deferred.push(run(0.5));
        deferred.push(run(f64::NAN)); // not a first-try success: nothing to record
        assert_eq!(lock(&deferred.shared.pending).values, 2, "waiting");
        assert_eq!(count(), Some((1, 0.5)), "a collection records what waits");
        for _ in 0..3 {
            deferred.push(run(0.25));
        }
        assert_eq!(lock(&deferred.shared.pending).values, 3, "at the limit");
        deferred.push(run(0.25));
        assert_eq!(
            lock(&deferred.shared.pending).values,
            0,
            "4 values are one too many: the run recorded them"
        );
        assert!(metrics.slot(index).unwrap().get().is_some());
        assert_eq!(count(), Some((5, 1.5)));
        assert!(
            !lock(&deferred.shared.spare).is_empty(),
            "recorded buffers are kept for later runs"
        );
        deferred.push(run(1.0));
        drop(deferred);
        assert_eq!(
            count(),
            Some((6, 2.5)),
            "dropping the hooks records what waits"
        );
    }

    #[test]
    fn runs_of_several_plans_are_recorded_node_by_node_with_their_own_series() {
        let telemetry = TestTelemetry::new();
        let meter = opentelemetry::metrics::MeterProvider::meter(telemetry.meter_provider(), "t");
        let instruments = Arc::new(Instruments::new(&meter));
        let deferred = Deferred::with_limits(&meter, Arc::clone(&instruments), 1 << 20, 1 << 20);
        let mut g = DagBuilder::new("two");
        let a = g.node("a").run((), |_, ()| Ok(1u8));
        let b = g.node("b").run(a, |_, a| Ok(*a + 1));
        let dag = g.build().unwrap();
        let both = dag.plan(&Request::new().output(b)).unwrap();
        let only_a = dag.plan(&Request::new().output(a)).unwrap();
        let metrics = BoundCache::default().for_dag(both.dag());
        let batch = |plan: &crate::plan::Plan, durations: Vec<f64>| Batch {
            nodes: Arc::clone(&plan.inner.nodes),
            dag: Some(Arc::from("two")),
            metrics: Arc::clone(&metrics),
            series: NodeSeries::Node,
            durations,
            exemplars: None,
        };
        deferred.push(batch(&both, vec![1.0, 2.0]));
        deferred.push(batch(&only_a, vec![4.0]));
        deferred.push(batch(&both, vec![8.0, f64::NAN]));
        deferred.push(batch(&both, vec![16.0, 32.0]));
        let node = |name: &'static str| {
            telemetry
                .histogram(
                    crate::otel::conventions::METRIC_NODE_DURATION,
                    &[opentelemetry::KeyValue::new(
                        crate::otel::conventions::NODE_NAME,
                        name,
                    )],
                )
                .map(|h| (h.count, h.sum))
        };
        assert_eq!(node("a"), Some((4, 29.0)));
        assert_eq!(node("b"), Some((2, 34.0)));
    }
}
