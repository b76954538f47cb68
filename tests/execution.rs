//! Execution semantics under both executors: failures, skips, panics, retries, timeouts,
//! cancellation, async nodes, run ids and the run record.

#[path = "support/pools.rs"]
mod pools;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use dagtel::*;
use pools::one_thread_pool;

fn executors() -> Vec<(&'static str, Executor)> {
    vec![
        ("sequential", Executor::sequential()),
        ("parallel", Executor::parallel().threads(4)),
    ]
}

fn status(record: &RunRecord, name: &str) -> NodeStatus {
    record
        .node(name)
        .unwrap_or_else(|| panic!("no record for {name}"))
        .status
}

fn outcome(record: &RunRecord, name: &str) -> NodeOutcome {
    record.node(name).unwrap().outcome.clone().unwrap()
}

#[test]
fn diamond_runs_each_node_once_after_its_inputs() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut g = DagBuilder::new("diamond");
    let x = g.input::<u64>("x");
    let count = calls.clone();
    let top = g.node("top").run(x, move |_, x| {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(x + 1)
    });
    let left = g.node("left").run(top, |_, t| Ok(t * 2));
    let right = g.node("right").run(top, |_, t| Ok(t * 3));
    let bottom = g.node("bottom").run((left, right), |_, (l, r)| Ok(l + r));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(bottom)).unwrap();
    for (mode, exec) in executors() {
        calls.store(0, Ordering::SeqCst);
        let run = exec.run(&plan, Inputs::new().set(x, 4)).unwrap();
        assert_eq!(run.outputs().get(bottom), Some(&25), "{mode}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "{mode}: shared ancestor ran once"
        );
        let record = run.record();
        let ended = |n: &str| record.node(n).unwrap().ended_at().unwrap();
        let started = |n: &str| record.node(n).unwrap().started_at.unwrap();
        assert!(ended("top") <= started("left") && ended("top") <= started("right"));
        assert!(ended("left") <= started("bottom") && ended("right") <= started("bottom"));
    }
}

/// A fan-in node's recorded start is never before one of its inputs' end. The thread that
/// takes the fan-in's counter to zero read its clock before that, and another input may have
/// ended since (while this thread was preempted, say), so the fan-in's start is read afresh.
/// Before that fix, 2,000 runs on a 2-CPU machine broke this every time (debug and release).
#[test]
fn a_fan_in_never_starts_before_an_input_ends() {
    let mut g = DagBuilder::new("fan-in");
    let x = g.input::<u64>("x");
    let root = g.node("root").run(x, |_, x| Ok(*x));
    let leaves: Vec<Handle<u64>> = (0..64u64)
        .map(|i| g.node(format!("l{i}")).run(root, move |_, r| Ok(r + i)))
        .collect();
    let sink = g
        .node("sink")
        .run(leaves, |_, v| Ok(v.iter().copied().sum::<u64>()));
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(sink))
        .unwrap();
    // More threads than cores, so that a thread is preempted between its clock reading and
    // its count-down now and then. Without hooks a thread's end reading is its next node's
    // start and the record moves it; with node events every start is read afresh.
    let no_hooks = late_inputs(&Executor::parallel().threads(4), &plan, x);
    let node_events = late_inputs(&Executor::parallel().threads(4).hook(PassThrough), &plan, x);
    for (name, late) in [("no hooks", no_hooks), ("node events", node_events)] {
        assert!(
            late.is_empty(),
            "{name}: an input ended after the fan-in started, {} time(s), the worst by {:?}",
            late.len(),
            late.iter().max()
        );
    }
}

/// By how much an input `l{i}` of the fan-in `sink` ended after `sink` started, in 2,000 runs.
fn late_inputs<H: dagtel::hooks::HookSet>(
    exec: &Executor<H>,
    plan: &Plan,
    x: Handle<u64>,
) -> Vec<Duration> {
    let mut late = Vec::new();
    for _ in 0..2000 {
        let run = exec.run(plan, Inputs::new().set(x, 1)).unwrap();
        let record = run.record();
        let start = record.node("sink").unwrap().started_at.unwrap();
        for i in 0..64 {
            let end = record.node(&format!("l{i}")).unwrap().ended_at().unwrap();
            if let Ok(by) = end.duration_since(start)
                && !by.is_zero()
            {
                late.push(by);
            }
        }
    }
    late
}

/// A node first in the plan's order that waits until `others` independent nodes declared
/// after it have run (or 10 s have passed), with `wait` between its looks; returns how many
/// had run when it ended.
fn slow_first_node(
    exec: Executor,
    others: usize,
    wait: impl Fn() + Send + Sync + 'static,
) -> usize {
    let ran = Arc::new(AtomicUsize::new(0));
    let mut g = DagBuilder::new("slow-first");
    let slow = {
        let ran = ran.clone();
        g.node("slow").run((), move |_, ()| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while ran.load(Ordering::Acquire) < others && std::time::Instant::now() < deadline {
                wait();
            }
            Ok(ran.load(Ordering::Acquire))
        })
    };
    let mut request = Request::new().output(slow);
    for i in 0..others {
        let ran = ran.clone();
        let node = g.node(format!("n{i}")).run((), move |_, ()| {
            ran.fetch_add(1, Ordering::AcqRel);
            Ok(1u8)
        });
        request = request.output(node);
    }
    let plan = g.build().unwrap().plan(&request).unwrap();
    let run = exec.run(&plan, Inputs::new()).unwrap();
    *run.outputs().get(slow).unwrap()
}

