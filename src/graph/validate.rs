//! Turning declarations into a checked [`Dag`]: name resolution, types, cycles, task groups.

use std::collections::HashMap;
use std::sync::Arc;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use super::builder::Declaration;
use super::handle::Key;
use super::meta::{GraphPosition, NodeMeta};
use super::{BuildError, Dag, DagInner, NodeEntry};

pub(super) struct Parts {
    pub(super) id: u32,
    pub(super) name: String,
    pub(super) decls: Vec<Declaration>,
    pub(super) by_name: HashMap<String, u32>,
    pub(super) named_refs: Vec<String>,
    pub(super) stages: Vec<String>,
}

pub(super) fn build(parts: Parts) -> Result<Dag, BuildError> {
    let deps = resolve_deps(&parts)?;
    check_types(&parts.decls, &deps)?;
    let graph = dependency_graph(parts.decls.len(), &deps);
    toposort(&graph, None).map_err(|cycle| {
        let names = cycle_through(&graph, cycle.node_id())
            .into_iter()
            .map(|i| parts.decls[i as usize].node.name.clone())
            .collect();
        BuildError::Cycle { nodes: names }
    })?;
    check_task_groups(&parts.decls, &graph)?;
    let topo = stable_order(&deps);

    let mut children = vec![Vec::new(); parts.decls.len()];
    for (consumer, list) in deps.iter().enumerate() {
        for &producer in list {
            children[producer as usize].push(consumer as u32);
        }
    }
    let nodes = parts.decls.into_iter().zip(deps).collect::<Vec<_>>();
    let names: Vec<String> = nodes.iter().map(|(d, _)| d.node.name.clone()).collect();
    let node_count = names.len() as u32;
    let nodes = nodes
        .into_iter()
        .enumerate()
        .map(|(index, (decl, deps))| {
            let mut node = decl.node;
            node.deps = deps.iter().map(|&d| names[d as usize].clone()).collect();
            node.position = Some(GraphPosition {
                index: index as u32,
                deps: deps.clone(),
                node_count,
            });
            NodeEntry {
                meta: Arc::new(NodeMeta::declared(node)),
                body: decl.body,
                deps,
                output: decl.output,
            }
        })
        .collect();
    Ok(Dag {
        inner: Arc::new(DagInner {
            id: parts.id,
            name: parts.name,
            nodes,
            by_name: parts.by_name,
            topo,
            stages: parts.stages,
            children,
            named_refs: parts.named_refs,
        }),
    })
}

/// The topological order of `deps` (each entry lists a node's producers) that keeps
/// declaration order wherever dependencies allow: Kahn's algorithm, taking the
/// lowest-numbered ready node first. Plans and reports then read in the order the pipeline was
/// written, and the sequential executor runs in that order.
pub(crate) fn stable_order(deps: &[Vec<u32>]) -> Vec<u32> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut consumers = vec![Vec::new(); deps.len()];
    for (consumer, list) in deps.iter().enumerate() {
        for &producer in list {
            consumers[producer as usize].push(consumer as u32);
        }
    }
    let mut ready: BinaryHeap<Reverse<u32>> = (0..deps.len() as u32)
        .filter(|&i| waiting[i as usize] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(Reverse(next)) = ready.pop() {
        order.push(next);
        for &consumer in &consumers[next as usize] {
            waiting[consumer as usize] -= 1;
            if waiting[consumer as usize] == 0 {
                ready.push(Reverse(consumer));
            }
        }
    }
    order
}

fn resolve_deps(parts: &Parts) -> Result<Vec<Vec<u32>>, BuildError> {
    parts
        .decls
        .iter()
        .map(|decl| {
            decl.deps
                .iter()
                .enumerate()
                .map(|(at, spec)| {
                    if spec.dag != parts.id {
                        return Err(BuildError::ForeignHandle {
                            node: decl.node.name.clone(),
                            position: at + 1,
                            type_name: spec.ty.name(),
                        });
                    }
                    match spec.key {
                        Key::Node(index) => Ok(index),
                        Key::Named(reference) => {
                            let wanted = &parts.named_refs[reference as usize];
                            parts.by_name.get(wanted).copied().ok_or_else(|| {
                                BuildError::MissingDependency {
                                    node: decl.node.name.clone(),
                                    missing: wanted.clone(),
                                }
                            })
                        }
                    }
                })
                .collect()
        })
        .collect()
}

