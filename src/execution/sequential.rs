//! The sequential executor: tasks in the plan's topological order on the caller's thread.
//! Async tasks run on tokio while the caller waits for each in turn.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;

use futures_util::FutureExt;

use super::state::RunShared;
use super::task::Ready;
use crate::hooks::HookSet;

pub(crate) fn run<H: HookSet>(shared: &Arc<RunShared<H>>) {
    // Node bodies and hooks are contained already; this keeps an executor bug from escaping
    // `run` (the record then shows the nodes that did not run).
    let ran = catch_unwind(AssertUnwindSafe(|| {
        shared.at_work(|| {
            let mut ready = Ready::new();
            // One node's end reading is the next one's start, except after an async task.
            let mut now = None;
            for &task in &shared.plan.inner.task_order {
                if shared.plan.inner.entries[task as usize].has_async() {
                    run_on_tokio(shared, task, &mut ready);
                    now = None;
                } else {
                    shared.run_task(task, &mut ready, &mut now);
                }
                ready.clear(); // the order is fixed: sequential tasks release nothing
            }
        })
    }));
    if ran.is_err() {
        // `finish` looks for the nodes left without a record.
        shared
            .irregular
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn run_on_tokio<H: HookSet>(shared: &Arc<RunShared<H>>, task: u32, ready: &mut Ready) {
    let Some(tokio) = shared.sched.tokio.clone() else {
        return;
    };
    let (done, wait) = mpsc::channel();
    let job = Arc::clone(shared);
    tokio.spawn(async move {
        // One thread runs the tasks in order, so no stage is ever entered concurrently and
        // no task should be parked here; if one were, it is reported rather than lost.
        let mut ignored = Ready::new();
        let ended = match AssertUnwindSafe(job.run_task_async(task, &mut ignored))
            .catch_unwind()
            .await
        {
            Ok(true) => Ended::Finished,
            Ok(false) => Ended::Parked,
            Err(_) => Ended::Panicked,
        };
        drop(job);
        let _ = done.send(ended);
    });
    // A runtime that shuts down drops the task and its sender. In every case but a normal end,
    // the task's unfinished nodes fail and their descendants are skipped.
    let cause = match wait.recv() {
        Ok(Ended::Finished) => return,
        Ok(Ended::Parked) => "not run: the task was parked in a sequential run (executor bug)",
        Ok(Ended::Panicked) => "not finished: the executor panicked",
        Err(_) => "not finished: the tokio runtime dropped the node's task (was it shut down?)",
    };
    shared.abandon_task(task, cause, ready);
}

/// How an async task ended on tokio, as the sequential executor learns it.
enum Ended {
    Finished,
    Parked,
    Panicked,
}
