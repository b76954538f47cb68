//! Each thread's own copy of a run's context, as the parent of the node spans it starts.
//!
//! A node's context holds a reference to its parent's entries, and the run-id processor gives
//! every node span a reference to the run id. With one shared run context those two reference
//! counts are atomics on lines that every worker of a parallel run writes for every node (and
//! the exporting thread for every span), so they keep moving between cores. A thread's copy has
//! the same values, root span and run id text, but its own allocations.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::Context;

use crate::otel::context::RunScope;

/// Numbers runs, so that a thread's copy is never taken for another run's.
static RUNS: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The copy of the run context this thread made last, with its run's number.
    static COPY: RefCell<Option<(u64, Context)>> = const { RefCell::new(None) };
}

/// A number no other run gets.
pub(super) fn next_run() -> u64 {
    RUNS.fetch_add(1, Ordering::Relaxed)
}

/// This thread's copy of `run_cx`, the context of run number `run` (0, a run state the hooks
/// did not make: `run_cx` itself).
pub(super) fn run_parent(run: u64, run_cx: &Context) -> Context {
    if run == 0 {
        return run_cx.clone();
    }
    COPY.with(|copy| {
        let mut copy = copy.borrow_mut();
        if let Some((number, cx)) = &*copy
            && *number == run
        {
            return cx.clone();
        }
        let cx = match run_cx.get::<RunScope>() {
            Some(scope) => run_cx.with_value(scope.own_copy()),
            None => run_cx.clone(),
        };
        *copy = Some((run, cx.clone()));
        cx
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunId;

    #[test]
    fn a_copy_per_run_with_the_same_run_id_text() {
        let run_cx = Context::new().with_value(RunScope::new(RunId::from("r-1"), "dag"));
        let (one, two) = (next_run(), next_run());
        let a = run_parent(one, &run_cx);
        let again = run_parent(one, &run_cx);
        let b = run_parent(two, &run_cx);
        let id = |cx: &Context| cx.get::<RunScope>().unwrap().run_id().shared();
        assert_eq!(&*id(&a), "r-1");
        assert!(
            std::sync::Arc::ptr_eq(&id(&a), &id(&again)),
            "reused within a run"
        );
        assert!(
            !std::sync::Arc::ptr_eq(&id(&a), &id(&run_cx)),
            "not the shared one"
        );
        assert!(
            !std::sync::Arc::ptr_eq(&id(&a), &id(&b)),
            "not another run's"
        );
    }
}
