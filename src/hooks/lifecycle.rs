//! Driving hooks from an executor that is not dagtel's.
//!
//! A program with its own DAG code (its own loop, its own petgraph graph, another scheduler)
//! calls the same hooks in the same order as dagtel's executor does, and gets the same
//! telemetry: start a run, optionally stages, then one [`ActiveNode`] per node, whose
//! [`run`](ActiveNode::run) (sync) or [`run_async`](ActiveNode::run_async) wraps its body.
//!
//! What to keep in mind, where an executor of one's own differs from dagtel's:
//!
//! * **Names.** Node names must be unique within a run: fan-in links find a parent's span by
//!   its name (dagtel's graphs reject duplicates; partitions of one step need names of their
//!   own, `load[0]`, `load[1]`). A node is also known by its [`NodeMeta`]'s place in memory,
//!   in work carried from it to other threads or tasks: build the metas before the run and
//!   keep them in place until it ends (as `examples/existing_dag.rs` does), rather than one
//!   on the stack per node, which a later node may reuse while work carried from an earlier
//!   one still runs.
//! * **Stages.** A node's stage is the one its [`NodeMeta`] names
//!   ([`with_stage`](NodeMeta::with_stage)): it labels the node's span and metrics. Running
//!   it in an [`ActiveStage`] of another name (or of another run) is reported in
//!   [`failures`](ActiveRun::failures) with [`HookPhase::Driver`].
//! * **Tasks.** [`ActiveRun::node`] makes each node a task of its own; a task group's nodes
//!   run in one [`ActiveTask`] ([`ActiveRun::task`]).
//! * **Scoped borrows.** The handles borrow the run (and the run borrows the lifecycle), so
//!   nodes run on scoped threads (`std::thread::scope`, `rayon::scope`, a parallel iterator)
//!   or as futures joined inside the run's task (`futures::future::join_all`), not handed to
//!   `tokio::spawn`, which needs `'static` work: spawn the whole run instead, or spawn each
//!   async body with [`carry::spawn`](crate::otel::carry::spawn) inside `run_async`, which
//!   carries the node's context to it.
//! * **Work between nodes.** Code of the scheduler itself (its logs, its threads' loops) is
//!   part of the run where it runs inside [`ActiveRun::work`], which calls the hooks'
//!   `around_work` as dagtel's executor does around its own work.
//! * **Node events.** [`Hooks::node_events`] lets dagtel's executor skip node calls; a
//!   lifecycle makes them in every run (there is no run record to learn the nodes from), as
//!   the hook's contract allows.
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

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use futures_util::FutureExt;

use super::Hooks;
use super::events::*;
use super::failures::{HookFailures, HookPhase, panic_text};
use super::set::{HookSet, NoHooks, Stack};
use crate::execution::Tally;
use crate::execution::current::{Current, EntityCell};
use crate::graph::NodeMeta;
use crate::ids::RunId;
use crate::outcome::{NodeOutcome, Outcome};
use crate::plan::TaskMeta;
use crate::sync::lock;

/// A set of hooks for a caller-driven executor. Build it once, start many runs.
pub struct Lifecycle<H: HookSet = NoHooks> {
    hooks: H,
    /// Over all runs; each run also has its own.
    failures: Arc<HookFailures>,
}

