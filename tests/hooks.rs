//! Hooks: order, counts and state under parallel execution, wrappers, composition,
//! containment of failing hooks, and the driver for external executors.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;

use dagtel::hooks::*;
use dagtel::*;
use futures_util::future::BoxFuture;

#[derive(Clone, Debug, PartialEq)]
enum Ev {
    BeforeRun,
    AfterRun(Outcome, Vec<String>),
    BeforeStage(String),
    AfterStage(String, Outcome),
    BeforeTask(String),
    AfterTask(String, Outcome),
    BeforeNode(String, u32),
    AfterNode(String, u32, String, bool),
}

/// Records every call, and checks that states travel from before to after intact.
#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<Ev>>,
    wrong_thread: AtomicUsize,
    wrong_parent: AtomicUsize,
}

#[derive(Default)]
struct NodeState {
    name: String,
    thread: Option<ThreadId>,
}

impl Recorder {
    fn push(&self, ev: Ev) {
        self.log.lock().unwrap().push(ev);
    }
    fn events(&self) -> Vec<Ev> {
        self.log.lock().unwrap().clone()
    }
}

impl Hooks for Recorder {
    type Run = String; // the run id
    type Stage = String; // the stage name
    type Task = String; // the task id
    type Node = NodeState;

    fn before_run(&self, run: &RunStart<'_>) -> HookResult<String> {
        self.push(Ev::BeforeRun);
        Ok(run.run_id.to_string())
    }
    fn after_run(&self, state: String, run: &RunEnd<'_>) -> HookResult {
        assert_eq!(state, run.run_id.as_str());
        self.push(Ev::AfterRun(
            run.outcome,
            run.failed.iter().map(|s| s.to_string()).collect(),
        ));
        Ok(())
    }
    fn before_stage(&self, _: &String, stage: &StageStart<'_>) -> HookResult<String> {
        self.push(Ev::BeforeStage(stage.stage.to_string()));
        Ok(stage.stage.to_string())
    }
    fn after_stage(&self, _: &String, state: &String, stage: &StageEnd<'_>) -> HookResult {
        assert_eq!(state, stage.stage);
        self.push(Ev::AfterStage(stage.stage.to_string(), stage.outcome));
        Ok(())
    }
    fn before_task(&self, parents: Parents<'_, Self>, task: &TaskStart<'_>) -> HookResult<String> {
        if parents.stage.map(String::as_str) != task.task.stage() {
            self.wrong_parent.fetch_add(1, Ordering::Relaxed);
        }
        self.push(Ev::BeforeTask(task.task.id().to_string()));
        Ok(task.task.id().to_string())
    }
    fn after_task(&self, _: Parents<'_, Self>, state: String, task: &TaskEnd<'_>) -> HookResult {
        assert_eq!(state, task.task.id());
        self.push(Ev::AfterTask(state, task.outcome));
        Ok(())
    }
    fn before_node(
        &self,
        parents: Parents<'_, Self>,
        node: &NodeStart<'_>,
    ) -> HookResult<NodeState> {
        if parents.task.map(String::as_str) != Some(node.node.task_id())
            || parents.run != node.run_id.as_str()
        {
            self.wrong_parent.fetch_add(1, Ordering::Relaxed);
        }
        self.push(Ev::BeforeNode(node.node.name().to_string(), node.attempt));
        Ok(NodeState {
            name: node.node.name().to_string(),
            thread: Some(std::thread::current().id()),
        })
    }
    fn after_node(&self, _: Parents<'_, Self>, state: NodeState, node: &NodeEnd<'_>) -> HookResult {
        if state.thread != Some(std::thread::current().id()) || state.name != node.node.name() {
            self.wrong_thread.fetch_add(1, Ordering::Relaxed);
        }
        self.push(Ev::AfterNode(
            node.node.name().to_string(),
            node.attempt,
            node.outcome.kind().to_string(),
            node.will_retry,
        ));
        Ok(())
    }
}

