//! Driving hooks from an executor that is not dagtel's.
//!
//! A program with its own DAG code (its own loop, its own petgraph graph, another scheduler)
//! calls the same hooks in the same order as dagtel's executor does, and gets the same
//! telemetry: start a run, optionally stages, then one [`ActiveNode`] per node attempt.
//!
//! ```
//! use dagtel::hooks::{Lifecycle, RunInfo};
//! use dagtel::{NodeMeta, NodeOutcome, TaskMeta};
//!
//! let lifecycle = Lifecycle::new(); // add hooks with `.hook(..)`
//! let run = lifecycle.start_run(RunInfo::new("my-dag").node_count(1));
//! let meta = NodeMeta::new("load").with_tag("layer", "io");
//! let task = TaskMeta::single(&meta);
//! let mut node = run.node(None, &meta, &task);
//! let rows = node.run(|| 42);
//! node.finish(NodeOutcome::Succeeded);
//! run.finish();
//! assert_eq!(rows, 42);
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use super::Hooks;
use super::events::*;
use super::failures::{HookFailures, panic_text};
use super::set::{HookSet, NoHooks, Stack};
use crate::execution::Tally;
use crate::graph::NodeMeta;
use crate::ids::RunId;
use crate::outcome::{NodeOutcome, Outcome};
use crate::plan::TaskMeta;
use crate::sync::lock;

/// A set of hooks for a caller-driven executor. Build it once, start many runs.
pub struct Lifecycle<H: HookSet = NoHooks> {
    hooks: H,
    failures: HookFailures,
}

impl Lifecycle<NoHooks> {
    /// No hooks yet.
    pub fn new() -> Self {
        Self {
            hooks: NoHooks,
            failures: HookFailures::default(),
        }
    }
}

impl Default for Lifecycle<NoHooks> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: HookSet> Lifecycle<H> {
    /// Adds a hook (same ordering rules as [`Executor::hook`](crate::Executor::hook)).
    pub fn hook<X: Hooks>(self, hook: X) -> Lifecycle<Stack<H, X>> {
        Lifecycle {
            hooks: Stack {
                inner: self.hooks,
                hook,
            },
            failures: self.failures,
        }
    }

    /// Hook failures contained so far, over all runs.
    pub fn failures(&self) -> &HookFailures {
        &self.failures
    }

    /// Calls `before_run`.
    pub fn start_run(&self, info: RunInfo) -> ActiveRun<'_, H> {
        let started_at = SystemTime::now();
        let state = self.hooks.before_run(
            &RunStart {
                run_id: &info.run_id,
                dag: &info.dag,
                mode: ExecutionMode::External,
                outputs: info.outputs.iter().map(String::as_str).collect(),
                inputs: Vec::new(),
                overrides: Vec::new(),
                node_count: info.node_count,
                plan: None,
                started_at,
            },
            &self.failures,
        );
        ActiveRun {
            lifecycle: self,
            info,
            state: Some(state),
            started: Instant::now(),
            failed: Mutex::new(Vec::new()),
            succeeded: AtomicUsize::new(0),
            skipped: AtomicUsize::new(0),
            tally: Mutex::default(),
        }
    }
}

/// What a caller-driven run tells hooks about itself.
#[derive(Clone, Debug)]
pub struct RunInfo {
    run_id: RunId,
    dag: String,
    outputs: Vec<String>,
    node_count: usize,
}

impl RunInfo {
    /// A run of graph `dag` with a generated run id.
    pub fn new(dag: impl Into<String>) -> Self {
        Self {
            run_id: RunId::generate(),
            dag: dag.into(),
            outputs: Vec::new(),
            node_count: 0,
        }
    }

    /// Uses the caller's run id.
    pub fn run_id(mut self, id: impl Into<RunId>) -> Self {
        self.run_id = id.into();
        self
    }

    /// The requested outputs.
    pub fn outputs<I: IntoIterator<Item = S>, S: Into<String>>(mut self, outputs: I) -> Self {
        self.outputs = outputs.into_iter().map(Into::into).collect();
        self
    }

