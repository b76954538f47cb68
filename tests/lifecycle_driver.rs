//! Driving the hooks from an executor of one's own (`hooks::Lifecycle`): what such an executor
//! gets must match what dagtel's executor gives, and what it asks for that cannot be honoured
//! is reported, not silently wrong.

use std::sync::Arc;
use std::time::Duration;

use dagtel::hooks::{HookPhase, HookResult, Hooks, Lifecycle, NodeStart, Parents, RunInfo};
use dagtel::otel::OtelHooks;
use dagtel::otel::testing::{LogRecordExt as _, SpanDataExt as _, TestTelemetry};
use dagtel::{NodeMeta, NodeOutcome, TaskMeta};
use opentelemetry::trace::Status;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData};

fn tel() -> &'static TestTelemetry {
    TestTelemetry::global().expect("test telemetry installs")
}

fn span(run: &str, name: &str) -> SpanData {
    let spans = tel().spans_of_run(run);
    let found = spans.iter().find(|s| s.name == name).cloned();
    found.unwrap_or_else(|| {
        let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
        panic!("no span `{name}` in run {run}: {names:?}")
    })
}

fn log(run: &str, body: &str) -> opentelemetry_sdk::logs::SdkLogRecord {
    let logs = tel().logs_of_run(run);
    let found = logs.iter().find(|r| r.body_str() == Some(body)).cloned();
    found.unwrap_or_else(|| panic!("no log record {body:?} in run {run}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

async fn body_that_awaits(name: &'static str) -> u32 {
    tokio::time::sleep(Duration::from_millis(2)).await;
    tokio::task::yield_now().await;
    tracing::info_span!("child", of = name).in_scope(|| tracing::info!("after await {name}"));
    7
}

#[test]
fn an_async_body_keeps_its_node_span_run_id_and_name_after_awaits() {
    let lifecycle = Lifecycle::new().hook(tel().hooks());
    let run_id = "lc-async";
    runtime().block_on(async {
        let run = lifecycle.start_run(RunInfo::new("lc").run_id(run_id));
        let meta = NodeMeta::new("fetch");
        let task = TaskMeta::single(&meta);
        let mut node = run.node(None, &meta, &task);
        assert_eq!(node.run_async(body_that_awaits("fetch")).await, 7);
        node.finish(NodeOutcome::Succeeded);
        run.finish();
    });
    let node = span(run_id, "fetch");
    let child = span(run_id, "child");
    assert!(
        child.is_child_of(&node),
        "the child span nests under the node span"
    );
    assert_eq!(child.run_id().as_deref(), Some(run_id));
    let record = log(run_id, "after await fetch");
    assert_eq!(record.attribute_str("dag.node.name"), Some("fetch"));
    let logged_in = record.trace_context().map(|t| t.span_id);
    assert_eq!(
        logged_in,
        Some(child.span_context.span_id()),
        "logged in the child span"
    );
}

#[test]
fn an_async_body_reports_to_its_node_after_awaits() {
    let lifecycle = Lifecycle::new().hook(tel().hooks());
    let run_id = "lc-async-scope";
    let seen = runtime().block_on(async {
        let run = lifecycle.start_run(RunInfo::new("lc").run_id(run_id));
        let meta = NodeMeta::new("cluster");
        let task = TaskMeta::single(&meta);
        let mut node = run.node(None, &meta, &task);
        let seen = node
            .run_async(async {
                tokio::task::yield_now().await;
                dagtel::otel::report::entity("event-7");
                dagtel::otel::report::event("merged", serde_json::json!({ "beams": 3 }));
                Some(dagtel::otel::NodeScope::current()?.name().to_string())
            })
            .await;
        node.finish(NodeOutcome::Succeeded);
        run.finish();
        seen
    });
    assert_eq!(
        seen.as_deref(),
        Some("cluster"),
        "the node's scope, after an await"
    );
    assert_reported(&span(run_id, "cluster"), "event-7", "merged");
}

/// The node span carries the entity and the span event its body reported.
fn assert_reported(node: &SpanData, entity: &str, event: &str) {
    assert_eq!(node.attribute_str("dag.entity.id").as_deref(), Some(entity));
    let events: Vec<_> = node.events.iter().map(|e| e.name.to_string()).collect();
    assert!(events.iter().any(|e| e == event), "{events:?}");
}

#[test]
fn a_sync_body_reports_to_its_node() {
    let lifecycle = Lifecycle::new().hook(tel().hooks());
    let run_id = "lc-sync-report";
    let run = lifecycle.start_run(RunInfo::new("lc").run_id(run_id));
    let meta = NodeMeta::new("classify");
    let task = TaskMeta::single(&meta);
    let mut node = run.node(None, &meta, &task);
    node.run(|| {
        dagtel::otel::report::entity("cand-3");
        dagtel::otel::report::artifact("model", serde_json::json!({ "path": "m.bin" }));
    });
    node.finish(NodeOutcome::Succeeded);
    run.finish();
    assert_reported(&span(run_id, "classify"), "cand-3", "dag.artifact");
}

#[test]
fn async_nodes_joined_in_one_task_run_in_parallel_through_carry_spawn() {
    // The handles borrow the run, so nodes are not spawned; their bodies are, with the node's
    // context carried to the spawned task.
    let lifecycle = Lifecycle::new().hook(tel().hooks());
    let run_id = "lc-join";
    let threads = runtime().block_on(async {
        let run = lifecycle.start_run(RunInfo::new("lc").run_id(run_id));
        let metas: Vec<NodeMeta> = (0..4)
            .map(|i| NodeMeta::new(format!("part[{i}]")))
            .collect();
        let tasks: Vec<TaskMeta> = metas.iter().map(TaskMeta::single).collect();
        let mut nodes: Vec<_> = metas
            .iter()
            .zip(&tasks)
            .map(|(meta, task)| run.node(None, meta, task))
            .collect();
        let bodies = nodes.iter_mut().zip(&metas).map(|(node, meta)| {
            let name = meta.name().to_string();
            node.run_async(async move {
                let spawned = dagtel::otel::carry::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    tracing::info_span!("work", of = name.as_str()).in_scope(|| {});
                    std::thread::current().id()
                });
                spawned.await.expect("the spawned body ends")
            })
        });
        let threads = futures_util::future::join_all(bodies).await;
        for node in nodes {
            node.finish(NodeOutcome::Succeeded);
        }
        run.finish();
        threads
    });
    assert_eq!(threads.len(), 4);
    let spans = tel().spans_of_run(run_id);
    for i in 0..4 {
        let name = format!("part[{i}]");
        let node = span(run_id, &name);
        let work = spans
            .iter()
            .find(|s| s.name == "work" && s.attribute_str("of").as_deref() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("no work span of {name}"));
        assert!(
            work.is_child_of(&node),
            "{name}'s spawned work nests under it"
        );
    }
}

#[test]
fn a_panicking_async_body_ends_its_node_as_panicked_and_passes_the_panic_on() {
    let lifecycle = Lifecycle::new().hook(tel().hooks());
    let run_id = "lc-async-panic";
    let caught = runtime().block_on(async {
        let run = lifecycle.start_run(RunInfo::new("lc").run_id(run_id));
        let meta = NodeMeta::new("boom");
        let task = TaskMeta::single(&meta);
        let mut node = run.node(None, &meta, &task);
        let body = async {
            tokio::task::yield_now().await;
            panic!("async body blew up")
        };
        let caught = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
            node.run_async::<_>(body),
        ))
        .await;
        drop(node); // ended by its drop, which knows the panic
        run.finish();
        caught
    });
    assert!(caught.is_err(), "the body's panic reaches the caller");
    let node = span(run_id, "boom");
    assert!(
        matches!(&node.status, Status::Error { description } if description.contains("async body blew up"))
    );
}