/// A wide staged graph: `src` -> 200 `work{i}` (stage "work") -> `sink` (stage "reduce").
fn wide_staged() -> (Dag, Handle<u64>) {
    let mut g = DagBuilder::new("wide-staged");
    let src = g.node("src").tag("layer", "io").run((), |_, ()| Ok(1u64));
    let work: Vec<Handle<u64>> = (0..200u64)
        .map(|i| {
            g.node(format!("work{i}"))
                .stage("work")
                .run(src, move |_, s| {
                    std::hint::black_box((0..200).sum::<u64>());
                    Ok(s + i)
                })
        })
        .collect();
    let sink = g
        .node("sink")
        .stage("reduce")
        .run(work, |_, w| Ok(w.iter().copied().sum::<u64>()));
    (g.build().unwrap(), sink)
}

fn position(events: &[Ev], wanted: &Ev) -> usize {
    events
        .iter()
        .position(|e| e == wanted)
        .unwrap_or_else(|| panic!("missing {wanted:?}"))
}

#[test]
fn hooks_see_every_level_in_order_under_parallel_execution() {
    let (dag, sink) = wide_staged();
    let plan = dag.plan(&Request::new().output(sink)).unwrap();
    for exec_threads in [1usize, 4] {
        let recorder = Arc::new(Recorder::default());
        let exec = Executor::parallel()
            .threads(exec_threads)
            .hook(recorder.clone());
        exec.run(&plan, Inputs::new()).unwrap();
        let events = recorder.events();
        assert_eq!(events.first(), Some(&Ev::BeforeRun));
        assert_eq!(
            events.last(),
            Some(&Ev::AfterRun(Outcome::Succeeded, vec![]))
        );
        let count = |f: &dyn Fn(&Ev) -> bool| events.iter().filter(|e| f(e)).count();
        assert_eq!(count(&|e| matches!(e, Ev::BeforeNode(..))), plan.len());
        assert_eq!(count(&|e| matches!(e, Ev::AfterNode(..))), plan.len());
        assert_eq!(count(&|e| matches!(e, Ev::BeforeTask(_))), plan.len());
        assert_eq!(count(&|e| matches!(e, Ev::AfterTask(..))), plan.len());
        assert_eq!(count(&|e| matches!(e, Ev::BeforeStage(_))), 2);
        assert_eq!(count(&|e| matches!(e, Ev::AfterStage(..))), 2);
        for node in plan.nodes() {
            let name = node.name().to_string();
            let bt = position(&events, &Ev::BeforeTask(name.clone()));
            let bn = position(&events, &Ev::BeforeNode(name.clone(), 1));
            let an = position(&events, &Ev::AfterNode(name.clone(), 1, "ok".into(), false));
            let at = position(&events, &Ev::AfterTask(name.clone(), Outcome::Succeeded));
            assert!(bt < bn && bn < an && an < at, "{name}: {bt} {bn} {an} {at}");
            if let Some(stage) = node.stage() {
                assert!(position(&events, &Ev::BeforeStage(stage.into())) < bt);
                assert!(at < position(&events, &Ev::AfterStage(stage.into(), Outcome::Succeeded)));
            }
        }
        // Stage "work" ends before stage "reduce" starts: sink needs all of work.
        assert!(
            position(&events, &Ev::AfterStage("work".into(), Outcome::Succeeded))
                < position(&events, &Ev::BeforeStage("reduce".into()))
        );
        assert_eq!(recorder.wrong_thread.load(Ordering::Relaxed), 0);
        assert_eq!(recorder.wrong_parent.load(Ordering::Relaxed), 0);
    }
}

