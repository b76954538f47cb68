//! dagtel: run pipelines as DAGs, in parallel, with lifecycle hooks for observability.
#![warn(missing_docs, unreachable_pub)]

mod cancel;
pub mod graph;
mod ids;
pub mod node;
pub mod plan;
mod value;

pub use cancel::CancelToken;
pub use graph::{BuildError, Dag, DagBuilder, Handle, Many, NodeKind, NodeMeta, RetryPolicy};
pub use ids::RunId;
pub use node::{AsyncNodeCtx, NodeCtx, NodeError, NodeResult};
pub use plan::{Plan, PlanError, Request, TaskMeta};
pub use value::TypeTag;