#[test]
fn a_sampled_out_run_still_names_the_node_in_its_logs() {
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let hooks = OtelHooks::new(&provider, tel().meter_provider());
    let lifecycle = Lifecycle::new().hook(hooks);
    let run_id = "lc-sampled-out";
    runtime().block_on(async {
        let run = lifecycle.start_run(RunInfo::new("lc").run_id(run_id));
        let (sync_meta, async_meta) = (NodeMeta::new("sync_node"), NodeMeta::new("async_node"));
        let (t1, t2) = (TaskMeta::single(&sync_meta), TaskMeta::single(&async_meta));
        let mut node = run.node(None, &sync_meta, &t1);
        node.run(|| tracing::info!("in sync_node"));
        node.finish(NodeOutcome::Succeeded);
        let mut node = run.node(None, &async_meta, &t2);
        node.run_async(body_that_awaits("async_node")).await;
        node.finish(NodeOutcome::Succeeded);
        run.finish();
    });
    assert!(tel().spans_of_run(run_id).is_empty(), "sampled out");
    for (body, node) in [
        ("in sync_node", "sync_node"),
        ("after await async_node", "async_node"),
    ] {
        let record = log(run_id, body);
        assert_eq!(record.attribute_str("dag.node.name"), Some(node));
    }
}