/// The parallel executor walks the plan's order a chunk per thread at a time: the nodes after
/// a long-running one in its chunk go to another thread, not wait for it.
#[test]
fn a_long_node_holds_back_no_independent_node_after_it() {
    for others in [3, 40, 500] {
        let ran = slow_first_node(Executor::parallel().threads(2), others, || {
            std::thread::sleep(Duration::from_millis(1))
        });
        assert_eq!(ran, others, "independent nodes run while a long one does");
    }
}

/// On a pool of one thread, a node that waits on rayon (as a `join` or `par_iter` inside it
/// would) lets the thread run the nodes after it in the plan's order, through the helper the
/// sweep keeps queued.
#[test]
fn a_node_waiting_on_rayon_lets_its_thread_run_the_nodes_after_it() {
    let pool = one_thread_pool();
    for others in [3, 40, 500] {
        let ran = slow_first_node(Executor::parallel().pool(pool.clone()), others, || {
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::thread::sleep(Duration::from_micros(100));
            }
        });
        assert_eq!(ran, others, "nodes run inside a node waiting on rayon");
    }
}

/// A node that hands work of its own to rayon (`rayon::spawn`, not waited for) does not make
/// its run wait for that work. On a pool of one thread the node's job comes off the deque
/// before anything the executor queued earlier, so a job of the run's that had to run after
/// it (a sweep helper with nothing left to do) would keep the run open until the node's job
/// is done; here that job waits for the run to return, up to 2 s.
#[test]
fn a_run_does_not_wait_for_rayon_jobs_its_nodes_spawned() {
    let returned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut g = DagBuilder::new("fire-and-forget");
    let spawner = {
        let returned = returned.clone();
        g.node("spawner").run((), move |_, ()| {
            let returned = returned.clone();
            rayon::spawn(move || {
                let give_up = std::time::Instant::now() + Duration::from_secs(2);
                while !returned.load(Ordering::SeqCst) && std::time::Instant::now() < give_up {
                    std::thread::sleep(Duration::from_micros(100));
                }
            });
            Ok(1u8)
        })
    };
    let others: Vec<Handle<u8>> = (0..3)
        .map(|i| g.node(format!("n{i}")).run((), |_, ()| Ok(1u8)))
        .collect();
    let request = others
        .iter()
        .fold(Request::new().output(spawner), |r, &h| r.output(h));
    let plan = g.build().unwrap().plan(&request).unwrap();
    let exec = Executor::parallel().pool(one_thread_pool());
    for _ in 0..3 {
        returned.store(false, Ordering::SeqCst);
        let started = std::time::Instant::now();
        exec.run(&plan, Inputs::new()).unwrap();
        let took = started.elapsed();
        returned.store(true, Ordering::SeqCst);
        assert!(
            took < Duration::from_secs(1),
            "the run returned only when its node's own job gave up, after {took:?}"
        );
        std::thread::sleep(Duration::from_millis(5)); // the job sees `returned` and ends
    }
}

/// x -> bad -> after_bad -> sink ; x -> good -> sink2 (independent of bad)
struct Branches {
    dag: Dag,
    sink: Handle<u32>,
    other: Handle<u32>,
    x: Handle<u32>,
}

fn branches(fail_with_panic: bool) -> Branches {
    let mut g = DagBuilder::new("branches");
    let x = g.input::<u32>("x");
    let bad = g.node("bad").run(x, move |_, _| -> NodeResult<u32> {
        if fail_with_panic {
            panic!("bad exploded");
        }
        Err(NodeError::msg("bad input"))
    });
    let after_bad = g.node("after_bad").run(bad, |_, b| Ok(b + 1));
    let sink = g.node("sink").run(after_bad, |_, b| Ok(b + 1));
    let good = g.node("good").run(x, |_, x| {
        std::thread::sleep(Duration::from_millis(20));
        Ok(x + 1)
    });
    let other = g.node("other").run(good, |_, g| Ok(g * 2));
    Branches {
        dag: g.build().unwrap(),
        sink,
        other,
        x,
    }
}

#[test]
fn continue_policy_runs_independent_branches_and_names_failed_ancestor() {
    for (mode, exec) in executors() {
        let b = branches(false);
        let plan = b
            .dag
            .plan(&Request::new().output(b.sink).output(b.other))
            .unwrap();
        let exec = exec.failure_policy(FailurePolicy::Continue);
        let err = exec.run(&plan, Inputs::new().set(b.x, 1)).unwrap_err();
        let RunError::Failed(run) = &err else {
            panic!("{mode}: expected Failed, got {err}");
        };
        let record = &run.record;
        assert_eq!(status(record, "bad"), NodeStatus::Failed, "{mode}");
        assert_eq!(
            outcome(record, "bad"),
            NodeOutcome::Failed {
                message: "bad input".into()
            }
        );
        for skipped in ["after_bad", "sink"] {
            assert_eq!(
                outcome(record, skipped),
                NodeOutcome::Skipped(SkipReason::UpstreamFailed {
                    ancestor: "bad".into()
                }),
                "{mode}: {skipped}"
            );
        }
        assert_eq!(status(record, "other"), NodeStatus::Succeeded, "{mode}");
        assert_eq!(run.outputs.get(b.other), Some(&4), "{mode}");
        assert_eq!(run.outputs.get(b.sink), None);
        assert_eq!(record.outcome, Outcome::Failed);
        let message = err.to_string();
        assert!(message.contains("`bad` (error: bad input)"), "{message}");
    }
}

