//! Using dagtel's hooks from DAG code you already have.
//!
//! This program keeps its own graph (a petgraph `DiGraph` of steps) and its own executor (a
//! level-by-level loop, each level in parallel on rayon). It calls dagtel's lifecycle through
//! [`Lifecycle`], so every hook (here a small timing hook; in production the OpenTelemetry
//! hooks) sees the same run, stage, task and node events as under dagtel's executor.
//!
//! ```text
//! cargo run --example existing_dag
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dagtel::hooks::{HookResult, Hooks, Lifecycle, NodeEnd, NodeStart, Parents, RunEnd, RunInfo};
use dagtel::{NodeMeta, NodeOutcome, TaskMeta};
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};
use rayon::prelude::*;

/// The existing code's notion of a step: a name and a function of its inputs.
struct Step {
    name: &'static str,
    run: fn(&[f64], u32) -> Result<f64, String>,
}

/// A hook that prints one line per attempt and a summary at the end of the run.
#[derive(Default)]
struct Timing {
    lines: Mutex<Vec<String>>,
}

impl Hooks for Timing {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = Option<Instant>;

    fn before_node(&self, _: Parents<'_, Self>, _: &NodeStart<'_>) -> HookResult<Self::Node> {
        Ok(Some(Instant::now()))
    }

    fn after_node(
        &self,
        _: Parents<'_, Self>,
        started: Self::Node,
        node: &NodeEnd<'_>,
    ) -> HookResult {
        let elapsed = started.map(|t| t.elapsed()).unwrap_or_default();
        let line = format!(
            "{:<10} attempt {} {:<28} {:>9.3?} on {}",
            node.node.name(),
            node.attempt,
            node.outcome.to_string(),
            elapsed,
            rayon::current_thread_index().map_or("caller".to_string(), |i| format!("worker-{i}")),
        );
        self.lines
            .lock()
            .map_err(|_| dagtel::hooks::HookError::msg("poisoned"))?
            .push(line);
        Ok(())
    }

    fn after_run(&self, _: (), run: &RunEnd<'_>) -> HookResult {
        println!(
            "run {} of `{}`: {} in {:.3?} ({} succeeded, failed: {:?})",
            run.run_id, run.dag, run.outcome, run.duration, run.succeeded, run.failed
        );
        Ok(())
    }
}

fn build_graph() -> DiGraph<Step, ()> {
    let mut graph = DiGraph::new();
    let mut add = |name, run| graph.add_node(Step { name, run });
    let load_a = add("load_a", |_, _| Ok(2.0));
    let load_b = add("load_b", |_, _| Ok(3.0));
    let scale = add("scale", |inputs, _| Ok(inputs[0] * 10.0));
    let flaky = add("flaky_io", |inputs, attempt| {
        if attempt == 1 {
            Err("connection reset".into())
        } else {
            Ok(inputs[0] + 1.0)
        }
    });
    let combine = add("combine", |inputs, _| Ok(inputs.iter().sum()));
    let edges: [(NodeIndex, NodeIndex); 5] = [
        (load_a, scale),
        (load_b, flaky),
        (scale, combine),
        (flaky, combine),
        (load_a, combine),
    ];
    for (from, to) in edges {
        graph.add_edge(from, to, ());
    }
    graph
}

fn main() {
    let graph = build_graph();
    let order = toposort(&graph, None).expect("the example graph is acyclic");
    // Levels: a node's level is one more than its deepest producer's.
    let mut level: HashMap<NodeIndex, usize> = HashMap::new();
    for &n in &order {
        let depth = graph
            .neighbors_directed(n, petgraph::Direction::Incoming)
            .map(|p| level[&p] + 1)
            .max()
            .unwrap_or(0);
        level.insert(n, depth);
    }
    let levels = level.values().max().map_or(0, |d| d + 1);

    // What hooks know about each step, built once (name, dependency names, a tag).
    let metas: HashMap<NodeIndex, (NodeMeta, TaskMeta)> = order
        .iter()
        .map(|&n| {
            let deps: Vec<&str> = graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .map(|p| graph[p].name)
                .collect();
            // The stage a node runs in is named in its meta: it labels spans and metrics.
            let meta = NodeMeta::new(graph[n].name)
                .with_stage(format!("level-{}", level[&n]))
                .with_deps(deps)
                .with_tag("layer", if level[&n] == 0 { "io" } else { "compute" });
            let task = TaskMeta::single(&meta);
            (n, (meta, task))
        })
        .collect();

    // Keep a handle on the hook to read what it gathered after the run.
    let timing = Arc::new(Timing::default());
    let lifecycle = Lifecycle::new().hook(Arc::clone(&timing));
    let run = lifecycle.start_run(RunInfo::new("existing_dag").node_count(order.len()));
    let values: Mutex<HashMap<NodeIndex, f64>> = Mutex::new(HashMap::new());

    for depth in 0..levels {
        let this_level: Vec<NodeIndex> = order
            .iter()
            .copied()
            .filter(|n| level[n] == depth)
            .collect();
        let stage = run.stage(format!("level-{depth}"), this_level.len());
        this_level.par_iter().for_each(|&n| {
            let (meta, task) = &metas[&n];
            let inputs: Vec<f64> = {
                let values = values.lock().expect("values lock");
                graph
                    .neighbors_directed(n, petgraph::Direction::Incoming)
                    .map(|p| values[&p])
                    .collect()
            };
            let mut node = run.node(Some(&stage), meta, task);
            loop {
                let attempt = node.attempt();
                match node.run(|| (graph[n].run)(&inputs, attempt)) {
                    Ok(value) => {
                        values.lock().expect("values lock").insert(n, value);
                        node.finish(NodeOutcome::Succeeded);
                        break;
                    }
                    Err(message) if attempt < 3 => {
                        node.retry(NodeOutcome::Failed { message });
                        std::thread::sleep(Duration::from_millis(5)); // backoff
                    }
                    Err(message) => {
                        node.finish(NodeOutcome::Failed { message });
                        break;
                    }
                }
            }
        });
        stage.finish();
    }
    run.finish();

    let values = values.into_inner().expect("values lock");
    let combine = order
        .iter()
        .find(|&&n| graph[n].name == "combine")
        .expect("combine exists");
    println!("combine = {}", values[combine]);
    for line in timing.lines.lock().expect("lines lock").iter() {
        println!("  {line}");
    }
    println!("hook failures: {}", lifecycle.failures().count());
}
