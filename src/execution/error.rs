use std::fmt;

use thiserror::Error;

use super::{Outputs, RunRecord};
use crate::plan::PlanError;

/// Why a run did not deliver its outputs.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The plan needs an input that was not supplied.
    #[error("missing input `{name}`, needed by `{needed_by}`")]
    MissingInput {
        /// The input.
        name: String,
        /// A node that reads it.
        needed_by: String,
    },
    /// The plan overrides a node but no value was supplied for it.
    #[error("missing value for overridden node `{name}`")]
    MissingOverride {
        /// The node.
        name: String,
    },
    /// A supplied value has another type than the graph declares.
    #[error("value for `{name}` has type `{found}`, but the graph declares `{expected}`")]
    InputType {
        /// The input or overridden node.
        name: String,
        /// The declared type.
        expected: &'static str,
        /// The supplied type.
        found: &'static str,
    },
    /// A value was supplied for a name the graph does not have.
    #[error("value supplied for `{name}`, which is not a node or input of graph `{dag}`")]
    UnknownValue {
        /// The graph.
        dag: String,
        /// The name.
        name: String,
    },
    /// A value was supplied for a node that the plan runs (it is neither an input nor an
    /// override of this plan).
    #[error(
        "value supplied for `{name}`, which this plan computes; declare it in `Request::overrides`"
    )]
    NotOverridden {
        /// The node.
        name: String,
    },
    /// Planning failed (from `Executor::execute`).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The worker pool could not be started.
    #[error("could not start the worker pool: {0}")]
    Pool(String),
    /// The tokio runtime for async nodes could not be started.
    #[error("could not start the tokio runtime for async nodes: {0}")]
    Runtime(String),
    /// Nodes failed; the record lists every failure and skip.
    #[error("{0}")]
    Failed(Box<FinishedRun>),
    /// The run was cancelled before every node ran.
    #[error("run {} was cancelled", .0.record.run_id)]
    Cancelled(Box<FinishedRun>),
}

/// How many failures a run error's message names.
const SHOWN_FAILURES: usize = 20;

/// A run that ended without all its outputs: its record and whatever outputs it produced.
pub struct FinishedRun {
    /// What happened to each node.
    pub record: RunRecord,
    /// The requested outputs that were produced.
    pub outputs: Outputs,
}

impl RunError {
    /// The record, when the run got as far as executing nodes.
    pub fn record(&self) -> Option<&RunRecord> {
        match self {
            Self::Failed(run) | Self::Cancelled(run) => Some(&run.record),
            _ => None,
        }
    }
}

impl fmt::Display for FinishedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failures: Vec<_> = self.record.failures().collect();
        if self.record.outcome == crate::Outcome::Cancelled {
            write!(
                f,
                "run {} of `{}` was cancelled ({} node(s) not run)",
                self.record.run_id,
                self.record.dag,
                self.record.count(crate::NodeStatus::Skipped)
            )?;
            // A run with a failure ends `Failed`, even if it was also cancelled.
            return Ok(());
        }
        write!(
            f,
            "{} node(s) failed in run {} of `{}`",
            failures.len(),
            self.record.run_id,
            self.record.dag
        )?;
        // Every failure is in the record; the message names the first few so it stays readable
        // when a wide fan-out fails as a whole.
        for (i, node) in failures.iter().take(SHOWN_FAILURES).enumerate() {
            let what = node
                .outcome
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}`{}` ({what}", node.name)?;
            if node.attempts > 1 {
                write!(f, ", after {} attempts", node.attempts)?;
            }
            f.write_str(")")?;
        }
        if failures.len() > SHOWN_FAILURES {
            write!(
                f,
                "; and {} more (see the run record)",
                failures.len() - SHOWN_FAILURES
            )?;
        }
        Ok(())
    }
}

impl fmt::Debug for FinishedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FinishedRun({self})")
    }
}
