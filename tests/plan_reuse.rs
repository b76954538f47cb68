//! A plan keeps its per-run arrays for later runs: runs after a failing run, runs whose
//! records are still held, and concurrent runs of one plan must each see a fresh state.

use std::sync::Arc;

use dagtel::*;

fn executors() -> Vec<(&'static str, Executor)> {
    vec![
        ("sequential", Executor::sequential()),
        ("parallel", Executor::parallel().threads(2)),
    ]
}

/// x -> check (fails on odd x) -> after -> sum ; x -> other -> sum2 ; plus a String node.
struct Graph {
    plan: Plan,
    x: Handle<u64>,
    sum: Handle<u64>,
    text: Handle<String>,
}

fn graph() -> Graph {
    let mut g = DagBuilder::new("reuse");
    let x = g.input::<u64>("x");
    let check = g.node("check").run(x, |_, x| {
        if x % 2 == 1 {
            Err(NodeError::msg("odd"))
        } else {
            Ok(*x)
        }
    });
    let after = g.node("after").run(check, |_, c| Ok(c + 1));
    let label = g.node("label").run(x, |_, x| Ok(format!("x={x}")));
    let wide: Vec<Handle<u64>> = (0..40)
        .map(|i| g.node(format!("w{i}")).run(x, move |_, x| Ok(x * i)))
        .collect();
    let sum = g
        .node("sum")
        .run(wide, |_, w| Ok(w.iter().copied().sum::<u64>()));
    let text = g
        .node("text")
        .run((label, after), |_, (l, a)| Ok(format!("{l} {a}")));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(sum).output(text)).unwrap();
    Graph { plan, x, sum, text }
}

fn expected_sum(x: u64) -> u64 {
    (0..40).map(|i| x * i).sum()
}

#[test]
fn a_run_after_a_failed_run_starts_clean() {
    let g = graph();
    for (mode, exec) in executors() {
        let exec = exec.failure_policy(FailurePolicy::Continue);
        let failed = exec.run(&g.plan, Inputs::new().set(g.x, 3)).unwrap_err();
        let RunError::Failed(finished) = failed else {
            panic!("{mode}: expected a failed run")
        };
        assert_eq!(finished.record.count(NodeStatus::Failed), 1, "{mode}");
        assert_eq!(finished.record.count(NodeStatus::Skipped), 2, "{mode}");
        drop(finished);
        let run = exec.run(&g.plan, Inputs::new().set(g.x, 4)).unwrap();
        assert_eq!(run.record().count(NodeStatus::Skipped), 0, "{mode}");
        assert_eq!(run.record().count(NodeStatus::Failed), 0, "{mode}");
        assert_eq!(run.outputs().get(g.sum), Some(&expected_sum(4)), "{mode}");
        assert_eq!(
            run.outputs().get(g.text).map(String::as_str),
            Some("x=4 5"),
            "{mode}"
        );
    }
}

#[test]
fn held_records_and_outputs_are_not_reused() {
    let g = graph();
    for (mode, exec) in executors() {
        let kept: Vec<(u64, Run)> = (0..6)
            .map(|i| {
                let x = 2 * i;
                (x, exec.run(&g.plan, Inputs::new().set(g.x, x)).unwrap())
            })
            .collect();
        // Interleave a failing run, whose markers and records must not leak into the others.
        let _ = exec.run(&g.plan, Inputs::new().set(g.x, 1)).unwrap_err();
        for (x, run) in &kept {
            assert_eq!(run.outputs().get(g.sum), Some(&expected_sum(*x)), "{mode}");
            assert_eq!(run.record().count(NodeStatus::Succeeded), 45, "{mode}");
            assert_eq!(run.record().node("after").unwrap().attempts, 1, "{mode}");
        }
        let copy = kept[0].1.record().clone();
        drop(kept);
        assert_eq!(
            copy.count(NodeStatus::Succeeded),
            45,
            "{mode}: a clone outlives its run"
        );
    }
}

#[test]
fn concurrent_runs_of_one_plan_do_not_share_state() {
    let g = Arc::new(graph());
    for (mode, exec) in executors() {
        let exec = Arc::new(exec.failure_policy(FailurePolicy::Continue));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (g, exec) = (Arc::clone(&g), Arc::clone(&exec));
                std::thread::spawn(move || {
                    for round in 0..25u64 {
                        let x = t * 100 + round;
                        match exec.run(&g.plan, Inputs::new().set(g.x, x)) {
                            Ok(run) => {
                                assert_eq!(x % 2, 0);
                                assert_eq!(run.outputs().get(g.sum), Some(&expected_sum(x)));
                                assert_eq!(run.record().count(NodeStatus::Succeeded), 45);
                            }
                            Err(RunError::Failed(finished)) => {
                                assert_eq!(x % 2, 1);
                                assert_eq!(finished.outputs.get(g.sum), Some(&expected_sum(x)));
                                assert_eq!(finished.record.count(NodeStatus::Failed), 1);
                                assert_eq!(finished.record.count(NodeStatus::Skipped), 2);
                            }
                            Err(other) => panic!("unexpected {other}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join()
                .unwrap_or_else(|_| panic!("{mode}: a run thread failed"));
        }
    }
}

#[test]
fn word_outputs_can_be_read_and_taken_in_every_run() {
    for (name, executor) in executors() {
        let g = graph();
        for x in [2u64, 4, 6] {
            let run = executor
                .run(&g.plan, Inputs::new().set(g.x, x))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(run.outputs().get(g.sum), Some(&expected_sum(x)), "{name}");
            let (mut outputs, _record) = run.into_parts();
            assert_eq!(outputs.take(g.sum), Some(expected_sum(x)), "{name}");
            assert_eq!(outputs.get(g.sum), None, "{name}: taken");
            assert_eq!(
                outputs.take(g.text),
                Some(format!("x={x} {}", x + 1)),
                "{name}"
            );
        }
    }
}
