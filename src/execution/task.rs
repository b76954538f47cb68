//! Running one task: its stage bookkeeping, its nodes' attempts, hooks, and the release of
//! downstream tasks. Shared by the sequential and the parallel executor.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use smallvec::SmallVec;

use super::ThreadLabel;
use super::current::{Current, EntityCell};
use super::prefetch::prefetch_write;
use super::state::{NONE, RawRecord, RunShared};
use crate::graph::{Body, NodeMeta, SyncFn};
use crate::hooks::{
    HookSet, NodeEnd, NodeStart, StageEnd, StageStart, TaskEnd, TaskStart, panic_message,
};
use crate::node::{Args, AsyncNodeCtx, NodeCtx};
use crate::outcome::{NodeOutcome, Outcome, SkipReason};
use crate::plan::{Down, HotNode, TaskEntry, TaskPlan};
use crate::value::Value;

/// Tasks made ready by the task that just ran.
pub(crate) type Ready = SmallVec<[u32; 8]>;

/// What became of a task's nodes, folded into the task's (and stage's) outcome.
#[derive(Default, Clone, Copy)]
pub(crate) struct Tally {
    failed: bool,
    ran: bool,
    cancelled: bool,
}

impl Tally {
    pub(crate) fn add(&mut self, outcome: &NodeOutcome) {
        match outcome {
            NodeOutcome::Succeeded => self.ran = true,
            NodeOutcome::Skipped(SkipReason::Cancelled) => self.cancelled = true,
            NodeOutcome::Skipped(_) => {}
            _ => {
                self.ran = true;
                self.failed = true;
            }
        }
    }

    pub(crate) fn outcome(&self) -> Outcome {
        if self.failed {
            Outcome::Failed
        } else if self.cancelled {
            Outcome::Cancelled
        } else if !self.ran {
            Outcome::Skipped
        } else {
            Outcome::Succeeded
        }
    }
}

/// The outcome of one attempt, with its value when it succeeded.
type Attempt = (Option<Value>, NodeOutcome);

/// A first-try success's record, stored once its task has released its successors: the
/// locked decrements of that release then wait for the value's store only, not the record's.
type PendingRecord = Option<(u32, RawRecord)>;

/// Where an async attempt leaves its result, so the executor finds it even when a hook's
/// wrapper swallows the future.
type AttemptSlot = Arc<Mutex<Option<Attempt>>>;

/// One node's data as the task loop reads it: from its task's [`TaskEntry`] (a one-node
/// task, one cache line) or from the plan's per-node arrays (a member of a group).
#[derive(Clone, Copy)]
struct NodeRef<'a> {
    p: u32,
    body: Option<&'a SyncFn>,
    meta: &'a Arc<NodeMeta>,
    slot: u32,
    deps: &'a [u32],
    share: bool,
}

struct TaskScope<'a, H: HookSet> {
    /// The task's metadata, for hook events only.
    plan: &'a TaskPlan,
    stage: Option<u32>,
    stage_state: Option<&'a H::Stage>,
    state: H::Task,
    start: u64,
    tally: Tally,
}

/// Owns a stage's `before_stage` call; if it unwinds, the stage goes back to "not entered"
/// and the tasks parked meanwhile are handed to the pool (the next one re-enters the stage).
struct StageOwner<'a, H: HookSet> {
    shared: &'a RunShared<H>,
    index: u32,
    done: bool,
}

impl<H: HookSet> Drop for StageOwner<'_, H> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let stage = &self.shared.stages[self.index as usize];
        let waiting = stage
            .parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        if let Some(me) = self.shared.me.upgrade()
            && !waiting.is_empty()
        {
            super::parallel::spawn_ready(&me, waiting.into_iter().collect());
        }
    }
}

impl<H: HookSet> RunShared<H> {
    /// Runs a task whose nodes are all sync on the current thread, then pushes the tasks it
    /// made ready. Downstream tasks are released only after this task (and, if it was the
    /// last, its stage) has ended, so every span nests in order.
    ///
    /// `now` carries a clock reading from one node to the next on this thread: the end of one
    /// node is the start of the next, which saves a clock read per node. Callers pass `None`
    /// whenever they may have done other work since (a stolen job, another run's task), and
    /// with active hooks it is not used, since hooks run between the nodes. It is left `None`
    /// when a counter reached zero here: that task's other inputs may have ended later.
    pub(crate) fn run_task(&self, task: u32, ready: &mut Ready, now: &mut Option<u64>) {
        // Two copies of the task loop: one with the hook calls, one compiled without them
        // (as with no hooks at all) for runs whose hooks want no node events.
        if self.events() {
            *now = None;
            self.run_task_as::<true>(task, ready, now)
        } else {
            // Stage hooks may run before and after the task: no clock reading crosses them.
            // The entry's flag, not `task_hot`: the task loop reads the entry's line next
            // anyway, where `task_hot` would be one more random line per task.
            let staged = H::ACTIVE && self.plan.inner.entries[task as usize].staged();
            if staged {
                *now = None;
            }
            self.run_task_as::<false>(task, ready, now);
            if staged {
                *now = None;
            }
        }
    }