#[test]
fn failures_and_skips_reach_hooks_and_propagate_to_task_stage_and_run() {
    let mut g = DagBuilder::new("failing");
    let bad = g
        .node("bad")
        .stage("s1")
        .run((), |_, ()| -> NodeResult<u8> {
            Err(NodeError::msg("nope"))
        });
    let later = g.node("later").stage("s2").run(bad, |_, b| Ok(*b));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(later)).unwrap();
    let recorder = Arc::new(Recorder::default());
    let exec = Executor::parallel().threads(2).hook(recorder.clone());
    exec.run(&plan, Inputs::new()).unwrap_err();
    let events = recorder.events();
    assert!(events.contains(&Ev::AfterNode("bad".into(), 1, "error".into(), false)));
    assert!(events.contains(&Ev::AfterTask("bad".into(), Outcome::Failed)));
    assert!(events.contains(&Ev::AfterStage("s1".into(), Outcome::Failed)));
    // The skipped node is visible: before/after with attempt 0 and a skipped outcome.
    assert!(events.contains(&Ev::BeforeNode("later".into(), 0)));
    assert!(events.contains(&Ev::AfterNode("later".into(), 0, "skipped".into(), false)));
    assert!(events.contains(&Ev::AfterTask("later".into(), Outcome::Skipped)));
    assert!(events.contains(&Ev::AfterStage("s2".into(), Outcome::Skipped)));
    assert_eq!(
        events.last(),
        Some(&Ev::AfterRun(Outcome::Failed, vec!["bad".into()]))
    );
}

#[test]
fn each_retry_attempt_is_a_hook_pair() {
    let mut g = DagBuilder::new("retry");
    let flaky = g
        .node("flaky")
        .retry(RetryPolicy::attempts(3))
        .run((), |ctx, ()| {
            if ctx.attempt() < 3 {
                Err(NodeError::msg("not yet"))
            } else {
                Ok(())
            }
        });
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(flaky)).unwrap();
    let recorder = Arc::new(Recorder::default());
    Executor::sequential()
        .hook(recorder.clone())
        .run(&plan, Inputs::new())
        .unwrap();
    let nodes: Vec<Ev> = recorder
        .events()
        .into_iter()
        .filter(|e| matches!(e, Ev::BeforeNode(..) | Ev::AfterNode(..)))
        .collect();
    let f = || "flaky".to_string();
    assert_eq!(
        nodes,
        vec![
            Ev::BeforeNode(f(), 1),
            Ev::AfterNode(f(), 1, "error".into(), true),
            Ev::BeforeNode(f(), 2),
            Ev::AfterNode(f(), 2, "error".into(), true),
            Ev::BeforeNode(f(), 3),
            Ev::AfterNode(f(), 3, "ok".into(), false),
        ]
    );
}

/// Pushes "<label>:<event>" into a shared log, to check composition order.
struct Labelled {
    label: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl Labelled {
    fn push(&self, what: &str) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:{what}", self.label));
    }
}

impl Hooks for Labelled {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();
    fn before_run(&self, _: &RunStart<'_>) -> HookResult {
        self.push("before_run");
        Ok(())
    }
    fn after_run(&self, _: (), _: &RunEnd<'_>) -> HookResult {
        self.push("after_run");
        Ok(())
    }
    fn before_node(&self, _: Parents<'_, Self>, _: &NodeStart<'_>) -> HookResult {
        self.push("before_node");
        Ok(())
    }
    fn after_node(&self, _: Parents<'_, Self>, _: (), _: &NodeEnd<'_>) -> HookResult {
        self.push("after_node");
        Ok(())
    }
    fn around_node(&self, _: &(), _: &NodeStart<'_>, body: &mut dyn FnMut()) -> HookResult {
        self.push("enter");
        body();
        self.push("exit");
        Ok(())
    }
}

#[test]
fn hooks_compose_before_in_order_after_in_reverse() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut g = DagBuilder::new("one");
    let body_log = log.clone();
    let only = g.node("only").run((), move |_, ()| {
        body_log.lock().unwrap().push("body".to_string());
        Ok(())
    });
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(only)).unwrap();
    Executor::sequential()
        .hook(Labelled {
            label: "A",
            log: log.clone(),
        })
        .hook(Labelled {
            label: "B",
            log: log.clone(),
        })
        .run(&plan, Inputs::new())
        .unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "A:before_run",
            "B:before_run",
            "A:before_node",
            "B:before_node",
            "A:enter",
            "B:enter",
            "body",
            "B:exit",
            "A:exit",
            "B:after_node",
            "A:after_node",
            "B:after_run",
            "A:after_run",
        ]
    );
}

