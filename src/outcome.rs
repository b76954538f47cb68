//! How nodes, tasks, stages and runs ended.

use std::fmt;
use std::time::Duration;

/// How one attempt of a node ended (or why it never started).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeOutcome {
    /// The body returned a value.
    Succeeded,
    /// The body returned an error.
    Failed {
        /// The error's message.
        message: String,
    },
    /// The body panicked; the panic was caught.
    Panicked {
        /// The panic payload, when it was a string.
        message: String,
    },
    /// An async attempt ran past its timeout and was dropped.
    TimedOut {
        /// The limit it exceeded.
        limit: Duration,
    },
    /// The node never ran.
    Skipped(SkipReason),
}

impl NodeOutcome {
    /// Whether the attempt produced a value.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded)
    }

    /// Whether the attempt ran and failed (error, panic or timeout).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Self::Failed { .. } | Self::Panicked { .. } | Self::TimedOut { .. }
        )
    }

    /// A short word for the outcome: `ok`, `error`, `panic`, `timeout` or `skipped`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Succeeded => "ok",
            Self::Failed { .. } => "error",
            Self::Panicked { .. } => "panic",
            Self::TimedOut { .. } => "timeout",
            Self::Skipped(_) => "skipped",
        }
    }
}

impl fmt::Display for NodeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Succeeded => f.write_str("succeeded"),
            Self::Failed { message } => write!(f, "error: {message}"),
            Self::Panicked { message } => write!(f, "panic: {message}"),
            Self::TimedOut { limit } => write!(f, "timed out after {limit:?}"),
            Self::Skipped(reason) => write!(f, "skipped: {reason}"),
        }
    }
}

/// Why a node did not run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// An ancestor failed; `ancestor` is the node whose failure caused it.
    UpstreamFailed {
        /// The failed ancestor.
        ancestor: String,
    },
    /// The fail-fast policy stopped scheduling after `failed` failed.
    FailFast {
        /// The first node that failed.
        failed: String,
    },
    /// The run was cancelled before the node started.
    Cancelled,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UpstreamFailed { ancestor } => write!(f, "upstream `{ancestor}` failed"),
            Self::FailFast { failed } => write!(f, "run stopped after `{failed}` failed"),
            Self::Cancelled => f.write_str("run cancelled"),
        }
    }
}

/// How a task, a stage or a whole run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Every node in it succeeded.
    Succeeded,
    /// At least one node in it failed.
    Failed,
    /// Nothing in it ran, and nothing failed (skipped after an upstream failure).
    Skipped,
    /// The run was cancelled and nothing in it failed.
    Cancelled,
}

impl Outcome {
    /// `ok`, `error`, `skipped` or `cancelled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Succeeded => "ok",
            Self::Failed => "error",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
