//! Retry backoff limits: a backoff too long for the clock (`Duration::MAX`) waits until the
//! run is cancelled (it used to panic the executor: the node lost its record and a sequential
//! run abandoned the rest), and no wait exceeds the policy's `max_delay`.

use std::time::Duration;

use dagtel::{
    CancelToken, DagBuilder, Executor, Inputs, NodeError, NodeOutcome, NodeStatus, Request,
    RetryPolicy, RunOptions,
};

fn check(exec: Executor) {
    let token = CancelToken::new();
    let canceller = token.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        canceller.cancel();
    });
    let mut g = DagBuilder::new("backoff");
    let flaky = g
        .node("flaky")
        .retry(RetryPolicy::attempts(2).with_backoff(Duration::MAX, 2.0, Duration::MAX))
        .run((), |_, ()| Err::<u32, _>(NodeError::msg("boom")));
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(flaky))
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let err = exec
            .run_with(&plan, Inputs::new(), RunOptions::new().cancel(token))
            .unwrap_err();
        let rec = err.record().unwrap().node("flaky").unwrap();
        let _ = tx.send((rec.status, rec.outcome.clone(), rec.attempts));
    });
    let (status, outcome, attempts) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("run hung or panicked");
    // Cancelled during the backoff: the node keeps its last failure (hooks.md).
    assert_eq!(
        (status, outcome, attempts),
        (
            NodeStatus::Failed,
            Some(NodeOutcome::Failed {
                message: "boom".into()
            }),
            1
        )
    );
}

#[test]
fn huge_backoff_sequential() {
    check(Executor::sequential());
}

#[test]
fn huge_backoff_parallel() {
    check(Executor::parallel().threads(2));
}

#[test]
fn no_delay_exceeds_max_delay() {
    let policy =
        RetryPolicy::attempts(3).with_backoff(Duration::from_secs(10), 2.0, Duration::from_secs(1));
    assert_eq!(policy.delay_before(2), Duration::from_secs(1));
    assert_eq!(policy.delay_before(3), Duration::from_secs(1));
}