thread_local! {
    static CURRENT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Makes "the current node" visible to user code, the way an OTel hook attaches a context.
struct CurrentNode;

struct WithCurrent<F> {
    name: String,
    inner: F,
}

impl<F: Future + Unpin> Future for WithCurrent<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let previous = CURRENT.with(|c| c.replace(Some(self.name.clone())));
        let result = Pin::new(&mut self.inner).poll(cx);
        CURRENT.with(|c| *c.borrow_mut() = previous);
        result
    }
}

impl Hooks for CurrentNode {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = String;
    fn before_node(&self, _: Parents<'_, Self>, node: &NodeStart<'_>) -> HookResult<String> {
        Ok(node.node.name().to_string())
    }
    fn around_node(&self, name: &String, _: &NodeStart<'_>, body: &mut dyn FnMut()) -> HookResult {
        let previous = CURRENT.with(|c| c.replace(Some(name.clone())));
        body();
        CURRENT.with(|c| *c.borrow_mut() = previous);
        Ok(())
    }
    fn around_async(
        &self,
        name: &String,
        _: &NodeStart<'_>,
        body: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(WithCurrent {
            name: name.clone(),
            inner: body,
        })
    }
}

fn current() -> String {
    CURRENT.with(|c| c.borrow().clone().unwrap_or_default())
}

#[test]
fn wrappers_make_context_current_while_user_code_runs() {
    let mut g = DagBuilder::new("wrap");
    let names: Vec<Handle<String>> = (0..50)
        .map(|i| g.node(format!("sync{i}")).run((), |_, ()| Ok(current())))
        .collect();
    let async_name = g.node("async_node").run_async((), |_, ()| async {
        let before = current();
        tokio::task::yield_now().await;
        Ok(format!("{before}|{}", current()))
    });
    let dag = g.build().unwrap();
    let request = names
        .iter()
        .fold(Request::new().output(async_name), |r, h| r.output(*h));
    let plan = dag.plan(&request).unwrap();
    for exec in [
        Executor::sequential().hook(CurrentNode),
        Executor::parallel().threads(4).hook(CurrentNode),
    ] {
        let run = exec.run(&plan, Inputs::new()).unwrap();
        for (i, handle) in names.iter().enumerate() {
            assert_eq!(run.outputs().get(*handle), Some(&format!("sync{i}")));
        }
        assert_eq!(
            run.outputs().get(async_name).map(String::as_str),
            Some("async_node|async_node")
        );
    }
}

/// A hook that misbehaves in every way it can.
struct Broken;

