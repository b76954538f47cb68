//! What each hook receives. All structs are `#[non_exhaustive]`: fields are added, never
//! removed, so a hook written today keeps compiling (Rust's answer to `**future_kwargs`).

use std::time::{Duration, SystemTime};

use crate::graph::NodeMeta;
use crate::ids::RunId;
use crate::outcome::{NodeOutcome, Outcome};
use crate::plan::{Plan, TaskMeta};

/// How a run is executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExecutionMode {
    /// One node at a time on the caller's thread.
    Sequential,
    /// Nodes in parallel on a rayon pool of `threads` threads.
    Parallel {
        /// Worker threads.
        threads: usize,
    },
    /// Driven by the caller's own executor through [`Lifecycle`](super::Lifecycle).
    External,
}

impl ExecutionMode {
    /// `sequential`, `parallel` or `external`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Parallel { .. } => "parallel",
            Self::External => "external",
        }
    }
}

/// A run is starting.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunStart<'a> {
    /// The run's id.
    pub run_id: &'a RunId,
    /// The graph's name.
    pub dag: &'a str,
    /// How it is executed.
    pub mode: ExecutionMode,
    /// Requested outputs.
    pub outputs: Vec<&'a str>,
    /// Inputs supplied.
    pub inputs: Vec<&'a str>,
    /// Overridden nodes.
    pub overrides: Vec<&'a str>,
    /// How many nodes will run.
    pub node_count: usize,
    /// The plan, when the run comes from dagtel's executor.
    pub plan: Option<&'a Plan>,
    /// Wall-clock start.
    pub started_at: SystemTime,
}

/// A run has ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunEnd<'a> {
    /// The run's id.
    pub run_id: &'a RunId,
    /// The graph's name.
    pub dag: &'a str,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time of the whole run.
    pub duration: Duration,
    /// Nodes that failed, in the order they failed.
    pub failed: Vec<&'a str>,
    /// Nodes that succeeded.
    pub succeeded: usize,
    /// Nodes that were skipped.
    pub skipped: usize,
    /// Whether the hooks got this run's task and node events (see
    /// [`Hooks::node_events`](crate::hooks::Hooks::node_events)).
    pub node_events: bool,
    /// Every planned node's outcome, times, attempts and thread, when the run comes from
    /// dagtel's executor. Runs without node events learn about their nodes here.
    pub record: Option<&'a crate::RunRecord>,
}

/// A stage's first task is starting.
#[derive(Debug)]
#[non_exhaustive]
pub struct StageStart<'a> {
    /// The run's id.
    pub run_id: &'a RunId,
    /// The stage's name.
    pub stage: &'a str,
    /// How many tasks of this run are in it.
    pub task_count: usize,
}

/// A stage's last task has ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct StageEnd<'a> {
    /// The run's id.
    pub run_id: &'a RunId,
    /// The stage's name.
    pub stage: &'a str,
    /// How it ended.
    pub outcome: Outcome,
    /// From its first task's start to its last task's end.
    pub duration: Duration,
}

/// A task is starting.
#[derive(Debug)]
#[non_exhaustive]
pub struct TaskStart<'a> {
    /// The run's id.
    pub run_id: &'a RunId,
    /// The task.
    pub task: &'a TaskMeta,
}

/// A task has ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct TaskEnd<'a> {
    /// The run's id.
    pub run_id: &'a RunId,
    /// The task.
    pub task: &'a TaskMeta,
    /// How it ended.
    pub outcome: Outcome,
    /// Its wall time.
    pub duration: Duration,
}

/// An attempt of a node is starting (or a skipped node is being reported).
#[derive(Debug)]
#[non_exhaustive]
pub struct NodeStart<'a> {
    /// The run's id.
    pub run_id: &'a RunId,
    /// The node's declaration: name, tags, stage, dependency names, fingerprint.
    pub node: &'a NodeMeta,
    /// The task it runs in.
    pub task: &'a TaskMeta,
    /// 1 for the first attempt; 0 when the node is skipped and will not run.
    pub attempt: u32,
}

/// An attempt of a node has ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct NodeEnd<'a> {
    /// The run's id.
    pub run_id: &'a RunId,
    /// The node's declaration.
    pub node: &'a NodeMeta,
    /// The task it ran in.
    pub task: &'a TaskMeta,
    /// The attempt that ended (0 for a skipped node).
    pub attempt: u32,
    /// How it ended.
    pub outcome: &'a NodeOutcome,
    /// The attempt's wall time.
    pub duration: Duration,
    /// Whether another attempt follows.
    pub will_retry: bool,
}
