//! Work carried onto rayon and tokio threads keeps its run, its node and its parent span.

use std::sync::Arc;
use std::sync::mpsc;

use dagtel::RunId;
use dagtel::otel::carry::{self, ParallelIteratorExt as _};
use dagtel::otel::testing::{LogRecordExt as _, SpanDataExt as _, TestTelemetry};
use dagtel::otel::{NodeScope, RunScope};
use opentelemetry::Context;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracer;
use rayon::prelude::*;

/// A run with its root span and one running node, as the run hooks set them up.
struct Fixture {
    run_id: String,
    telemetry: TestTelemetry,
    tracer: SdkTracer,
    run: Context,
    node: Context,
}

impl Fixture {
    fn new(run_id: &str) -> Self {
        let telemetry = TestTelemetry::new();
        let tracer = telemetry.tracer_provider().tracer("test");
        let run_cx = Context::new().with_value(RunScope::new(RunId::from(run_id), "etl"));
        let run = run_cx.with_span(tracer.start_with_context("run", &run_cx));
        let node = run
            .with_span(tracer.start_with_context("node", &run))
            .with_value(Arc::new(NodeScope::new("fan")));
        Self {
            run_id: run_id.to_owned(),
            telemetry,
            tracer,
            run,
            node,
        }
    }

    /// Ends the node and run spans; returns the node span's data.
    fn finish(&self) -> opentelemetry_sdk::trace::SpanData {
        self.node.span().end();
        self.run.span().end();
        self.telemetry.span("node").unwrap()
    }

    /// Asserts that `count` spans named `name` exist, each a child of `parent` stamped with
    /// the fixture's run id.
    fn assert_children(
        &self,
        name: &str,
        count: usize,
        parent: &opentelemetry_sdk::trace::SpanData,
    ) {
        let spans = self.telemetry.spans_named(name);
        assert_eq!(spans.len(), count, "{name}");
        for span in spans {
            assert!(span.is_child_of(parent), "{name}: {span:?}");
            assert_eq!(
                span.run_id().as_deref(),
                Some(self.run_id.as_str()),
                "{name}"
            );
        }
    }
}

fn two_thread_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
}

fn two_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

#[test]
fn parallel_iterator_items_keep_the_node_as_parent() {
    let fx = Fixture::new("run-par");
    let pool = two_thread_pool();
    {
        let _attached = fx.node.clone().attach();
        let tracer = &fx.tracer;
        let per_item = carry::carry_fn(|_: u32| tracer.start("item").end());
        let mapped = |_: u32| tracer.start("mapped").end();
        carry::install(&pool, || {
            (0..64).into_par_iter().for_each(per_item);
            (0..64).into_par_iter().map_in_context(mapped).count();
        });
    }
    let node = fx.finish();
    fx.assert_children("item", 64, &node);
    fx.assert_children("mapped", 64, &node);
}

#[test]
fn both_halves_of_a_join_keep_the_node_as_parent() {
    let fx = Fixture::new("run-join");
    let pool = two_thread_pool();
    {
        let _attached = fx.node.clone().attach();
        let tracer = &fx.tracer;
        carry::install(&pool, || {
            for _ in 0..16 {
                carry::join(
                    || tracer.start("left").end(),
                    || {
                        // A nested join inside a carried half.
                        carry::join(
                            || tracer.start("right").end(),
                            || tracer.start("right").end(),
                        )
                    },
                );
            }
        });
    }
    let node = fx.finish();
    fx.assert_children("left", 16, &node);
    fx.assert_children("right", 32, &node);
}

#[test]
fn spawned_and_scoped_rayon_jobs_keep_the_node_as_parent() {
    let fx = Fixture::new("run-spawn");
    let pool = two_thread_pool();
    let (tx, rx) = mpsc::channel();
    {
        let _attached = fx.node.clone().attach();
        let tracer = &fx.tracer;
        carry::install(&pool, || {
            for _ in 0..8 {
                let (tracer, tx) = (tracer.clone(), tx.clone());
                carry::rayon_spawn(move || {
                    tracer.start("spawned").end();
                    tx.send(()).unwrap();
                });
            }
            carry::scope(|s| {
                for _ in 0..8 {
                    carry::scope_spawn(s, |_| tracer.start("scoped").end());
                }
            });
        });
    }
    for _ in 0..8 {
        rx.recv().unwrap();
    }
    let node = fx.finish();
    fx.assert_children("spawned", 8, &node);
    fx.assert_children("scoped", 8, &node);
}

/// Sets up the situation of the rayon pitfall: a pool thread with `run-waiting` attached waits
/// in `join` for its stolen half, and that half (with `run-own` attached) spawns a job through
/// `spawn` and blocks until the job ran — so only the waiting thread can run it.
///
/// Returns the run the job saw, and whether it ran on the waiting thread.
fn job_stolen_by_a_waiting_thread(spawn: fn(Box<dyn FnOnce() + Send>)) -> (Option<String>, bool) {
    let pool = two_thread_pool();
    let run = |id: &str| Context::new().with_value(RunScope::new(RunId::from(id), "etl"));
    let (spawned_tx, spawned_rx) = mpsc::channel::<()>();
    let (seen_tx, seen_rx) = mpsc::channel();
    let (waiting_thread, (seen, job_thread)) = pool.install(|| {
        let _waiting = run("run-waiting").attach();
        let waiting_thread = rayon::current_thread_index();
        let halves = rayon::join(
            // Keeps this thread busy until the other half, necessarily run by the other
            // thread, has spawned its job; then the join waits and steals that job.
            move || spawned_rx.recv().unwrap(),
            move || {
                let _own = run("run-own").attach();
                spawn(Box::new(move || {
                    let seen = RunScope::current().map(|r| r.run_id().to_string());
                    seen_tx.send((seen, rayon::current_thread_index())).unwrap();
                }));
                spawned_tx.send(()).unwrap();
                seen_rx.recv().unwrap()
            },
        );
        (waiting_thread, halves.1)
    });
    (seen, job_thread == waiting_thread)
}