impl Lifecycle<NoHooks> {
    /// No hooks yet.
    pub fn new() -> Self {
        Self {
            hooks: NoHooks,
            failures: Arc::default(),
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

    /// Hook failures contained so far, over all runs (the first 64 kept); each run's own are
    /// in [`ActiveRun::failures`].
    pub fn failures(&self) -> &HookFailures {
        &self.failures
    }

    /// Calls `before_run`.
    pub fn start_run(&self, info: RunInfo) -> ActiveRun<'_, H> {
        let failures = Arc::new(HookFailures::part_of(Arc::clone(&self.failures)));
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
            &failures,
        );
        ActiveRun {
            lifecycle: self,
            failures,
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
    /// This run's hook failures (also recorded in the lifecycle's).
    failures: Arc<HookFailures>,
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

    /// This run's contained hook failures, and what the driver asked for that could not be
    /// honoured ([`HookPhase::Driver`]).
    pub fn failures(&self) -> &HookFailures {
        &self.failures
    }

    /// Runs `work` as work of this run: inside every hook's `around_work`, as dagtel's
    /// executor runs its own work (a worker thread's loop, the scheduling between nodes).
    /// With `OtelHooks`, logs and spans of the scheduler's own code there carry the run id
    /// and nest under the run. Nodes run inside it as anywhere else.
    ///
    /// ```
    /// # use dagtel::hooks::{Lifecycle, RunInfo};
    /// let lifecycle = Lifecycle::new();
    /// let run = lifecycle.start_run(RunInfo::new("my-dag"));
    /// std::thread::scope(|s| {
    ///     s.spawn(|| run.work(|| tracing::info!("worker started")));
    /// });
    /// run.finish();
    /// ```
    pub fn work<R>(&self, work: impl FnOnce() -> R) -> R {
        let mut work = Some(work);
        let mut result = None;
        let mut call = || {
            if let Some(work) = work.take() {
                result = Some(catch_unwind(AssertUnwindSafe(work)));
            }
        };
        self.lifecycle
            .hooks
            .around_work(self.state(), &mut call, &self.failures);
        // Wrappers that did not call it: the work still runs, once.
        call();
        match result {
            Some(Ok(value)) => value,
            Some(Err(payload)) => resume_unwind(payload),
            None => unreachable!("the work is taken exactly once above"),
        }
    }

    /// Notes what the driver asked for that could not be honoured.
    fn misuse(&self, message: String) {
        self.failures
            .record("dagtel::hooks::Lifecycle", HookPhase::Driver, message);
    }

    /// The stage a node or task may run in: `stage` when it is one of this run's, else none
    /// (reported).
    fn own_stage<'r>(
        &'r self,
        stage: Option<&'r ActiveStage<'r, 'l, H>>,
        what: &str,
    ) -> Option<&'r ActiveStage<'r, 'l, H>> {
        let stage = stage?;
        if std::ptr::eq(stage.run, self) {
            return Some(stage);
        }
        self.misuse(format!(
            "{what} of run {} was given stage `{}` of run {}: it runs outside any stage",
            self.info.run_id, stage.name, stage.run.info.run_id
        ));
        None
    }

    /// Reports a node whose declared stage is not the one it runs in.
    fn check_stage(&self, node: &NodeMeta, stage: Option<&str>) {
        if node.stage() == stage {
            return;
        }
        let named = |stage: Option<&str>| match stage {
            Some(name) => format!("stage `{name}`"),
            None => "no stage".to_string(),
        };
        self.misuse(format!(
            "node `{}` runs in {} but its `NodeMeta` names {}: its span and metrics carry the \
             `NodeMeta`'s (see `NodeMeta::with_stage`)",
            node.name(),
            named(stage),
            named(node.stage()),
        ));
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
            &self.failures,
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

    fn before_task(&self, stage: Option<&ActiveStage<'_, 'l, H>>, task: &TaskMeta) -> H::Task {
        self.lifecycle.hooks.before_task(
            self.state(),
            stage.map(|s| &s.state),
            &TaskStart {
                run_id: &self.info.run_id,
                task,
            },
            &self.failures,
        )
    }

    /// Starts `node` as a task of its own (`before_task`). Its first attempt starts
    /// (`before_node`) at the first [`ActiveNode::run`], so a node that never runs (skipped)
    /// reports no attempt.
    pub fn node<'r>(
        &'r self,
        stage: Option<&'r ActiveStage<'r, 'l, H>>,
        node: &'r NodeMeta,
        task: &'r TaskMeta,
    ) -> ActiveNode<'r, 'l, H> {
        let given = stage.is_some();
        let stage = self.own_stage(stage, &format!("node `{}`", node.name()));
        // A refused stage is reported once, not again as the node's stage.
        if stage.is_some() || !given {
            self.check_stage(node, stage.map(|s| s.name.as_str()));
        }
        let state = self.before_task(stage, task);
        ActiveNode::new(
            self,
            stage,
            node,
            task,
            TaskOf::Own {
                state: Some(state),
                started: Instant::now(),
            },
        )
    }

    /// Starts a task group (`before_task`): its nodes run one after another through
    /// [`ActiveTask::node`], and it ends with [`ActiveTask::finish`], as a group of
    /// dagtel's executor does (one task span holding its nodes' spans).
    pub fn task<'r>(
        &'r self,
        stage: Option<&'r ActiveStage<'r, 'l, H>>,
        task: &'r TaskMeta,
    ) -> ActiveTask<'r, 'l, H> {
        let given = stage.is_some();
        let stage = self.own_stage(stage, &format!("task `{}`", task.id()));
        let state = self.before_task(stage, task);
        ActiveTask {
            run: self,
            stage_refused: given && stage.is_none(),
            stage,
            task,
            state: Some(state),
            started: Instant::now(),
            tally: Mutex::default(),
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
            &self.failures,
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
            &self.run.failures,
        );
    }
}

