//! Planning: pruning to the requested outputs, overrides, run-time value checks, plan
//! inspection and rendering.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use dagtel::hooks::{HookResult, Hooks, NodeStart, Parents, TaskEnd};
use dagtel::*;

/// ```text
/// x ─┬─> unused
///    └─> a ─┬─> b ─┐
///           │      ├─> d
/// y ───> c ─┼──────┘
///           └─> e        (e reads a)
/// ```
#[derive(Clone, Copy)]
struct Pipeline {
    x: Handle<u64>,
    y: Handle<u64>,
    a: Handle<u64>,
    b: Handle<u64>,
    c: Handle<u64>,
    d: Handle<u64>,
    e: Handle<u64>,
}

fn pipeline() -> (Dag, Pipeline) {
    let mut g = DagBuilder::new("pipeline");
    let x = g.input::<u64>("x");
    let y = g.input::<u64>("y");
    // Declared before `a`, so `x`'s first consumer is a node most plans prune.
    let _unused = g.node("unused").run(x, |_, x| Ok(x * 100));
    let a = g.node("a").run(x, |_, x| Ok(x + 1));
    let b = g.node("b").run(a, |_, a| Ok(a * 2));
    let c = g.node("c").run(y, |_, y| Ok(y * 3));
    let d = g.node("d").run((b, c), |_, (b, c)| Ok(b + c));
    let e = g.node("e").run(a, |_, a| Ok(a * 10));
    let dag = g.build().unwrap();
    (
        dag,
        Pipeline {
            x,
            y,
            a,
            b,
            c,
            d,
            e,
        },
    )
}

fn executors() -> [Executor; 2] {
    [Executor::sequential(), Executor::parallel().threads(2)]
}

fn names(plan: &Plan) -> Vec<&str> {
    plan.nodes().map(NodeMeta::name).collect()
}

fn set_of<'a>(items: impl IntoIterator<Item = &'a str>) -> HashSet<&'a str> {
    items.into_iter().collect()
}

fn recorded(record: &RunRecord) -> HashSet<&str> {
    record.nodes().map(|n| n.name).collect()
}

// ---------------------------------------------------------------------------------------------
// Pruning

#[test]
fn only_ancestors_of_the_requested_output_are_planned() {
    let (dag, p) = pipeline();
    let plan = dag.plan(&Request::new().output(p.b)).unwrap();
    assert_eq!(names(&plan), ["a", "b"]);
    assert_eq!(plan.len(), 2);
    assert!(!plan.is_empty());
    assert_eq!(plan.inputs(), ["x"]);
    assert_eq!(plan.outputs(), ["b"]);
    assert!(plan.overrides().is_empty());
    assert_eq!(plan.edges(), [("x", "a"), ("a", "b")]);

    let plan = dag.plan(&Request::new().output(p.c)).unwrap();
    assert_eq!(names(&plan), ["c"]);
    assert_eq!(plan.inputs(), ["y"]);

    for exec in executors() {
        // `y` is not needed by the plan for `b`, so it need not be supplied.
        let plan = dag.plan(&Request::new().output(p.b)).unwrap();
        let run = exec.run(&plan, Inputs::new().set(p.x, 4)).unwrap();
        assert_eq!(run.outputs().get(p.b), Some(&10));
        assert_eq!(run.outputs().len(), 1);
        assert_eq!(run.outputs().get(p.a), None, "a ran but was not requested");
        assert_eq!(recorded(run.record()), set_of(["a", "b"]));
        assert_eq!(run.record().count(NodeStatus::Succeeded), 2);
    }
}

#[test]
fn requested_input_is_returned_without_running_anything() {
    let (dag, p) = pipeline();
    let plan = dag.plan(&Request::new().output(p.x)).unwrap();
    assert!(plan.is_empty());
    assert_eq!(plan.inputs(), ["x"]);
    assert_eq!(plan.outputs(), ["x"]);
    for exec in executors() {
        let run = exec.run(&plan, Inputs::new().set(p.x, 9)).unwrap();
        assert_eq!(run.outputs().get(p.x), Some(&9));
        assert!(run.record().is_empty());
    }
}

