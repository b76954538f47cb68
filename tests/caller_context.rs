//! A run carries its caller's OpenTelemetry context to wherever its work runs, with hooks or
//! without: spans user code starts in a node nest under the caller's span on every pool
//! thread and in async nodes, and a job a pool thread picks up while it waits inside unrelated
//! work sees the run's caller's context, not the context of the work it waits in.

#[path = "support/pools.rs"]
mod pools;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use dagtel::otel::testing::TestTelemetry;
use dagtel::*;
use opentelemetry::Context;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::SpanData;
use pools::one_thread_pool;

/// A value the caller puts in its context, to tell whose context a node sees.
#[derive(Debug)]
struct Marker(&'static str);

fn marker() -> Option<&'static str> {
    Context::map_current(|cx| cx.get::<Marker>().map(|m| m.0))
}

/// Each node's name and the marker it saw.
type Seen = Arc<Mutex<Vec<(String, Option<&'static str>)>>>;

/// `width` sync nodes (each starts a span named after itself, sleeps a little so that every
/// worker gets some, and reports the marker it sees and its thread), one async node doing the
/// same, and a fan-in over all of them.
fn wide_plan(
    telemetry: &TestTelemetry,
    width: usize,
    seen: &Seen,
    threads: &Arc<Mutex<HashSet<std::thread::ThreadId>>>,
) -> Plan {
    let tracer = telemetry.tracer_provider().tracer("user");
    let mut g = DagBuilder::new("caller-context");
    let mut leaves: Vec<Handle<u8>> = (0..width)
        .map(|i| {
            let (tracer, seen, threads) = (tracer.clone(), seen.clone(), threads.clone());
            let name = format!("leaf-{i}");
            g.node(name.clone()).run((), move |_, ()| {
                tracer.start(name.clone()).end();
                std::thread::sleep(Duration::from_millis(2));
                seen.lock().unwrap().push((name.clone(), marker()));
                threads.lock().unwrap().insert(std::thread::current().id());
                Ok(1u8)
            })
        })
        .collect();
    let (async_tracer, async_seen) = (tracer.clone(), seen.clone());
    leaves.push(g.node("async-leaf").run_async((), move |_, ()| {
        let (tracer, seen) = (async_tracer.clone(), async_seen.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            tracer.start("async-leaf").end();
            seen.lock().unwrap().push(("async-leaf".into(), marker()));
            Ok(1u8)
        }
    }));
    let total = g.node("total").run(leaves, |_, values| {
        Ok(values.iter().map(|&&v| v as usize).sum::<usize>())
    });
    g.build()
        .unwrap()
        .plan(&Request::new().output(total))
        .unwrap()
}

/// Runs `executor` on a wide plan inside a caller span whose context also holds a [`Marker`];
/// checks that every node saw the marker and that every user span is a child of the caller's
/// span. Returns how many pool threads ran sync nodes.
fn check_caller_context<H: hooks::HookSet>(executor: Executor<H>) -> usize {
    let telemetry = TestTelemetry::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let width = 32;
    let plan = wide_plan(&telemetry, width, &seen, &threads);
    let tracer = telemetry.tracer_provider().tracer("caller");
    let caller = tracer.start("caller");
    let caller_cx = Context::current_with_span(caller).with_value(Marker("caller"));
    {
        let _attached = caller_cx.clone().attach();
        executor.run(&plan, Inputs::new()).unwrap();
    }
    caller_cx.span().end();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), width + 1, "every leaf reported");
    for (node, marker) in &seen {
        assert_eq!(*marker, Some("caller"), "the context node {node} saw");
    }
    let spans = telemetry.spans();
    let caller_span = find(&spans, "caller");
    for (node, _) in &seen {
        let span = find(&spans, node);
        assert_eq!(
            (span.span_context.trace_id(), span.parent_span_id),
            (
                caller_span.span_context.trace_id(),
                caller_span.span_context.span_id()
            ),
            "(trace, parent) of the span node {node} started: the caller's span"
        );
    }
    threads.lock().unwrap().len()
}

