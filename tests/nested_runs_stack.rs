//! A node that starts a run on the executor's own pool waits for it on a pool worker. The
//! worker runs that run's work itself, and only that: were it to help the pool, it would run
//! other nodes of the outer run on its stack, each starting a run and helping again, until the
//! stack overflowed (a wide layer of such nodes, with async inner nodes, aborted the process).
//! Checked on the executor's own pool and on a caller's pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dagtel::{DagBuilder, Executor, Inputs, NodeError, Request};

thread_local! {
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

const N: usize = 64;

#[test]
fn nested_runs_in_a_wide_layer_do_not_nest_on_one_stack() {
    nested_runs(|| Executor::parallel().threads(1));
}

#[test]
fn nested_runs_on_a_callers_pool_do_not_nest_on_one_stack() {
    nested_runs(|| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        Executor::parallel().pool(Arc::new(pool))
    });
}

fn nested_runs(executor: fn() -> Executor) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let exec = Arc::new(executor());
        let mut g = DagBuilder::new("inner");
        // An async inner node: while it runs on tokio the waiting worker helps the pool.
        let a = g.node("a").run_async((), |_, ()| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(1u64)
        });
        let inner = g.build().unwrap().plan(&Request::new().output(a)).unwrap();
        let max_depth = Arc::new(AtomicUsize::new(0));
        let mut g = DagBuilder::new("outer");
        let xs: Vec<_> = (0..N)
            .map(|i| {
                let e = Arc::clone(&exec);
                let p = inner.clone();
                let max_depth = Arc::clone(&max_depth);
                g.node(format!("n{i}")).run((), move |_, ()| {
                    let depth = DEPTH.with(|d| {
                        d.set(d.get() + 1);
                        d.get()
                    });
                    max_depth.fetch_max(depth, Ordering::SeqCst);
                    let run = e.run(&p, Inputs::new()).map_err(NodeError::msg);
                    DEPTH.with(|d| d.set(d.get() - 1));
                    Ok(*run?.outputs().get(a).unwrap())
                })
            })
            .collect();
        let sum = g
            .node("sum")
            .run(xs, |_, xs| Ok(xs.iter().copied().sum::<u64>()));
        let plan = g
            .build()
            .unwrap()
            .plan(&Request::new().output(sum))
            .unwrap();
        let run = exec.run(&plan, Inputs::new()).unwrap();
        let _ = tx.send((
            *run.outputs().get(sum).unwrap(),
            max_depth.load(Ordering::SeqCst),
        ));
    });
    let (sum, depth) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("hung or panicked");
    assert_eq!(sum, N as u64);
    // Each node's body should run on its own, not inside another node's nested run.
    assert!(
        depth <= 2,
        "{depth} node bodies nested on one thread's stack"
    );
}