impl<H: HookSet> Drop for ActiveStage<'_, '_, H> {
    fn drop(&mut self) {
        self.end(true);
    }
}

/// A task group in progress: its nodes run one after another through [`node`](Self::node);
/// dropped without [`finish`](Self::finish), it ends as failed.
pub struct ActiveTask<'r, 'l, H: HookSet> {
    run: &'r ActiveRun<'l, H>,
    stage: Option<&'r ActiveStage<'r, 'l, H>>,
    /// Whether the stage it was given was another run's (reported once, not per node).
    stage_refused: bool,
    task: &'r TaskMeta,
    /// `None` once the task has ended.
    state: Option<H::Task>,
    started: Instant,
    tally: Mutex<Tally>,
}

impl<'r, 'l, H: HookSet> ActiveTask<'r, 'l, H> {
    /// Starts `node`, one of this task's: as [`ActiveRun::node`], without a task of its own.
    pub fn node<'t>(&'t self, node: &'t NodeMeta) -> ActiveNode<'t, 'l, H> {
        let run = self.run;
        if !self.task.nodes().iter().any(|n| n == node.name()) {
            run.misuse(format!(
                "node `{}` runs in task `{}`, which does not list it",
                node.name(),
                self.task.id()
            ));
        }
        if !self.stage_refused {
            run.check_stage(node, self.stage.map(|s| s.name.as_str()));
        }
        ActiveNode::new(run, self.stage, node, self.task, TaskOf::Group(self))
    }

    /// Calls `after_task` with the outcome made of its nodes' outcomes (as the run's).
    pub fn finish(mut self) {
        self.end(false);
    }

    fn end(&mut self, dropped: bool) {
        let Some(state) = self.state.take() else {
            return;
        };
        let outcome = if dropped {
            Outcome::Failed
        } else {
            lock(&self.tally).outcome()
        };
        let run = self.run;
        run.lifecycle.hooks.after_task(
            run.state(),
            self.stage.map(|s| &s.state),
            state,
            &TaskEnd {
                run_id: &run.info.run_id,
                task: self.task,
                outcome,
                duration: self.started.elapsed(),
            },
            &run.failures,
        );
    }
}

impl<H: HookSet> Drop for ActiveTask<'_, '_, H> {
    fn drop(&mut self) {
        self.end(true);
    }
}

/// The task a node runs in.
enum TaskOf<'r, 'l, H: HookSet> {
    /// A task of its own, ended with the node (`None` once ended).
    Own {
        state: Option<H::Task>,
        started: Instant,
    },
    /// A task group's, ended by the group.
    Group(&'r ActiveTask<'r, 'l, H>),
}

/// One node in progress: wrap its body with [`run`](Self::run) or
/// [`run_async`](Self::run_async), then [`finish`](Self::finish) (or [`retry`](Self::retry)
/// and run again).
pub struct ActiveNode<'r, 'l, H: HookSet> {
    run: &'r ActiveRun<'l, H>,
    stage: Option<&'r ActiveStage<'r, 'l, H>>,
    node: &'r NodeMeta,
    task: &'r TaskMeta,
    task_of: TaskOf<'r, 'l, H>,
    node_state: Option<H::Node>,
    attempt: u32,
    attempt_started: Instant,
    /// The message of a panic in [`run`](ActiveNode::run)'s body, for the drop that follows.
    panicked: Option<String>,
    /// Whether the node has ended.
    ended: bool,
    /// The entity id an async body declares, kept across its polls.
    entity: EntityCell,
}

impl<'r, 'l, H: HookSet> ActiveNode<'r, 'l, H> {
    fn new(
        run: &'r ActiveRun<'l, H>,
        stage: Option<&'r ActiveStage<'r, 'l, H>>,
        node: &'r NodeMeta,
        task: &'r TaskMeta,
        task_of: TaskOf<'r, 'l, H>,
    ) -> Self {
        // The first attempt begins at the first `run`: a node finished without running (a
        // skip) reports attempt 0, as under dagtel's executor.
        Self {
            run,
            stage,
            node,
            task,
            task_of,
            node_state: None,
            attempt: 0,
            attempt_started: Instant::now(),
            panicked: None,
            ended: false,
            entity: EntityCell::default(),
        }
    }