#[test]
fn fail_fast_schedules_nothing_new() {
    // Sequential: `bad` runs first in topological order among x's consumers? Not guaranteed,
    // so build a chain where the failure precedes everything else.
    let mut g = DagBuilder::new("ff");
    let first = g.node("first").run((), |_, ()| -> NodeResult<u32> {
        Err(NodeError::msg("nope"))
    });
    let independent = g.node("independent").run((), |_, ()| Ok(1u32));
    let later = g.node("later").run(independent, |_, i| Ok(i + 1));
    let dependent = g.node("dependent").run(first, |_, f| Ok(f + 1));
    let dag = g.build().unwrap();
    let plan = dag
        .plan(&Request::new().output(later).output(dependent))
        .unwrap();
    let order: Vec<&str> = plan.nodes().map(|n| n.name()).collect();
    let first_pos = order.iter().position(|n| *n == "first").unwrap();
    let later_pos = order.iter().position(|n| *n == "later").unwrap();
    let err = Executor::sequential()
        .failure_policy(FailurePolicy::FailFast)
        .run(&plan, Inputs::new())
        .unwrap_err();
    let record = err.record().unwrap();
    assert_eq!(status(record, "first"), NodeStatus::Failed);
    assert_eq!(
        outcome(record, "dependent"),
        NodeOutcome::Skipped(SkipReason::UpstreamFailed {
            ancestor: "first".into()
        })
    );
    if first_pos < later_pos {
        assert_eq!(
            outcome(record, "later"),
            NodeOutcome::Skipped(SkipReason::FailFast {
                failed: "first".into()
            })
        );
    }
}

#[test]
fn fail_fast_in_parallel_skips_waiting_nodes() {
    // A long independent chain: once `boom` fails, the chain's unstarted links are skipped.
    let mut g = DagBuilder::new("ff-par");
    let boom = g.node("boom").run((), |_, ()| -> NodeResult<u32> {
        Err(NodeError::msg("boom"))
    });
    let mut link = g.node("link0").run((), |_, ()| {
        std::thread::sleep(Duration::from_millis(30));
        Ok(0u32)
    });
    for i in 1..20 {
        link = g.node(format!("link{i}")).run(link, |_, l| {
            std::thread::sleep(Duration::from_millis(5));
            Ok(l + 1)
        });
    }
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(boom).output(link)).unwrap();
    let err = Executor::parallel()
        .threads(2)
        .run(&plan, Inputs::new())
        .unwrap_err();
    let record = err.record().unwrap();
    let fail_fast = record
        .nodes()
        .filter(|n| {
            matches!(
                &n.outcome,
                Some(NodeOutcome::Skipped(SkipReason::FailFast { failed })) if failed == "boom"
            )
        })
        .count();
    assert!(fail_fast >= 1, "{}", record.summary_table());
    assert_eq!(status(record, "link19"), NodeStatus::Skipped);
}

#[test]
fn panics_are_contained_and_reported() {
    for (mode, exec) in executors() {
        let b = branches(true);
        let plan = b
            .dag
            .plan(&Request::new().output(b.sink).output(b.other))
            .unwrap();
        let err = exec
            .failure_policy(FailurePolicy::Continue)
            .run(&plan, Inputs::new().set(b.x, 1))
            .unwrap_err();
        let record = err.record().unwrap();
        assert_eq!(
            outcome(record, "bad"),
            NodeOutcome::Panicked {
                message: "bad exploded".into()
            },
            "{mode}"
        );
        assert_eq!(status(record, "other"), NodeStatus::Succeeded);
        assert!(err.to_string().contains("panic: bad exploded"));
    }
}

#[test]
fn every_failure_is_listed() {
    let mut g = DagBuilder::new("many-failures");
    let handles: Vec<Handle<u32>> = (0..5)
        .map(|i| {
            g.node(format!("f{i}"))
                .run((), move |_, ()| -> NodeResult<u32> {
                    Err(NodeError::msg(format!("failure {i}")))
                })
        })
        .collect();
    let dag = g.build().unwrap();
    let request = handles.iter().fold(Request::new(), |r, h| r.output(*h));
    let plan = dag.plan(&request).unwrap();
    for (mode, exec) in executors() {
        let err = exec
            .failure_policy(FailurePolicy::Continue)
            .run(&plan, Inputs::new())
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("5 node(s) failed"), "{mode}: {text}");
        for i in 0..5 {
            assert!(
                text.contains(&format!("`f{i}` (error: failure {i})")),
                "{text}"
            );
        }
    }
}