#[test]
fn work_between_nodes_is_part_of_the_run() {
    let lifecycle = Lifecycle::new().hook(tel().hooks());
    let run_id = "lc-work";
    let run = lifecycle.start_run(RunInfo::new("lc").run_id(run_id));
    std::thread::scope(|s| {
        s.spawn(|| {
            run.work(|| {
                tracing::info_span!("scheduling").in_scope(|| tracing::info!("worker up"));
            })
        });
    });
    run.finish();
    let root = span(run_id, "run lc");
    assert!(span(run_id, "scheduling").is_child_of(&root));
    assert_eq!(log(run_id, "worker up").run_id().as_deref(), Some(run_id));
}

/// A hook that counts `around_work` calls, to check `work` wraps once.
#[derive(Clone, Default)]
struct CountsWork(Arc<std::sync::atomic::AtomicUsize>);

impl Hooks for CountsWork {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();
    fn around_work(&self, _: &(), work: &mut dyn FnMut()) -> HookResult {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        work();
        Ok(())
    }
}

#[test]
fn work_calls_around_work_once_and_returns_the_value() {
    let counts = CountsWork::default();
    let lifecycle = Lifecycle::new().hook(counts.clone());
    let run = lifecycle.start_run(RunInfo::new("lc"));
    assert_eq!(run.work(|| 41 + 1), 42);
    run.finish();
    assert_eq!(counts.0.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn a_stage_of_another_run_is_not_used_and_is_reported() {
    let lifecycle = Lifecycle::new().hook(tel().hooks());
    let (a_id, b_id) = ("lc-mix-a", "lc-mix-b");
    let a = lifecycle.start_run(RunInfo::new("lc").run_id(a_id));
    let b = lifecycle.start_run(RunInfo::new("lc").run_id(b_id));
    let stage_of_a = a.stage("load", 1);
    let meta = NodeMeta::new("mixed").with_stage("load");
    let task = TaskMeta::single(&meta);
    let mut node = b.node(Some(&stage_of_a), &meta, &task);
    node.run(|| ());
    node.finish(NodeOutcome::Failed {
        message: "x".into(),
    });
    let failures = b.failures().kept();
    stage_of_a.finish();
    a.finish();
    b.finish();
    let node = span(b_id, "mixed");
    assert!(
        node.is_child_of(&span(b_id, "run lc")),
        "in its own run's trace"
    );
    assert!(tel().spans_of_run(a_id).iter().all(|s| s.name != "mixed"));
    assert!(
        matches!(&span(a_id, "run lc").status, Status::Unset | Status::Ok),
        "run a had no failed node"
    );
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].phase, HookPhase::Driver);
    assert!(
        failures[0].message.contains("stage `load` of run lc-mix-a"),
        "{}",
        failures[0].message
    );
}