    /// How many nodes will run.
    pub fn node_count(mut self, count: usize) -> Self {
        self.node_count = count;
        self
    }
}

/// A run in progress. Shareable between threads (`&ActiveRun` is `Send` when the hooks'
/// states are), so worker threads can start nodes concurrently.
///
/// Dropped without [`finish`](Self::finish) (the caller's scheduler panicked, or returned
/// early), it still ends the run, as failed, so the trace does not look like a success.
pub struct ActiveRun<'l, H: HookSet> {
    lifecycle: &'l Lifecycle<H>,
    info: RunInfo,
    /// `None` once the run has ended.
    state: Option<H::Run>,
    started: Instant,
    failed: Mutex<Vec<String>>,
    succeeded: AtomicUsize,
    skipped: AtomicUsize,
    tally: Mutex<Tally>,
}

impl<'l, H: HookSet> ActiveRun<'l, H> {
    fn state(&self) -> &H::Run {
        self.state
            .as_ref()
            .expect("a run's state is only taken when the run ends")
    }
    /// The run's id.
    pub fn run_id(&self) -> &RunId {
        &self.info.run_id
    }

    /// Calls `before_stage`; finish the stage after its last node.
    pub fn stage(&self, name: impl Into<String>, task_count: usize) -> ActiveStage<'_, 'l, H> {
        let name = name.into();
        let state = self.lifecycle.hooks.before_stage(
            self.state(),
            &StageStart {
                run_id: &self.info.run_id,
                stage: &name,
                task_count,
            },
            &self.lifecycle.failures,
        );
        ActiveStage {
            run: self,
            name,
            state,
            started: Instant::now(),
            tally: Mutex::default(),
            ended: false,
        }
    }

    /// Starts `node`'s task (`before_task`). Its first attempt starts (`before_node`) at the
    /// first [`ActiveNode::run`], so a node that never runs (skipped) reports no attempt.
    pub fn node<'r>(
        &'r self,
        stage: Option<&'r ActiveStage<'r, 'l, H>>,
        node: &'r NodeMeta,
        task: &'r TaskMeta,
    ) -> ActiveNode<'r, 'l, H> {
        let hooks = &self.lifecycle.hooks;
        let stage_state = stage.map(|s| &s.state);
        let task_state = hooks.before_task(
            self.state(),
            stage_state,
            &TaskStart {
                run_id: &self.info.run_id,
                task,
            },
            &self.lifecycle.failures,
        );
        // The first attempt begins at the first `run`: a node finished without running (a
        // skip) reports attempt 0, as under dagtel's executor.
        ActiveNode {
            run: self,
            stage,
            node,
            task,
            task_state: Some(task_state),
            node_state: None,
            attempt: 0,
            task_started: Instant::now(),
            attempt_started: Instant::now(),
            panicked: None,
        }
    }

    /// Calls `after_run` with the outcome made of the nodes' outcomes: failed if one failed,
    /// else cancelled if one was skipped by cancellation, else skipped if none ran.
    pub fn finish(mut self) -> Outcome {
        self.end(false)
    }

    fn end(&mut self, dropped: bool) -> Outcome {
        let Some(state) = self.state.take() else {
            return Outcome::Failed;
        };
        let failed = std::mem::take(&mut *lock(&self.failed));
        let tally = *lock(&self.tally);
        let outcome = match tally.outcome() {
            _ if dropped => Outcome::Failed,
            // No node at all: nothing went wrong.
            Outcome::Skipped if self.skipped.load(Ordering::Relaxed) == 0 => Outcome::Succeeded,
            outcome => outcome,
        };
        self.lifecycle.hooks.after_run(
            state,
            &RunEnd {
                run_id: &self.info.run_id,
                dag: &self.info.dag,
                outcome,
                duration: self.started.elapsed(),
                failed: failed.iter().map(String::as_str).collect(),
                succeeded: self.succeeded.load(Ordering::Relaxed),
                skipped: self.skipped.load(Ordering::Relaxed),
                node_events: true,
                record: None,
            },
            &self.lifecycle.failures,
        );
        outcome
    }
}