    fn hooks(&self) -> &'r H {
        &self.run.lifecycle.hooks
    }

    fn start_event(&self) -> NodeStart<'r> {
        NodeStart {
            run_id: &self.run.info.run_id,
            node: self.node,
            task: self.task,
            attempt: self.attempt,
        }
    }

    /// Calls `f` with the task's hook state (none once the task has ended).
    fn with_task(&mut self, f: impl FnOnce(&mut Self, &H::Task)) {
        match &mut self.task_of {
            TaskOf::Group(group) => {
                let group: &'r ActiveTask<'r, 'l, H> = group;
                if let Some(state) = &group.state {
                    f(self, state);
                }
            }
            TaskOf::Own { state, .. } => {
                // Out of `self` while `f` borrows it, and back after.
                let state = state.take();
                if let Some(state) = &state {
                    f(self, state);
                }
                if let TaskOf::Own { state: slot, .. } = &mut self.task_of {
                    *slot = state;
                }
            }
        }
    }

    fn begin_attempt(&mut self) {
        let attempt = self.attempt + 1;
        self.with_task(|node, task| node.begin_attempt_numbered(task, attempt));
    }

    fn begin_attempt_numbered(&mut self, task: &H::Task, attempt: u32) {
        self.attempt = attempt;
        self.attempt_started = Instant::now();
        // An entity is declared per attempt, as under dagtel's executor.
        self.entity = EntityCell::default();
        let state = self.hooks().before_node(
            self.run.state(),
            self.stage.map(|s| &s.state),
            task,
            &self.start_event(),
            &self.run.failures,
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
            &self.run.failures,
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

    /// Runs `body` inside the hooks' `around_node` wrappers, with the node as the thread's
    /// running node (log records name it in every run, sampled or not). A panic in `body` is
    /// passed on to the caller after the wrappers have unwound.
    pub fn run<R>(&mut self, body: impl FnOnce() -> R) -> R {
        if self.node_state.is_none() {
            self.begin_attempt();
        }
        // An earlier attempt's panic (caught and retried by the caller) is not this one's.
        self.panicked = None;
        let current = Current::new(&self.run.info.run_id, self.node);
        let mut body = Some(body);
        let mut result = None;
        let mut call = || {
            if let Some(body) = body.take() {
                result = Some(current.scope(|| catch_unwind(AssertUnwindSafe(body))));
            }
        };
        if let Some(state) = &self.node_state {
            self.hooks()
                .around_node(state, &self.start_event(), &mut call, &self.run.failures);
        }
        // Wrappers that did not call it (or no attempt, the task having ended): the body
        // still runs, once.
        call();
        self.body_result(result, "the body is taken exactly once above")
    }

    /// The body's value, or its panic passed on (noted for the drop that follows).
    fn body_result<R>(&mut self, result: Option<std::thread::Result<R>>, missing: &str) -> R {
        match result {
            Some(Ok(value)) => value,
            Some(Err(payload)) => {
                self.panicked = Some(panic_text(&*payload));
                resume_unwind(payload)
            }
            None => unreachable!("{missing}"),
        }
    }

    /// Runs an async body inside the hooks' `around_async` wrappers, as dagtel's executor
    /// runs an async node: its context (with `OtelHooks`, the node span and the run) is
    /// current in every poll, so spans and log records made after an `.await` nest under the
    /// node and carry the run id and node name. A panic in `future` is passed on to the
    /// caller after the wrappers have unwound.
    ///
    /// Building the future inside [`run`](Self::run) and awaiting it outside would lose all
    /// of that after its first `.await`.
    ///
    /// Dropping the returned future before it completes (a `tokio::time::timeout` around it,
    /// a `select!`) drops the body, and the attempt stays open: end it with
    /// [`retry`](Self::retry) or [`finish`](Self::finish) and the outcome the caller chose
    /// (`NodeOutcome::TimedOut`, say), or a later `run_async` goes on with the same attempt.
    ///
    /// The node is the running node around the hooks' wrappers, on the task that awaits this
    /// future: a wrapper that moves the body to another task (a hook that spawns it) leaves
    /// log records made there without the node's name unless the hook's own context names it
    /// (`OtelHooks` in a sampled run does).
    ///
    /// ```
    /// # use dagtel::hooks::{Lifecycle, RunInfo};
    /// # use dagtel::{NodeMeta, NodeOutcome, TaskMeta};
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// let lifecycle = Lifecycle::new();
    /// let run = lifecycle.start_run(RunInfo::new("my-dag"));
    /// let meta = NodeMeta::new("fetch");
    /// let task = TaskMeta::single(&meta);
    /// let mut node = run.node(None, &meta, &task);
    /// let body = async {
    ///     tokio::task::yield_now().await;
    ///     tracing::info!("fetched"); // names the run and node
    ///     7
    /// };
    /// let rows = node.run_async(body).await;
    /// node.finish(NodeOutcome::Succeeded);
    /// run.finish();
    /// assert_eq!(rows, 7);
    /// # });
    /// ```
    pub async fn run_async<F>(&mut self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.node_state.is_none() {
            self.begin_attempt();
        }
        self.panicked = None;
        type Slot<T> = Arc<Mutex<Option<std::thread::Result<T>>>>;
        let slot: Slot<F::Output> = Arc::default();
        let filled = Arc::clone(&slot);
        let mut body = async move {
            let result = AssertUnwindSafe(future).catch_unwind().await;
            *lock(&filled) = Some(result);
        }
        .boxed();
        if let Some(state) = &self.node_state {
            body = self
                .hooks()
                .around_async(state, &self.start_event(), body, &self.run.failures);
        }
        let (run_id, node, entity) = (&self.run.info.run_id, self.node, &self.entity);
        let polled = std::future::poll_fn(|cx| {
            Current::polled(run_id, node, entity).scope(|| body.as_mut().poll(cx))
        });
        // The hook set runs the body to its end whatever the wrappers do; a wrapper's own
        // panic is contained there.
        let _ = AssertUnwindSafe(polled).catch_unwind().await;
        let result = lock(&slot).take();
        self.body_result(result, "the hook set runs the node's future to its end")
    }

    /// Ends this attempt with `outcome`; the next attempt starts at the next
    /// [`run`](Self::run), so a backoff in between is not counted in either attempt. A
    /// second `retry` with no `run` in between is ignored (and reported in
    /// [`ActiveRun::failures`]).
    pub fn retry(&mut self, outcome: NodeOutcome) {
        self.panicked = None;
        if self.node_state.is_none() {
            self.run.misuse(format!(
                "node `{}`: `retry` with no attempt running (no `run` since the last `retry`, \
                 or none at all); ignored",
                self.node.name()
            ));
            return;
        }
        self.with_task(|node, task| node.end_attempt_with(task, &outcome, true));
    }

    /// Ends the last attempt and the node (and its task, unless it runs in a group).
    ///
    /// After [`retry`](Self::retry) with no `run` since, no attempt is running: the node
    /// ends with no further attempt, `outcome` counting in the run's, stage's and task's
    /// outcomes.
    pub fn finish(mut self, outcome: NodeOutcome) {
        self.end(outcome);
    }

    fn end(&mut self, outcome: NodeOutcome) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        match (self.node_state.is_some(), self.attempt) {
            (true, _) => self.with_task(|node, task| node.end_attempt_with(task, &outcome, false)),
            // Never run: a skipped node reports attempt 0, as under dagtel's executor.
            (false, 0) => {
                let attempt = u32::from(!matches!(outcome, NodeOutcome::Skipped(_)));
                self.with_task(|node, task| {
                    node.begin_attempt_numbered(task, attempt);
                    node.end_attempt_with(task, &outcome, false);
                });
            }
            // After `retry`, with no attempt since: the node ends with no further attempt.
            (false, _) => {}
        }
        let run = self.run;
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
        match &mut self.task_of {
            TaskOf::Group(group) => lock(&group.tally).add(&outcome),
            TaskOf::Own { state, started } => {
                let Some(state) = state.take() else {
                    return;
                };
                let mut tally = Tally::default();
                tally.add(&outcome);
                let ev = TaskEnd {
                    run_id: &run.info.run_id,
                    task: self.task,
                    outcome: tally.outcome(),
                    duration: started.elapsed(),
                };
                run.lifecycle.hooks.after_task(
                    run.state(),
                    self.stage.map(|s| &s.state),
                    state,
                    &ev,
                    &run.failures,
                );
            }
        }
    }
}

/// A node dropped without [`finish`](ActiveNode::finish) (its body panicked, or the caller
/// returned early) still ends its attempt and task, as failed, so hooks see every end.
impl<H: HookSet> Drop for ActiveNode<'_, '_, H> {
    fn drop(&mut self) {
        if !self.ended {
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