#[test]
fn a_mass_failure_names_the_first_failures_and_counts_the_rest() {
    let mut g = DagBuilder::new("mass-failure");
    let handles: Vec<Handle<u8>> = (0..500)
        .map(|i| {
            g.node(format!("f{i}")).run((), |_, ()| -> NodeResult<u8> {
                Err(NodeError::msg("down"))
            })
        })
        .collect();
    let dag = g.build().unwrap();
    let plan = dag
        .plan(&handles.iter().fold(Request::new(), |r, h| r.output(*h)))
        .unwrap();
    let err = Executor::sequential()
        .failure_policy(FailurePolicy::Continue)
        .run(&plan, Inputs::new())
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("500 node(s) failed"), "{text}");
    assert!(text.contains("`f0` (error: down)") && text.contains("`f19` (error: down)"));
    assert!(!text.contains("`f20`"), "{text}");
    assert!(
        text.ends_with("and 480 more (see the run record)"),
        "{text}"
    );
    assert_eq!(err.record().unwrap().failures().count(), 500);
}

#[test]
fn retries_until_success_and_counts_attempts() {
    for (mode, exec) in executors() {
        let calls = Arc::new(AtomicU32::new(0));
        let mut g = DagBuilder::new("retry");
        let seen = calls.clone();
        let flaky = g
            .node("flaky")
            .retry(RetryPolicy::attempts(4).with_backoff(
                Duration::from_millis(1),
                2.0,
                Duration::from_millis(4),
            ))
            .run((), move |ctx, ()| {
                seen.fetch_add(1, Ordering::SeqCst);
                if ctx.attempt() < 3 {
                    Err(NodeError::msg(format!("attempt {} failed", ctx.attempt())))
                } else {
                    Ok(ctx.attempt())
                }
            });
        let dag = g.build().unwrap();
        let plan = dag.plan(&Request::new().output(flaky)).unwrap();
        let run = exec.run(&plan, Inputs::new()).unwrap();
        assert_eq!(run.outputs().get(flaky), Some(&3), "{mode}");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(run.record().node("flaky").unwrap().attempts, 3);
    }
}

#[test]
fn retries_exhausted_report_last_error() {
    let mut g = DagBuilder::new("retry-fail");
    let node =
        g.node("always")
            .retry(RetryPolicy::attempts(3))
            .run((), |ctx, ()| -> NodeResult<u8> {
                Err(NodeError::msg(format!("no luck on {}", ctx.attempt())))
            });
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(node)).unwrap();
    let err = Executor::sequential()
        .run(&plan, Inputs::new())
        .unwrap_err();
    let record = err.record().unwrap();
    let node = record.node("always").unwrap();
    assert_eq!(node.attempts, 3);
    assert_eq!(
        node.outcome,
        Some(NodeOutcome::Failed {
            message: "no luck on 3".into()
        })
    );
    assert!(err.to_string().contains("after 3 attempts"));
}

#[test]
fn backoff_grows_and_is_capped() {
    let policy = RetryPolicy::attempts(6).with_backoff(
        Duration::from_millis(10),
        2.0,
        Duration::from_millis(35),
    );
    let delays: Vec<u128> = (2..=6)
        .map(|a| policy.delay_before(a).as_millis())
        .collect();
    assert_eq!(delays, [10, 20, 35, 35, 35]);
    assert_eq!(RetryPolicy::attempts(0).max_attempts(), 1);
}

#[test]
fn async_nodes_run_on_tokio_and_feed_sync_nodes() {
    for (mode, exec) in executors() {
        let mut g = DagBuilder::new("async");
        let x = g.input::<u64>("x");
        let fetched = g.node("fetch").run_async(x, |ctx, x| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(ctx.name(), "fetch");
            Ok(*x * 3)
        });
        let fetched2 = g.node("fetch2").run_async(x, |_, x| async move {
            tokio::task::yield_now().await;
            Ok(*x + 100)
        });
        let sum = g
            .node("sum")
            .run((fetched, fetched2), |_, (a, b)| Ok(a + b));
        let dag = g.build().unwrap();
        let plan = dag.plan(&Request::new().output(sum)).unwrap();
        assert!(plan.has_async());
        let run = exec.run(&plan, Inputs::new().set(x, 2)).unwrap();
        assert_eq!(run.outputs().get(sum), Some(&108), "{mode}");
        assert_eq!(
            run.record().node("fetch").unwrap().thread,
            ThreadLabel::Async
        );
    }
}

#[test]
fn async_timeout_is_a_failure_and_can_be_retried() {
    let attempts = Arc::new(AtomicU32::new(0));
    let mut g = DagBuilder::new("timeout");
    let seen = attempts.clone();
    let slow = g
        .node("slow")
        .timeout(Duration::from_millis(20))
        .retry(RetryPolicy::attempts(2))
        .run_async((), move |_, ()| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(1u8)
            }
        });
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(slow)).unwrap();
    for (mode, exec) in executors() {
        attempts.store(0, Ordering::SeqCst);
        let started = std::time::Instant::now();
        let err = exec.run(&plan, Inputs::new()).unwrap_err();
        let node = err.record().unwrap().node("slow").unwrap().clone();
        assert_eq!(
            node.outcome,
            Some(NodeOutcome::TimedOut {
                limit: Duration::from_millis(20)
            }),
            "{mode}"
        );
        assert_eq!(node.attempts, 2);
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        // The 5 s sleeps were dropped, not awaited (generous bound; not a performance test).
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}

