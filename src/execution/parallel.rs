//! The parallel scheduler.
//!
//! The pool's threads walk the plan's task order (see [`sweep`](super::sweep)), and a task
//! starts the moment its dependency counter reaches zero: where the sweep reaches it, if its
//! inputs are done by then, else on the thread that ends the last of them. The thread that
//! releases tasks keeps one for itself (so a chain never leaves its thread) and splits the
//! rest with `rayon::join`, which touches no shared counter.
//!
//! Joins nest: on a comb (a chain with a leaf at every link) every link would add a level,
//! and a thread waiting in `join` runs stolen jobs on top of its own stack. So the nesting is
//! counted per thread, stolen work included, and beyond a bound ready tasks go to `spawn`ed
//! jobs instead, which never wait and so cannot nest further. Spawning is what the bound costs
//! (a layered graph of 100 levels spawned tens of thousands of jobs at a bound of 24), so the
//! executor's own pool gets large stacks and a high bound; a caller's pool, whose stack size
//! is unknown, gets a low one.
//!
//! Tasks with async nodes go to tokio and come back to the pool when done. The caller waits
//! on a latch that the last outstanding job opens.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::FutureExt;

use super::current::off_work;
use super::state::RunShared;
use super::task::Ready;
use crate::hooks::HookSet;

/// Joins allowed on one thread's stack, for pools with rayon's default stack (2 MiB).
pub(crate) const NESTING_DEFAULT_STACK: u32 = 24;
/// Joins allowed with [`OWN_POOL_STACK`]: measured frames are well under 8 KiB a level even
/// in debug builds, so this uses at most a quarter of the stack.
pub(crate) const NESTING_OWN_POOL: u32 = 512;
/// Stack size of the executor's own worker threads (reserved, not committed, until used).
pub(crate) const OWN_POOL_STACK: usize = 32 << 20;