#[test]
fn a_stage_the_node_meta_does_not_name_is_reported() {
    let lifecycle = Lifecycle::new();
    let run = lifecycle.start_run(RunInfo::new("lc"));
    let stage = run.stage("load", 2);
    let (named, unnamed) = (NodeMeta::new("a").with_stage("load"), NodeMeta::new("b"));
    for meta in [&named, &unnamed] {
        let task = TaskMeta::single(meta);
        let mut node = run.node(Some(&stage), meta, &task);
        node.run(|| ());
        node.finish(NodeOutcome::Succeeded);
    }
    stage.finish();
    let failures = run.failures().kept();
    run.finish();
    assert_eq!(failures.len(), 1, "only `b`: {failures:?}");
    let message = &failures[0].message;
    assert!(
        message.contains("node `b` runs in stage `load` but its `NodeMeta` names no stage"),
        "{message}"
    );
}

#[test]
fn a_task_group_is_one_task_holding_its_nodes() {
    let lifecycle = Lifecycle::new().hook(tel().hooks());
    let run_id = "lc-group";
    let run = lifecycle.start_run(RunInfo::new("lc").run_id(run_id));
    let first = NodeMeta::new("ga").with_task_group("G");
    let second = NodeMeta::new("gb").with_task_group("G").with_deps(["ga"]);
    let group = TaskMeta::group("G", None, vec!["ga".into(), "gb".into()]);
    let task = run.task(None, &group);
    for meta in [&first, &second] {
        let mut node = task.node(meta);
        node.run(|| ());
        node.finish(NodeOutcome::Succeeded);
    }
    task.finish();
    run.finish();
    let task_spans = tel().spans_of_run(run_id);
    let task_spans: Vec<_> = task_spans.iter().filter(|s| s.name == "task G").collect();
    assert_eq!(task_spans.len(), 1, "one task span");
    for name in ["ga", "gb"] {
        assert!(
            span(run_id, name).is_child_of(task_spans[0]),
            "{name} under task G"
        );
    }
}

#[test]
fn a_node_run_in_a_task_that_does_not_list_it_is_reported() {
    let lifecycle = Lifecycle::new();
    let run = lifecycle.start_run(RunInfo::new("lc"));
    let group = TaskMeta::group("G", None, vec!["ga".into()]);
    let stray = NodeMeta::new("stray");
    let task = run.task(None, &group);
    task.node(&stray).finish(NodeOutcome::Succeeded);
    task.finish();
    let failures = run.failures().kept();
    run.finish();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]
            .message
            .contains("node `stray` runs in task `G`, which does not list it")
    );
}

#[test]
fn a_run_dropped_unfinished_says_why_it_failed() {
    let lifecycle = Lifecycle::new().hook(tel().hooks());
    drop(lifecycle.start_run(RunInfo::new("lc").run_id("lc-dropped")));
    let root = span("lc-dropped", "run lc");
    assert!(
        matches!(&root.status, Status::Error { description } if description.contains("ended unfinished")),
        "{:?}",
        root.status
    );
}

/// A hook whose `before_node` always fails.
struct FailsBeforeNode;

impl Hooks for FailsBeforeNode {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();
    fn before_node(&self, _: Parents<'_, Self>, node: &NodeStart<'_>) -> HookResult<()> {
        Err(dagtel::hooks::HookError::msg(format!("no {}", node.run_id)))
    }
}

#[test]
fn each_run_keeps_its_own_hook_failures() {
    let lifecycle = Lifecycle::new().hook(FailsBeforeNode);
    for i in 0..70 {
        let run = lifecycle.start_run(RunInfo::new("lc").run_id(format!("many-{i}")));
        let meta = NodeMeta::new("n");
        let task = TaskMeta::single(&meta);
        let mut node = run.node(None, &meta, &task);
        node.run(|| ());
        node.finish(NodeOutcome::Succeeded);
        let failures = run.failures().kept();
        assert_eq!(run.failures().count(), 1);
        assert_eq!(
            failures[0].message,
            format!("no many-{i}"),
            "this run's own"
        );
        run.finish();
    }
    assert_eq!(
        lifecycle.failures().count(),
        70,
        "and all of them over the lifecycle"
    );
}

