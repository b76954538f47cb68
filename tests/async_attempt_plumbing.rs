//! A panic in the executor's own part of an async attempt (here, its timeout polled where no
//! tokio timer is: a hook's wrapper drives the node's future on a plain thread) fails the node
//! with that cause, and the wrapper that ran the body to its end is not blamed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use dagtel::hooks::*;
use dagtel::*;
use futures_util::future::BoxFuture;

/// Polls `fut` to its end on this thread (no tokio runtime is current here).
fn block_on(mut fut: BoxFuture<'static, ()>) {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    while fut.as_mut().poll(&mut cx) == Poll::Pending {
        std::thread::park();
    }
}

/// An `around_async` that drives the node's future on a plain thread, outside any runtime:
/// the attempt's timeout cannot find a timer there and panics (the attempt's plumbing, not
/// the node's body).
struct PollsOffRuntime;

impl Hooks for PollsOffRuntime {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();
    fn around_async(
        &self,
        _: &(),
        _: &NodeStart<'_>,
        body: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let (done, wait) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let ran = catch_unwind(AssertUnwindSafe(|| block_on(body)));
                let _ = done.send(ran.is_ok());
            });
            if !wait.await.unwrap_or(false) {
                panic!("the node's future panicked off the runtime");
            }
        })
    }
}

#[test]
fn a_panic_in_the_attempts_plumbing_fails_the_node_with_its_cause() {
    let mut g = DagBuilder::new("plumbing");
    let timed = g
        .node("timed")
        .timeout(Duration::from_secs(5))
        .run_async((), |_, ()| async { Ok(1u8) });
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(timed))
        .unwrap();
    for exec in [
        Executor::sequential().hook(PollsOffRuntime),
        Executor::parallel().threads(2).hook(PollsOffRuntime),
    ] {
        let err = exec.run(&plan, Inputs::new()).unwrap_err();
        let record = err.record().unwrap();
        let node = record.node("timed").unwrap().clone();
        let message = match &node.outcome {
            Some(NodeOutcome::Panicked { message }) => message.clone(),
            other => panic!("expected a panic as the outcome, got {other:?}"),
        };
        assert!(
            message.starts_with("the attempt panicked: ") && message.contains("runtime"),
            "{message}"
        );
        assert_eq!(node.attempts, 1);
        assert!(
            record.hook_failures.is_empty(),
            "the wrapper ran the body to its end and is not to blame: {:?}",
            record.hook_failures
        );
    }
}

/// Without a timeout the same wrapper works: nothing in the attempt needs the runtime.
#[test]
fn the_same_wrapper_without_a_timeout_succeeds() {
    let mut g = DagBuilder::new("plumbing-ok");
    let plain = g.node("plain").run_async((), |_, ()| async { Ok(1u8) });
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(plain))
        .unwrap();
    let run = Executor::parallel()
        .threads(2)
        .hook(PollsOffRuntime)
        .run(&plan, Inputs::new())
        .unwrap();
    assert_eq!(run.outputs().get(plain), Some(&1));
}