fn find<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?}"))
}

#[test]
fn parallel_nodes_without_hooks_nest_under_the_callers_span() {
    let threads = check_caller_context(Executor::parallel().threads(4));
    assert!(threads >= 2, "the nodes ran on {threads} pool thread(s)");
}

#[test]
fn parallel_nodes_with_hooks_that_attach_nothing_nest_under_the_callers_span() {
    struct Counting;
    impl hooks::Hooks for Counting {
        type Run = ();
        type Stage = ();
        type Task = ();
        type Node = ();
    }
    let threads = check_caller_context(Executor::parallel().threads(4).hook(Counting));
    assert!(threads >= 2, "the nodes ran on {threads} pool thread(s)");
}

#[test]
fn sequential_nodes_without_hooks_nest_under_the_callers_span() {
    check_caller_context(Executor::sequential());
}

/// Builds `g`, plans `output` and runs it with `executor` in a context marked `caller`.
fn run_as_caller<H: hooks::HookSet, T>(executor: Executor<H>, g: DagBuilder, output: Handle<T>) {
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(output))
        .unwrap();
    let _caller = Context::new().with_value(Marker("caller")).attach();
    executor.run(&plan, Inputs::new()).unwrap();
}

/// Runs the pool's pending jobs on this thread (as a rayon wait does) until `done`.
fn help_pool_until(done: impl Fn() -> bool) {
    while !done() {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// The rayon pitfall, with a run's job: the pool's only thread runs an unrelated job that has
/// its own context attached and, while it waits (`yield_now`), runs the run's jobs. Those must
/// see the run's caller's context, not the waiting job's.
#[test]
fn a_job_run_by_a_thread_waiting_in_other_work_sees_its_callers_context() {
    let pool = one_thread_pool();
    let done = Arc::new(AtomicBool::new(false));
    let (waiting_tx, waiting_rx) = mpsc::channel();
    {
        let done = done.clone();
        pool.spawn(move || {
            let _unrelated = Context::new().with_value(Marker("unrelated")).attach();
            waiting_tx.send(()).unwrap();
            help_pool_until(|| done.load(Ordering::Acquire));
        });
    }
    waiting_rx.recv().unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut g = DagBuilder::new("stolen");
    let nodes: Vec<Handle<u8>> = (0..8)
        .map(|i| {
            let seen = seen.clone();
            g.node(format!("n{i}")).run((), move |_, ()| {
                seen.lock().unwrap().push(marker());
                Ok(1u8)
            })
        })
        .collect();
    let total = g.node("total").run(nodes, |_, values| {
        Ok(values.iter().map(|&&v| v as usize).sum::<usize>())
    });
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(total))
        .unwrap();
    {
        let _caller = Context::new().with_value(Marker("caller")).attach();
        Executor::parallel()
            .pool(pool.clone())
            .run(&plan, Inputs::new())
            .unwrap();
    }
    done.store(true, Ordering::Release);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![Some("caller"); 8], "the markers the nodes saw");
}

/// Roots `a` and `b` on a one-thread pool: `a`'s body attaches a context of its own and waits
/// on rayon (as a `join` or `par_iter` would), so the thread runs `b`'s job inside `a`'s body.
/// Returns the marker `b` saw.
fn marker_seen_by_a_job_run_inside_a_sibling<H: hooks::HookSet>(
    executor: Executor<H>,
) -> Option<&'static str> {
    let seen = Arc::new(Mutex::new(None));
    let b_ran = Arc::new(AtomicBool::new(false));
    let mut g = DagBuilder::new("reentry");
    let a = {
        let b_ran = b_ran.clone();
        g.node("a").run((), move |_, ()| {
            let _own = Context::current().with_value(Marker("a's own")).attach();
            help_pool_until(|| b_ran.load(Ordering::Acquire));
            Ok(1u8)
        })
    };
    let b = {
        let (seen, b_ran) = (seen.clone(), b_ran.clone());
        g.node("b").run((), move |_, ()| {
            *seen.lock().unwrap() = Some(marker());
            b_ran.store(true, Ordering::Release);
            Ok(1u8)
        })
    };
    let total = g.node("total").run((a, b), |_, (a, b)| Ok(*a + *b));
    run_as_caller(executor, g, total);
    seen.lock().unwrap().expect("b ran")
}