/// A future that panics when dropped: the node's attempt ends with the timeout, and the drop
/// that follows it does not make the executor run the body a second time.
#[test]
fn a_timed_out_future_that_panics_when_dropped_runs_once() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("dropped while still running");
        }
    }
    let calls = Arc::new(AtomicU32::new(0));
    let mut g = DagBuilder::new("timeout-drop");
    let seen = calls.clone();
    let slow = g
        .node("slow")
        .timeout(Duration::from_millis(20))
        .run_async((), move |_, ()| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                let _guard = PanicOnDrop;
                tokio::time::sleep(Duration::from_secs(5)).await;
                std::mem::forget(_guard);
                Ok(1u8)
            }
        });
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(slow))
        .unwrap();
    let telemetry = dagtel::otel::testing::TestTelemetry::new();
    let with_hooks = Executor::parallel().threads(2).hook(telemetry.hooks());
    let mut runs: Vec<(String, Result<Run, RunError>)> = executors()
        .into_iter()
        .map(|(mode, exec)| {
            calls.store(0, Ordering::SeqCst);
            let run = exec.run(&plan, Inputs::new());
            (
                format!("{mode}: {} call(s)", calls.load(Ordering::SeqCst)),
                run,
            )
        })
        .collect();
    calls.store(0, Ordering::SeqCst);
    let run = with_hooks.run(&plan, Inputs::new());
    runs.push((
        format!("hooked: {} call(s)", calls.load(Ordering::SeqCst)),
        run,
    ));
    for (label, run) in runs {
        assert!(label.ends_with(": 1 call(s)"), "{label}");
        let err = run.unwrap_err();
        let node = err.record().unwrap().node("slow").unwrap().clone();
        assert_eq!(
            node.outcome,
            Some(NodeOutcome::TimedOut {
                limit: Duration::from_millis(20)
            }),
            "{label}"
        );
        assert_eq!(node.attempts, 1, "{label}");
    }
}

#[test]
fn async_panic_and_error_are_contained() {
    let mut g = DagBuilder::new("async-fail");
    let boom = g.node("boom").run_async((), |_, ()| async {
        panic!("async kaboom") as NodeResult<u8>
    });
    let err_node = g.node("err").run_async((), |_, ()| async {
        Err::<u8, _>(NodeError::msg("async error"))
    });
    let dag = g.build().unwrap();
    let plan = dag
        .plan(&Request::new().output(boom).output(err_node))
        .unwrap();
    for (mode, exec) in executors() {
        let err = exec
            .failure_policy(FailurePolicy::Continue)
            .run(&plan, Inputs::new())
            .unwrap_err();
        let record = err.record().unwrap();
        assert_eq!(
            outcome(record, "boom"),
            NodeOutcome::Panicked {
                message: "async kaboom".into()
            },
            "{mode}"
        );
        assert_eq!(
            outcome(record, "err"),
            NodeOutcome::Failed {
                message: "async error".into()
            }
        );
    }
}

#[test]
fn caller_tokio_runtime_is_used() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("callers-runtime")
        .enable_all()
        .build()
        .unwrap();
    let mut g = DagBuilder::new("caller-rt");
    let name = g.node("where").run_async((), |_, ()| async {
        Ok(std::thread::current().name().unwrap_or("").to_string())
    });
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(name)).unwrap();
    let exec = Executor::parallel()
        .threads(2)
        .tokio(runtime.handle().clone());
    let run = exec.run(&plan, Inputs::new()).unwrap();
    assert_eq!(
        run.outputs().get(name).map(String::as_str),
        Some("callers-runtime")
    );
}

#[test]
fn cancellation_stops_scheduling_and_lets_running_nodes_finish() {
    for (mode, exec) in executors() {
        let token = CancelToken::new();
        let finished = Arc::new(AtomicUsize::new(0));
        let mut g = DagBuilder::new("cancel");
        let cancel = token.clone();
        let done = finished.clone();
        let first = g.node("first").run((), move |_, ()| {
            cancel.cancel();
            std::thread::sleep(Duration::from_millis(10));
            done.fetch_add(1, Ordering::SeqCst);
            Ok(1u32)
        });
        let second = g.node("second").run(first, |_, f| Ok(f + 1));
        let third = g.node("third").run(second, |_, s| Ok(s + 1));
        let dag = g.build().unwrap();
        let plan = dag.plan(&Request::new().output(third)).unwrap();
        let err = exec
            .run_with(&plan, Inputs::new(), RunOptions::new().cancel(token))
            .unwrap_err();
        let RunError::Cancelled(run) = &err else {
            panic!("{mode}: expected Cancelled, got {err}");
        };
        assert_eq!(finished.load(Ordering::SeqCst), 1, "running node finished");
        assert_eq!(status(&run.record, "first"), NodeStatus::Succeeded);
        for name in ["second", "third"] {
            assert_eq!(
                outcome(&run.record, name),
                NodeOutcome::Skipped(SkipReason::Cancelled),
                "{mode}"
            );
        }
        assert_eq!(run.record.outcome, Outcome::Cancelled);
        // What `main() -> Result<_, RunError>` prints is the `Debug` form: it says cancelled.
        let debug = format!("{err:?}");
        assert!(
            debug.contains("was cancelled (2 node(s) not run)") && !debug.contains("failed"),
            "{debug}"
        );
    }
}