#[test]
fn multiple_outputs_plan_the_union_of_their_ancestors() {
    let (dag, p) = pipeline();
    let plan = dag.plan(&Request::new().output(p.b).output(p.c)).unwrap();
    assert_eq!(set_of(names(&plan)), set_of(["a", "b", "c"]));
    assert_eq!(set_of(plan.inputs()), set_of(["x", "y"]));
    assert_eq!(plan.outputs(), ["b", "c"]);
    for exec in executors() {
        let run = exec
            .run(&plan, Inputs::new().set(p.x, 4).set(p.y, 5))
            .unwrap();
        assert_eq!(run.outputs().get(p.b), Some(&10));
        assert_eq!(run.outputs().get(p.c), Some(&15));
        assert_eq!(run.outputs().get(p.d), None);
        assert_eq!(run.outputs().names(), ["b", "c"]);
        assert_eq!(run.outputs().get_named::<u64>("c"), Some(&15));
        assert_eq!(run.outputs().get_named::<String>("c"), None, "wrong type");
        assert_eq!(recorded(run.record()), set_of(["a", "b", "c"]));
    }

    // By name, with a shared ancestor planned once.
    let plan = dag.plan(&Request::new().named(["d", "e"])).unwrap();
    assert_eq!(set_of(names(&plan)), set_of(["a", "b", "c", "d", "e"]));
    assert_eq!(plan.len(), 5);
    let run = Executor::sequential()
        .run(&plan, Inputs::new().set(p.x, 1).set(p.y, 1))
        .unwrap();
    assert_eq!(run.outputs().get(p.d), Some(&7));
    assert_eq!(run.outputs().get(p.e), Some(&20));
}

// ---------------------------------------------------------------------------------------------
// Overrides

#[test]
fn override_skips_the_node_and_prunes_ancestors_only_it_needed() {
    let (dag, p) = pipeline();
    let plan = dag
        .plan(&Request::new().output(p.d).overrides(["b"]))
        .unwrap();
    assert_eq!(set_of(names(&plan)), set_of(["c", "d"]));
    assert_eq!(plan.inputs(), ["y"], "x only fed the pruned `a`");
    assert_eq!(plan.overrides(), ["b"]);
    assert!(plan.edges().contains(&("b", "d")));
    assert!(
        !plan
            .edges()
            .iter()
            .any(|(from, to)| *from == "a" || *to == "b")
    );

    for exec in executors() {
        let run = exec
            .run(&plan, Inputs::new().set(p.b, 100).set(p.y, 2))
            .unwrap();
        assert_eq!(run.outputs().get(p.d), Some(&106));
        let record = run.record();
        assert_eq!(recorded(record), set_of(["b", "c", "d"]));
        let b = record.node("b").unwrap();
        assert_eq!(b.status, NodeStatus::Overridden);
        assert_eq!(b.outcome, None);
        assert_eq!(b.attempts, 0);
        assert!(record.node("a").is_none(), "a was pruned");
        assert_eq!(record.node("d").unwrap().status, NodeStatus::Succeeded);
        assert_eq!(record.count(NodeStatus::Overridden), 1);
        // Overrides come after the planned nodes.
        assert_eq!(record.nodes().last().unwrap().name, "b");
    }
}

#[test]
fn override_keeps_ancestors_that_another_output_still_needs() {
    let (dag, p) = pipeline();
    let plan = dag
        .plan(&Request::new().output(p.d).output(p.e).overrides(["b"]))
        .unwrap();
    assert_eq!(set_of(names(&plan)), set_of(["a", "c", "d", "e"]));
    assert_eq!(set_of(plan.inputs()), set_of(["x", "y"]));
    assert_eq!(plan.overrides(), ["b"]);

    for exec in executors() {
        let run = exec
            .run(&plan, Inputs::new().set(p.x, 4).set(p.b, 100).set(p.y, 2))
            .unwrap();
        assert_eq!(
            run.outputs().get(p.d),
            Some(&106),
            "uses the override, not 2 * 5"
        );
        assert_eq!(run.outputs().get(p.e), Some(&50));
        let record = run.record();
        assert_eq!(record.node("a").unwrap().status, NodeStatus::Succeeded);
        assert_eq!(record.node("b").unwrap().status, NodeStatus::Overridden);
    }
}

#[test]
fn overridden_output_is_returned_as_supplied() {
    let (dag, p) = pipeline();
    let plan = dag
        .plan(&Request::new().output(p.b).overrides(["b"]))
        .unwrap();
    assert!(plan.is_empty());
    assert!(plan.inputs().is_empty());
    assert_eq!(plan.overrides(), ["b"]);
    let run = Executor::sequential()
        .run(&plan, Inputs::new().set(p.b, 77))
        .unwrap();
    assert_eq!(run.outputs().get(p.b), Some(&77));
    assert_eq!(
        run.record().node("b").unwrap().status,
        NodeStatus::Overridden
    );
}

