use crate::cancel::CancelToken;
use crate::graph::NodeMeta;
use crate::ids::RunId;

/// What a running sync node can see of its run: ids, its own description, the attempt.
pub struct NodeCtx<'a> {
    pub(crate) run_id: &'a RunId,
    pub(crate) node: &'a NodeMeta,
    pub(crate) attempt: u32,
    pub(crate) cancel: &'a CancelToken,
}

impl NodeCtx<'_> {
    /// The run this node belongs to.
    pub fn run_id(&self) -> &RunId {
        self.run_id
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.node.name()
    }

    /// The node's declaration (tags, stage, task, dependencies).
    pub fn node(&self) -> &NodeMeta {
        self.node
    }

    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether the run was cancelled; long nodes may check this and return early.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// The owned counterpart of [`NodeCtx`] that an async node's future can keep.
#[derive(Clone)]
pub struct AsyncNodeCtx {
    pub(crate) run_id: RunId,
    pub(crate) node: std::sync::Arc<NodeMeta>,
    pub(crate) attempt: u32,
    pub(crate) cancel: CancelToken,
}

impl AsyncNodeCtx {
    /// The run this node belongs to.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.node.name()
    }

    /// The node's declaration.
    pub fn node(&self) -> &NodeMeta {
        &self.node
    }

    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether the run was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// What a node reports about its work, for both context types. These calls record on the
/// node's span, logs and metrics when an OpenTelemetry hook is installed, and cost a context
/// lookup otherwise. Code without a context reports through [`crate::otel::report`].
macro_rules! reporting {
    ($ctx:ty) => {
        impl $ctx {
            /// Declares the entity this node produced (a block id, a candidate id, an event
            /// id, ...). It is recorded as `dag.entity.id` on the node's span, and children's
            /// links to this node carry it. The first declaration of an attempt wins.
            pub fn entity(&self, id: impl AsRef<str>) {
                crate::otel::node_events::entity(id.as_ref());
            }

            /// Records a named event with attributes (an object's fields; nested values become
            /// JSON strings): a span event on the node's span and a log record.
            pub fn event(&self, name: &str, attributes: impl serde::Serialize) {
                crate::otel::node_events::event(name, &attributes);
            }

            /// Records an artifact the node produced: a `dag.artifact` span event with the
            /// payload's fields (as `payload.*`), a log record, and the artifacts counter.
            pub fn artifact(&self, name: &str, payload: impl serde::Serialize) {
                crate::otel::node_events::artifact(name, &payload);
            }

            /// Reports the size of a dataset the node read or wrote: the `dag.dataset.rows` and
            /// `dag.dataset.columns` gauges and a span event.
            pub fn dataset(&self, name: &str, rows: u64, columns: u64) {
                crate::otel::node_events::dataset(name, rows, columns);
            }
        }
    };
}

reporting!(NodeCtx<'_>);
reporting!(AsyncNodeCtx);