#[test]
fn a_job_run_inside_a_sibling_nodes_body_sees_the_callers_context() {
    let seen =
        marker_seen_by_a_job_run_inside_a_sibling(Executor::parallel().pool(one_thread_pool()));
    assert_eq!(seen, Some("caller"), "the marker node b saw");
}

#[test]
fn a_job_run_inside_a_sibling_nodes_body_sees_the_callers_context_without_node_events() {
    // The hook-free node path, which a sampled-out `OtelHooks` run takes.
    struct NoNodeEvents;
    impl hooks::Hooks for NoNodeEvents {
        type Run = ();
        type Stage = ();
        type Task = ();
        type Node = ();
        fn node_events(&self, _: &()) -> bool {
            false
        }
    }
    let executor = Executor::parallel()
        .pool(one_thread_pool())
        .hook(NoNodeEvents);
    let seen = marker_seen_by_a_job_run_inside_a_sibling(executor);
    assert_eq!(seen, Some("caller"), "the marker node b saw");
}

/// The same under real parallel execution: node `busy` attaches its own context and waits in
/// a `join` whose long half another worker takes; meanwhile a fan-out of the run releases 16
/// nodes, some of which `busy`'s thread runs while it waits. Every one sees the caller's
/// context (which jobs land where varies; none may see `busy`'s).
#[test]
fn nodes_run_while_a_sibling_waits_in_a_join_see_the_callers_context() {
    for _ in 0..3 {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut g = DagBuilder::new("join-wait");
        let busy = g.node("busy").run((), |_, ()| {
            let _own = Context::current().with_value(Marker("busy's own")).attach();
            rayon::join(
                || std::thread::sleep(Duration::from_millis(10)),
                || std::thread::sleep(Duration::from_millis(30)),
            );
            Ok(0u8)
        });
        let fan = g.node("fan").run((), |_, ()| {
            std::thread::sleep(Duration::from_millis(12));
            Ok(1u8)
        });
        let mut leaves = vec![busy];
        for i in 0..16 {
            let seen = seen.clone();
            leaves.push(g.node(format!("child-{i}")).run(fan, move |_, _| {
                std::thread::sleep(Duration::from_millis(1));
                seen.lock().unwrap().push(marker());
                Ok(1u8)
            }));
        }
        let total = g.node("total").run(leaves, |_, values| {
            Ok(values.iter().map(|&&v| v as usize).sum::<usize>())
        });
        let plan = g
            .build()
            .unwrap()
            .plan(&Request::new().output(total))
            .unwrap();
        {
            let _caller = Context::new().with_value(Marker("caller")).attach();
            Executor::parallel()
                .threads(3)
                .run(&plan, Inputs::new())
                .unwrap();
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![Some("caller"); 16],
            "the markers the children saw"
        );
    }
}

