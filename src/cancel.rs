//! Cooperative cancellation of a run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A handle that stops a run from scheduling more work.
///
/// Cancelling lets nodes that are already running finish; every node not yet started is
/// recorded as skipped with [`SkipReason::Cancelled`](crate::SkipReason::Cancelled). Long nodes
/// can poll [`NodeCtx::is_cancelled`](crate::NodeCtx::is_cancelled) to stop early. Clones share
/// the same flag, so one clone can be handed to a signal handler or another thread.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop scheduling new nodes.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
