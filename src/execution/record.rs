use std::fmt::{self, Write};
use std::time::{Duration, SystemTime};

use super::arrays::RecordCells;
use super::clock::Clock;
use crate::graph::NodeMeta;
use crate::plan::Plan;

use crate::hooks::{ExecutionMode, HookFailure};
use crate::ids::RunId;
use crate::outcome::{NodeOutcome, Outcome};

/// Where a node ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThreadLabel {
    /// A rayon worker, by index in its pool.
    Worker(u32),
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

/// What happened to one node: a view into a [`RunRecord`], built when asked for.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NodeRecord<'a> {
    /// The node's name.
    pub name: &'a str,
    /// The node's declaration.
    pub node: &'a NodeMeta,
    /// Its final state.
    pub status: NodeStatus,
    /// The last attempt's outcome (`None` for overridden nodes).
    pub outcome: Option<NodeOutcome>,
    /// When its first attempt started (`None` if it never ran). Where a thread went straight
    /// from one node to the next, one clock reading is the end of the one and the start of
    /// the next, so a start may include the executor's few steps between them; it is never
    /// before an input's end.
    pub started_at: Option<SystemTime>,
    /// From the first attempt's start to the last attempt's end, retries included.
    pub duration: Duration,
    /// How many attempts ran.
    pub attempts: u32,
    /// Where it ran.
    pub thread: ThreadLabel,
}

impl NodeRecord<'_> {
    /// When its last attempt ended (`None` if it never ran).
    pub fn ended_at(&self) -> Option<SystemTime> {
        self.started_at.map(|start| start + self.duration)
    }

    /// The task it ran in.
    pub fn task(&self) -> &str {
        self.node.task_id()
    }

    /// Its stage.
    pub fn stage(&self) -> Option<&str> {
        self.node.stage()
    }
}

/// How one node ended, as the executor wrote it: raw clock readings, converted when read.
/// Kept small (the executor writes one per node): the outcome is boxed only when it is not a
/// success.
#[derive(Clone)]
pub(crate) struct RawRecord {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) attempts: u32,
    pub(crate) thread: ThreadLabel,
    /// `None` for success.
    pub(crate) other: Option<Box<NodeOutcome>>,
}

/// What happened in one run.
///
/// Per-node records are kept as the executor wrote them and turned into [`NodeRecord`]s on
/// access, so finishing a run of 100k nodes costs no allocation per node.
#[derive(Clone)]
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
    /// The first hook failures (at most 64).
    pub hook_failures: Vec<HookFailure>,
    /// How many hook calls failed in all.
    pub hook_failure_count: u64,
    pub(crate) plan: Plan,
    pub(crate) clock: Clock,
    /// Every planned node succeeded at its first try (the executor saw nothing else).
    pub(crate) first_tries_only: bool,
    /// Whether a node's start reading may come before an input's end: a parallel run without
    /// node events (see [`start_reading`](Self::start_reading)).
    pub(crate) starts_carried: bool,
    pub(crate) raw: RecordCells,
}

