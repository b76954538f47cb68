//! dagtel: run pipelines as DAGs, in parallel, with lifecycle hooks for observability.
#![warn(missing_docs, unreachable_pub)]

mod cancel;
pub mod execution;
pub mod graph;
pub mod hooks;
mod ids;
pub mod node;
mod outcome;
pub mod plan;
mod value;

pub use cancel::CancelToken;
pub use execution::{
    Executor, FailurePolicy, FinishedRun, Inputs, NodeRecord, NodeStatus, Outputs, Run, RunError,
    RunOptions, RunRecord, ThreadLabel,
};
pub use graph::{BuildError, Dag, DagBuilder, Handle, Many, NodeKind, NodeMeta, RetryPolicy};
pub use ids::RunId;
pub use node::{AsyncNodeCtx, NodeCtx, NodeError, NodeResult};
pub use outcome::{NodeOutcome, Outcome, SkipReason};
pub use plan::{Plan, PlanError, Request, TaskMeta};
pub use value::TypeTag;