#[test]
fn a_second_retry_without_a_run_is_ignored_and_reported() {
    let lifecycle = Lifecycle::new().hook(tel().hooks());
    let run_id = "lc-retry";
    let run = lifecycle.start_run(RunInfo::new("lc").run_id(run_id));
    let meta = NodeMeta::new("flaky");
    let task = TaskMeta::single(&meta);
    let mut node = run.node(None, &meta, &task);
    node.run(|| ());
    node.retry(NodeOutcome::Failed {
        message: "first".into(),
    });
    node.retry(NodeOutcome::Failed {
        message: "second".into(),
    });
    assert_eq!(node.attempt(), 2);
    node.run(|| ());
    node.finish(NodeOutcome::Succeeded);
    let failures = run.failures().kept();
    run.finish();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]
            .message
            .contains("node `flaky`: `retry` with no attempt running")
    );
    assert_eq!(
        tel()
            .spans_of_run(run_id)
            .iter()
            .filter(|s| s.name == "flaky")
            .count(),
        2
    );
}

#[test]
fn a_group_given_a_stage_of_another_run_is_reported_once() {
    let lifecycle = Lifecycle::new();
    let a = lifecycle.start_run(RunInfo::new("a"));
    let b = lifecycle.start_run(RunInfo::new("b"));
    let stage_of_a = a.stage("load", 1);
    let meta = NodeMeta::new("g1").with_stage("load").with_task_group("G");
    let group = TaskMeta::group("G", Some("load"), vec!["g1".into()]);
    let task = b.task(Some(&stage_of_a), &group);
    task.node(&meta).finish(NodeOutcome::Succeeded);
    task.finish();
    let failures = b.failures().kept();
    stage_of_a.finish();
    a.finish();
    b.finish();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].message.contains("task `G` of run"),
        "{}",
        failures[0].message
    );
}

#[test]
fn a_retried_async_node_declares_its_entity_afresh() {
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let lifecycle = Lifecycle::new().hook(OtelHooks::new(&provider, tel().meter_provider()));
    let run_id = "lc-entity-retry";
    runtime().block_on(async {
        let run = lifecycle.start_run(RunInfo::new("lc").run_id(run_id));
        let meta = NodeMeta::new("ent");
        let task = TaskMeta::single(&meta);
        let mut node = run.node(None, &meta, &task);
        node.run_async(async {
            dagtel::otel::report::entity("e1");
            tracing::info!("attempt one");
        })
        .await;
        node.retry(NodeOutcome::Failed {
            message: "x".into(),
        });
        node.run_async(async {
            dagtel::otel::report::entity("e2");
            tracing::info!("attempt two");
        })
        .await;
        node.finish(NodeOutcome::Succeeded);
        run.finish();
    });
    for (body, entity) in [("attempt one", "e1"), ("attempt two", "e2")] {
        assert_eq!(
            log(run_id, body).attribute_str("dag.entity.id"),
            Some(entity)
        );
    }
}

/// Records the task and node calls it gets, as text.
#[derive(Clone, Default)]
struct Calls(Arc<std::sync::Mutex<Vec<String>>>);