impl Hooks for Broken {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();
    fn before_node(&self, _: Parents<'_, Self>, node: &NodeStart<'_>) -> HookResult {
        if node.node.name() == "a" {
            return Err(HookError::msg("cannot start a"));
        }
        Ok(())
    }
    fn after_task(&self, _: Parents<'_, Self>, _: (), task: &TaskEnd<'_>) -> HookResult {
        if task.task.id() == "b" {
            panic!("after_task exploded");
        }
        Ok(())
    }
    fn around_node(&self, _: &(), node: &NodeStart<'_>, body: &mut dyn FnMut()) -> HookResult {
        match node.node.name() {
            "b" => panic!("wrapper exploded before the body"),
            "c" => Ok(()), // forgets to call the body
            _ => {
                body();
                Ok(())
            }
        }
    }
    fn around_async(
        &self,
        _: &(),
        _: &NodeStart<'_>,
        _body: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, ()> {
        panic!("async wrapper exploded")
    }
    fn after_run(&self, _: (), _: &RunEnd<'_>) -> HookResult {
        Err(HookError::msg("cannot flush"))
    }
}

#[test]
fn failing_hooks_are_contained_counted_and_do_not_affect_other_hooks() {
    let runs = Arc::new(AtomicUsize::new(0));
    let mut g = DagBuilder::new("broken");
    let counter = |runs: &Arc<AtomicUsize>| {
        let runs = runs.clone();
        move |_: &NodeCtx<'_>, ()| {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(1u32)
        }
    };
    let a = g.node("a").run((), counter(&runs));
    let b = g.node("b").run((), counter(&runs));
    let c = g.node("c").run((), counter(&runs));
    let d = g.node("d").run_async((), |_, ()| async { Ok(1u32) });
    let sum = g
        .node("sum")
        .run((a, b, c, d), |_, (a, b, c, d)| Ok(a + b + c + d));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(sum)).unwrap();
    let recorder = Arc::new(Recorder::default());
    let exec = Executor::parallel()
        .threads(2)
        .hook(Broken)
        .hook(recorder.clone());
    let run = exec.run(&plan, Inputs::new()).unwrap();
    assert_eq!(run.outputs().get(sum), Some(&4));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "each sync body ran exactly once"
    );
    let record = run.record();
    let phases: HashMap<HookPhase, usize> =
        record
            .hook_failures
            .iter()
            .fold(HashMap::new(), |mut m, f| {
                *m.entry(f.phase).or_default() += 1;
                m
            });
    assert_eq!(phases.get(&HookPhase::BeforeNode), Some(&1), "{phases:?}");
    assert_eq!(phases.get(&HookPhase::AfterTask), Some(&1));
    assert_eq!(phases.get(&HookPhase::AroundNode), Some(&2)); // b panicked, c skipped body
    assert_eq!(phases.get(&HookPhase::AroundAsync), Some(&1));
    assert_eq!(phases.get(&HookPhase::AfterRun), Some(&1));
    assert_eq!(record.hook_failure_count, 6);
    assert!(
        record
            .hook_failures
            .iter()
            .all(|f| f.hook.contains("Broken"))
    );
    // The well-behaved hook saw every node and the end of the run.
    let events = recorder.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Ev::AfterNode(..)))
            .count(),
        5
    );
    assert_eq!(
        events.last(),
        Some(&Ev::AfterRun(Outcome::Succeeded, vec![]))
    );
}

#[test]
fn hook_events_carry_node_declarations() {
    /// (node, deps, layer tag, task id, fingerprint) per `before_node`.
    type Seen = (String, Vec<String>, Option<String>, String, u64);
    #[derive(Default)]
    struct Capture(Mutex<Vec<Seen>>);
    impl Hooks for Capture {
        type Run = ();
        type Stage = ();
        type Task = ();
        type Node = ();
        fn before_node(&self, _: Parents<'_, Self>, n: &NodeStart<'_>) -> HookResult {
            self.0.lock().unwrap().push((
                n.node.name().to_string(),
                n.node.deps().to_vec(),
                n.node.tag("layer").map(str::to_string),
                n.task.id().to_string(),
                n.node.fingerprint(),
            ));
            Ok(())
        }
    }
    let mut g = DagBuilder::new("decl");
    let x = g.input::<u8>("x");
    let y = g.input::<u8>("y");
    let grouped = g
        .node("grouped")
        .tag("layer", "extract")
        .task("batch")
        .run((x, y), |_, (x, y)| Ok(x + y));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(grouped)).unwrap();
    let capture = Arc::new(Capture::default());
    let exec = Executor::sequential().hook(capture.clone());
    for _ in 0..2 {
        exec.run(&plan, Inputs::new().set(x, 1).set(y, 2)).unwrap();
    }
    let seen = capture.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, "grouped");
    assert_eq!(seen[0].1, ["x", "y"]);
    assert_eq!(seen[0].2.as_deref(), Some("extract"));
    assert_eq!(seen[0].3, "batch");
    assert_eq!(
        seen[0].4, seen[1].4,
        "fingerprint computed once, stable across runs"
    );
}