#[test]
fn override_set_by_name_is_used() {
    let (dag, p) = pipeline();
    let plan = dag
        .plan(&Request::new().output(p.d).overrides(["c"]))
        .unwrap();
    assert_eq!(plan.overrides(), ["c"]);
    assert!(!plan.inputs().contains(&"y"));
    let run = Executor::sequential()
        .run(&plan, Inputs::new().set(p.x, 1).set_named("c", 1000u64))
        .unwrap();
    assert_eq!(run.outputs().get(p.d), Some(&1004));
}

// ---------------------------------------------------------------------------------------------
// Plan errors

#[test]
fn unknown_output_is_a_plan_error() {
    let (dag, _) = pipeline();
    let err = dag.plan(&Request::new().named(["nope"])).unwrap_err();
    assert_eq!(
        err,
        PlanError::UnknownOutput {
            dag: "pipeline".into(),
            name: "nope".into(),
        }
    );
    assert!(err.to_string().contains("nope"), "{err}");

    // A handle of another graph is no output of this one either.
    let mut other = DagBuilder::new("other");
    let foreign = other.input::<u64>("x");
    let err = dag.plan(&Request::new().output(foreign)).unwrap_err();
    assert!(
        matches!(&err, PlanError::UnknownOutput { dag, .. } if dag == "pipeline"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("(a `u64` handle from another graph builder)"),
        "{err}"
    );
}

#[test]
fn unknown_override_is_a_plan_error() {
    let (dag, p) = pipeline();
    let err = dag
        .plan(&Request::new().output(p.d).overrides(["ghost"]))
        .unwrap_err();
    assert_eq!(
        err,
        PlanError::UnknownOverride {
            dag: "pipeline".into(),
            name: "ghost".into(),
        }
    );
    assert!(err.to_string().contains("ghost"), "{err}");
}

#[test]
fn overriding_an_input_is_a_plan_error() {
    let (dag, p) = pipeline();
    let err = dag
        .plan(&Request::new().output(p.d).overrides(["x"]))
        .unwrap_err();
    assert_eq!(err, PlanError::OverrideOfInput { name: "x".into() });
    assert!(err.to_string().contains("Inputs::set"), "{err}");
}

#[test]
fn execute_reports_plan_errors() {
    let (dag, p) = pipeline();
    let err = Executor::sequential()
        .execute(
            &dag,
            &Request::new().named(["nope"]),
            Inputs::new().set(p.x, 1),
        )
        .unwrap_err();
    assert!(
        matches!(&err, RunError::Plan(PlanError::UnknownOutput { name, .. }) if name == "nope"),
        "{err:?}"
    );
    let run = Executor::sequential()
        .execute(&dag, &Request::new().output(p.e), Inputs::new().set(p.x, 2))
        .unwrap();
    assert_eq!(run.outputs().get(p.e), Some(&30));
}

// ---------------------------------------------------------------------------------------------
// Run-time value checks

#[test]
fn missing_input_names_the_input_and_a_planned_consumer() {
    let (dag, p) = pipeline();
    let plan = dag.plan(&Request::new().output(p.d)).unwrap();
    for exec in executors() {
        let err = exec.run(&plan, Inputs::new().set(p.y, 1)).unwrap_err();
        match &err {
            RunError::MissingInput { name, needed_by } => {
                assert_eq!(name, "x");
                // `unused` reads x too, but it is not in this plan.
                assert_eq!(needed_by, "a");
            }
            other => panic!("expected MissingInput, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("`x`") && text.contains("`a`"), "{text}");
        assert!(err.record().is_none());
    }
}

#[test]
fn missing_override_value_is_reported() {
    let (dag, p) = pipeline();
    let plan = dag
        .plan(&Request::new().output(p.d).overrides(["b"]))
        .unwrap();
    let err = Executor::sequential()
        .run(&plan, Inputs::new().set(p.y, 1))
        .unwrap_err();
    assert!(
        matches!(&err, RunError::MissingOverride { name } if name == "b"),
        "{err:?}"
    );
}

#[test]
fn value_of_the_wrong_type_is_reported() {
    let (dag, p) = pipeline();
    let plan = dag.plan(&Request::new().output(p.b)).unwrap();
    let err = Executor::sequential()
        .run(&plan, Inputs::new().set_named("x", "four"))
        .unwrap_err();
    match &err {
        RunError::InputType {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "x");
            assert_eq!(*expected, "u64");
            assert_eq!(*found, std::any::type_name::<&str>());
        }
        other => panic!("expected InputType, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("u64") && text.contains("&str"), "{text}");

    // Same for an override's value.
    let plan = dag
        .plan(&Request::new().output(p.d).overrides(["b"]))
        .unwrap();
    let err = Executor::sequential()
        .run(&plan, Inputs::new().set(p.y, 1).set_named("b", 100i32))
        .unwrap_err();
    assert!(
        matches!(&err, RunError::InputType { name, found, .. } if name == "b" && *found == "i32"),
        "{err:?}"
    );
}

#[test]
fn value_for_an_unknown_name_is_reported() {
    let (dag, p) = pipeline();
    let plan = dag.plan(&Request::new().output(p.b)).unwrap();
    let err = Executor::sequential()
        .run(&plan, Inputs::new().set(p.x, 1).set_named("ghost", 1u64))
        .unwrap_err();
    match &err {
        RunError::UnknownValue { dag, name } => {
            assert_eq!(dag, "pipeline");
            assert_eq!(name, "ghost");
        }
        other => panic!("expected UnknownValue, got {other:?}"),
    }
}

#[test]
fn value_for_a_planned_node_must_be_declared_as_an_override() {
    let (dag, p) = pipeline();
    let plan = dag.plan(&Request::new().output(p.b)).unwrap();
    let err = Executor::sequential()
        .run(&plan, Inputs::new().set(p.x, 1).set(p.a, 5))
        .unwrap_err();
    assert!(
        matches!(&err, RunError::NotOverridden { name } if name == "a"),
        "{err:?}"
    );
    assert!(err.to_string().contains("Request::overrides"), "{err}");
    let err = Executor::parallel()
        .threads(2)
        .run(&plan, Inputs::new().set(p.x, 1).set_named("b", 5u64))
        .unwrap_err();
    assert!(
        matches!(&err, RunError::NotOverridden { name } if name == "b"),
        "{err:?}"
    );
}

#[test]
fn values_the_plan_does_not_need_are_ignored() {
    let (dag, p) = pipeline();
    let plan = dag.plan(&Request::new().output(p.b)).unwrap();
    for exec in executors() {
        let inputs = Inputs::new()
            .set(p.x, 4)
            .set(p.y, 7) // input of pruned `c`
            .set(p.c, 1) // pruned node, not declared as an override
            .set_named("unused", "any type is fine here"); // pruned node, wrong type
        assert_eq!(inputs.len(), 4);
        let run = exec.run(&plan, inputs).unwrap();
        assert_eq!(run.outputs().get(p.b), Some(&10));
        assert_eq!(recorded(run.record()), set_of(["a", "b"]));
    }
}

// ---------------------------------------------------------------------------------------------
// Plan inspection, task groups and stages

/// A task id and the nodes it ran, in order.
type TaskRun = (String, Vec<String>);

/// Records, for every task run, the nodes it ran, in order.
#[derive(Clone, Default)]
struct TaskLog {
    tasks: Arc<Mutex<Vec<TaskRun>>>,
}

impl Hooks for TaskLog {
    type Run = ();
    type Stage = ();
    type Task = Mutex<Vec<String>>;
    type Node = ();

    fn before_node(&self, parents: Parents<'_, Self>, node: &NodeStart<'_>) -> HookResult<()> {
        if let Some(task) = parents.task {
            task.lock().unwrap().push(node.node.name().to_string());
        }
        Ok(())
    }

    fn after_task(
        &self,
        _: Parents<'_, Self>,
        state: Self::Task,
        task: &TaskEnd<'_>,
    ) -> HookResult {
        let nodes = state.into_inner().unwrap();
        self.tasks
            .lock()
            .unwrap()
            .push((task.task.id().to_string(), nodes));
        Ok(())
    }
}

struct Staged {
    dag: Dag,
    x: Handle<u64>,
    report: Handle<u64>,
    threads: ThreadLog,
}

/// Which node ran on which thread, in the order they ran.
type ThreadLog = Arc<Mutex<Vec<(&'static str, ThreadId)>>>;

/// ```text
/// stage load:       x -> load_a, x -> load_b (slow)
/// stage transform:  task grp = [t1 (reads load_a), t2 (reads t1, load_b)]
/// no stage:         report (reads t2)
/// ```
fn staged() -> Staged {
    let mut g = DagBuilder::new("staged");
    g.stage("load").stage("transform").stage("never used");
    let threads: ThreadLog = Arc::default();
    let load_b_done = Arc::new(AtomicBool::new(false));
    let x = g.input::<u64>("x");
    let load_a = g.node("load_a").stage("load").run(x, |_, x| Ok(x + 1));
    let done = Arc::clone(&load_b_done);
    let load_b = g.node("load_b").stage("load").run(x, move |_, x| {
        std::thread::sleep(Duration::from_millis(30));
        done.store(true, Ordering::SeqCst);
        Ok(x + 2)
    });
    let (log, done) = (Arc::clone(&threads), Arc::clone(&load_b_done));
    let t1 = g
        .node("t1")
        .stage("transform")
        .task("grp")
        .run(load_a, move |_, a| {
            // The group starts as one unit, once every input of the group is ready.
            if !done.load(Ordering::SeqCst) {
                return Err(NodeError::msg(
                    "t1 started before the group's inputs were ready",
                ));
            }
            log.lock()
                .unwrap()
                .push(("t1", std::thread::current().id()));
            Ok(a * 10)
        });
    let log = Arc::clone(&threads);
    let t2 = g
        .node("t2")
        .stage("transform")
        .task("grp")
        .run((t1, load_b), move |_, (t1, b)| {
            log.lock()
                .unwrap()
                .push(("t2", std::thread::current().id()));
            Ok(t1 + b)
        });
    let report = g.node("report").run(t2, |_, t2| Ok(t2 + 1000));
    Staged {
        dag: g.build().unwrap(),
        x,
        report,
        threads,
    }
}

#[test]
fn plan_lists_nodes_inputs_outputs_and_edges() {
    let s = staged();
    let plan = s.dag.plan(&Request::new().output(s.report)).unwrap();
    let order = names(&plan);
    assert_eq!(
        set_of(order.iter().copied()),
        set_of(["load_a", "load_b", "t1", "t2", "report"])
    );
    let pos = |n: &str| order.iter().position(|m| *m == n).unwrap();
    for node in plan.nodes() {
        for dep in node.deps().iter().filter(|d| d.as_str() != "x") {
            assert!(pos(dep) < pos(node.name()), "{order:?}");
        }
    }
    assert_eq!(plan.inputs(), ["x"]);
    assert_eq!(plan.outputs(), ["report"]);
    assert!(plan.overrides().is_empty());
    assert!(!plan.has_async());
    let edges: HashSet<(&str, &str)> = plan.edges().into_iter().collect();
    let expected: HashSet<(&str, &str)> = [
        ("x", "load_a"),
        ("x", "load_b"),
        ("load_a", "t1"),
        ("t1", "t2"),
        ("load_b", "t2"),
        ("t2", "report"),
    ]
    .into_iter()
    .collect();
    assert_eq!(edges, expected);
    assert_eq!(plan.edges().len(), 6);
    assert_eq!(plan.dag().name(), "staged");
}

#[test]
fn plan_groups_nodes_into_tasks_and_stages() {
    let s = staged();
    let plan = s.dag.plan(&Request::new().output(s.report)).unwrap();

    let tasks: Vec<&TaskMeta> = plan.tasks().collect();
    let ids: Vec<&str> = tasks.iter().map(|t| t.id()).collect();
    assert_eq!(
        set_of(ids.iter().copied()),
        set_of(["load_a", "load_b", "grp", "report"])
    );
    assert_eq!(ids.len(), 4, "the group is one task: {ids:?}");
    let at = |id: &str| ids.iter().position(|t| *t == id).unwrap();
    assert!(
        at("load_a") < at("grp") && at("load_b") < at("grp"),
        "{ids:?}"
    );
    assert!(at("grp") < at("report"), "{ids:?}");

    let grp = tasks[at("grp")];
    assert!(grp.is_group());
    assert_eq!(grp.nodes(), ["t1", "t2"]);
    assert_eq!(grp.stage(), Some("transform"));
    let report = tasks[at("report")];
    assert!(!report.is_group());
    assert_eq!(report.nodes(), ["report"]);
    assert_eq!(report.stage(), None);
    assert_eq!(tasks[at("load_a")].stage(), Some("load"));

    // Stages with planned nodes, in declaration order; "never used" has none.
    let stages: Vec<&str> = plan.stages().iter().map(|s| s.name()).collect();
    assert_eq!(stages, ["load", "transform"]);
    let load = &plan.stages()[0];
    assert_eq!(load.task_count(), 2);
    assert_eq!(set_of(plan.stage_tasks(load)), set_of(["load_a", "load_b"]));
    let transform = &plan.stages()[1];
    assert_eq!(transform.task_count(), 1);
    assert_eq!(plan.stage_tasks(transform), ["grp"]);

    // Planning only the `load` stage's second node drops the transform stage.
    let partial = s.dag.plan(&Request::new().named(["load_b"])).unwrap();
    let stages: Vec<&str> = partial.stages().iter().map(|s| s.name()).collect();
    assert_eq!(stages, ["load"]);
    assert_eq!(partial.stage_tasks(&partial.stages()[0]), ["load_b"]);
}

#[test]
fn task_group_runs_as_one_unit_in_order() {
    let s = staged();
    let plan = s.dag.plan(&Request::new().output(s.report)).unwrap();
    for exec_threads in [None, Some(4)] {
        let log = TaskLog::default();
        s.threads.lock().unwrap().clear();
        let exec = match exec_threads {
            None => Executor::sequential().hook(log.clone()),
            Some(n) => Executor::parallel().threads(n).hook(log.clone()),
        };
        let run = exec
            .run(&plan, Inputs::new().set(s.x, 1))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.outputs().get(s.report), Some(&(20 + 3 + 1000)));

        let tasks = log.tasks.lock().unwrap().clone();
        assert_eq!(tasks.len(), 4, "{tasks:?}");
        let grp: Vec<_> = tasks.iter().filter(|(id, _)| id == "grp").collect();
        assert_eq!(grp.len(), 1, "one run of the group task: {tasks:?}");
        assert_eq!(grp[0].1, ["t1", "t2"]);
        let order: Vec<&str> = tasks.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(order.last(), Some(&"report"), "{order:?}");

        let threads = s.threads.lock().unwrap().clone();
        assert_eq!(
            threads.iter().map(|t| t.0).collect::<Vec<_>>(),
            ["t1", "t2"]
        );
        assert_eq!(threads[0].1, threads[1].1, "a task runs on one thread");

        let record = run.record();
        assert_eq!(record.node("t1").unwrap().task(), "grp");
        assert_eq!(record.node("t2").unwrap().task(), "grp");
        assert_eq!(
            record.node("t1").unwrap().thread,
            record.node("t2").unwrap().thread
        );
        assert_eq!(record.node("load_a").unwrap().task(), "load_a");
        assert_eq!(record.node("t1").unwrap().stage(), Some("transform"));
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// Maps node names to Mermaid ids from lines like `  n3("name")`, `n0["x"]`, `n2(["a"])`.
fn mermaid_ids(text: &str) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("subgraph") || line.contains("-->") {
            continue;
        }
        let Some(open) = line.find(['(', '[']) else {
            continue;
        };
        let id = &line[..open];
        let Some(start) = line.find('"') else {
            continue;
        };
        let Some(end) = line.rfind('"') else { continue };
        if id.starts_with('n') && end > start {
            ids.push((line[start + 1..end].to_string(), id.to_string()));
        }
    }
    ids
}

#[test]
fn dot_contains_nodes_edges_and_stage_clusters() {
    let s = staged();
    let plan = s.dag.plan(&Request::new().output(s.report)).unwrap();
    let dot = plan.to_dot();
    assert!(dot.starts_with("digraph \"staged\" {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    for node in plan.nodes() {
        assert!(
            dot.contains(&format!("\"{}\"", node.name())),
            "{} missing:\n{dot}",
            node.name()
        );
    }
    for (from, to) in plan.edges() {
        assert!(
            dot.contains(&format!("\"{from}\" -> \"{to}\";")),
            "{from} -> {to}:\n{dot}"
        );
    }
    assert_eq!(dot.matches(" -> ").count(), plan.edges().len(), "{dot}");
    assert!(dot.contains("subgraph \"cluster_load\" {"), "{dot}");
    assert!(dot.contains("subgraph \"cluster_transform\" {"), "{dot}");
    assert!(
        !dot.contains("never used"),
        "empty stages are not drawn:\n{dot}"
    );
    assert!(dot.contains("label=\"load\";"), "{dot}");
    assert!(dot.contains("\"x\" [shape=box, style=dashed];"), "{dot}");
    assert!(dot.contains("\"report\" [shape=doubleoctagon];"), "{dot}");

    // Nodes sit inside their stage's cluster.
    let cluster = dot.split("subgraph \"cluster_load\" {").nth(1).unwrap();
    let cluster = &cluster[..cluster.find('}').unwrap()];
    assert!(
        cluster.contains("\"load_a\";") && cluster.contains("\"load_b\";"),
        "{cluster}"
    );
    assert!(!cluster.contains("\"t1\""), "{cluster}");

    // Pruned nodes are not drawn.
    let (dag, p) = pipeline();
    let plan = dag
        .plan(&Request::new().output(p.d).overrides(["b"]))
        .unwrap();
    let dot = plan.to_dot();
    assert!(!dot.contains("\"a\""), "{dot}");
    assert!(!dot.contains("\"unused\""), "{dot}");
    assert!(
        dot.contains("\"b\" [shape=box, style=filled, fillcolor=lightgrey];"),
        "{dot}"
    );
}

#[test]
fn mermaid_contains_nodes_edges_and_stage_subgraphs() {
    let s = staged();
    let plan = s.dag.plan(&Request::new().output(s.report)).unwrap();
    let text = plan.to_mermaid();
    assert!(text.starts_with("flowchart LR\n"), "{text}");
    let ids = mermaid_ids(&text);
    let id_of = |name: &str| -> String {
        let found: Vec<&String> = ids
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, id)| id)
            .collect();
        assert_eq!(found.len(), 1, "`{name}` declared once:\n{text}");
        found[0].clone()
    };
    let mut distinct = HashSet::new();
    for node in plan.nodes().map(NodeMeta::name).chain(["x"]) {
        assert!(distinct.insert(id_of(node)), "ids are unique:\n{text}");
    }
    for (from, to) in plan.edges() {
        let line = format!("{} --> {}", id_of(from), id_of(to));
        assert!(text.contains(&line), "{from} -> {to} ({line}):\n{text}");
    }
    assert_eq!(text.matches(" --> ").count(), plan.edges().len());
    assert!(text.contains("subgraph stage0[\"load\"]"), "{text}");
    assert!(text.contains("subgraph stage1[\"transform\"]"), "{text}");
    assert_eq!(text.matches("\n  end\n").count(), 2, "{text}");
    let load = text.split("subgraph stage0").nth(1).unwrap();
    let load = &load[..load.find("end").unwrap()];
    assert!(
        load.contains(&format!("{}(\"load_a\")", id_of("load_a"))),
        "{load}"
    );
    assert!(!load.contains("\"t1\""), "{load}");

    let (dag, p) = pipeline();
    let plan = dag
        .plan(&Request::new().output(p.d).overrides(["b"]))
        .unwrap();
    let text = plan.to_mermaid();
    assert!(text.contains("[\"b (override)\"]"), "{text}");
    assert!(!text.contains("\"a\""), "{text}");
}

#[test]
fn renderers_escape_quotes_in_names() {
    let mut g = DagBuilder::new("say \"hi\"");
    g.stage("the \"first\" stage");
    let x = g.input::<u64>("in \"x\"");
    let q = g
        .node("node \"q\"")
        .stage("the \"first\" stage")
        .run(x, |_, x| Ok(*x));
    let back = g.node("back\\slash").run(q, |_, q| Ok(*q));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(back)).unwrap();

    let dot = plan.to_dot();
    assert!(dot.contains("digraph \"say \\\"hi\\\"\" {"), "{dot}");
    assert!(dot.contains("\"node \\\"q\\\"\""), "{dot}");
    assert!(
        dot.contains("\"in \\\"x\\\"\" -> \"node \\\"q\\\"\";"),
        "{dot}"
    );
    assert!(dot.contains("\"back\\\\slash\""), "{dot}");
    assert!(dot.contains("label=\"the \\\"first\\\" stage\";"), "{dot}");
    assert!(!dot.contains("node \"q\""), "unescaped quote:\n{dot}");

    let text = plan.to_mermaid();
    assert!(text.contains("\"node #quot;q#quot;\""), "{text}");
    assert!(text.contains("\"in #quot;x#quot;\""), "{text}");
    assert!(text.contains("[\"the #quot;first#quot; stage\"]"), "{text}");
    assert!(!text.contains("node \"q\""), "unescaped quote:\n{text}");
    assert_eq!(text.matches(" --> ").count(), 2, "{text}");
}

// ---------------------------------------------------------------------------------------------
// Reuse and plan_all

#[test]
fn plan_is_reusable_across_runs_with_different_inputs() {
    let (dag, p) = pipeline();
    let plan = dag.plan(&Request::new().output(p.d).output(p.e)).unwrap();
    let copy = plan.clone();
    for exec in executors() {
        for (x, y) in [(0u64, 0u64), (4, 5), (10, 1), (4, 5)] {
            let run = exec
                .run(&copy, Inputs::new().set(p.x, x).set(p.y, y))
                .unwrap();
            assert_eq!(run.outputs().get(p.d), Some(&((x + 1) * 2 + y * 3)));
            assert_eq!(run.outputs().get(p.e), Some(&((x + 1) * 10)));
            assert_eq!(run.record().count(NodeStatus::Succeeded), 5);
        }
    }
    assert_eq!(plan.len(), 5);
    assert!(format!("{plan:?}").contains("pipeline"));
}

#[test]
fn plan_all_runs_every_node_and_requests_every_sink() {
    let (dag, p) = pipeline();
    let plan = dag.plan_all().unwrap();
    assert_eq!(
        set_of(names(&plan)),
        set_of(["unused", "a", "b", "c", "d", "e"])
    );
    assert_eq!(set_of(plan.outputs()), set_of(["unused", "d", "e"]));
    assert_eq!(set_of(plan.inputs()), set_of(["x", "y"]));
    for exec in executors() {
        let run = exec
            .run(&plan, Inputs::new().set(p.x, 2).set(p.y, 3))
            .unwrap();
        assert_eq!(run.outputs().get_named::<u64>("unused"), Some(&200));
        assert_eq!(run.outputs().get(p.d), Some(&15));
        assert_eq!(run.outputs().get(p.e), Some(&30));
        assert_eq!(run.outputs().get(p.a), None, "not a sink");
        assert_eq!(run.record().len(), 6);
    }
}

#[test]
fn plan_all_of_an_empty_graph_is_empty() {
    let dag = DagBuilder::new("empty").build().unwrap();
    let plan = dag.plan_all().unwrap();
    assert!(plan.is_empty());
    assert!(plan.outputs().is_empty());
    let run = Executor::parallel()
        .threads(2)
        .run(&plan, Inputs::new())
        .unwrap();
    assert!(run.outputs().is_empty());
    assert!(run.record().is_empty());
}

/// Of two values for one input, the later is used, and only it is type-checked.
mod replaced_input {
    use dagtel::{DagBuilder, Executor, Inputs, Request};

    #[test]
    fn a_replaced_value_is_not_type_checked() {
        let mut g = DagBuilder::new("inputs");
        let x = g.input::<u64>("x");
        let y = g.node("y").run(x, |_, x| Ok(x + 1));
        let plan = g.build().unwrap().plan(&Request::new().output(y)).unwrap();
        let inputs = Inputs::new().set_named("x", 1i32).set(x, 41u64);
        let run = Executor::sequential().run(&plan, inputs);
        match run {
            Ok(run) => assert_eq!(run.outputs().get(y), Some(&42)),
            Err(err) => panic!("the last value (a u64) should be used, got: {err}"),
        }
    }
}

#[test]
fn names_with_line_breaks_and_quotes_keep_mermaid_and_dot_one_statement_a_line() {
    let mut g = DagBuilder::new("odd");
    let a = g
        .node("load\n\"raw\"")
        .stage("s")
        .run_async((), |_, ()| async { Ok(1u8) });
    let b = g.node("use").run(a, |_, a| Ok(*a));
    let plan = g.build().unwrap().plan(&Request::new().output(b)).unwrap();
    let mermaid = plan.to_mermaid();
    assert!(
        mermaid.contains("([\"load #quot;raw#quot;\"])"),
        "an async node in a stage keeps its shape, its label one line:\n{mermaid}"
    );
    let dot = plan.to_dot();
    assert!(dot.contains("load\\n\\\"raw\\\""), "{dot}");
    assert!(!dot.contains("load\n"), "{dot}");
}
