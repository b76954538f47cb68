//! One run's shared state: value slots, dependency counters, records, stage bookkeeping.
//! Built by [`prepare`] (which validates the supplied values), consumed by [`finish`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use crate::write_once::WriteOnce;

use super::arrays::RecordCells;
use super::task::Ready;

use super::clock::Clock;
pub(crate) use super::record::RawRecord;
use super::{
    FailurePolicy, FinishedRun, Inputs, NodeStatus, Outputs, Run, RunError, RunOptions, RunRecord,
};
use crate::cancel::CancelToken;
use crate::hooks::{ExecutionMode, HookFailures, HookSet, RunEnd, RunStart};
use crate::ids::RunId;
use crate::outcome::{NodeOutcome, Outcome, SkipReason};
use crate::plan::Plan;
use crate::value::Value;

/// "No node" in `halted_by`.
pub(crate) const NONE: u32 = u32::MAX;

pub(crate) struct StageRun<S> {
    pub(crate) state: OnceLock<S>,
    /// `Some` while a thread runs `before_stage`: the tasks that arrived meanwhile.
    pub(crate) parked: Mutex<Option<Vec<u32>>>,
    pub(crate) started: AtomicU64,
    pub(crate) remaining: AtomicU32,
    pub(crate) failed: AtomicBool,
    pub(crate) ran: AtomicBool,
    pub(crate) cancelled: AtomicBool,
}

/// Where jobs of a parallel run go, and how the caller learns that the last one finished.
pub(crate) struct Scheduler {
    pub(crate) pool: Option<Arc<rayon::ThreadPool>>,
    /// How many joins may nest on one worker's stack (see `parallel`).
    pub(crate) max_nesting: u32,
    pub(crate) tokio: Option<tokio::runtime::Handle>,
    pub(crate) pending: AtomicUsize,
    pub(crate) latch: Arc<Latch>,
    /// Work for the caller to run itself, when it waits on a worker of the run's pool.
    pub(crate) local: LocalWork,
    /// Where the pool's workers are in the plan's task order.
    pub(crate) sweep: super::sweep::Sweep,
}

/// The ready tasks of a run whose caller is a worker of the run's own pool (a run started
/// from inside a node): they go to the caller, not to the pool. A caller that helped the pool
/// instead would run other runs' nodes on its stack while it waits, and each of those could
/// start a run of its own and help again, until the stack overflows.
#[derive(Default)]
pub(crate) struct LocalWork {
    enabled: AtomicBool,
    queue: Mutex<Vec<Ready>>,
}