thread_local! {
    /// Set while a user's own rayon job (not one of the run's) runs on this thread.
    static IN_USER_JOB: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What a node saw: its marker and whether it ran inside the user's job.
type SeenInJob = Arc<Mutex<Vec<(&'static str, Option<&'static str>, bool)>>>;

/// How the run's `b` comes to run inside the user's job (see below).
#[derive(Clone, Copy)]
enum Via {
    /// `a` waits on rayon until `b` and `c` have run, so the thread runs the user's job inside
    /// `a`, and that job takes up the sweep's helper, which runs `b`.
    SweepHelper,
    /// `r` waits on rayon for 30 ms, so the sweep's helper passes `a`, `b` and `x` before `r`
    /// ends; `r` then releases them as one list, split with `rayon::join`, and `b` is the
    /// join's half that the user's job takes up (a migrated half, which enters its run afresh).
    JoinHalf,
}

/// The run's own jobs picked up by a user's job: on a one-thread pool, `r` comes before `a`,
/// `b` and the async `x`; `a`'s body hands a job of its own to rayon (`rayon::spawn`) once
/// `x`'s child `c` has been handed to the pool. That job attaches a context of its own and
/// waits on rayon (`yield_now`), so the thread runs `b` (`via` one of two ways) and `c` (a
/// spawned job) inside it. Both must see the caller's context. Returns what `b` and `c` saw.
fn seen_by_jobs_picked_up_by_a_users_job<H: hooks::HookSet>(
    executor: Executor<H>,
    via: Via,
) -> Vec<(&'static str, Option<&'static str>, bool)> {
    let seen: SeenInJob = Arc::new(Mutex::new(Vec::new()));
    let x_done = Arc::new(AtomicBool::new(false));
    // A node after `dep` that reports what it saw.
    let reporting = |g: &mut DagBuilder, name: &'static str, dep: Handle<u8>| {
        let seen = seen.clone();
        g.node(name).run(dep, move |_, _| {
            let in_job = IN_USER_JOB.with(|flag| flag.get());
            seen.lock().unwrap().push((name, marker(), in_job));
            Ok(1u8)
        })
    };
    let mut g = DagBuilder::new("user-job");
    let r = g.node("r").run((), move |_, ()| {
        if let Via::JoinHalf = via {
            let until = std::time::Instant::now() + Duration::from_millis(30);
            help_pool_until(|| std::time::Instant::now() > until);
        }
        Ok(1u8)
    });
    let x = {
        let x_done = x_done.clone();
        g.node("x").run_async(r, move |_, _| {
            let x_done = x_done.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                x_done.store(true, Ordering::Release);
                Ok(1u8)
            }
        })
    };
    let c = reporting(&mut g, "c", x);
    let a = {
        let seen = seen.clone();
        g.node("a").run(r, move |_, _| {
            while !x_done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            // `x` has ended; its task hands `c` to the pool right after.
            std::thread::sleep(Duration::from_millis(50));
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let both_ran = {
                let seen = seen.clone();
                move || seen.lock().unwrap().len() == 2 || std::time::Instant::now() > deadline
            };
            let in_job = both_ran.clone();
            rayon::spawn(move || {
                let _own = Context::new().with_value(Marker("user job's own")).attach();
                IN_USER_JOB.with(|flag| flag.set(true));
                help_pool_until(in_job);
                IN_USER_JOB.with(|flag| flag.set(false));
            });
            if let Via::SweepHelper = via {
                help_pool_until(both_ran);
            }
            Ok(1u8)
        })
    };
    let b = reporting(&mut g, "b", r);
    let total = g
        .node("total")
        .run((a, b, c), |_, (a, b, c)| Ok(*a + *b + *c));
    run_as_caller(executor, g, total);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    seen
}

#[test]
fn the_runs_jobs_picked_up_by_a_users_job_see_the_callers_context() {
    let expected = vec![("b", Some("caller"), true), ("c", Some("caller"), true)];
    for via in [Via::SweepHelper, Via::JoinHalf] {
        let seen = seen_by_jobs_picked_up_by_a_users_job(
            Executor::parallel().pool(one_thread_pool()),
            via,
        );
        assert_eq!(
            seen, expected,
            "node, marker seen, ran inside the user's job"
        );
        let telemetry = TestTelemetry::new();
        let seen = seen_by_jobs_picked_up_by_a_users_job(
            Executor::parallel()
                .pool(one_thread_pool())
                .hook(telemetry.hooks()),
            via,
        );
        assert_eq!(seen, expected, "the same with OpenTelemetry hooks");
    }
}