impl<H: HookSet> Drop for ActiveRun<'_, H> {
    fn drop(&mut self) {
        self.end(true);
    }
}

/// A stage in progress; dropped without [`finish`](Self::finish), it ends as failed.
pub struct ActiveStage<'r, 'l, H: HookSet> {
    run: &'r ActiveRun<'l, H>,
    name: String,
    state: H::Stage,
    started: Instant,
    tally: Mutex<Tally>,
    ended: bool,
}

impl<H: HookSet> ActiveStage<'_, '_, H> {
    /// Calls `after_stage` with the outcome made of its nodes' outcomes (as the run's).
    pub fn finish(mut self) {
        self.end(false);
    }

    fn end(&mut self, dropped: bool) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let outcome = if dropped {
            Outcome::Failed
        } else {
            lock(&self.tally).outcome()
        };
        self.run.lifecycle.hooks.after_stage(
            self.run.state(),
            &self.state,
            &StageEnd {
                run_id: &self.run.info.run_id,
                stage: &self.name,
                outcome,
                duration: self.started.elapsed(),
            },
            &self.run.lifecycle.failures,
        );
    }
}

impl<H: HookSet> Drop for ActiveStage<'_, '_, H> {
    fn drop(&mut self) {
        self.end(true);
    }
}

/// One node in progress: wrap its body with [`run`](Self::run), then [`finish`](Self::finish)
/// (or [`retry`](Self::retry) and run again).
pub struct ActiveNode<'r, 'l, H: HookSet> {
    run: &'r ActiveRun<'l, H>,
    stage: Option<&'r ActiveStage<'r, 'l, H>>,
    node: &'r NodeMeta,
    task: &'r TaskMeta,
    task_state: Option<H::Task>,
    node_state: Option<H::Node>,
    attempt: u32,
    task_started: Instant,
    attempt_started: Instant,
    /// The message of a panic in [`run`](ActiveNode::run)'s body, for the drop that follows.
    panicked: Option<String>,
}

impl<H: HookSet> ActiveNode<'_, '_, H> {
    fn hooks(&self) -> &H {
        &self.run.lifecycle.hooks
    }