/// A cancel ends a retry backoff at once (sync and async nodes): the node keeps its last
/// failure and the run returns without waiting out the backoff.
#[test]
fn cancellation_cuts_a_retry_backoff_short() {
    let backoff = RetryPolicy::attempts(3).with_backoff(
        Duration::from_secs(300),
        1.0,
        Duration::from_secs(300),
    );
    for async_node in [false, true] {
        for (mode, exec) in executors() {
            let case = format!("{mode}, async {async_node}");
            let token = CancelToken::new();
            let canceller = {
                let token = token.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    token.cancel();
                })
            };
            let mut g = DagBuilder::new("backoff");
            let node = g.node("flaky").retry(backoff);
            let flaky = if async_node {
                node.run_async((), |_, ()| async {
                    Err::<u32, _>(NodeError::msg("still down"))
                })
            } else {
                node.run((), |_, ()| -> NodeResult<u32> {
                    Err(NodeError::msg("still down"))
                })
            };
            let plan = g
                .build()
                .unwrap()
                .plan(&Request::new().output(flaky))
                .unwrap();
            let started = std::time::Instant::now();
            let err = exec
                .run_with(&plan, Inputs::new(), RunOptions::new().cancel(token))
                .unwrap_err();
            canceller.join().unwrap();
            // The backoff is 300 s: finishing at all in a minute means the cancel ended it.
            assert!(started.elapsed() < Duration::from_secs(60), "{case}");
            let record = err.record().unwrap();
            let flaky = record.node("flaky").unwrap();
            assert_eq!(flaky.attempts, 1, "{case}: no attempt after the cancel");
            assert_eq!(
                flaky.outcome,
                Some(NodeOutcome::Failed {
                    message: "still down".into()
                }),
                "{case}"
            );
        }
    }
}

#[test]
fn nodes_can_poll_cancellation() {
    let token = CancelToken::new();
    token.cancel();
    let mut g = DagBuilder::new("poll");
    let seen = g.node("seen").run((), |ctx, ()| Ok(ctx.is_cancelled()));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(seen)).unwrap();
    // Cancelled before start: the node never runs.
    let err = Executor::sequential()
        .run_with(&plan, Inputs::new(), RunOptions::new().cancel(token))
        .unwrap_err();
    assert!(matches!(err, RunError::Cancelled(_)));
}

#[test]
fn run_id_is_generated_time_ordered_or_given() {
    let mut g = DagBuilder::new("ids");
    let id = g.node("id").run((), |ctx, ()| Ok(ctx.run_id().to_string()));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(id)).unwrap();
    let exec = Executor::parallel().threads(2);
    let first = exec.run(&plan, Inputs::new()).unwrap();
    let second = exec.run(&plan, Inputs::new()).unwrap();
    let a = first.record().run_id.to_string();
    let b = second.record().run_id.to_string();
    assert_eq!(first.outputs().get(id), Some(&a), "nodes see the run id");
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "7", "UUID version 7");
    assert!(a < b, "time-ordered: {a} then {b}");
    let given = exec
        .run_with(&plan, Inputs::new(), RunOptions::new().run_id("nightly-42"))
        .unwrap();
    assert_eq!(
        given.outputs().get(id).map(String::as_str),
        Some("nightly-42")
    );
    assert_eq!(given.record().run_id.as_str(), "nightly-42");
}

#[test]
fn record_has_times_threads_and_attempts() {
    let mut g = DagBuilder::new("record");
    let slow = g.node("slow").run((), |_, ()| {
        std::thread::sleep(Duration::from_millis(15));
        Ok(())
    });
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(slow)).unwrap();
    let run = Executor::parallel()
        .threads(2)
        .run(&plan, Inputs::new())
        .unwrap();
    let node = run.record().node("slow").unwrap();
    assert!(
        node.duration >= Duration::from_millis(14),
        "{:?}",
        node.duration
    );
    assert!(run.record().duration >= node.duration);
    assert!(matches!(node.thread, ThreadLabel::Worker(0 | 1)));
    assert_eq!(node.attempts, 1);
    let started = node.started_at.unwrap();
    assert!(started >= run.record().started_at);
    let table = run.record().summary_table();
    assert!(table.contains("slow") && table.contains("succeeded") && table.contains("worker-"));
}

#[test]
fn wide_fan_out_fan_in_in_parallel() {
    let mut g = DagBuilder::new("wide");
    let root = g.node("root").run((), |_, ()| Ok(1u64));
    let leaves: Vec<Handle<u64>> = (0..5000)
        .map(|i| g.node(format!("leaf{i}")).run(root, move |_, r| Ok(r + i)))
        .collect();
    let sink = g
        .node("sink")
        .run(leaves, |_, leaves| Ok(leaves.iter().copied().sum::<u64>()));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(sink)).unwrap();
    let expected: u64 = (0..5000u64).map(|i| 1 + i).sum();
    for (mode, exec) in executors() {
        let run = exec.run(&plan, Inputs::new()).unwrap();
        assert_eq!(run.outputs().get(sink), Some(&expected), "{mode}");
    }
}

#[test]
fn long_comb_does_not_overflow_the_stack() {
    // Every link releases two tasks (the next link and a leaf): joins would nest per link
    // without the nesting bound.
    let mut g = DagBuilder::new("comb");
    let mut link = g.node("l0").run((), |_, ()| Ok(0u64));
    let mut leaves = Vec::new();
    for i in 1..20_000u64 {
        leaves.push(g.node(format!("leaf{i}")).run(link, |_, l| Ok(*l)));
        link = g.node(format!("l{i}")).run(link, |_, l| Ok(l + 1));
    }
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(link)).unwrap();
    let all = dag.plan_all().unwrap();
    assert!(all.len() > plan.len());
    let run = Executor::parallel()
        .threads(2)
        .run(&all, Inputs::new())
        .unwrap();
    assert_eq!(run.record().count(NodeStatus::Succeeded), all.len());
}

