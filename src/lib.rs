//! Run pipelines as DAGs, in parallel, with lifecycle hooks for observability.
//!
//! ```
//! use dagtel::{DagBuilder, Executor, Inputs, Request};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut g = DagBuilder::new("etl");
//! let raw = g.input::<Vec<f64>>("raw");
//! let clean = g.node("clean").stage("prepare").run(raw, |_, raw| {
//!     Ok(raw.iter().copied().filter(|x| x.is_finite()).collect::<Vec<_>>())
//! });
//! let mean = g.node("mean").run(clean, |_, xs| Ok(xs.iter().sum::<f64>() / xs.len() as f64));
//! let max = g.node("max").run(clean, |_, xs| Ok(xs.iter().copied().fold(f64::MIN, f64::max)));
//! let report = g
//!     .node("report")
//!     .run((mean, max), |_, (mean, max)| Ok(format!("mean {mean}, max {max}")));
//! let dag = g.build()?; // names, types and cycles are checked here
//!
//! let plan = dag.plan(&Request::new().output(report))?; // only what `report` needs
//! let run = Executor::parallel().run(&plan, Inputs::new().set(raw, vec![1.0, f64::NAN, 3.0]))?;
//! assert_eq!(run.outputs().get(report).unwrap(), "mean 2, max 3");
//! println!("{}", run.record().summary_table());
//! # Ok(())
//! # }
//! ```
//!
//! Data flows one way through the modules:
//!
//! - [`graph`]: declare nodes with typed dependencies, tags, stages and task groups; build a
//!   checked, immutable [`Dag`].
//! - [`plan`]: keep what the requested outputs need, honour overrides, group tasks and stages;
//!   export DOT and Mermaid.
//! - [`execution`]: the sequential and parallel [`Executor`]s, run records and errors.
//! - [`hooks`]: the lifecycle callbacks executors call, and [`hooks::Lifecycle`] for programs
//!   that have their own executor.
//! - [`node`]: what a node body sees: its context, its arguments, its error type.
#![warn(missing_docs, unreachable_pub)]

mod cancel;
#[cfg(test)]
mod child_test;
pub mod execution;
pub mod graph;
pub mod hooks;
mod ids;
pub mod node;
pub mod otel;
mod outcome;
pub mod plan;
pub mod processors;
mod sync;
pub mod telemetry;
mod value;
mod write_once;

pub use cancel::CancelToken;
pub use execution::{
    Executor, FailurePolicy, FinishedRun, Inputs, NodeRecord, NodeStatus, Outputs, Run, RunError,
    RunOptions, RunRecord, ThreadLabel,
};
pub use graph::{
    BuildError, Dag, DagBuilder, GraphPosition, Handle, Many, NodeKind, NodeMeta, RetryPolicy,
};
pub use ids::RunId;
pub use node::{AsyncNodeCtx, NodeCtx, NodeError, NodeResult};
pub use outcome::{NodeOutcome, Outcome, SkipReason};
pub use plan::{Plan, PlanError, Request, TaskMeta};
pub use value::TypeTag;

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