fn check_types(decls: &[Declaration], deps: &[Vec<u32>]) -> Result<(), BuildError> {
    for (decl, resolved) in decls.iter().zip(deps) {
        for (spec, &producer) in decl.deps.iter().zip(resolved) {
            let made = decls[producer as usize].output;
            if made != spec.ty {
                return Err(BuildError::TypeMismatch {
                    consumer: decl.node.name.clone(),
                    producer: decls[producer as usize].node.name.clone(),
                    expected: spec.ty.name(),
                    found: made.name(),
                });
            }
        }
    }
    Ok(())
}

fn dependency_graph(len: usize, deps: &[Vec<u32>]) -> DiGraph<(), ()> {
    let mut graph = DiGraph::with_capacity(len, deps.iter().map(Vec::len).sum());
    for _ in 0..len {
        graph.add_node(());
    }
    for (consumer, list) in deps.iter().enumerate() {
        for &producer in list {
            graph.add_edge(
                NodeIndex::new(producer as usize),
                NodeIndex::new(consumer),
                (),
            );
        }
    }
    graph
}

/// A cycle through `start`, in edge order, with `start` repeated at the end.
fn cycle_through<N, E>(graph: &DiGraph<N, E>, start: NodeIndex) -> Vec<u32> {
    let component = tarjan_scc(graph)
        .into_iter()
        .find(|scc| scc.contains(&start))
        .unwrap_or_else(|| vec![start]);
    // Breadth-first search inside the component for the shortest way back to `start`.
    let mut came_from: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for next in graph.neighbors(at) {
            if next == start {
                let mut path = vec![start.index() as u32];
                let mut step = at;
                while step != start {
                    path.push(step.index() as u32);
                    step = came_from[&step];
                }
                path.push(start.index() as u32);
                path.reverse(); // [start, successor, ..., start]: data-flow order
                return path;
            }
            if component.contains(&next) && !came_from.contains_key(&next) {
                came_from.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    vec![start.index() as u32]
}

fn check_task_groups(decls: &[Declaration], graph: &DiGraph<(), ()>) -> Result<(), BuildError> {
    let mut group_stage: HashMap<&str, Option<&str>> = HashMap::new();
    for decl in decls {
        let Some(group) = decl.node.task_group.as_deref() else {
            continue;
        };
        let stage = decl.node.stage.as_deref();
        match group_stage.get(group) {
            Some(&first) if first != stage => {
                return Err(BuildError::TaskSpansStages {
                    task: group.to_string(),
                    first: first.unwrap_or("(none)").to_string(),
                    second: stage.unwrap_or("(none)").to_string(),
                });
            }
            _ => {
                group_stage.insert(group, stage);
            }
        }
    }
    if group_stage.is_empty() {
        return Ok(());
    }
    for decl in decls {
        if decl.node.task_group.is_none() && group_stage.contains_key(decl.node.name.as_str()) {
            return Err(BuildError::TaskNameTaken {
                task: decl.node.name.clone(),
            });
        }
    }
    // Contract every group to one vertex: the groups are runnable units only if that is acyclic.
    let task_of = |i: usize| -> &str {
        let node = &decls[i].node;
        node.task_group.as_deref().unwrap_or(&node.name)
    };
    let mut index: HashMap<&str, NodeIndex> = HashMap::new();
    let mut tasks: DiGraph<&str, ()> = DiGraph::new();
    for i in 0..decls.len() {
        let id = task_of(i);
        index.entry(id).or_insert_with(|| tasks.add_node(id));
    }
    for edge in graph.raw_edges() {
        let (from, to) = (
            index[task_of(edge.source().index())],
            index[task_of(edge.target().index())],
        );
        if from != to {
            tasks.update_edge(from, to, ());
        }
    }
    if let Err(cycle) = toposort(&tasks, None) {
        let path = cycle_through(&tasks, cycle.node_id());
        let names: Vec<&str> = path
            .iter()
            .map(|&i| tasks[NodeIndex::new(i as usize)])
            .collect();
        let task = names
            .iter()
            .find(|name| group_stage.contains_key(*name))
            .unwrap_or(&names[0]);
        return Err(BuildError::TaskCycle {
            task: task.to_string(),
            path: names.join(" -> "),
        });
    }
    Ok(())
}