#[test]
fn lifecycle_drives_the_same_hooks_from_an_external_loop() {
    let recorder = Arc::new(Recorder::default());
    let lifecycle = Lifecycle::new().hook(recorder.clone());
    let run = lifecycle.start_run(RunInfo::new("external").run_id("ext-1").node_count(2));
    assert_eq!(run.run_id().as_str(), "ext-1");
    let stage = run.stage("load", 2);
    let metas = [
        NodeMeta::new("left").with_stage("load"),
        NodeMeta::new("right")
            .with_stage("load")
            .with_deps(["left"]),
    ];
    std::thread::scope(|scope| {
        for meta in &metas {
            let (run, stage) = (&run, &stage);
            scope.spawn(move || {
                let task = TaskMeta::single(meta);
                let mut node = run.node(Some(stage), meta, &task);
                let value = node.run(|| 21 * 2);
                assert_eq!(value, 42);
                if meta.name() == "right" {
                    node.retry(NodeOutcome::Failed {
                        message: "transient".into(),
                    });
                    assert_eq!(node.run(|| 42), 42, "the second attempt");
                }
                node.finish(NodeOutcome::Succeeded);
            });
        }
    });
    stage.finish();
    assert_eq!(run.finish(), Outcome::Succeeded);
    let events = recorder.events();
    assert!(events.contains(&Ev::AfterNode("right".into(), 1, "error".into(), true)));
    assert!(events.contains(&Ev::AfterNode("right".into(), 2, "ok".into(), false)));
    assert!(events.contains(&Ev::AfterStage("load".into(), Outcome::Succeeded)));
    assert_eq!(recorder.wrong_thread.load(Ordering::Relaxed), 0);
    assert_eq!(recorder.wrong_parent.load(Ordering::Relaxed), 0);
    assert_eq!(
        events.last(),
        Some(&Ev::AfterRun(Outcome::Succeeded, vec![]))
    );
}

/// A stage hook that does parallel work on rayon while the stage's tasks are being scheduled.
struct ParallelStageHook;

impl Hooks for ParallelStageHook {
    type Run = ();
    type Stage = u64;
    type Task = ();
    type Node = ();
    fn before_stage(&self, _: &(), _: &StageStart<'_>) -> HookResult<u64> {
        use rayon::prelude::*;
        Ok((0..200_000u64).into_par_iter().map(|x| x % 7).sum())
    }
}

#[test]
fn a_stage_hook_that_uses_rayon_does_not_deadlock() {
    // Fewer stage tasks than threads: idle workers steal pieces of the hook's `par_iter`, the
    // hook's thread waits for them and meanwhile picks up another task of the same stage.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut g = DagBuilder::new("stage-rayon");
        let root = g.node("root").run((), |_, ()| Ok(1u32));
        let members: Vec<Handle<u32>> = (0..3)
            .map(|i| {
                g.node(format!("m{i}"))
                    .stage("s")
                    .run(root, move |_, r| Ok(r + i))
            })
            .collect();
        let sink = g
            .node("sink")
            .run(members, |_, m| Ok(m.iter().copied().sum::<u32>()));
        let dag = g.build().unwrap();
        let plan = dag.plan(&Request::new().output(sink)).unwrap();
        let exec = Executor::parallel().threads(4).hook(ParallelStageHook);
        for _ in 0..200 {
            let run = exec.run(&plan, Inputs::new()).unwrap();
            assert_eq!(run.outputs().get(sink), Some(&6));
        }
        let _ = tx.send(());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("runs with a rayon-using before_stage hook did not finish (deadlock)");
}

/// Polls the node's future once, then drops it (like a `select!` against a deadline).
struct DropsBody;

impl Hooks for DropsBody {
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
            let mut body = body;
            let _ = futures_util::poll!(&mut body);
        })
    }
}

