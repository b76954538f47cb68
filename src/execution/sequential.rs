//! The sequential executor: tasks in the plan's topological order on the caller's thread.
//! Async tasks run on tokio while the caller waits for each in turn.

use std::sync::Arc;
use std::sync::mpsc;

use super::state::RunShared;
use super::task::Ready;
use crate::hooks::HookSet;

pub(crate) fn run<H: HookSet>(shared: &Arc<RunShared<H>>) {
    let mut ready = Ready::new();
    for &task in &shared.plan.inner.task_order {
        if shared.plan.inner.tasks[task as usize].has_async {
            run_on_tokio(shared, task);
        } else {
            shared.run_task(task, &mut ready);
            ready.clear();
        }
    }
}

fn run_on_tokio<H: HookSet>(shared: &Arc<RunShared<H>>, task: u32) {
    let Some(tokio) = shared.sched.tokio.clone() else {
        return;
    };
    let (done, wait) = mpsc::channel();
    let job = Arc::clone(shared);
    tokio.spawn(async move {
        job.run_task_async(task).await;
        drop(job);
        let _ = done.send(());
    });
    // A runtime that shut down drops the task and its sender: the run then records the
    // task's nodes as not executed instead of waiting forever.
    let _ = wait.recv();
}