#[test]
fn one_slow_node_does_not_stall_independent_branches() {
    // Two threads: `slow` occupies one, the whole fast chain must finish on the other while
    // `slow` is still running (checked by order of completion, not by timing).
    let slow_done = Arc::new(AtomicU32::new(0));
    let fast_seen_slow_running = Arc::new(AtomicU32::new(0));
    let mut g = DagBuilder::new("stall");
    let done = slow_done.clone();
    let slow = g.node("slow").run((), move |_, ()| {
        std::thread::sleep(Duration::from_millis(300));
        done.store(1, Ordering::SeqCst);
        Ok(0u32)
    });
    let mut fast = g.node("fast0").run((), |_, ()| Ok(0u32));
    for i in 1..50 {
        fast = g.node(format!("fast{i}")).run(fast, |_, f| Ok(f + 1));
    }
    let witness = fast_seen_slow_running.clone();
    let end = slow_done.clone();
    let fast_end = g.node("fast_end").run(fast, move |_, f| {
        witness.store(1 - end.load(Ordering::SeqCst), Ordering::SeqCst);
        Ok(*f)
    });
    let dag = g.build().unwrap();
    let plan = dag
        .plan(&Request::new().output(slow).output(fast_end))
        .unwrap();
    Executor::parallel()
        .threads(2)
        .run(&plan, Inputs::new())
        .unwrap();
    assert_eq!(fast_seen_slow_running.load(Ordering::SeqCst), 1);
}

#[test]
fn run_inside_the_same_pool_does_not_deadlock() {
    let pool = one_thread_pool();
    let mut g = DagBuilder::new("nested");
    let a = g.node("a").run((), |_, ()| Ok(1u8));
    let b = g.node("b").run(a, |_, a| Ok(a + 1));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(b)).unwrap();
    let exec = Executor::parallel().pool(pool.clone());
    let value = pool.install(|| {
        exec.run(&plan, Inputs::new())
            .unwrap()
            .outputs()
            .get(b)
            .copied()
    });
    assert_eq!(value, Some(2));
}

fn async_then_sync() -> (Dag, Handle<u32>) {
    let mut g = DagBuilder::new("async-then-sync");
    let slow = g.node("slow").run_async((), |_, ()| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(1u32)
    });
    let down = g.node("down").run(slow, |_, s| Ok(s + 1));
    (g.build().unwrap(), down)
}

#[test]
fn a_runtime_shut_down_mid_run_fails_its_nodes_and_skips_descendants() {
    let (dag, down) = async_then_sync();
    let plan = dag.plan(&Request::new().output(down)).unwrap();
    for parallel in [false, true] {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // A hook with the default (pass-through) async wrapper must not be blamed for the
        // futures the runtime dropped.
        let exec = if parallel {
            Executor::parallel().threads(2)
        } else {
            Executor::sequential()
        }
        .tokio(runtime.handle().clone())
        .hook(PassThrough);
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            runtime.shutdown_background();
        });
        let err = exec.run(&plan, Inputs::new()).unwrap_err();
        stopper.join().unwrap();
        let record = err.record().unwrap();
        let slow = outcome(record, "slow");
        assert!(
            matches!(&slow, NodeOutcome::Failed { message } if message.contains("runtime dropped")),
            "parallel={parallel}: {slow:?}"
        );
        assert_eq!(
            outcome(record, "down"),
            NodeOutcome::Skipped(SkipReason::UpstreamFailed {
                ancestor: "slow".into()
            }),
            "parallel={parallel}"
        );
        assert_eq!(record.hook_failure_count, 0, "{:?}", record.hook_failures);
    }
}

/// A hook that keeps every default, including the pass-through async wrapper.
struct PassThrough;

impl dagtel::hooks::Hooks for PassThrough {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();
}

#[test]
fn unusable_caller_runtimes_are_refused_with_the_reason() {
    let (dag, down) = async_then_sync();
    let plan = dag.plan(&Request::new().output(down)).unwrap();
    let current_thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = Executor::parallel()
        .tokio(current_thread.handle().clone())
        .run(&plan, Inputs::new())
        .unwrap_err();
    assert!(
        matches!(&err, RunError::Runtime(m) if m.contains("current-thread")),
        "{err}"
    );
    let no_timers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let err = Executor::sequential()
        .tokio(no_timers.handle().clone())
        .run(&plan, Inputs::new())
        .unwrap_err();
    assert!(
        matches!(&err, RunError::Runtime(m) if m.contains("enable_time")),
        "{err}"
    );
}

#[test]
fn huge_backoff_factors_saturate_at_the_cap() {
    let policy =
        RetryPolicy::attempts(10).with_backoff(Duration::from_millis(1), 1e30, Duration::MAX);
    assert_eq!(policy.delay_before(2), Duration::from_millis(1));
    assert_eq!(policy.delay_before(3), Duration::MAX);
    let capped = RetryPolicy::attempts(10).with_backoff(
        Duration::from_millis(1),
        f64::MAX,
        Duration::from_secs(1),
    );
    assert_eq!(capped.delay_before(9), Duration::from_secs(1));
}