#[test]
fn an_async_wrapper_that_drops_the_body_is_recorded_and_the_node_still_completes() {
    let starts = Arc::new(AtomicUsize::new(0));
    let mut g = DagBuilder::new("drops");
    let seen = starts.clone();
    let value = g.node("value").run_async((), move |_, ()| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(7u8)
        }
    });
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(value)).unwrap();
    // `DropsBody` is outermost; the innocent `CurrentNode` wrapper inside it gets dropped too
    // and must not be blamed.
    let run = Executor::sequential()
        .hook(DropsBody)
        .hook(CurrentNode)
        .run(&plan, Inputs::new())
        .unwrap();
    assert_eq!(run.outputs().get(value), Some(&7));
    assert_eq!(
        starts.load(Ordering::SeqCst),
        1,
        "started under the wrapper, then run on to its end from where it was: once"
    );
    let failures = &run.record().hook_failures;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].hook.contains("DropsBody"));
    assert_eq!(failures[0].phase, HookPhase::AroundAsync);
    assert!(
        failures[0]
            .message
            .contains("without running the node's future to its end")
    );
}

/// Hands the node's future to another task and returns at once, without awaiting it.
struct DetachesBody;

impl Hooks for DetachesBody {
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
        tokio::spawn(body);
        Box::pin(async {})
    }
}

/// A wrapper that detaches the node's future never makes the node run twice at once: the
/// body runs exactly once, and the wrapper is blamed.
#[test]
fn an_async_wrapper_that_detaches_the_body_does_not_run_the_node_twice() {
    let starts = Arc::new(AtomicUsize::new(0));
    let mut g = DagBuilder::new("detaches");
    let seen = starts.clone();
    let value = g.node("value").run_async((), move |_, ()| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            Ok(9u8)
        }
    });
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(value))
        .unwrap();
    for _ in 0..20 {
        starts.store(0, Ordering::SeqCst);
        let run = Executor::parallel()
            .threads(2)
            .hook(DetachesBody)
            .run(&plan, Inputs::new())
            .unwrap();
        assert_eq!(run.outputs().get(value), Some(&9));
        // The detached task may still poll its (now empty) handle: give it a moment.
        std::thread::sleep(std::time::Duration::from_millis(10));
        assert_eq!(starts.load(Ordering::SeqCst), 1, "the body ran once");
        let failures = &run.record().hook_failures;
        assert!(
            failures.iter().any(|f| f.hook.contains("DetachesBody")),
            "{failures:?}"
        );
    }
}

#[test]
fn a_task_starts_only_after_its_upstream_task_ended() {
    let (dag, sink) = wide_staged();
    let plan = dag.plan(&Request::new().output(sink)).unwrap();
    let recorder = Arc::new(Recorder::default());
    Executor::parallel()
        .threads(4)
        .hook(recorder.clone())
        .run(&plan, Inputs::new())
        .unwrap();
    let events = recorder.events();
    let src_end = position(&events, &Ev::AfterTask("src".into(), Outcome::Succeeded));
    for i in 0..200 {
        assert!(src_end < position(&events, &Ev::BeforeTask(format!("work{i}"))));
    }
}

#[test]
fn lifecycle_ends_a_node_whose_body_panicked_and_reports_cancellation() {
    let recorder = Arc::new(Recorder::default());
    let lifecycle = Lifecycle::new().hook(recorder.clone());
    let meta = NodeMeta::new("explodes");
    let task = TaskMeta::single(&meta);
    let run = lifecycle.start_run(RunInfo::new("external"));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut node = run.node(None, &meta, &task);
        node.run(|| panic!("boom in user code"));
    }));
    assert!(caught.is_err(), "the body's panic reaches the caller");
    assert_eq!(run.finish(), Outcome::Failed);
    let events = recorder.events();
    assert!(
        events.contains(&Ev::AfterNode("explodes".into(), 1, "panic".into(), false)),
        "a panic, as under dagtel's executor: {events:?}"
    );
    assert!(events.contains(&Ev::AfterTask("explodes".into(), Outcome::Failed)));

    // Skipped without running: attempt 0; a stage and a run of cancelled nodes: cancelled.
    let run = lifecycle.start_run(RunInfo::new("external"));
    let stage = run.stage("late", 1);
    let skipped = NodeMeta::new("never");
    let task = TaskMeta::single(&skipped);
    run.node(Some(&stage), &skipped, &task)
        .finish(NodeOutcome::Skipped(SkipReason::Cancelled));
    stage.finish();
    assert_eq!(run.finish(), Outcome::Cancelled);
    let events = recorder.events();
    assert!(events.contains(&Ev::AfterNode("never".into(), 0, "skipped".into(), false)));
    assert!(events.contains(&Ev::AfterStage("late".into(), Outcome::Cancelled)));
}