    /// [`run_task`](Self::run_task), with the hooks' task and node events (`E`) or without.
    /// Inlined into `run_task`: as a call of its own it cost a hooked run without node events
    /// 27 instructions per node (callgrind, sequential; 8 parallel).
    #[inline(always)]
    fn run_task_as<const E: bool>(&self, task: u32, ready: &mut Ready, now: &mut Option<u64>) {
        let plan = &*self.plan.inner;
        let entry = &plan.entries[task as usize];
        let Some(mut scope) = self.begin_task::<E>(task, entry, ready) else {
            return; // parked until its stage has started
        };
        let thread = self.thread_label();
        let mut pending = PendingRecord::default();
        if entry.group() {
            for i in plan.task_hot[task as usize].nodes() {
                let node = self.node_ref(plan.task_nodes[i]);
                self.run_or_skip::<E>(node, &mut scope, thread, now, &mut pending);
                self.store_record(&mut pending);
            }
        } else {
            self.run_or_skip::<E>(
                self.entry_node(entry),
                &mut scope,
                thread,
                now,
                &mut pending,
            );
        }
        self.end_task::<E>(scope);
        // The end reading stays the next task's start even if another of that task's inputs
        // ended on another thread after it: the record moves such a start to the input's end
        // when it is read (see `RunRecord::start_reading`), which costs nothing here.
        self.release(task, ready);
        self.store_record(&mut pending);
    }

    /// Stores a record that [`complete_success`](Self::complete_success) left pending.
    #[inline(always)]
    fn store_record(&self, pending: &mut PendingRecord) {
        if let Some((p, record)) = pending.take() {
            // SAFETY: as in `complete`.
            unsafe { self.records[p as usize].set_empty(record) };
        }
    }

    #[inline(always)]
    fn run_or_skip<const E: bool>(
        &self,
        node: NodeRef<'_>,
        scope: &mut TaskScope<'_, H>,
        thread: ThreadLabel,
        now: &mut Option<u64>,
        pending: &mut PendingRecord,
    ) {
        // Nothing to skip for unless a marker, a cancellation or a fail-fast halt exists
        // (checked here, so the common case makes no call).
        let reason = if self.marked.load(Ordering::Relaxed)
            || self.cancel.is_cancelled()
            || self.halted_by.load(Ordering::Relaxed) != NONE
        {
            self.skip_reason(node.p)
        } else {
            None
        };
        let outcome = match reason {
            Some(reason) => self.skip_node::<E>(node.p, reason, scope, now.take()),
            None => self.run_sync_node::<E>(node, scope, thread, now, pending),
        };
        self.mark(node.p, &outcome, &mut scope.tally);
    }

    /// Runs a task that contains an async node, inside a tokio task. Returns `false` if the
    /// task was parked (see [`begin_task`](Self::begin_task)); tasks to start next go to
    /// `ready`, and the caller releases the downstream tasks (see [`release`](Self::release))
    /// once this returns `true`.
    ///
    /// Every poll is work for the run like a pool job (see [`at_work`](Self::at_work)): the
    /// caller's context and the hooks' `around_work` are around it.
    pub(crate) async fn run_task_async(self: &Arc<Self>, task: u32, ready: &mut Ready) -> bool {
        let mut task = std::pin::pin!(self.run_task_on_tokio(task, ready));
        std::future::poll_fn(|cx| {
            let mut polled = std::task::Poll::Pending;
            self.at_work(|| polled = task.as_mut().poll(cx));
            polled
        })
        .await
    }

    async fn run_task_on_tokio(self: &Arc<Self>, task: u32, ready: &mut Ready) -> bool {
        // Plans with async nodes always deliver node events (see `prepare`).
        let plan = &*self.plan.inner;
        let Some(mut scope) = self.begin_task::<true>(task, &plan.entries[task as usize], ready)
        else {
            return false;
        };
        for i in plan.task_hot[task as usize].nodes() {
            let p = plan.task_nodes[i];
            let outcome = match self.skip_reason(p) {
                Some(reason) => self.skip_node::<true>(p, reason, &scope, None),
                None if matches!(self.hot(p).body, Body::Async(_)) => {
                    self.run_async_node(p, &scope).await
                }
                None => {
                    let mut pending = PendingRecord::default();
                    let outcome = self.run_sync_node::<true>(
                        self.node_ref(p),
                        &scope,
                        ThreadLabel::Async,
                        &mut None,
                        &mut pending,
                    );
                    self.store_record(&mut pending);
                    outcome
                }
            };
            self.mark(p, &outcome, &mut scope.tally);
        }
        // No await from here on: a dropped future has not ended its task.
        self.end_task::<true>(scope);
        true
    }