impl LocalWork {
    /// From now on, ready tasks come here.
    pub(crate) fn enable(&self) {
        self.enabled.store(true, Ordering::Release);
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    pub(crate) fn push(&self, tasks: Ready) {
        crate::sync::lock(&self.queue).push(tasks);
    }

    pub(crate) fn pop(&self) -> Option<Ready> {
        crate::sync::lock(&self.queue).pop()
    }

    fn is_empty(&self) -> bool {
        crate::sync::lock(&self.queue).is_empty()
    }
}

/// Opened once by the last job of a run; the caller waits on it.
#[derive(Default)]
pub(crate) struct Latch {
    opened: AtomicBool,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Latch {
    pub(crate) fn open(&self) {
        {
            // Taking the lock orders the store with a waiter between its check and its wait.
            let _guard = self.lock.lock();
            self.opened.store(true, Ordering::Release);
        }
        // Outside the lock: a woken waiter does not find it still held and sleep again.
        self.cond.notify_all();
    }

    pub(crate) fn is_open(&self) -> bool {
        self.opened.load(Ordering::Acquire)
    }

    pub(crate) fn wait(&self) {
        let Ok(mut guard) = self.lock.lock() else {
            return;
        };
        while !self.is_open() {
            guard = match self.cond.wait(guard) {
                Ok(guard) => guard,
                Err(_) => return,
            };
        }
    }

    /// Wakes waiters without opening (new work for the caller).
    pub(crate) fn nudge(&self) {
        // The lock orders the new work with a waiter's check; the waking happens outside it,
        // as in `open`.
        drop(self.lock.lock());
        self.cond.notify_all();
    }

    /// Waits until opened, `work` has something, or `limit` passes.
    pub(crate) fn wait_for_work(&self, work: &LocalWork, limit: std::time::Duration) {
        if let Ok(guard) = self.lock.lock()
            && !self.is_open()
            && work.is_empty()
        {
            let _ = self.cond.wait_timeout(guard, limit);
        }
    }
}

pub(crate) struct RunShared<H: HookSet> {
    /// This run itself, for code that holds `&self` and must hand work to the pool.
    pub(crate) me: std::sync::Weak<Self>,
    pub(crate) plan: Plan,
    pub(crate) hooks: Arc<H>,
    pub(crate) run_id: RunId,
    pub(crate) run_state: H::Run,
    /// Whether the hooks get this run's task and node events (see `Hooks::node_events`);
    /// without them, tasks and nodes take the hook-free path.
    pub(crate) node_events: bool,
    pub(crate) failures: Arc<HookFailures>,
    pub(crate) slots: Box<[WriteOnce<Value>]>,
    pub(crate) words: Box<[crate::value::WordCell]>,
    pub(crate) counters: Box<[AtomicU32]>,
    pub(crate) poison: Box<[AtomicU32]>,
    /// Set once any failure marker is written (the markers are then cleared for reuse).
    pub(crate) marked: AtomicBool,
    /// Set when anything but a first-try success was recorded (a failure, a retry, a skip,
    /// an abandoned task) or when work may have been left undone (a job that panicked, work
    /// a hook did not run). While unset, every node has a first-try success record, and
    /// `finish` does not scan the records to count outcomes.
    pub(crate) irregular: AtomicBool,
    pub(crate) records: RecordCells,
    pub(crate) stages: Box<[StageRun<H::Stage>]>,
    pub(crate) halted_by: AtomicU32,
    pub(crate) policy: FailurePolicy,
    pub(crate) cancel: CancelToken,
    pub(crate) clock: Clock,
    pub(crate) failure_order: Mutex<Vec<u32>>,
    pub(crate) mode: ExecutionMode,
    pub(crate) sched: Scheduler,
    /// The OpenTelemetry context current where the run was started: the run's work sees it
    /// wherever it runs (see `at_work`), under whatever its hooks attach.
    pub(crate) caller: opentelemetry::Context,
}

pub(crate) struct Setup<H> {
    pub(crate) hooks: Arc<H>,
    pub(crate) policy: FailurePolicy,
    pub(crate) mode: ExecutionMode,
    pub(crate) sched: Scheduler,
}

/// Checks the supplied values against the plan, fills the slots, and starts the run's hooks.
pub(crate) fn prepare<H: HookSet>(
    plan: &Plan,
    inputs: Inputs,
    options: RunOptions,
    setup: Setup<H>,
) -> Result<Arc<RunShared<H>>, RunError> {
    let inner = &*plan.inner;
    let dag = &inner.dag;
    let arrays = inner.arrays.check_out();
    let slots = arrays.slots;
    // Masks only when there are values to check (most runs of big generated graphs have none).
    let any_values =
        !inputs.values.is_empty() || !inner.inputs.is_empty() || !inner.overrides.is_empty();
    let mask_len = if any_values { dag.len() } else { 0 };
    let mut supplied = vec![false; mask_len];
    let mut needed = vec![false; mask_len];
    for &index in inner.inputs.iter().chain(&inner.overrides) {
        needed[index as usize] = true;
    }
    let planned = |index: u32| inner.plan_of[index as usize] != NONE;
    // Later values for the same name replace earlier ones: walk backwards, keep the first seen.
    for (target, typed) in inputs.values.into_iter().rev() {
        let index = target.resolve(dag).map_err(|name| RunError::UnknownValue {
            dag: dag.name().to_string(),
            name,
        })?;
        let entry = dag.entry(index);
        let wanted = needed[index as usize];
        if !wanted {
            if planned(index) {
                return Err(RunError::NotOverridden {
                    name: entry.meta.name().to_string(),
                });
            }
            continue; // an input or node this plan does not need
        }
        if supplied[index as usize] {
            continue; // replaced by a later value: not used, so not checked
        }
        if typed.ty != entry.output {
            return Err(RunError::InputType {
                name: entry.meta.name().to_string(),
                expected: entry.output.name(),
                found: typed.ty.name(),
            });
        }
        supplied[index as usize] = true;
        // SAFETY: `prepare` runs before any job exists, on one thread.
        let _ = unsafe { slots[index as usize].set(typed.value) };
    }
    if let Some(&missing) = inner.inputs.iter().find(|&&i| !supplied[i as usize]) {
        let needed_by = dag.inner.children[missing as usize]
            .iter()
            .find(|&&c| planned(c))
            .map(|&c| dag.entry(c).meta.name().to_string())
            .unwrap_or_else(|| "(requested as an output)".to_string());
        return Err(RunError::MissingInput {
            name: dag.entry(missing).meta.name().to_string(),
            needed_by,
        });
    }
    if let Some(&missing) = inner.overrides.iter().find(|&&i| !supplied[i as usize]) {
        return Err(RunError::MissingOverride {
            name: dag.entry(missing).meta.name().to_string(),
        });
    }

    let run_id = options.run_id.unwrap_or_else(RunId::generate);
    let clock = Clock::start();
    let failures = Arc::new(HookFailures::default());
    let run_state = setup.hooks.before_run(
        &RunStart {
            run_id: &run_id,
            dag: dag.name(),
            mode: setup.mode,
            // Only hooks read these lists; do not build them for nobody.
            outputs: if H::ACTIVE {
                plan.outputs()
            } else {
                Vec::new()
            },
            inputs: if H::ACTIVE { plan.inputs() } else { Vec::new() },
            overrides: if H::ACTIVE {
                plan.overrides()
            } else {
                Vec::new()
            },
            node_count: plan.len(),
            plan: Some(plan),
            started_at: clock.started_at(),
        },
        &failures,
    );
    // Async nodes always get their events: their wrappers are how hooks follow a node
    // across polls (`around_work` wraps each poll but does not say whose).
    let node_events =
        H::ACTIVE && (plan.has_async() || setup.hooks.node_events(&run_state, &failures));
    let stages = inner
        .stages
        .iter()
        .map(|stage| StageRun {
            state: OnceLock::new(),
            parked: Mutex::new(None),
            started: AtomicU64::new(0),
            remaining: AtomicU32::new(stage.tasks.len() as u32),
            failed: AtomicBool::new(false),
            ran: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
        })
        .collect();
    Ok(Arc::new_cyclic(|me| RunShared {
        me: me.clone(),
        plan: plan.clone(),
        hooks: setup.hooks,
        run_id,
        run_state,
        node_events,
        failures,
        slots,
        words: arrays.words,
        counters: arrays.counters,
        poison: arrays.poison,
        marked: AtomicBool::new(false),
        irregular: AtomicBool::new(false),
        records: arrays.records,
        stages,
        halted_by: AtomicU32::new(NONE),
        policy: setup.policy,
        cancel: options.cancel.unwrap_or_default(),
        clock,
        failure_order: Mutex::new(Vec::new()),
        mode: setup.mode,
        sched: setup.sched,
        caller: crate::otel::context::for_new_run(opentelemetry::Context::current()),
    }))
}

/// Counts the records: succeeded, skipped, whether any was cancelled, and the nodes without
/// a record.
fn count_outcomes(records: &RecordCells) -> (usize, usize, bool, Vec<u32>) {
    let (mut succeeded, mut skipped, mut cancelled) = (0, 0, false);
    let mut unfinished = Vec::new();
    for (p, raw) in records.iter().enumerate() {
        match raw.get().map(|r| (r.status(), r.other.as_deref())) {
            Some((NodeStatus::Succeeded, _)) => succeeded += 1,
            Some((NodeStatus::Skipped, outcome)) => {
                skipped += 1;
                cancelled |= outcome == Some(&NodeOutcome::Skipped(SkipReason::Cancelled));
            }
            Some(_) => {}
            None => unfinished.push(p as u32),
        }
    }
    (succeeded, skipped, cancelled, unfinished)
}

/// Ends the run's hooks and turns the shared state into the caller's result.
pub(crate) fn finish<H: HookSet>(shared: Arc<RunShared<H>>) -> Result<Run, RunError> {
    // Every job dropped its handle before or just after the last one opened the latch.
    let mut shared = shared;
    let shared = loop {
        match Arc::try_unwrap(shared) {
            Ok(owned) => break owned,
            Err(again) => {
                shared = again;
                std::thread::yield_now();
            }
        }
    };
    let end = shared.clock.raw();
    // The run's readings become wall times with the latest rate (see `Clock::refreshed`).
    let clock = shared.clock.refreshed();
    let inner = &*shared.plan.inner;
    let dag = &inner.dag;
    // Without irregularities every node succeeded at its first try (see `irregular`);
    // otherwise one pass over the raw records counts them, without per-node allocation (the
    // record is a lazy view). Debug builds always count and check the shortcut.
    let regular = !shared.irregular.load(Ordering::Relaxed);
    let (succeeded, skipped, cancelled, unfinished) = if regular && !cfg!(debug_assertions) {
        (shared.records.len(), 0, false, Vec::new())
    } else {
        let counted = count_outcomes(&shared.records);
        debug_assert!(
            !regular || (counted.0 == shared.records.len() && counted.3.is_empty()),
            "a run without irregularities left a node without a first-try success"
        );
        counted
    };
    let mut failed_order = shared
        .failure_order
        .lock()
        .map(|o| o.clone())
        .unwrap_or_default();
    failed_order.extend(unfinished);
    let outcome = if !failed_order.is_empty() {
        Outcome::Failed
    } else if cancelled {
        Outcome::Cancelled
    } else {
        Outcome::Succeeded
    };
    let duration = clock.between(clock.anchor(), end);
    let mut record = RunRecord {
        run_id: shared.run_id,
        dag: dag.name().to_string(),
        mode: shared.mode,
        outcome,
        started_at: shared.clock.started_at(),
        duration,
        hook_failures: Vec::new(),
        hook_failure_count: 0,
        plan: shared.plan.clone(),
        clock,
        raw: shared.records,
        first_tries_only: regular,
        starts_carried: shared.sched.pool.is_some() && !shared.node_events,
    };
    shared.hooks.after_run(
        shared.run_state,
        &RunEnd {
            run_id: &record.run_id,
            dag: dag.name(),
            outcome,
            duration,
            failed: failed_order
                .iter()
                .map(|&p| dag.entry(inner.nodes[p as usize]).meta.name())
                .collect(),
            succeeded,
            skipped,
            node_events: shared.node_events,
            record: Some(&record),
        },
        &shared.failures,
    );
    // After `after_run`, so that its own failures are in the record too.
    record.hook_failures = shared.failures.kept();
    record.hook_failure_count = shared.failures.count();
    let mut slots = shared.slots;
    let mut words = shared.words;
    // Word outputs stay in their word cells (a copy is the caller's value); others are in
    // their slots, shared. A node's value is in one of the two, never both: the word cell
    // first, since the workers just wrote it, while the slot line of a word output is
    // usually cold (and empty).
    let mut values = Vec::with_capacity(inner.output_slots.len());
    for &d in &inner.output_slots {
        let value = words[d as usize]
            .take()
            .map(Value::Word)
            .or_else(|| slots[d as usize].take());
        if value.is_some() {
            values.push((d, value));
        }
    }
    // Only these can hold a value (the others' values are words, kept in word cells): a
    // pass over every slot cost ~5 ns a node on a 100k-node graph of word values.
    drop_contained(&mut slots, &inner.boxed_slots);
    inner.arrays.give_back(
        slots,
        words,
        shared.counters,
        shared.poison,
        shared.marked.into_inner(),
    );
    let outputs = Outputs::new(dag.clone(), values);
    match outcome {
        Outcome::Succeeded => Ok(Run { outputs, record }),
        Outcome::Cancelled => Err(RunError::Cancelled(Box::new(FinishedRun {
            record,
            outputs,
        }))),
        _ => Err(RunError::Failed(Box::new(FinishedRun { record, outputs }))),
    }
}

/// Drops the values in `slots` at `which`. A value whose `Drop` panics (a user type's) is
/// gone all the same, and the rest are still dropped: the panic stays here, so a run's end
/// never unwinds into the caller for it.
fn drop_contained(slots: &mut [WriteOnce<Value>], which: &[u32]) {
    let mut rest = which;
    while !rest.is_empty() {
        let mut done = 0;
        let dropped = catch_unwind(AssertUnwindSafe(|| {
            for &slot in rest {
                done += 1;
                drop(slots[slot as usize].take());
            }
        }));
        match dropped {
            Ok(()) => break,
            Err(payload) => {
                let _ = crate::hooks::panic_message(payload);
                rest = &rest[done..];
            }
        }
    }
}