/// `retry` then `finish` with no `run` in between (the budget is spent, or the run was
/// cancelled during the backoff) ends the node with no attempt that never ran; a run or stage
/// dropped without `finish` (the caller's scheduler failed) still ends, as failed.
#[test]
fn lifecycle_invents_no_attempt_and_ends_what_is_dropped() {
    let recorder = Arc::new(Recorder::default());
    let lifecycle = Lifecycle::new().hook(recorder.clone());
    let meta = NodeMeta::new("flaky");
    let task = TaskMeta::single(&meta);
    {
        let run = lifecycle.start_run(RunInfo::new("external"));
        let stage = run.stage("s", 1);
        let mut node = run.node(Some(&stage), &meta, &task);
        node.run(|| ());
        let failure = NodeOutcome::Failed {
            message: "down".into(),
        };
        node.retry(failure.clone());
        node.finish(failure);
        // The caller's scheduler gives up here: neither the stage nor the run is finished.
    }
    let events = recorder.events();
    let attempts: Vec<&Ev> = events
        .iter()
        .filter(|e| matches!(e, Ev::AfterNode(name, ..) if name == "flaky"))
        .collect();
    assert_eq!(
        attempts,
        [&Ev::AfterNode("flaky".into(), 1, "error".into(), true)],
        "one attempt, the one that ran"
    );
    assert!(events.contains(&Ev::AfterTask("flaky".into(), Outcome::Failed)));
    assert!(events.contains(&Ev::AfterStage("s".into(), Outcome::Failed)));
    assert_eq!(
        events.last(),
        Some(&Ev::AfterRun(Outcome::Failed, vec!["flaky".into()]))
    );
}

/// `ActiveNode` forgets an attempt's panic once the caller retries: a node dropped without
/// `finish` after a successful retry is not reported as the first attempt's panic.
mod stale_panic {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::{Arc, Mutex};

    use dagtel::hooks::{HookResult, Hooks, Lifecycle, NodeEnd, Parents, RunInfo};
    use dagtel::{NodeMeta, NodeOutcome, TaskMeta};

    #[derive(Default)]
    struct Ends(Mutex<Vec<(u32, NodeOutcome)>>);

    impl Hooks for Ends {
        type Run = ();
        type Stage = ();
        type Task = ();
        type Node = ();
        fn after_node(&self, _: Parents<'_, Self>, _: (), node: &NodeEnd<'_>) -> HookResult {
            self.0
                .lock()
                .unwrap()
                .push((node.attempt, node.outcome.clone()));
            Ok(())
        }
    }

    #[test]
    fn drop_after_a_successful_retry_does_not_report_the_old_panic() {
        let ends = Arc::new(Ends::default());
        let lifecycle = Lifecycle::new().hook(Arc::clone(&ends));
        let run = lifecycle.start_run(RunInfo::new("lc"));
        let meta = NodeMeta::new("n");
        let task = TaskMeta::single(&meta);
        {
            let mut node = run.node(None, &meta, &task);
            let first = catch_unwind(AssertUnwindSafe(|| {
                node.run(|| -> u32 { panic!("first attempt") })
            }));
            assert!(first.is_err());
            node.retry(NodeOutcome::Panicked {
                message: "first attempt".into(),
            });
            assert_eq!(node.run(|| 5u32), 5);
            // The caller returns early without `finish`.
        }
        drop(run);
        let ends = ends.0.lock().unwrap().clone();
        assert_eq!(ends.len(), 2, "{ends:?}");
        assert_eq!(ends[1].0, 2);
        assert!(
            !matches!(&ends[1].1, NodeOutcome::Panicked { message } if message == "first attempt"),
            "attempt 2 (which returned 5) reported as {:?}",
            ends[1].1
        );
    }
}