    fn start_event(&self) -> NodeStart<'_> {
        NodeStart {
            run_id: &self.run.info.run_id,
            node: self.node,
            task: self.task,
            attempt: self.attempt,
        }
    }

    fn begin_attempt(&mut self) {
        let task = self.task_state.take();
        if let Some(task) = &task {
            self.begin_attempt_with(task);
        }
        self.task_state = task;
    }

    fn begin_attempt_with(&mut self, task: &H::Task) {
        self.begin_attempt_numbered(task, self.attempt + 1);
    }

    fn begin_attempt_numbered(&mut self, task: &H::Task, attempt: u32) {
        self.attempt = attempt;
        self.attempt_started = Instant::now();
        let state = self.hooks().before_node(
            self.run.state(),
            self.stage.map(|s| &s.state),
            task,
            &self.start_event(),
            &self.run.lifecycle.failures,
        );
        self.node_state = Some(state);
    }

    fn end_attempt_with(&mut self, task: &H::Task, outcome: &NodeOutcome, will_retry: bool) {
        let Some(state) = self.node_state.take() else {
            return;
        };
        let ev = NodeEnd {
            run_id: &self.run.info.run_id,
            node: self.node,
            task: self.task,
            attempt: self.attempt,
            outcome,
            duration: self.attempt_started.elapsed(),
            will_retry,
        };
        self.hooks().after_node(
            self.run.state(),
            self.stage.map(|s| &s.state),
            task,
            state,
            &ev,
            &self.run.lifecycle.failures,
        );
    }

    /// The current attempt (1 for the first; after [`retry`](Self::retry), the next one).
    pub fn attempt(&self) -> u32 {
        if self.node_state.is_some() {
            self.attempt
        } else {
            self.attempt + 1
        }
    }

    /// Runs `body` inside the hooks' `around_node` wrappers. A panic in `body` is passed on
    /// to the caller after the wrappers have unwound.
    pub fn run<R>(&mut self, body: impl FnOnce() -> R) -> R {
        if self.node_state.is_none() {
            self.begin_attempt();
        }
        // An earlier attempt's panic (caught and retried by the caller) is not this one's.
        self.panicked = None;
        let mut body = Some(body);
        let mut result = None;
        if let Some(state) = &self.node_state {
            let mut call = || {
                if let Some(body) = body.take() {
                    result = Some(catch_unwind(AssertUnwindSafe(body)));
                }
            };
            self.hooks().around_node(
                state,
                &self.start_event(),
                &mut call,
                &self.run.lifecycle.failures,
            );
        }
        if let Some(body) = body.take() {
            result = Some(catch_unwind(AssertUnwindSafe(body)));
        }
        match result {
            Some(Ok(value)) => value,
            Some(Err(payload)) => {
                self.panicked = Some(panic_text(&*payload));
                resume_unwind(payload)
            }
            None => unreachable!("the body is taken exactly once above"),
        }
    }

    /// Ends this attempt with `outcome`; the next attempt starts at the next
    /// [`run`](Self::run), so a backoff in between is not counted in either attempt.
    pub fn retry(&mut self, outcome: NodeOutcome) {
        self.panicked = None;
        let task = self.task_state.take();
        if let Some(task) = &task {
            self.end_attempt_with(task, &outcome, true);
        }
        self.task_state = task;
    }

    /// Ends the last attempt and the node's task.
    pub fn finish(mut self, outcome: NodeOutcome) {
        self.end(outcome);
    }

    fn end(&mut self, outcome: NodeOutcome) {
        let Some(task_state) = self.task_state.take() else {
            return; // already ended
        };
        match (self.node_state.is_some(), self.attempt) {
            (true, _) => self.end_attempt_with(&task_state, &outcome, false),
            // Never run: a skipped node reports attempt 0, as under dagtel's executor.
            (false, 0) => {
                if !matches!(outcome, NodeOutcome::Skipped(_)) {
                    self.attempt = 1;
                }
                self.begin_attempt_numbered(&task_state, self.attempt);
                self.end_attempt_with(&task_state, &outcome, false);
            }
            // After `retry`, with no attempt since: the node ends with no further attempt.
            (false, _) => {}
        }
        let run = self.run;
        let mut tally = Tally::default();
        tally.add(&outcome);
        let task_outcome = tally.outcome();
        lock(&run.tally).add(&outcome);
        if let Some(stage) = self.stage {
            lock(&stage.tally).add(&outcome);
        }
        match &outcome {
            NodeOutcome::Succeeded => {
                run.succeeded.fetch_add(1, Ordering::Relaxed);
            }
            NodeOutcome::Skipped(_) => {
                run.skipped.fetch_add(1, Ordering::Relaxed);
            }
            _ => lock(&run.failed).push(self.node.name().to_string()),
        }
        let ev = TaskEnd {
            run_id: &run.info.run_id,
            task: self.task,
            outcome: task_outcome,
            duration: self.task_started.elapsed(),
        };
        run.lifecycle.hooks.after_task(
            run.state(),
            self.stage.map(|s| &s.state),
            task_state,
            &ev,
            &run.lifecycle.failures,
        );
    }
}

/// A node dropped without [`finish`](ActiveNode::finish) (its body panicked, or the caller
/// returned early) still ends its attempt and task, as failed, so hooks see every end.
impl<H: HookSet> Drop for ActiveNode<'_, '_, H> {
    fn drop(&mut self) {
        if self.task_state.is_some() {
            let outcome = match self.panicked.take() {
                Some(message) => NodeOutcome::Panicked { message },
                None if std::thread::panicking() => NodeOutcome::Failed {
                    message: "the node's driver panicked".to_string(),
                },
                None => NodeOutcome::Failed {
                    message: "the node was dropped without `finish`".to_string(),
                },
            };
            self.end(outcome);
        }
    }
}