    /// Ends a task whose async job died (panicked, or dropped by a runtime shutting down)
    /// before it ended: its unfinished nodes fail with `cause`, their descendants are
    /// skipped as usual, and the downstream tasks are released.
    pub(crate) fn abandon_task(&self, task: u32, cause: &str, ready: &mut Ready) {
        let hot = self.plan.inner.task_hot[task as usize];
        let mut tally = Tally::default();
        for p in hot.nodes() {
            let p = self.plan.inner.task_nodes[p];
            let outcome = match self.records[p as usize].get() {
                Some(done) => done.outcome(),
                None => {
                    let now = self.clock.raw();
                    let outcome = NodeOutcome::Failed {
                        message: cause.to_string(),
                    };
                    let slot = self.hot(p).slot;
                    self.complete(p, slot, None, outcome, now, now, 0, ThreadLabel::None)
                }
            };
            self.mark(p, &outcome, &mut tally);
        }
        if let Some(stage) = hot.stage() {
            self.leave_stage(stage, tally);
        }
        self.release(task, ready);
    }

    /// Runs `work` with the run's caller's OpenTelemetry context attached, inside the hooks'
    /// `around_work`, unless this thread is inside both for this run already (a join's half
    /// that ran where it was forked).
    ///
    /// The caller's context is attached even when it is empty: a pool thread that waits inside
    /// other work (a join in another run's node, a user's job) runs this run's jobs on top of
    /// that work's context, which must not leak into this run's nodes.
    pub(crate) fn at_work(&self, work: impl FnOnce()) {
        let me = (self as *const Self).cast::<()>();
        if super::current::working_on() == me {
            return work();
        }
        let _working = super::current::work_on(me);
        let _caller = self.caller.clone().attach();
        if !H::ACTIVE {
            return work();
        }
        let mut work = Some(work);
        let mut escaped = None;
        self.hooks.around_work(
            &self.run_state,
            &mut || {
                if let Some(work) = work.take() {
                    // A panic out of the work is the executor's, not the hooks': it must reach
                    // the job's own guard (which records the loss), not be blamed on a hook
                    // and swallowed, which would leave an async task pending forever.
                    escaped = catch_unwind(AssertUnwindSafe(work)).err();
                }
            },
            &self.failures,
        );
        if let Some(payload) = escaped {
            // Whatever the job was doing may be left undone: `finish` must look.
            self.irregular.store(true, Ordering::Relaxed);
            std::panic::resume_unwind(payload);
        }
        if work.is_some() {
            // Not run: its nodes have no record, which `finish` must look for.
            self.irregular.store(true, Ordering::Relaxed);
        }
    }

    /// Whether hooks get this run's task and node events (a constant `false` without hooks).
    #[inline]
    fn events(&self) -> bool {
        H::ACTIVE && self.node_events
    }

    fn hot(&self, p: u32) -> &HotNode {
        &self.plan.inner.hot[p as usize]
    }

