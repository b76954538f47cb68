//! Random DAGs for property tests: node `i` reads parents below `i` (repeats allowed), may
//! sit in one of three stages, and may fail on purpose.

#![allow(dead_code)] // each test binary uses its own part

use dagtel::*;
use proptest::prelude::*;

pub const STAGES: [&str; 3] = ["s0", "s1", "s2"];

/// A random graph: node `i` reads `parents[i]` (all below `i`, repeats allowed).
#[derive(Clone, Debug)]
pub struct Spec {
    pub parents: Vec<Vec<usize>>,
    pub stages: Vec<Option<usize>>,
    pub requested: Vec<usize>,
    pub failing: Vec<bool>,
    pub seed: u64,
}

pub fn spec(fail_weight: f64) -> impl Strategy<Value = Spec> {
    (1usize..200).prop_flat_map(move |n| {
        let nodes: Vec<_> = (0..n)
            .map(|i| {
                let parents = if i == 0 {
                    Just(Vec::new()).boxed()
                } else {
                    prop::collection::vec(0..i, 0..5).boxed()
                };
                (
                    parents,
                    prop::option::weighted(0.4, 0..STAGES.len()),
                    prop::bool::weighted(fail_weight),
                )
            })
            .collect();
        (nodes, prop::collection::vec(0..n, 1..6), any::<u64>()).prop_map(
            |(nodes, requested, seed)| {
                let mut spec = Spec {
                    parents: Vec::new(),
                    stages: Vec::new(),
                    requested,
                    failing: Vec::new(),
                    seed,
                };
                for (parents, stage, fails) in nodes {
                    spec.parents.push(parents);
                    spec.stages.push(stage);
                    spec.failing.push(fails);
                }
                spec
            },
        )
    })
}

pub fn name(i: usize) -> String {
    format!("n{i}")
}

/// What a node computes: its index, plus the seed, plus the wrapping sum of its parents.
pub fn compute(i: usize, seed: u64, parents: &[&u64]) -> u64 {
    parents
        .iter()
        .fold((i as u64).wrapping_add(seed), |acc, p| {
            acc.wrapping_add(**p)
        })
}

pub fn build(spec: &Spec) -> (Dag, Handle<u64>, Vec<Handle<u64>>) {
    let mut g = DagBuilder::new("random");
    // Declare the stages in reverse so their order is not the order of first use.
    for stage in STAGES.iter().rev() {
        g.stage(*stage);
    }
    let seed = g.input::<u64>("seed");
    let mut handles: Vec<Handle<u64>> = Vec::with_capacity(spec.parents.len());
    for (i, parents) in spec.parents.iter().enumerate() {
        let deps: Vec<Handle<u64>> = parents.iter().map(|&p| handles[p]).collect();
        let mut node = g.node(name(i)).tag("index", i.to_string());
        if let Some(stage) = spec.stages[i] {
            node = node.stage(STAGES[stage]);
        }
        let fails = spec.failing[i];
        let handle = node.run((seed, deps), move |_, (seed, parents)| {
            if fails {
                return Err(NodeError::msg(format!("node {i} fails on purpose")));
            }
            Ok(compute(i, *seed, &parents))
        });
        handles.push(handle);
    }
    (g.build().expect("random DAGs are acyclic"), seed, handles)
}

pub fn index_of(node: &str) -> usize {
    node.strip_prefix('n').unwrap().parse().unwrap()
}

/// The graph of `spec`, planned for its requested outputs.
pub fn plan(spec: &Spec) -> (Plan, Handle<u64>, Vec<Handle<u64>>) {
    let (dag, seed, handles) = build(spec);
    let mut request = Request::new();
    for &r in &spec.requested {
        request = request.output(handles[r]);
    }
    (dag.plan(&request).unwrap(), seed, handles)
}