thread_local! {
    /// How many `drive_many` joins are open on this thread's stack.
    static NESTING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Counts one open join on this thread for as long as it lives.
struct Nested;

impl Nested {
    fn enter(limit: u32) -> Option<Self> {
        NESTING.with(|n| {
            let depth = n.get();
            (depth < limit).then(|| {
                n.set(depth + 1);
                Nested
            })
        })
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        NESTING.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Keeps a run open while a job exists; the last job to drop its guard opens the latch.
struct JobGuard<H: HookSet>(Option<Arc<RunShared<H>>>);

impl<H: HookSet> JobGuard<H> {
    fn new(shared: &Arc<RunShared<H>>) -> Self {
        shared.sched.pending.fetch_add(1, Ordering::AcqRel);
        Self(Some(Arc::clone(shared)))
    }

    fn shared(&self) -> &Arc<RunShared<H>> {
        self.0
            .as_ref()
            .expect("job guard holds its run until dropped")
    }
}

impl<H: HookSet> Drop for JobGuard<H> {
    fn drop(&mut self) {
        let Some(shared) = self.0.take() else { return };
        let last = shared.sched.pending.fetch_sub(1, Ordering::AcqRel) == 1;
        let latch = last.then(|| Arc::clone(&shared.sched.latch));
        drop(shared);
        if let Some(latch) = latch {
            latch.open();
        }
    }
}

/// Runs the whole plan on the pool and returns when every task has finished.
pub(crate) fn run<H: HookSet>(shared: &Arc<RunShared<H>>, pool: &Arc<rayon::ThreadPool>) {
    if shared.plan.inner.task_order.is_empty() {
        return;
    }
    let latch = &shared.sched.latch;
    if pool.current_thread_index().is_some() {
        // A run started on a worker of its own pool (from inside a node): blocking the worker
        // could starve the run, and helping the pool would run other nodes (and their runs)
        // on this stack. So this thread runs this run's work itself, and only that: its
        // ready tasks come to it (joins still share wide lists with idle workers). No sweep
        // job goes to the pool either: one that no worker takes up would hold the run open.
        shared.sched.local.enable();
        spawn_drive(shared, take_sweep_counts(shared));
        let mut nap = Duration::from_micros(50);
        while !latch.is_open() {
            match shared.sched.local.pop() {
                Some(tasks) => {
                    drive_local(shared, &tasks);
                    nap = Duration::from_micros(50);
                }
                None => {
                    // Work may be on tokio; its tasks come back here.
                    latch.wait_for_work(&shared.sched.local, nap);
                    nap = (nap * 2).min(Duration::from_millis(5));
                }
            }
        }
    } else {
        // The sweep's own count on the run, released when the sweep ends: sweeper jobs count
        // themselves only while they sweep, so a queued one with nothing left to do never
        // holds the run open (a node's own rayon jobs may come before it for a long time).
        shared.sched.pending.fetch_add(1, Ordering::AcqRel);
        // One sweeper to start with: before its first node it queues a helper, which wakes
        // another thread, and so on, as long as positions are left. A small plan's run wakes
        // no more threads than it needs.
        spawn_sweep(shared, false);
        latch.wait();
    }
}

/// Takes the sweep's count off every task at once, for a run that follows dependencies
/// only; returns the tasks that are ready from the start.
fn take_sweep_counts<H: HookSet>(shared: &RunShared<H>) -> Ready {
    shared.sched.sweep.close();
    let mut roots = Ready::new();
    for &task in &shared.plan.inner.task_order {
        if shared.take_sweep_count(task) {
            roots.push(task);
        }
    }
    roots
}

/// Starts a sweeper as a pool job: the run's first, or a helper. The job holds the run
/// weakly and counts itself on it only if the sweep has not ended when it starts.
fn spawn_sweep<H: HookSet>(shared: &Arc<RunShared<H>>, helper: bool) {
    let Some(pool) = shared.sched.pool.clone() else {
        return; // parallel runs always have a pool
    };
    let run = Arc::downgrade(shared);
    pool.spawn(move || {
        let Some(shared) = run.upgrade() else {
            return; // the run is over
        };
        let sweep = &shared.sched.sweep;
        if helper {
            sweep.helper_started();
        }
        // Counted before looking: once the sweep has ended, the run may end as soon as the
        // jobs counted so far are done, and a job counted after that must not start work.
        let guard = JobGuard::new(&shared);
        if sweep.ended() {
            return;
        }
        let mut swept = false;
        // As in `spawn_drive`: a job enters its run afresh, and an executor bug is contained.
        let work = || {
            off_work(|| {
                shared.at_work(|| {
                    swept = true;
                    run_sweep(&shared);
                })
            })
        };
        let panicked = catch_unwind(AssertUnwindSafe(work)).is_err();
        if panicked || !swept {
            // Positions may be left that nobody takes: their tasks end without a record,
            // which `finish` reports, rather than the run waiting for the sweep forever.
            shared.irregular.store(true, Ordering::Relaxed);
            if sweep.end() {
                job_done(&shared);
            }
        }
        drop(guard);
    });
}

/// Takes positions of the plan's order until none is left, and runs each task whose
/// counter the sweep's count was the last of (see [`sweep`](super::sweep)).
fn run_sweep<H: HookSet>(shared: &Arc<RunShared<H>>) {
    let plan = &*shared.plan.inner;
    // Pool jobs run on pool threads; a job stays on the thread it started on.
    let me = rayon::current_thread_index().unwrap_or(0);
    // The thread goes straight from one task to the next: one clock reading serves as the
    // end of one node and the start of the next (see `run_task`).
    let mut now = None;
    // The call that ends the sweep releases its count on the run (see `run`).
    while let Some(position) = shared
        .sched
        .sweep
        .take(me, || job_done(shared), || now = None)
    {
        let task = plan.task_order[position as usize];
        if !shared.take_sweep_count(task) {
            continue; // an input still runs: the thread that ends the last one runs it
        }
        drive_chain(shared, task, &mut now);
    }
}

/// Queues a helper if the sweep may have positions left and none is queued, so that while
/// this thread runs a node, the rest of the order is open to every thread of the pool.
/// `true` if it queued one (which may have woken a thread: a system call).
#[inline]
fn keep_sweep_open<H: HookSet>(shared: &Arc<RunShared<H>>) -> bool {
    let sweep = &shared.sched.sweep;
    let queue = sweep.wants_helper() && sweep.queue_helper();
    if queue {
        spawn_sweep(shared, true);
    }
    queue
}

/// Runs tasks from the caller's queue (see [`LocalWork`](super::state::LocalWork)) as the job
/// they were queued as.
fn drive_local<H: HookSet>(shared: &Arc<RunShared<H>>, tasks: &[u32]) {
    if catch_unwind(AssertUnwindSafe(|| drive_many(shared, tasks))).is_err() {
        shared.irregular.store(true, Ordering::Relaxed);
    }
    job_done(shared);
}

/// Ends one outstanding job of `shared`; the last one opens the latch.
fn job_done<H: HookSet>(shared: &Arc<RunShared<H>>) {
    if shared.sched.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
        shared.sched.latch.open();
    }
}

/// Hands tasks to the pool as a new job.
pub(crate) fn spawn_ready<H: HookSet>(shared: &Arc<RunShared<H>>, tasks: Ready) {
    spawn_drive(shared, tasks);
}

fn spawn_drive<H: HookSet>(shared: &Arc<RunShared<H>>, tasks: Ready) {
    if shared.sched.local.is_enabled() {
        // Counted like a job until the caller has run it.
        shared.sched.pending.fetch_add(1, Ordering::AcqRel);
        shared.sched.local.push(tasks);
        shared.sched.latch.nudge();
        return;
    }
    let Some(pool) = shared.sched.pool.clone() else {
        return; // parallel runs always have a pool
    };
    let guard = JobGuard::new(shared);
    pool.spawn(move || {
        let shared = guard.shared();
        // Node bodies and hooks are contained already; this only keeps an executor bug from
        // aborting the process (rayon aborts on a panicking job).
        // The thread may run this job while it waits inside any work (of this run too, with
        // a user's job on top that attached its own context), so the job enters its run afresh.
        let drive = || off_work(|| drive_many(shared, &tasks));
        if catch_unwind(AssertUnwindSafe(drive)).is_err() {
            // Some of its tasks may not have run: `finish` looks for nodes without a record.
            shared.irregular.store(true, Ordering::Relaxed);
        }
        drop(guard);
    });
}

/// Ends an async task's bookkeeping if its tokio future is dropped before it finished (the
/// runtime shut down), so the run records the loss and does not wait forever. It owns the
/// task's job guard and releases it last, after handing any released tasks to the pool, so
/// the run cannot end while those are being scheduled.
struct AbandonOnDrop<H: HookSet> {
    shared: Arc<RunShared<H>>,
    task: u32,
    armed: bool,
    guard: Option<JobGuard<H>>,
}

impl<H: HookSet> Drop for AbandonOnDrop<H> {
    fn drop(&mut self) {
        if self.armed {
            let mut ready = Ready::new();
            // Work for the run like any other (stage hooks may run): in its context.
            self.shared.at_work(|| {
                self.shared.abandon_task(
                    self.task,
                    "not finished: the tokio runtime dropped the node's task (was it shut down?)",
                    &mut ready,
                )
            });
            if !ready.is_empty() {
                spawn_drive(&self.shared, ready);
            }
        }
        drop(self.guard.take());
    }
}

fn spawn_async<H: HookSet>(shared: &Arc<RunShared<H>>, task: u32) {
    let Some(tokio) = shared.sched.tokio.clone() else {
        return; // the executor provides a runtime for every plan with async nodes
    };
    let mut abandon = AbandonOnDrop {
        shared: Arc::clone(shared),
        task,
        armed: true,
        guard: Some(JobGuard::new(shared)),
    };
    tokio.spawn(async move {
        let shared = Arc::clone(&abandon.shared);
        let mut ready = Ready::new();
        let finished = AssertUnwindSafe(shared.run_task_async(task, &mut ready))
            .catch_unwind()
            .await;
        abandon.armed = false;
        shared.at_work(|| match finished {
            Ok(true) => shared.release(task, &mut ready),
            Ok(false) => {} // parked: its stage's first task will start it
            Err(_) => shared.abandon_task(task, "not finished: the executor panicked", &mut ready),
        });
        if !ready.is_empty() {
            spawn_drive(&shared, ready);
        }
        drop(shared);
        drop(abandon); // releases the job guard last
    });
}

fn drive_many<H: HookSet>(shared: &Arc<RunShared<H>>, tasks: &[u32]) {
    match tasks {
        [] => {}
        [task] => drive(shared, *task),
        _ => match Nested::enter(shared.sched.max_nesting) {
            Some(_level) => {
                let (left, right) = tasks.split_at(tasks.len() / 2);
                rayon::join_context(
                    |_| drive_many(shared, left),
                    |right_half| {
                        if right_half.migrated() {
                            // Run by a thread that stole it or that took it up inside other
                            // work (a user's job waiting on top of this join): not where the
                            // join left the run's context.
                            off_work(|| drive_many(shared, right))
                        } else {
                            drive_many(shared, right)
                        }
                    },
                );
            }
            None => {
                // Halves, not one job per task: a wide list stays two jobs, which split it
                // further wherever they land.
                let (left, right) = tasks.split_at(tasks.len() / 2);
                spawn_drive(shared, Ready::from_slice(left));
                spawn_drive(shared, Ready::from_slice(right));
            }
        },
    }
}

fn drive<H: HookSet>(shared: &Arc<RunShared<H>>, first: u32) {
    shared.at_work(|| drive_chain(shared, first, &mut None));
}

/// Runs `first`, then as long as exactly one task becomes ready, that one, on this thread.
/// Inlined into the sweep, which calls it for nearly every task of a wide plan.
///
/// `now` is this thread's last clock reading, if it came straight here from it: the chain
/// runs without a break, so one node's end reading is the next one's start. On return it is
/// the last node's end, or `None` if the thread did something else since (other tasks'
/// joins, handing a task to tokio).
#[inline]
fn drive_chain<H: HookSet>(shared: &Arc<RunShared<H>>, first: u32, now: &mut Option<u64>) {
    let mut task = first;
    let mut ready = Ready::new();
    loop {
        if shared.plan.inner.entries[task as usize].has_async() {
            spawn_async(shared, task);
            *now = None;
            return;
        }
        if keep_sweep_open(shared) {
            *now = None;
        }
        shared.run_task(task, &mut ready, now);
        match ready.len() {
            0 => return,
            1 => task = ready.pop().unwrap_or(task),
            _ => {
                let tasks = std::mem::take(&mut ready);
                drive_many(shared, &tasks);
                *now = None;
                return;
            }
        }
    }
}