#[test]
fn node_errors_keep_their_source_and_convert_to_std_errors() {
    let parse: NodeError = "x".parse::<u32>().unwrap_err().into();
    assert!(parse.message().contains("invalid digit"));
    assert!(parse.source().is_some());
    let boxed: Box<dyn std::error::Error + Send + Sync> = parse.into();
    assert!(boxed.to_string().contains("invalid digit"));
    assert!(boxed.source().is_some());
    let debug = format!(
        "{:?}",
        Executor::parallel()
            .threads(3)
            .failure_policy(FailurePolicy::Continue)
    );
    assert!(
        debug.contains("own pool of 3") && debug.contains("Continue"),
        "{debug}"
    );
}

/// A panic payload whose own drop panics (a custom payload type) stays contained: the node
/// is reported as panicked, its descendant is skipped, the independent branch runs, an async
/// node's body runs once, and no hook is blamed, with or without hooks.
#[test]
fn a_panic_payload_that_panics_when_dropped_stays_in_its_node() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("the payload's drop panicked too");
        }
    }
    let async_calls = Arc::new(AtomicUsize::new(0));
    let mut g = DagBuilder::new("bomb");
    let bad = g.node("bad").run((), |_, ()| -> NodeResult<u32> {
        std::panic::panic_any(Bomb)
    });
    let after = g.node("after").run(bad, |_, b| Ok(*b + 1));
    let good = g.node("good").run((), |_, ()| Ok(1u32));
    let calls = Arc::clone(&async_calls);
    let abad = g.node("async_bad").run_async((), move |_, ()| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { std::panic::panic_any(Bomb) as NodeResult<u32> }
    });
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(after).output(good).output(abad))
        .unwrap();
    let telemetry = dagtel::otel::testing::TestTelemetry::new();
    let check = |case: &str, result: Result<Run, RunError>| {
        let err = result.unwrap_err();
        let record = err.record().unwrap();
        let panicked = NodeOutcome::Panicked {
            message: "non-string panic payload".into(),
        };
        assert_eq!(outcome(record, "bad"), panicked, "{case}");
        assert_eq!(outcome(record, "async_bad"), panicked, "{case}");
        assert_eq!(status(record, "after"), NodeStatus::Skipped, "{case}");
        assert_eq!(status(record, "good"), NodeStatus::Succeeded, "{case}");
        assert_eq!(
            async_calls.swap(0, Ordering::SeqCst),
            1,
            "{case}: one async call"
        );
        assert!(
            record.hook_failures.is_empty(),
            "{case}: {:?}",
            record.hook_failures
        );
    };
    for (mode, exec) in executors() {
        let exec = exec.failure_policy(FailurePolicy::Continue);
        check(mode, exec.run(&plan, Inputs::new()));
    }
    for (mode, exec) in executors() {
        let exec = exec
            .failure_policy(FailurePolicy::Continue)
            .hook(telemetry.hooks());
        check(
            &format!("{mode} with hooks"),
            exec.run(&plan, Inputs::new()),
        );
    }
}

#[test]
fn a_value_whose_drop_panics_does_not_unwind_out_of_the_run() {
    struct Bomb(u32);
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb {} went off while dropped", self.0);
        }
    }
    for executor in [Executor::sequential(), Executor::parallel().threads(2)] {
        let mut g = DagBuilder::new("bombs");
        let a = g.node("a").run((), |_, ()| Ok(Bomb(1)));
        let b = g.node("b").run((), |_, ()| Ok(Bomb(2)));
        let sum = g.node("sum").run((a, b), |_, (a, b)| Ok(a.0 + b.0));
        let plan = g
            .build()
            .unwrap()
            .plan(&Request::new().output(sum))
            .unwrap();
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            executor.run(&plan, Inputs::new())
        }));
        let run = ran.expect("the drops' panics stay inside the run").unwrap();
        assert_eq!(run.outputs().get(sum), Some(&3));
    }
}

#[test]
fn an_error_whose_drop_panics_fails_its_node_and_nothing_else() {
    #[derive(Debug)]
    struct Grenade;
    impl std::fmt::Display for Grenade {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("pin pulled")
        }
    }
    impl std::error::Error for Grenade {}
    impl Drop for Grenade {
        fn drop(&mut self) {
            panic!("the error went off while dropped");
        }
    }
    for executor in [Executor::sequential(), Executor::parallel().threads(2)] {
        let mut g = DagBuilder::new("grenade");
        let bad = g
            .node("bad")
            .run((), |_, ()| -> NodeResult<u32> { Err(Grenade.into()) });
        let good = g.node("good").run((), |_, ()| Ok(2u32));
        let plan = g
            .build()
            .unwrap()
            .plan(&Request::new().output(bad).output(good))
            .unwrap();
        let executor = executor.failure_policy(FailurePolicy::Continue);
        let err = executor.run(&plan, Inputs::new()).unwrap_err();
        let record = err.record().unwrap();
        let bad = record.node("bad").unwrap();
        assert!(
            matches!(&bad.outcome, Some(NodeOutcome::Panicked { message })
                if message.contains("pin pulled") && message.contains("went off")),
            "{:?}",
            bad.outcome
        );
        assert_eq!(record.node("good").unwrap().status, NodeStatus::Succeeded);
    }
}
