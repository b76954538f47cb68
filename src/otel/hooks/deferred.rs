//! Node durations recorded off the pipeline's threads.
//!
//! Recording a duration histogram point per node as the run ends was the largest telemetry
//! cost left on the caller's thread of a sampled-out run (35-70 ns a node: a lock per point,
//! and cache misses over one series per node), and a sizeable one in sampled runs. So a run
//! leaves the durations of its first-try successes here, as (graph index, seconds) pairs, and
//! they are recorded:
//!
//! * by one background thread shared by every hook (`dagtel-metrics`), soon after the run;
//! * when the meter provider collects (a periodic export, `force_flush`, `shutdown`): a
//!   callback registered with the meter records what is pending first, waiting for points
//!   being recorded, so a collection always sees every run that ended before it started;
//! * when the hooks are dropped.
//!
//! The points and series are exactly those the run would have recorded itself. What is
//! pending is bounded: past [`MAX_PENDING`] values (the background thread is behind) a run
//! records everything pending itself. If the thread cannot be started, runs record their
//! own points.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use opentelemetry::metrics::{Meter, ObservableGauge};

use super::bound::GraphMetrics;
use super::node_metrics::node_metric_attrs;
use crate::otel::metrics::Instruments;
use crate::outcome::NodeOutcome;
use crate::plan::Plan;

/// How many durations may wait (about 16 MB) before runs record them themselves.
pub(crate) const MAX_PENDING: usize = 1 << 20;

/// One run's durations.
pub(super) struct Batch {
    /// The run's plan, whose graph names the nodes when a series is bound.
    pub(super) plan: Plan,
    pub(super) dag: Option<Arc<str>>,
    pub(super) metrics: Arc<GraphMetrics>,
    /// Graph index and seconds of each node that succeeded at its first attempt.
    pub(super) durations: Vec<(u32, f64)>,
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
    pending: Mutex<Pending>,
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
        Self::with_limit(meter, instruments, MAX_PENDING)
    }

    fn with_limit(meter: &Meter, instruments: Arc<Instruments>, max_pending: usize) -> Self {
        let shared = Arc::new(Shared {
            instruments,
            max_pending,
            pending: Mutex::new(Pending::default()),
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

    /// Leaves a run's durations to be recorded off this thread.
    pub(super) fn push(&self, batch: Batch) {
        let shared = &self.shared;
        if batch.durations.is_empty() {
            return;
        }
        let overflow = {
            let mut pending = lock(&shared.pending);
            pending.values += batch.durations.len();
            pending.batches.push(batch);
            pending.values > shared.max_pending
        };
        if overflow || !shared.schedule() {
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
        match recorder() {
            Some(thread) => thread
                .lock()
                .map(|sender| sender.send(Arc::clone(self)).is_ok())
                .unwrap_or(false),
            None => false,
        }
    }

    /// Records every pending point, after any being recorded elsewhere.
    fn record_pending(&self) {
        let _recording = lock(&self.recording);
        let pending = std::mem::take(&mut *lock(&self.pending));
        let ok = NodeOutcome::Succeeded;
        for batch in pending.batches {
            let dag = batch.plan.dag();
            for &(index, seconds) in &batch.durations {
                let Some(slot) = batch.metrics.slot(index) else {
                    continue;
                };
                let handle = slot.get_or_init(|| {
                    let meta = &dag.entry(index).meta;
                    let (attrs, len) = node_metric_attrs(batch.dag.as_ref(), meta, &ok);
                    self.instruments.node_duration.bind(&attrs[..len])
                });
                handle.record(seconds);
            }
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
                        shared.record_pending();
                    }
                })
                .ok()
                .map(|_| Mutex::new(sender))
        })
        .as_ref()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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
        let deferred = Deferred::with_limit(&meter, Arc::clone(&instruments), 3);
        deferred.shared.scheduled.store(true, Ordering::Release);
        let mut g = DagBuilder::new("pending");
        let a = g.node("a").run((), |_, ()| Ok(1u8));
        let plan = g.build().unwrap().plan(&Request::new().output(a)).unwrap();
        let metrics = BoundCache::default().for_dag(plan.dag());
        let index = plan.dag().index_of("a").unwrap();
        let batch = |values: usize| Batch {
            plan: plan.clone(),
            dag: Some(Arc::from("pending")),
            metrics: Arc::clone(&metrics),
            durations: vec![(index, 0.5); values],
        };
        let count = || {
            telemetry
                .histogram(crate::otel::conventions::METRIC_NODE_DURATION, &[])
                .map(|h| h.count)
        };
        deferred.push(batch(2));
        assert_eq!(lock(&deferred.shared.pending).values, 2, "waiting");
        assert_eq!(count(), Some(2), "a collection records what waits");
        deferred.push(batch(3));
        deferred.push(batch(1));
        assert_eq!(
            lock(&deferred.shared.pending).values,
            0,
            "4 values are one too many: the run recorded them"
        );
        assert!(metrics.slot(index).unwrap().get().is_some());
        assert_eq!(count(), Some(6));
        deferred.push(batch(1));
        drop(deferred);
        assert_eq!(count(), Some(7), "dropping the hooks records what waits");
    }
}