impl Calls {
    fn push(&self, call: String) {
        self.0.lock().unwrap().push(call);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Hooks for Calls {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();
    fn before_task(
        &self,
        _: Parents<'_, Self>,
        task: &dagtel::hooks::TaskStart<'_>,
    ) -> HookResult<()> {
        self.push(format!("before_task {}", task.task.id()));
        Ok(())
    }
    fn after_task(
        &self,
        _: Parents<'_, Self>,
        _: (),
        task: &dagtel::hooks::TaskEnd<'_>,
    ) -> HookResult {
        self.push(format!("after_task {} {:?}", task.task.id(), task.outcome));
        Ok(())
    }
    fn before_node(&self, _: Parents<'_, Self>, node: &NodeStart<'_>) -> HookResult<()> {
        self.push(format!(
            "before_node {} #{}",
            node.node.name(),
            node.attempt
        ));
        Ok(())
    }
    fn after_node(
        &self,
        _: Parents<'_, Self>,
        _: (),
        node: &dagtel::hooks::NodeEnd<'_>,
    ) -> HookResult {
        let (name, attempt) = (node.node.name(), node.attempt);
        self.push(format!(
            "after_node {name} #{attempt} {}",
            node.outcome.kind()
        ));
        Ok(())
    }
}

#[test]
fn a_task_group_makes_the_calls_dagtels_executor_makes() {
    use dagtel::{DagBuilder, Executor, Inputs, NodeError, NodeResult, Request};
    let calls = Calls::default();
    let mut g = DagBuilder::new("grp");
    let g1 = g.node("g1").task("G").run((), |_, ()| Ok(1u8));
    let g2 = g
        .node("g2")
        .task("G")
        .run(g1, |_, _| -> NodeResult<u8> { Err(NodeError::msg("no")) });
    let plan = g.build().unwrap().plan(&Request::new().output(g2)).unwrap();
    let _ = Executor::sequential()
        .hook(calls.clone())
        .run(&plan, Inputs::new());
    let executor = calls.take();

    let lifecycle = Lifecycle::new().hook(calls.clone());
    let run = lifecycle.start_run(RunInfo::new("grp"));
    let first = NodeMeta::new("g1").with_task_group("G");
    let second = NodeMeta::new("g2").with_task_group("G").with_deps(["g1"]);
    let group = TaskMeta::group("G", None, vec!["g1".into(), "g2".into()]);
    let task = run.task(None, &group);
    let mut node = task.node(&first);
    node.run(|| ());
    node.finish(NodeOutcome::Succeeded);
    let mut node = task.node(&second);
    node.run(|| ());
    node.finish(NodeOutcome::Failed {
        message: "no".into(),
    });
    task.finish();
    run.finish();
    assert_eq!(calls.take(), executor);
}

#[test]
fn a_task_group_dropped_unfinished_ends_as_failed() {
    let calls = Calls::default();
    let lifecycle = Lifecycle::new().hook(calls.clone());
    let run = lifecycle.start_run(RunInfo::new("grp"));
    let group = TaskMeta::group("G", None, vec!["g1".into()]);
    let meta = NodeMeta::new("g1").with_task_group("G");
    {
        let task = run.task(None, &group);
        task.node(&meta).finish(NodeOutcome::Succeeded);
    }
    run.finish();
    assert_eq!(
        calls.take(),
        [
            "before_task G",
            "before_node g1 #1",
            "after_node g1 #1 ok",
            "after_task G Failed"
        ]
    );
}

#[test]
fn an_async_attempt_cut_short_stays_open_until_the_caller_ends_it() {
    let calls = Calls::default();
    let lifecycle = Lifecycle::new().hook(calls.clone());
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    runtime().block_on(async {
        let run = lifecycle.start_run(RunInfo::new("cut"));
        let meta = NodeMeta::new("slow");
        let task = TaskMeta::single(&meta);
        let mut node = run.node(None, &meta, &task);
        struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let guard = SetOnDrop(Arc::clone(&dropped));
        let body = async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(60)).await;
        };
        let limit = Duration::from_millis(20);
        assert!(
            tokio::time::timeout(limit, node.run_async(body))
                .await
                .is_err()
        );
        assert_eq!(node.attempt(), 1, "the attempt is still open");
        node.finish(NodeOutcome::TimedOut { limit });
        run.finish();
    });
    assert!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        "the body was dropped"
    );
    assert_eq!(
        calls.take(),
        [
            "before_task slow",
            "before_node slow #1",
            "after_node slow #1 timeout",
            "after_task slow Failed"
        ]
    );
}