impl RunRecord {
    /// Every planned node in plan order, then overridden nodes.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = NodeRecord<'_>> + '_ {
        let inner = &*self.plan.inner;
        (0..inner.nodes.len() + inner.overrides.len()).map(move |i| self.view(i))
    }

    /// How many nodes the record covers (planned and overridden).
    pub fn len(&self) -> usize {
        self.plan.inner.nodes.len() + self.plan.inner.overrides.len()
    }

    /// Whether it covers none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record of the node called `name`.
    pub fn node(&self, name: &str) -> Option<NodeRecord<'_>> {
        let inner = &*self.plan.inner;
        let index = inner.dag.index_of(name)?;
        match inner.plan_of[index as usize] {
            u32::MAX => inner
                .overrides
                .iter()
                .position(|&o| o == index)
                .map(|o| self.view(inner.nodes.len() + o)),
            p => Some(self.view(p as usize)),
        }
    }

    /// Appends to `out`, in plan order, the seconds of each planned node that succeeded at
    /// its first attempt, and NaN for the others: what a consumer of many records needs of
    /// the common case, read in one pass without touching the nodes' declarations.
    pub(crate) fn first_try_seconds(&self, out: &mut Vec<f64>) {
        let planned = self.plan.inner.nodes.len();
        out.extend(self.raw.iter().take(planned).enumerate().map(|(i, cell)| {
            match cell.get() {
                Some(raw) if raw.other.is_none() && raw.attempts == 1 => self
                    .clock
                    .seconds_between(self.start_reading(i, raw), raw.end),
                _ => f64::NAN,
            }
        }));
    }

    /// Planned node `i`'s start reading, moved to its latest input's end if that came later.
    /// A thread that goes straight from one node to the next takes one clock reading as the
    /// end of the one and the start of the next (see `RunShared::run_task`), and an input of
    /// the next that ran on another thread may have ended after that reading. Moving the
    /// start here, when the record is read, costs the run nothing.
    fn start_reading(&self, i: usize, raw: &RawRecord) -> u64 {
        if !self.starts_carried {
            return raw.start; // one thread, or every task's start read afresh
        }
        let inner = &*self.plan.inner;
        let deps = &inner.dep_slots[inner.dep_off[i] as usize..inner.dep_off[i + 1] as usize];
        let latest_input = deps
            .iter()
            // Inputs and overridden nodes are not planned and have no record.
            .filter_map(|&d| self.raw.get(inner.plan_of[d as usize] as usize)?.get())
            .filter(|input| input.attempts > 0)
            .map(|input| input.end)
            .max()
            .unwrap_or(0);
        raw.start.max(latest_input.min(raw.end))
    }

    /// When item `i` ended, if it ran.
    pub(crate) fn ended_at(&self, i: usize) -> Option<SystemTime> {
        let raw = self.raw.get(i)?.get()?;
        (raw.attempts > 0).then(|| self.clock.wall(raw.end))
    }

    /// Item `i` of [`nodes`](Self::nodes).
    pub(crate) fn view(&self, i: usize) -> NodeRecord<'_> {
        let inner = &*self.plan.inner;
        let Some(&planned) = inner.nodes.get(i) else {
            let meta = &*inner.dag.entry(inner.overrides[i - inner.nodes.len()]).meta;
            return NodeRecord {
                name: meta.name(),
                node: meta,
                status: NodeStatus::Overridden,
                outcome: None,
                started_at: None,
                duration: Duration::ZERO,
                attempts: 0,
                thread: ThreadLabel::None,
            };
        };
        let meta = &*inner.dag.entry(planned).meta;
        let Some(raw) = self.raw[i].get() else {
            return NodeRecord {
                name: meta.name(),
                node: meta,
                status: NodeStatus::Failed,
                outcome: Some(NodeOutcome::Failed {
                    message: "not executed: the executor stopped unexpectedly".into(),
                }),
                started_at: None,
                duration: Duration::ZERO,
                attempts: 0,
                thread: ThreadLabel::None,
            };
        };
        let start = self.start_reading(i, raw);
        NodeRecord {
            name: meta.name(),
            node: meta,
            status: raw.status(),
            outcome: Some(raw.outcome()),
            started_at: (raw.attempts > 0).then(|| self.clock.wall(start)),
            duration: self.clock.between(start, raw.end),
            attempts: raw.attempts,
            thread: raw.thread,
        }
    }

    /// Nodes whose final state is `status`.
    pub fn with_status(&self, status: NodeStatus) -> impl Iterator<Item = NodeRecord<'_>> + '_ {
        self.nodes().filter(move |n| n.status == status)
    }

    /// How many nodes ended in `status`.
    pub fn count(&self, status: NodeStatus) -> usize {
        self.with_status(status).count()
    }

    /// The failed nodes.
    pub fn failures(&self) -> impl Iterator<Item = NodeRecord<'_>> + '_ {
        self.with_status(NodeStatus::Failed)
    }

    /// A plain-text table: node, status, attempts, duration, thread, and why for failures
    /// and skips. Nodes in plan order.
    pub fn summary_table(&self) -> String {
        let width = self.nodes().map(|n| n.name.len()).max().unwrap_or(4).max(4);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:<10}  {:>8}  {:>12}  {:<9}  detail",
            "node", "status", "attempts", "duration", "thread"
        );
        for node in self.nodes() {
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

impl RawRecord {
    #[inline]
    pub(crate) fn new(
        outcome: NodeOutcome,
        start: u64,
        end: u64,
        attempts: u32,
        thread: ThreadLabel,
    ) -> Self {
        let other = (!outcome.is_success()).then(|| Box::new(outcome));
        Self {
            start,
            end,
            attempts,
            thread,
            other,
        }
    }

    pub(crate) fn outcome(&self) -> NodeOutcome {
        self.other
            .as_deref()
            .cloned()
            .unwrap_or(NodeOutcome::Succeeded)
    }

    pub(crate) fn status(&self) -> NodeStatus {
        match self.other.as_deref() {
            None | Some(NodeOutcome::Succeeded) => NodeStatus::Succeeded,
            Some(NodeOutcome::Skipped(_)) => NodeStatus::Skipped,
            Some(_) => NodeStatus::Failed,
        }
    }
}

impl fmt::Debug for RunRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunRecord")
            .field("run_id", &self.run_id)
            .field("dag", &self.dag)
            .field("outcome", &self.outcome)
            .field("duration", &self.duration)
            .field("nodes", &self.len())
            .field("hook_failure_count", &self.hook_failure_count)
            .finish()
    }
}
