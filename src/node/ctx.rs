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