    /// Node `p`, read from the per-node arrays.
    fn node_ref(&self, p: u32) -> NodeRef<'_> {
        let hot = self.hot(p);
        NodeRef {
            p,
            body: match &hot.body {
                Body::Sync(body) => Some(&**body),
                _ => None,
            },
            meta: &hot.meta,
            slot: hot.slot,
            deps: self.dep_slots(p),
            share: hot.share,
        }
    }

    /// The first node of the task whose entry this is.
    #[inline(always)]
    fn entry_node<'s>(&'s self, entry: &'s TaskEntry) -> NodeRef<'s> {
        NodeRef {
            p: entry.node,
            // SAFETY: the body lives in the arena of the plan's graph, which `self.plan`
            // holds (through its `Dag`) for longer than `'s`.
            body: entry.body.map(|body| unsafe { body.get() }),
            meta: &entry.meta,
            slot: entry.slot,
            deps: entry.deps(&self.plan.inner.dep_slots),
            share: entry.share(),
        }
    }

    /// Value slots of `p`'s dependencies, in argument order.
    fn dep_slots(&self, p: u32) -> &[u32] {
        let plan = &*self.plan.inner;
        &plan.dep_slots[plan.dep_off[p as usize] as usize..plan.dep_off[p as usize + 1] as usize]
    }

    fn thread_label(&self) -> ThreadLabel {
        match rayon::current_thread_index() {
            Some(index) if self.sched.pool.is_some() => ThreadLabel::Worker(index as u32),
            _ => ThreadLabel::Caller,
        }
    }

    /// Enters the task's stage and calls `before_task`. `None` when the task was parked
    /// because another thread is running its stage's `before_stage`; that thread puts it in
    /// its own `ready` list when done.
    #[inline]
    fn begin_task<'s, const E: bool>(
        &'s self,
        index: u32,
        entry: &TaskEntry,
        ready: &mut Ready,
    ) -> Option<TaskScope<'s, H>> {
        let plan = &self.plan.inner.tasks[index as usize];
        let stage = if entry.staged() {
            self.plan.inner.task_hot[index as usize].stage()
        } else {
            None
        };
        let stage_state = match stage {
            Some(stage) => Some(self.enter_stage(stage, index, ready)?),
            None => None,
        };
        let (start, state) = if E && H::ACTIVE {
            let state = self.hooks.before_task(
                &self.run_state,
                stage_state,
                &TaskStart {
                    run_id: &self.run_id,
                    task: &plan.meta,
                },
                &self.failures,
            );
            (self.clock.raw(), state)
        } else {
            Default::default()
        };
        Some(TaskScope {
            plan,
            stage,
            stage_state,
            state,
            start,
            tally: Tally::default(),
        })
    }

    /// Inlined: as a call, taking the scope by value, it was ~16% of a hooked run's task
    /// loop without node events (where it only drops the scope).
    #[inline(always)]
    fn end_task<const E: bool>(&self, scope: TaskScope<'_, H>) {
        if E && H::ACTIVE {
            let ev = TaskEnd {
                run_id: &self.run_id,
                task: &scope.plan.meta,
                outcome: scope.tally.outcome(),
                duration: self.clock.between(scope.start, self.clock.raw()),
            };
            self.hooks.after_task(
                &self.run_state,
                scope.stage_state,
                scope.state,
                &ev,
                &self.failures,
            );
        }
        if let Some(stage) = scope.stage {
            self.leave_stage(stage, scope.tally);
        }
    }

    /// The stage's hook state, running `before_stage` if this task is the stage's first.
    ///
    /// No thread ever waits here. A task that arrives while another thread runs the stage's
    /// `before_stage` is parked (`None`), and that thread puts the parked tasks in its `ready`
    /// list once the hook returns. Waiting instead could deadlock: a hook that waits on rayon
    /// work lets its thread, or a thread running a piece of that work, pick up another task
    /// of the same stage.
    fn enter_stage(&self, index: u32, task: u32, ready: &mut Ready) -> Option<&H::Stage> {
        let stage = &self.stages[index as usize];
        if let Some(state) = stage.state.get() {
            return Some(state);
        }
        {
            let mut parked = stage.parked.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(state) = stage.state.get() {
                return Some(state);
            }
            match &mut *parked {
                Some(waiting) => {
                    waiting.push(task);
                    return None;
                }
                None => *parked = Some(Vec::new()),
            }
        }
        // If anything below unwinds, hand the parked tasks on instead of stranding them.
        let mut owner = StageOwner {
            shared: self,
            index,
            done: false,
        };
        stage.started.store(self.clock.raw(), Ordering::Relaxed);
        let plan = &self.plan.inner.stages[index as usize];
        let state = self.hooks.before_stage(
            &self.run_state,
            &StageStart {
                run_id: &self.run_id,
                stage: &plan.name,
                task_count: plan.tasks.len(),
            },
            &self.failures,
        );
        let _ = stage.state.set(state);
        let waiting = stage
            .parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        owner.done = true;
        // Start the parked tasks now rather than after this task, which may be long.
        match self.me.upgrade() {
            Some(me) if !waiting.is_empty() && self.sched.pool.is_some() => {
                super::parallel::spawn_ready(&me, waiting.into_iter().collect());
            }
            _ => ready.extend(waiting),
        }
        stage.state.get()
    }

    fn leave_stage(&self, index: u32, tally: Tally) {
        let stage = &self.stages[index as usize];
        if tally.failed {
            stage.failed.store(true, Ordering::Relaxed);
        }
        if tally.ran {
            stage.ran.store(true, Ordering::Relaxed);
        }
        if tally.cancelled {
            stage.cancelled.store(true, Ordering::Relaxed);
        }
        if stage.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let total = Tally {
            failed: stage.failed.load(Ordering::Relaxed),
            ran: stage.ran.load(Ordering::Relaxed),
            cancelled: stage.cancelled.load(Ordering::Relaxed),
        };
        if let Some(state) = stage.state.get() {
            let started = stage.started.load(Ordering::Relaxed);
            self.hooks.after_stage(
                &self.run_state,
                state,
                &StageEnd {
                    run_id: &self.run_id,
                    stage: &self.plan.inner.stages[index as usize].name,
                    outcome: total.outcome(),
                    duration: self.clock.between(started, self.clock.raw()),
                },
                &self.failures,
            );
        }
    }

    fn node_name(&self, p: u32) -> String {
        self.hot(p).meta.name().to_string()
    }

    fn skip_reason(&self, p: u32) -> Option<SkipReason> {
        // Markers hold the failed ancestor plus one, so that zero (a fresh run) means none.
        // `marked` is set before any marker is written, and both before the marked node is
        // handed over (its counter reaches zero), so a node that sees it unset has no marker
        // to read.
        let marked = if self.marked.load(Ordering::Relaxed) {
            self.poison[p as usize].load(Ordering::Relaxed)
        } else {
            0
        };
        if marked != 0 {
            return Some(SkipReason::UpstreamFailed {
                ancestor: self.node_name(marked - 1),
            });
        }
        if self.cancel.is_cancelled() {
            return Some(SkipReason::Cancelled);
        }
        let halted = self.halted_by.load(Ordering::Relaxed);
        (halted != NONE).then(|| SkipReason::FailFast {
            failed: self.node_name(halted),
        })
    }

    /// Records `p` as skipped at `now` (read here when `None`).
    fn skip_node<const E: bool>(
        &self,
        p: u32,
        reason: SkipReason,
        scope: &TaskScope<'_, H>,
        now: Option<u64>,
    ) -> NodeOutcome {
        self.irregular.store(true, Ordering::Relaxed);
        let entry = self.hot(p);
        let outcome = NodeOutcome::Skipped(reason);
        let now = now.unwrap_or_else(|| self.clock.raw());
        if E && H::ACTIVE {
            let start = NodeStart {
                run_id: &self.run_id,
                node: &entry.meta,
                task: &scope.plan.meta,
                attempt: 0,
            };
            let stage = scope.stage_state;
            let state = self.hooks.before_node(
                &self.run_state,
                stage,
                &scope.state,
                &start,
                &self.failures,
            );
            let end = NodeEnd {
                run_id: &self.run_id,
                node: &entry.meta,
                task: &scope.plan.meta,
                attempt: 0,
                outcome: &outcome,
                duration: Default::default(),
                will_retry: false,
            };
            self.hooks.after_node(
                &self.run_state,
                stage,
                &scope.state,
                state,
                &end,
                &self.failures,
            );
        }
        // SAFETY: the node's task is running on this thread only (see `complete`).
        let _ = unsafe {
            self.records[p as usize].set(RawRecord::new(
                outcome.clone(),
                now,
                now,
                0,
                ThreadLabel::None,
            ))
        };
        outcome
    }

    /// Runs `p`'s attempts. Starts at `now` if given (see [`run_task`](Self::run_task)) and
    /// leaves its end reading there. Inlined into the task loop: without node events a
    /// first-try success runs here, anything else in [`run_attempts`](Self::run_attempts).
    #[inline(always)]
    fn run_sync_node<const E: bool>(
        &self,
        node: NodeRef<'_>,
        scope: &TaskScope<'_, H>,
        thread: ThreadLabel,
        now: &mut Option<u64>,
        pending: &mut PendingRecord,
    ) -> NodeOutcome {
        let p = node.p;
        let Some(body) = node.body else {
            *now = None;
            return self.fail_unrunnable(node, thread);
        };
        if self.sched.pool.is_some() {
            // The two lines this node writes when it ends, requested now so that they arrive
            // while it reads its dependencies. Not in sequential runs: they walk the plan in
            // order, which the hardware prefetcher follows by itself.
            prefetch_write(&self.records[p as usize]);
            prefetch_write(&self.words[node.slot as usize]);
        }
        let meta = &**node.meta;
        let first_start = now.take().unwrap_or_else(|| self.clock.raw());
        // Without node events no hook runs around or between the steps of an attempt, so the
        // first one runs without the attempt plumbing; a success (the common case) is
        // stored and recorded directly, anything else goes through the loop below.
        // `first` is bound only past the success's return: live across it, the hooked
        // instantiation called its drop glue for every node (13 instructions).
        let first: Option<Attempt> = if !(E && H::ACTIVE) {
            let ctx = NodeCtx {
                run_id: &self.run_id,
                node: meta,
                attempt: 1,
                cancel: &self.cancel,
            };
            let args = Args::new(&self.slots, &self.words, node.deps);
            let current = Current::new(&self.run_id, node.meta);
            let result =
                current.scope(|| catch_unwind(AssertUnwindSafe(|| body(&ctx, &args, node.share))));
            match result {
                Ok(Ok(value)) => {
                    let end = self.clock.raw();
                    *now = Some(end);
                    *pending = Some((
                        p,
                        self.complete_success(node.slot, value, first_start, end, thread),
                    ));
                    return NodeOutcome::Succeeded;
                }
                other => Some(settle_result(other.map_err(panic_message))),
            }
        } else {
            None
        };
        self.run_attempts::<E>(node, body, scope, thread, now, first_start, first)
    }

    /// The attempts of [`run_sync_node`](Self::run_sync_node) with their hook calls, retries
    /// and outcomes other than a first-try success without node events (then `first` holds
    /// the first attempt's result, which it ran already).
    #[allow(clippy::too_many_arguments)]
    fn run_attempts<const E: bool>(
        &self,
        node: NodeRef<'_>,
        body: &SyncFn,
        scope: &TaskScope<'_, H>,
        thread: ThreadLabel,
        now: &mut Option<u64>,
        first_start: u64,
        mut first: Option<Attempt>,
    ) -> NodeOutcome {
        let p = node.p;
        let meta = &**node.meta;
        let mut attempt = 1;
        loop {
            let (ev, state, attempt_start) =
                self.begin_attempt::<E>(node.meta, scope, attempt, first_start);
            // The lean first attempt's result, if it ran (then `call` below does nothing).
            let mut result: Option<Attempt> = first.take();
            {
                let ctx = NodeCtx {
                    run_id: &self.run_id,
                    node: meta,
                    attempt,
                    cancel: &self.cancel,
                };
                let args = Args::new(&self.slots, &self.words, node.deps);
                let current = Current::new(&self.run_id, node.meta);
                let mut call = || {
                    if result.is_none() {
                        result = Some(current.scope(|| call_sync(body, &ctx, &args, node.share)));
                    }
                };
                if E && H::ACTIVE {
                    self.hooks
                        .around_node(&state, &ev, &mut call, &self.failures);
                } else {
                    call();
                }
            }
            let (value, outcome) = or_failed(result, "node body was not run");
            let end = self.clock.raw();
            let will_retry = self.end_attempt::<E>(
                node.meta,
                node.meta.retry().max_attempts(),
                scope,
                state,
                attempt,
                &outcome,
                attempt_start,
                end,
            );
            // A cancel during the backoff ends the node with this attempt's failure.
            if will_retry && !self.cancel.wait(meta.retry().delay_before(attempt + 1)) {
                attempt += 1;
                continue;
            }
            // After a backoff that a cancel cut short, this thread has waited since `end`:
            // the next node reads its start afresh.
            *now = (!will_retry).then_some(end);
            return self.complete(
                p,
                node.slot,
                value,
                outcome,
                first_start,
                end,
                attempt,
                thread,
            );
        }
    }

    async fn run_async_node(self: &Arc<Self>, p: u32, scope: &TaskScope<'_, H>) -> NodeOutcome {
        let hot = self.hot(p);
        let meta = &*hot.meta;
        let first_start = self.clock.raw();
        let mut attempt = 1;
        loop {
            let (ev, state, attempt_start) =
                self.begin_attempt::<true>(&hot.meta, scope, attempt, first_start);
            let slot = AttemptSlot::default();
            let future = self.attempt_future(p, attempt, slot.clone());
            let wrapped = self.hooks.around_async(&state, &ev, future, &self.failures);
            // Each hook's wrapper is contained by the hook set; this guards the executor.
            let _ = AssertUnwindSafe(wrapped).catch_unwind().await;
            // The hook set runs the node's future to its end whatever the wrappers do, and
            // the attempt settles its outcome before anything of it is dropped; a missing one
            // is an executor bug, which fails the attempt rather than run the body again.
            let (value, outcome) = or_failed(take(&slot), "async node did not complete");
            let end = self.clock.raw();
            let will_retry = self.end_attempt::<true>(
                &hot.meta,
                hot.max_attempts,
                scope,
                state,
                attempt,
                &outcome,
                attempt_start,
                end,
            );
            let backoff = meta.retry().delay_before(attempt + 1);
            if will_retry && !self.cancel.wait_async(backoff).await {
                attempt += 1;
                continue;
            }
            return self.complete(
                p,
                hot.slot,
                value,
                outcome,
                first_start,
                end,
                attempt,
                ThreadLabel::Async,
            );
        }
    }

    /// One attempt of an async node as a `'static` future: body, timeout and panic capture.
    /// While it is polled, the node is this thread's running node, as a sync node is while
    /// its body runs (records name it; an entity it declares is kept across polls).
    fn attempt_future(&self, p: u32, attempt: u32, slot: AttemptSlot) -> BoxFuture<'static, ()> {
        let mut attempt = self.attempt_body(p, attempt, slot.clone());
        let (run_id, node) = (self.run_id.clone(), Arc::clone(&self.hot(p).meta));
        let entity = EntityCell::default();
        Box::pin(std::future::poll_fn(move |cx| {
            Current::polled(&run_id, &node, &entity).scope(|| {
                // The body's own panics are caught inside; one here is the attempt's plumbing
                // (a timer polled without a timer driver, say): it ends the attempt with its
                // cause instead of leaving it without an outcome.
                catch_unwind(AssertUnwindSafe(|| attempt.as_mut().poll(cx))).unwrap_or_else(
                    |payload| {
                        let message = format!("the attempt panicked: {}", panic_message(payload));
                        if let Ok(mut slot) = slot.lock() {
                            slot.get_or_insert((None, NodeOutcome::Panicked { message }));
                        }
                        std::task::Poll::Ready(())
                    },
                )
            })
        }))
    }

    fn attempt_body(&self, p: u32, attempt: u32, slot: AttemptSlot) -> BoxFuture<'static, ()> {
        let hot = self.hot(p);
        let Body::Async(body) = &hot.body else {
            put(
                &slot,
                (
                    None,
                    NodeOutcome::Failed {
                        message: "not an async node".into(),
                    },
                ),
            );
            return futures_util::future::ready(()).boxed();
        };
        let ctx = AsyncNodeCtx {
            run_id: self.run_id.clone(),
            node: Arc::clone(&hot.meta),
            attempt,
            cancel: self.cancel.clone(),
        };
        let share = hot.share;
        let started = Args::new(&self.slots, &self.words, self.dep_slots(p))
            .to_owned_args()
            .map_err(|e| NodeOutcome::Failed {
                message: e.to_string(),
            })
            .and_then(|args| {
                catch_unwind(AssertUnwindSafe(|| body(ctx, args, share))).map_err(|payload| {
                    NodeOutcome::Panicked {
                        message: panic_message(payload),
                    }
                })
            });
        let limit = hot.meta.timeout();
        async move {
            let future = match started {
                Ok(future) => future,
                Err(outcome) => return put(&slot, (None, outcome)),
            };
            // Kept here, not moved into the timeout: a timed-out future is dropped below, after
            // the attempt's outcome is settled, and a panic while dropping it is contained.
            let mut guarded = std::pin::pin!(Some(AssertUnwindSafe(future).catch_unwind()));
            let Some(running) = guarded.as_mut().as_pin_mut() else {
                return;
            };
            let attempt = match limit {
                Some(limit) => match tokio::time::timeout(limit, running).await {
                    Ok(done) => settle_result(done.map_err(panic_message)),
                    Err(_) => (None, NodeOutcome::TimedOut { limit }),
                },
                None => settle_result(running.await.map_err(panic_message)),
            };
            // On a panic the assignment still leaves `None` behind: nothing is dropped twice.
            // The attempt keeps its outcome; the panic hook has reported the panic, and its
            // payload is dropped safely (a payload may panic when dropped, too).
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| guarded.set(None))) {
                drop(panic_message(payload));
            }
            put(&slot, attempt);
        }
        .boxed()
    }

    /// Calls `before_node` for an attempt; returns its event, hook state and start reading.
    #[inline]
    fn begin_attempt<'s, const E: bool>(
        &'s self,
        meta: &'s Arc<NodeMeta>,
        scope: &'s TaskScope<'_, H>,
        attempt: u32,
        first_start: u64,
    ) -> (NodeStart<'s>, H::Node, u64) {
        let ev = NodeStart {
            run_id: &self.run_id,
            node: meta,
            task: &scope.plan.meta,
            attempt,
        };
        let state = if E && H::ACTIVE {
            self.hooks.before_node(
                &self.run_state,
                scope.stage_state,
                &scope.state,
                &ev,
                &self.failures,
            )
        } else {
            Default::default()
        };
        let start = if attempt == 1 {
            first_start
        } else {
            self.clock.raw()
        };
        (ev, state, start)
    }

    /// Calls `after_node` for an attempt that ended at `end`; returns whether to retry.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn end_attempt<const E: bool>(
        &self,
        meta: &Arc<NodeMeta>,
        max_attempts: u32,
        scope: &TaskScope<'_, H>,
        state: H::Node,
        attempt: u32,
        outcome: &NodeOutcome,
        start: u64,
        end: u64,
    ) -> bool {
        let will_retry = self.should_retry(outcome, attempt, max_attempts);
        if E && H::ACTIVE {
            let ev = NodeEnd {
                run_id: &self.run_id,
                node: meta,
                task: &scope.plan.meta,
                attempt,
                outcome,
                duration: self.clock.between(start, end),
                will_retry,
            };
            self.hooks.after_node(
                &self.run_state,
                scope.stage_state,
                &scope.state,
                state,
                &ev,
                &self.failures,
            );
        }
        will_retry
    }

    fn should_retry(&self, outcome: &NodeOutcome, attempt: u32, max: u32) -> bool {
        outcome.is_failure() && attempt < max && !self.cancel.is_cancelled()
    }

    fn fail_unrunnable(&self, node: NodeRef<'_>, thread: ThreadLabel) -> NodeOutcome {
        let now = self.clock.raw();
        let outcome = NodeOutcome::Failed {
            message: "node has no sync body".into(),
        };
        self.complete(node.p, node.slot, None, outcome, now, now, 1, thread)
    }

    #[allow(clippy::too_many_arguments)]
    fn complete(
        &self,
        p: u32,
        slot: u32,
        value: Option<Value>,
        outcome: NodeOutcome,
        start: u64,
        end: u64,
        attempts: u32,
        thread: ThreadLabel,
    ) -> NodeOutcome {
        // Not a first-try success without node events (that is `complete_success`).
        self.irregular.store(true, Ordering::Relaxed);
        if let Some(value) = value {
            // SAFETY (both): a computed node's slot and word cell are empty when the run
            // checks its arrays out (`prepare` writes only those of inputs and overrides,
            // which no task computes), and only its task writes them, once, on one thread:
            // the task loop (a node completes once, run or skipped), never `abandon_task`,
            // which stores no value. Readers wait for the task's release of its successors.
            let slot = slot as usize;
            match value {
                Value::Word(word) => unsafe { self.words[slot].set_empty(word) },
                other => unsafe { self.slots[slot].set_empty(other) },
            }
        } else {
            if let Ok(mut order) = self.failure_order.lock() {
                order.push(p);
            }
            if self.policy == super::FailurePolicy::FailFast {
                let _ =
                    self.halted_by
                        .compare_exchange(NONE, p, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
        let summary = match &outcome {
            NodeOutcome::Succeeded => NodeOutcome::Succeeded,
            other => other.clone(),
        };
        // SAFETY: the node's record is empty when the run checks its arrays out and written
        // once, here or in `skip_node`, by the thread running its task (`abandon_task` calls
        // this only for nodes without a record, once the task's future has stopped being
        // polled). The caller reads records after the run's latch.
        unsafe {
            self.records[p as usize]
                .set_empty(RawRecord::new(outcome, start, end, attempts, thread))
        };
        summary
    }

    /// [`complete`](Self::complete) for a success at the first attempt.
    #[inline(always)]
    fn complete_success(
        &self,
        slot: u32,
        value: Value,
        start: u64,
        end: u64,
        thread: ThreadLabel,
    ) -> RawRecord {
        let slot = slot as usize;
        // SAFETY (both): as in `complete`.
        match value {
            Value::Word(word) => unsafe { self.words[slot].set_empty(word) },
            other => unsafe { self.slots[slot].set_empty(other) },
        }
        RawRecord {
            start,
            end,
            attempts: 1,
            thread,
            other: None,
        }
    }

    /// Adds the node to its task's tally and marks its children when it failed (or was
    /// skipped because of a failure), so they are skipped naming the failed ancestor.
    #[inline(always)]
    fn mark(&self, p: u32, outcome: &NodeOutcome, tally: &mut Tally) {
        if let NodeOutcome::Succeeded = outcome {
            tally.ran = true; // as `Tally::add`; no children to mark
            return;
        }
        self.mark_other(p, outcome, tally);
    }

    /// [`mark`](Self::mark) for anything but a success.
    fn mark_other(&self, p: u32, outcome: &NodeOutcome, tally: &mut Tally) {
        tally.add(outcome);
        let marker = match outcome {
            NodeOutcome::Succeeded => return,
            NodeOutcome::Skipped(SkipReason::UpstreamFailed { .. }) => {
                self.poison[p as usize].load(Ordering::Relaxed)
            }
            NodeOutcome::Skipped(_) => return,
            _ => p + 1,
        };
        self.marked.store(true, Ordering::Relaxed);
        for &child in self.children(p) {
            let _ = self.poison[child as usize].compare_exchange(
                0,
                marker,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Counts down the dependency counters of the tasks downstream of `task`; pushes those
    /// that reach zero. The counter's acquire-release chain publishes the values and marks
    /// written before it to whoever takes it to zero: this thread, or the parallel sweep
    /// taking its own count off (see `sweep`). Does nothing in a sequential run, which
    /// follows the plan's order. Inlined: the task loop calls it for every task.
    #[inline(always)]
    pub(crate) fn release(&self, task: u32, ready: &mut Ready) {
        // The sequential executor runs the tasks in the plan's order and needs no counters.
        if self.sched.pool.is_some() {
            self.count_down_all(task, ready);
        }
    }

    /// Takes the parallel sweep's count off `task`'s counter (see `sweep`); `true` if that was
    /// the last count, so the caller runs the task. Acquire-release like a count-down: the
    /// task's inputs are visible to the caller.
    #[inline]
    pub(crate) fn take_sweep_count(&self, task: u32) -> bool {
        self.counters[task as usize].fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// [`release`](Self::release) in a parallel run.
    #[inline(always)]
    fn count_down_all(&self, task: u32, ready: &mut Ready) {
        let plan = &*self.plan.inner;
        match plan.entries[task as usize].down(&plan.downstream) {
            Down::Inline(list) => {
                for &downstream in list {
                    self.count_down(downstream, 1, ready);
                }
            }
            Down::Counted(list) => {
                for &(downstream, edges) in list {
                    self.count_down(downstream, edges, ready);
                }
            }
        }
    }

    /// Counts `downstream`'s dependency counter down by `edges`; pushes it if that was the
    /// last.
    ///
    /// Nothing of the task is prefetched: most tasks run where the sweep reaches them, often
    /// on another thread, and the sweep reads the plan in order. Requesting the task's entry,
    /// closure and inputs here, and the counters when a node starts, cost time on every shape
    /// measured (see BENCHMARKS.md, "Chunks sized by the upstream lag").
    #[inline(always)]
    fn count_down(&self, downstream: u32, edges: u32, ready: &mut Ready) {
        if self.counters[downstream as usize].fetch_sub(edges, Ordering::AcqRel) == edges {
            ready.push(downstream);
        }
    }

    fn children(&self, p: u32) -> &[u32] {
        let plan = &*self.plan.inner;
        &plan.children[plan.child_off[p as usize] as usize..plan.child_off[p as usize + 1] as usize]
    }
}

#[inline]
fn call_sync(body: &SyncFn, ctx: &NodeCtx<'_>, args: &Args<'_>, share: bool) -> Attempt {
    settle_result(catch_unwind(AssertUnwindSafe(|| body(ctx, args, share))).map_err(panic_message))
}

/// The attempt's result, or a failure saying why there is none.
#[inline]
fn or_failed(result: Option<Attempt>, missing: &str) -> Attempt {
    result.unwrap_or_else(|| {
        (
            None,
            NodeOutcome::Failed {
                message: missing.to_string(),
            },
        )
    })
}

#[inline]
fn settle_result(result: Result<crate::node::NodeResult<Value>, String>) -> Attempt {
    match result {
        Ok(Ok(value)) => (Some(value), NodeOutcome::Succeeded),
        Ok(Err(error)) => {
            let message = error.message().to_string();
            // The error may own a user value (its source) whose `Drop` panics: that panic is
            // the node's, not the executor's.
            let dropped = catch_unwind(AssertUnwindSafe(move || drop(error)));
            let outcome = match dropped {
                Ok(()) => NodeOutcome::Failed { message },
                Err(payload) => NodeOutcome::Panicked {
                    message: format!(
                        "{message} (then dropping the error panicked: {})",
                        crate::hooks::panic_message(payload)
                    ),
                },
            };
            (None, outcome)
        }
        Err(message) => (None, NodeOutcome::Panicked { message }),
    }
}

fn put(slot: &AttemptSlot, attempt: Attempt) {
    if let Ok(mut slot) = slot.lock() {
        *slot = Some(attempt);
    }
}

fn take(slot: &AttemptSlot) -> Option<Attempt> {
    slot.lock().ok().and_then(|mut s| s.take())
}
