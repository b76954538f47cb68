//! Node duration histograms bound to each node's attribute set, kept per graph across runs.
//!
//! An unbound `record` makes the SDK find the node's series among all of them on every call
//! (hashing the attribute set, then comparing it with the stored one): with one series per
//! node, that lookup misses the cache and was the largest item of a node's telemetry cost.
//! A bound handle writes to its series directly. The data points are the same: a handle is
//! bound to exactly the attributes an unbound call would pass, and the SDK sends it to the
//! overflow series past the cardinality limit, as it does unbound calls.
//!
//! Only the common case is bound (an attempt that succeeded); failures and skips, rare and
//! carrying other attribute values, are recorded unbound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use opentelemetry::metrics::BoundHistogram;

use super::labels::GraphLabels;
use super::links::GraphLinks;
use crate::graph::{Dag, DagInner, NodeMeta};
use crate::otel::exemplars::SeriesExemplars;

/// One graph's bound handles, indexed by node position; bound on a node's first success.
/// Also what the graph's fan-in links reuse across runs.
#[derive(Debug)]
pub(crate) struct GraphMetrics {
    durations: Box<[OnceLock<BoundHistogram<f64>>]>,
    /// Each node's declaration, by graph index, to bind a series off the run's thread. Not
    /// the graph itself: that keeps the bodies, and with them the caller's data.
    pub(crate) metas: Box<[Arc<NodeMeta>]>,
    pub(crate) links: GraphLinks,
    /// The node spans' labels and layer tracers, built on the graph's first sampled run.
    pub(crate) labels: OnceLock<GraphLabels>,
    /// Each node's exemplar buckets (of its first-try successes' series), by graph index;
    /// allocated on the first exemplar.
    exemplars: OnceLock<Box<[OnceLock<Arc<SeriesExemplars>>]>>,
}

impl GraphMetrics {
    /// The handle slot of `node`, if it belongs to this graph.
    pub(crate) fn duration_slot(&self, node: &NodeMeta) -> Option<&OnceLock<BoundHistogram<f64>>> {
        self.slot(node.position()?.index)
    }

    /// The exemplar buckets of the node at graph index `index`, found with `series` on first
    /// use (and tried again later when the reservoir had no room for them).
    pub(crate) fn exemplar_series(
        &self,
        index: u32,
        series: impl FnOnce() -> Option<Arc<SeriesExemplars>>,
    ) -> Option<&Arc<SeriesExemplars>> {
        let slots = self
            .exemplars
            .get_or_init(|| (0..self.metas.len()).map(|_| OnceLock::new()).collect());
        let slot = slots.get(index as usize)?;
        if let Some(found) = slot.get() {
            return Some(found);
        }
        let found = series()?;
        Some(slot.get_or_init(|| found))
    }

    /// The handle slot of the node at graph index `index`.
    pub(crate) fn slot(&self, index: u32) -> Option<&OnceLock<BoundHistogram<f64>>> {
        self.durations.get(index as usize)
    }
}

/// The graphs a hook has run, each with its handles; entries of dropped graphs are pruned
/// when another graph is added, so a long-lived hook does not keep them.
#[derive(Debug, Default)]
pub(crate) struct BoundCache {
    graphs: Mutex<HashMap<usize, Entry>>,
}

/// A graph, kept weakly so that the cache does not keep it alive, and its handles.
#[derive(Debug)]
struct Entry {
    dag: Weak<DagInner>,
    metrics: Arc<GraphMetrics>,
}

impl BoundCache {
    /// The handles of `dag`, created on its first run.
    pub(crate) fn for_dag(&self, dag: &Dag) -> Arc<GraphMetrics> {
        // While a graph is alive no other graph can have its address: the key is its identity.
        let key = Arc::as_ptr(&dag.inner) as usize;
        let mut graphs = self.graphs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = graphs.get(&key)
            && entry.dag.strong_count() > 0
        {
            return Arc::clone(&entry.metrics);
        }
        // A new graph (or a new one at a dropped graph's address): forget dropped graphs.
        graphs.retain(|_, entry| entry.dag.strong_count() > 0);
        let metrics = Arc::new(GraphMetrics {
            durations: (0..dag.len()).map(|_| OnceLock::new()).collect(),
            metas: (0..dag.len() as u32)
                .map(|i| Arc::clone(&dag.entry(i).meta))
                .collect(),
            links: GraphLinks::new(dag.len()),
            labels: OnceLock::new(),
            exemplars: OnceLock::new(),
        });
        let entry = Entry {
            dag: Arc::downgrade(&dag.inner),
            metrics: Arc::clone(&metrics),
        };
        graphs.insert(key, entry);
        metrics
    }
}
