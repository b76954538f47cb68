//! Node reports from code that holds no node context: a body driven through
//! [`hooks::Lifecycle`](crate::hooks::Lifecycle), or a helper deep in a node's call stack.
//!
//! Each function reports for the node running on this thread (or whose context is current,
//! in work carried from it with [`carry`](super::carry)), exactly as the method of the same
//! name on [`NodeCtx`](crate::NodeCtx) does. Outside any node, or in a run without an
//! OpenTelemetry hook, they do nothing.
//!
//! ```
//! use dagtel::hooks::{Lifecycle, RunInfo};
//! use dagtel::otel::report;
//! use dagtel::{NodeMeta, NodeOutcome, TaskMeta};
//!
//! let lifecycle = Lifecycle::new(); // with `.hook(otel_hooks)`, these land on the node span
//! let run = lifecycle.start_run(RunInfo::new("survey"));
//! let meta = NodeMeta::new("cluster");
//! let task = TaskMeta::single(&meta);
//! let mut node = run.node(None, &meta, &task);
//! node.run(|| {
//!     report::entity("event-7");
//!     report::event("merged", serde_json::json!({ "beams": 3 }));
//!     report::dataset("candidates", 1_200, 8);
//! });
//! node.finish(NodeOutcome::Succeeded);
//! run.finish();
//! ```

use super::node_events;

/// Declares the entity the running node produced; see [`NodeCtx::entity`](crate::NodeCtx::entity).
pub fn entity(id: impl AsRef<str>) {
    node_events::entity(id.as_ref());
}

/// Records a named event with attributes; see [`NodeCtx::event`](crate::NodeCtx::event).
pub fn event(name: &str, attributes: impl serde::Serialize) {
    node_events::event(name, &attributes);
}

/// Records an artifact the running node produced; see
/// [`NodeCtx::artifact`](crate::NodeCtx::artifact).
pub fn artifact(name: &str, payload: impl serde::Serialize) {
    node_events::artifact(name, &payload);
}

/// Reports the size of a dataset; see [`NodeCtx::dataset`](crate::NodeCtx::dataset).
pub fn dataset(name: &str, rows: u64, columns: u64) {
    node_events::dataset(name, rows, columns);
}