#[test]
fn uncarried_stolen_jobs_see_the_waiting_threads_context() {
    // The pitfall itself: this is what the carried helpers protect against.
    let (seen, on_waiting_thread) = job_stolen_by_a_waiting_thread(rayon::spawn);
    assert!(on_waiting_thread);
    assert_eq!(seen.as_deref(), Some("run-waiting"));
}

#[test]
fn carried_stolen_jobs_see_their_own_context() {
    let (seen, on_waiting_thread) = job_stolen_by_a_waiting_thread(carry::rayon_spawn);
    assert!(on_waiting_thread);
    assert_eq!(seen.as_deref(), Some("run-own"));
}

#[test]
fn tokio_tasks_keep_the_node_as_parent_across_awaits() {
    let fx = Fixture::new("run-tokio");
    let runtime = two_worker_runtime();
    {
        let _attached = fx.node.clone().attach();
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..16 {
                let tracer = fx.tracer.clone();
                tasks.push(carry::spawn(async move {
                    for _ in 0..4 {
                        tokio::task::yield_now().await; // may resume on another worker
                        tracer.start("task.step").end();
                    }
                    carry::spawn_blocking(move || tracer.start("blocking").end())
                        .await
                        .unwrap();
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        });
    }
    let node = fx.finish();
    fx.assert_children("task.step", 64, &node);
    fx.assert_children("blocking", 16, &node);
}

#[test]
fn logs_from_carried_work_name_the_run_and_the_node() {
    let fx = Fixture::new("run-logs");
    let logger = fx.telemetry.logger_provider().logger("test");
    let pool = two_thread_pool();
    let runtime = two_worker_runtime();
    let emit = |body: &'static str| {
        let mut record = logger.create_log_record();
        record.set_body(body.into());
        logger.emit(record);
    };
    {
        let _attached = fx.node.clone().attach();
        carry::install(&pool, || {
            (0..32)
                .into_par_iter()
                .for_each(carry::carry_fn(|_| emit("rayon")));
        });
        let logger = logger.clone();
        runtime
            .block_on(carry::spawn_on(runtime.handle(), async move {
                tokio::task::yield_now().await;
                let mut record = logger.create_log_record();
                record.set_body("tokio".into());
                logger.emit(record);
            }))
            .unwrap();
    }
    // Outside the run: nothing to stamp.
    pool.install(|| emit("outside"));
    fx.finish();

    let logs = fx.telemetry.logs();
    assert_eq!(logs.len(), 34);
    for record in &logs {
        if record.body_str() == Some("outside") {
            assert_eq!(record.run_id(), None);
            assert_eq!(record.attribute("dag.node.name"), None);
        } else {
            assert_eq!(record.run_id().as_deref(), Some("run-logs"));
            assert_eq!(record.attribute_str("dag.node.name"), Some("fan"));
            let node = fx.node.span().span_context().clone();
            assert_eq!(record.trace_context().unwrap().span_id, node.span_id());
        }
    }
}

/// A task spawned through `carry::spawn_on` by one node and polled inside another node's body
/// (a `block_on` on a current-thread runtime) reports as the node that spawned it.
#[test]
fn a_spawned_task_polled_inside_another_node_stays_its_spawners() {
    use dagtel::{DagBuilder, Executor, Inputs, Request};
    use std::sync::Mutex;
    let telemetry = TestTelemetry::new();
    let logger = telemetry.logger_provider().logger("carry");
    let rt = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    );
    type Task = tokio::task::JoinHandle<Option<String>>;
    let task: Arc<Mutex<Option<Task>>> = Arc::default();
    let mut g = DagBuilder::new("spawned");
    let (handle, slot) = (rt.handle().clone(), Arc::clone(&task));
    let a = g.node("A").run((), move |_, ()| {
        let logger = logger.clone();
        let spawned = carry::spawn_on(&handle, async move {
            let mut record = logger.create_log_record();
            record.set_body("from the task".into());
            logger.emit(record);
            NodeScope::current().map(|scope| scope.name().to_owned())
        });
        *slot.lock().unwrap() = Some(spawned);
        Ok(1u8)
    });
    let (rt_b, slot) = (Arc::clone(&rt), Arc::clone(&task));
    let b = g.node("B").run(a, move |_, _| {
        let spawned = slot.lock().unwrap().take().expect("A spawned it");
        Ok(rt_b.block_on(spawned).unwrap()) // the task runs here, inside B
    });
    let plan = g.build().unwrap().plan(&Request::new().output(b)).unwrap();
    let run = Executor::sequential()
        .hook(telemetry.hooks())
        .run(&plan, Inputs::new())
        .unwrap();
    assert_eq!(run.outputs().get(b).unwrap().as_deref(), Some("A"));
    let logs = telemetry.logs();
    let record = logs
        .iter()
        .find(|r| format!("{:?}", r.body()).contains("from the task"))
        .expect("the task logged");
    assert_eq!(record.attribute_str("dag.node.name"), Some("A"));
}
