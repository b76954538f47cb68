use std::fmt::{self, Write};
use std::time::{Duration, SystemTime};

use crate::hooks::{ExecutionMode, HookFailure};
use crate::ids::RunId;
use crate::outcome::{NodeOutcome, Outcome};

/// Where a node ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThreadLabel {
    /// A rayon worker, by index in its pool.
    Worker(usize),
    /// The thread that called `run` (sequential executor).
    Caller,
    /// A tokio worker (async nodes, and task groups containing one).
    Async,
    /// The node did not run.
    None,
}

impl fmt::Display for ThreadLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Worker(i) => write!(f, "worker-{i}"),
            Self::Caller => f.write_str("caller"),
            Self::Async => f.write_str("tokio"),
            Self::None => f.write_str("-"),
        }
    }
}

/// The final state of a node in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeStatus {
    /// It produced its value.
    Succeeded,
    /// Its last attempt failed.
    Failed,
    /// It never ran.
    Skipped,
    /// Its value was supplied by the caller.
    Overridden,
}

impl NodeStatus {
    /// `succeeded`, `failed`, `skipped` or `overridden`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Overridden => "overridden",
        }
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one node.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NodeRecord {
    /// The node's name.
    pub name: String,
    /// The task it ran in.
    pub task: String,
    /// Its stage.
    pub stage: Option<String>,
    /// Its final state.
    pub status: NodeStatus,
    /// The last attempt's outcome (`None` for overridden nodes).
    pub outcome: Option<NodeOutcome>,
    /// When its first attempt started (`None` if it never ran).
    pub started_at: Option<SystemTime>,
    /// From the first attempt's start to the last attempt's end, retries included.
    pub duration: Duration,
    /// How many attempts ran.
    pub attempts: u32,
    /// Where it ran.
    pub thread: ThreadLabel,
}

impl NodeRecord {
    /// When its last attempt ended (`None` if it never ran).
    pub fn ended_at(&self) -> Option<SystemTime> {
        self.started_at.map(|start| start + self.duration)
    }
}

/// What happened in one run: every planned node, in plan order, then overridden nodes.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunRecord {
    /// The run's id.
    pub run_id: RunId,
    /// The graph's name.
    pub dag: String,
    /// How it ran.
    pub mode: ExecutionMode,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall-clock start.
    pub started_at: SystemTime,
    /// Wall time.
    pub duration: Duration,
    /// One record per node.
    pub nodes: Vec<NodeRecord>,
    /// The first hook failures (at most 64).
    pub hook_failures: Vec<HookFailure>,
    /// How many hook calls failed in all.
    pub hook_failure_count: u64,
}

impl RunRecord {
    /// The record of the node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeRecord> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Nodes whose final state is `status`.
    pub fn with_status(&self, status: NodeStatus) -> impl Iterator<Item = &NodeRecord> + '_ {
        self.nodes.iter().filter(move |n| n.status == status)
    }

    /// How many nodes ended in `status`.
    pub fn count(&self, status: NodeStatus) -> usize {
        self.with_status(status).count()
    }

    /// The failed nodes.
    pub fn failures(&self) -> impl Iterator<Item = &NodeRecord> + '_ {
        self.with_status(NodeStatus::Failed)
    }

    /// A plain-text table: node, status, attempts, duration, thread, and why for failures
    /// and skips. Nodes in plan order.
    pub fn summary_table(&self) -> String {
        let width = self
            .nodes
            .iter()
            .map(|n| n.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:<10}  {:>8}  {:>12}  {:<9}  detail",
            "node", "status", "attempts", "duration", "thread"
        );
        for node in &self.nodes {
            let detail = match &node.outcome {
                Some(outcome @ NodeOutcome::Succeeded) if node.attempts > 1 => {
                    format!("{outcome} after retries")
                }
                Some(NodeOutcome::Succeeded) | None => String::new(),
                Some(other) => other.to_string(),
            };
            let _ = writeln!(
                out,
                "{:<width$}  {:<10}  {:>8}  {:>12}  {:<9}  {}",
                node.name,
                node.status.as_str(),
                node.attempts,
                format!("{:.3?}", node.duration),
                node.thread.to_string(),
                detail
            );
        }
        let _ = writeln!(
            out,
            "run {} {} in {:.3?}: {} succeeded, {} failed, {} skipped, {} overridden",
            self.run_id,
            self.outcome,
            self.duration,
            self.count(NodeStatus::Succeeded),
            self.count(NodeStatus::Failed),
            self.count(NodeStatus::Skipped),
            self.count(NodeStatus::Overridden),
        );
        if self.hook_failure_count > 0 {
            let _ = writeln!(out, "{} hook call(s) failed", self.hook_failure_count);
        }
        out
    }
}
