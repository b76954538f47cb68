//! Node durations of sampled-out runs, recorded when the meter provider collects.
//!
//! A sampled-out run takes the executor's hook-free path, and its node metrics come from the
//! run record when it ends. Recording a duration histogram point per node right then was the
//! largest cost left on the caller's thread (40-70 ns a node: a lock per point, and cache
//! misses over one series per node). So the run leaves its nodes' durations here, as
//! (graph index, seconds) pairs, and a callback registered with the meter records them when
//! the meter provider collects (a periodic export, `force_flush`, `shutdown`), on the
//! collecting thread, before the SDK reads its aggregations. The points and series are the
//! ones the run would have recorded itself; they only reach the aggregation later, within the
//! same collection interval.
//!
//! What is pending is bounded: past [`MAX_PENDING`] values a run records everything pending
//! itself. Dropping the hooks records what is pending too, so nothing is lost with them.

use std::sync::{Arc, Mutex, Weak};

use opentelemetry::metrics::{Meter, ObservableGauge};

use super::bound::GraphMetrics;
use super::node_metrics::node_metric_attrs;
use crate::otel::metrics::Instruments;
use crate::outcome::NodeOutcome;
use crate::plan::Plan;

/// How many durations may wait for a collection (about 16 MB) before runs record them.
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

/// Durations waiting for the next collection.
pub(super) struct Deferred {
    instruments: Arc<Instruments>,
    /// [`MAX_PENDING`], except in tests.
    max_pending: usize,
    pending: Mutex<Pending>,
    /// Keeps the callback registered; it never observes a value, so it exports nothing.
    _collect: ObservableGauge<u64>,
}

#[derive(Default)]
struct Pending {
    batches: Vec<Batch>,
    values: usize,
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values = self.pending.lock().map(|p| p.values).unwrap_or_default();
        f.debug_struct("Deferred")
            .field("pending", &values)
            .finish()
    }
}

impl Deferred {
    /// Registers the collection callback on `meter` (weakly: it does not keep these alive).
    pub(super) fn new(meter: &Meter, instruments: Arc<Instruments>) -> Arc<Self> {
        Self::with_limit(meter, instruments, MAX_PENDING)
    }

    fn with_limit(meter: &Meter, instruments: Arc<Instruments>, max_pending: usize) -> Arc<Self> {
        Arc::new_cyclic(|me: &Weak<Self>| {
            let me = me.clone();
            let collect = meter
                .u64_observable_gauge("dag.internal.deferred_durations")
                .with_description("Never exported: records deferred node durations at collection.")
                .with_callback(move |_| {
                    if let Some(deferred) = me.upgrade() {
                        deferred.record_pending();
                    }
                })
                .build();
            Self {
                instruments,
                max_pending,
                pending: Mutex::new(Pending::default()),
                _collect: collect,
            }
        })
    }

    /// Leaves a run's durations for the next collection, or records them (and everything
    /// pending) now if too many are waiting.
    pub(super) fn push(&self, batch: Batch) {
        if batch.durations.is_empty() {
            return;
        }
        let overflow = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.values += batch.durations.len();
            pending.batches.push(batch);
            (pending.values > self.max_pending).then(|| std::mem::take(&mut *pending))
        };
        if let Some(pending) = overflow {
            self.record(pending.batches);
        }
    }

    /// Records every pending duration.
    pub(super) fn record_pending(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        self.record(pending.batches);
    }

    fn record(&self, batches: Vec<Batch>) {
        let ok = NodeOutcome::Succeeded;
        for batch in batches {
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

impl Drop for Deferred {
    fn drop(&mut self) {
        self.record_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::DagBuilder;
    use crate::otel::hooks::bound::BoundCache;
    use crate::otel::testing::TestTelemetry;
    use crate::plan::Request;

    #[test]
    fn a_run_records_everything_pending_once_too_much_waits() {
        let telemetry = TestTelemetry::new();
        let meter = opentelemetry::metrics::MeterProvider::meter(telemetry.meter_provider(), "t");
        let instruments = Arc::new(Instruments::new(&meter));
        let deferred = Deferred::with_limit(&meter, Arc::clone(&instruments), 3);
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
        let recorded = || {
            let slot = metrics.slot(index).unwrap();
            slot.get().is_some()
        };
        deferred.push(batch(2));
        deferred.push(batch(1));
        assert!(!recorded(), "3 values wait for a collection");
        deferred.push(batch(1));
        assert!(
            recorded(),
            "the fourth is one too many: all four are recorded"
        );
        assert_eq!(deferred.pending.lock().unwrap().values, 0);
        let count = telemetry
            .histogram(crate::otel::conventions::METRIC_NODE_DURATION, &[])
            .map(|h| h.count);
        assert_eq!(count, Some(4));
    }
}
