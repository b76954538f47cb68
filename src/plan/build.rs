//! From a request to the flat arrays the executors walk: pruning, tasks, counters, stages.

use std::collections::HashMap;
use std::sync::Arc;

use super::{
    EntryParts, HotNode, Plan, PlanError, PlanInner, Request, StagePlan, TaskEntry, TaskHot,
    TaskMeta, TaskPlan,
};
use crate::execution::ArrayPool;
use crate::graph::{Body, Dag, NodeKind, stable_order};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Unused,
    Computed,
    Input,
    Override,
}

pub(super) fn plan(dag: &Dag, request: &Request) -> Result<Plan, PlanError> {
    let outputs = request.resolve_outputs(dag)?;
    let mut role = vec![Role::Unused; dag.len()];
    let mut overridden = vec![false; dag.len()];
    for name in &request.overrides {
        let index = dag
            .index_of(name)
            .ok_or_else(|| PlanError::UnknownOverride {
                dag: dag.name().to_string(),
                name: name.clone(),
            })?;
        if dag.entry(index).meta.kind() == NodeKind::Input {
            return Err(PlanError::OverrideOfInput { name: name.clone() });
        }
        overridden[index as usize] = true;
    }

    // Walk upstream from the outputs; an override stops the walk, which prunes its ancestors.
    let mut stack = outputs.clone();
    while let Some(index) = stack.pop() {
        let slot = &mut role[index as usize];
        if *slot != Role::Unused {
            continue;
        }
        let entry = dag.entry(index);
        *slot = if overridden[index as usize] {
            Role::Override
        } else if matches!(entry.body, Body::Input) {
            Role::Input
        } else {
            stack.extend(&entry.deps);
            Role::Computed
        };
    }

    let inner = &dag.inner;
    let nodes: Vec<u32> = inner
        .topo
        .iter()
        .copied()
        .filter(|&i| role[i as usize] == Role::Computed)
        .collect();
    let mut plan_of = vec![u32::MAX; dag.len()];
    for (p, &d) in nodes.iter().enumerate() {
        plan_of[d as usize] = p as u32;
    }

    let (tasks, task_of, task_nodes, task_order) = group_tasks(dag, &nodes, &plan_of);
    let mut tasks = tasks;
    let mut child_off = Vec::with_capacity(nodes.len() + 1);
    let mut children = Vec::new();
    child_off.push(0);
    for &d in &nodes {
        for &c in &inner.children[d as usize] {
            let pc = plan_of[c as usize];
            if pc != u32::MAX {
                children.push(pc);
            }
        }
        child_off.push(children.len() as u32);
    }
    for (p, &task) in task_of.iter().enumerate() {
        for &c in &children[child_off[p] as usize..child_off[p + 1] as usize] {
            let child_task = task_of[c as usize];
            if child_task != task {
                tasks[child_task as usize].indegree += 1;
            }
        }
    }
    let mut down_off = Vec::with_capacity(tasks.len() + 1);
    let mut downstream = Vec::new();
    down_off.push(0u32);
    for task in &tasks {
        let mut edges: Vec<u32> = Vec::new();
        for &p in &task_nodes[task.nodes.start as usize..task.nodes.end as usize] {
            let own = task_of[p as usize];
            for &c in &children[child_off[p as usize] as usize..child_off[p as usize + 1] as usize]
            {
                if task_of[c as usize] != own {
                    edges.push(task_of[c as usize]);
                }
            }
        }
        edges.sort_unstable();
        for group in edges.chunk_by(|a, b| a == b) {
            downstream.push((group[0], group.len() as u32));
        }
        down_off.push(downstream.len() as u32);
    }
    let stages = stage_plans(dag, &mut tasks);
    let task_hot: Vec<TaskHot> = tasks
        .iter()
        .map(|t| TaskHot {
            first: t.nodes.start,
            end: t.nodes.end,
            stage: t.stage.unwrap_or(u32::MAX),
        })
        .collect();

    let pick = |wanted: Role| -> Vec<u32> {
        inner
            .topo
            .iter()
            .copied()
            .filter(|&i| role[i as usize] == wanted)
            .collect()
    };
    let inputs = pick(Role::Input);
    let overrides = pick(Role::Override);
    let has_async = nodes
        .iter()
        .any(|&d| matches!(dag.entry(d).body, Body::Async(_)));
    let mut is_output = vec![false; dag.len()];
    for &d in &outputs {
        is_output[d as usize] = true;
    }
    let hot: Vec<HotNode> = nodes
        .iter()
        .map(|&d| {
            let entry = dag.entry(d);
            let async_reader = inner.children[d as usize].iter().any(|&c| {
                plan_of[c as usize] != u32::MAX && matches!(dag.entry(c).body, Body::Async(_))
            });
            HotNode {
                body: entry.body.clone(),
                meta: Arc::clone(&entry.meta),
                slot: d,
                max_attempts: entry.meta.retry().max_attempts(),
                // A word output needs no sharing: the caller gets a copy of it.
                share: async_reader || (is_output[d as usize] && !entry.output.is_word()),
            }
        })
        .collect();
    let mut dep_off = Vec::with_capacity(nodes.len() + 1);
    let mut dep_slots = Vec::new();
    dep_off.push(0);
    for &d in &nodes {
        dep_slots.extend_from_slice(&dag.entry(d).deps);
        dep_off.push(dep_slots.len() as u32);
    }
    let entries = tasks
        .iter()
        .zip(&task_hot)
        .enumerate()
        .map(|(t, (task, th))| {
            let p = task_nodes[th.first as usize];
            let node = &hot[p as usize];
            let (deps_start, deps_end) = (dep_off[p as usize], dep_off[p as usize + 1]);
            let (down_start, down_end) = (down_off[t], down_off[t + 1]);
            TaskEntry::new(EntryParts {
                body: match &node.body {
                    Body::Sync(body) => Some(body.raw()),
                    _ => None,
                },
                meta: Arc::clone(&node.meta),
                node: p,
                slot: node.slot,
                share: node.share,
                has_async: task.has_async,
                group: th.end - th.first != 1,
                staged: th.stage().is_some(),
                deps: &dep_slots[deps_start as usize..deps_end as usize],
                dep_range: (deps_start, deps_end),
                down: &downstream[down_start as usize..down_end as usize],
                down_range: (down_start, down_end),
            })
        })
        .collect();
    let arrays = ArrayPool::new(
        dag.len(),
        nodes.len(),
        tasks.iter().map(|t| t.indegree).collect(),
    );
    let has_groups = tasks.iter().any(|t| t.meta.is_group());
    let upstream_lag = upstream_lag(&task_order, &down_off, &downstream);
    let boxed_slots = inputs
        .iter()
        .chain(&overrides)
        .copied()
        .chain(
            hot.iter()
                .filter(|node| node.share || !dag.entry(node.slot).output.is_word())
                .map(|node| node.slot),
        )
        .collect();
    Ok(Plan {
        inner: Arc::new(PlanInner {
            hot,
            entries,
            task_hot,
            dep_off,
            dep_slots,
            dag: dag.clone(),
            nodes: nodes.into(),
            plan_of,
            downstream,
            child_off,
            children,
            tasks,
            task_nodes,
            task_order,
            upstream_lag,
            stages,
            inputs,
            overrides,
            output_slots: {
                let mut sorted = outputs.clone();
                sorted.sort_unstable();
                sorted.dedup();
                sorted
            },
            output_names: outputs
                .iter()
                .map(|&o| dag.entry(o).meta.shared_name())
                .collect(),
            boxed_slots,
            has_async,
            has_groups,
            arrays,
        }),
    })
}

type Grouping = (Vec<TaskPlan>, Vec<u32>, Vec<u32>, Vec<u32>);

/// How far back in `order` a task's latest upstream task typically is: the 10th percentile,
/// over the tasks that have upstream tasks, of the positions between a task and the last of
/// its upstream tasks. `u32::MAX` when no task has one. The parallel sweep sizes its chunks
/// by it (see `execution::sweep`).
fn upstream_lag(order: &[u32], down_off: &[u32], downstream: &[(u32, u32)]) -> u32 {
    let mut position = vec![0u32; order.len()];
    for (at, &task) in order.iter().enumerate() {
        position[task as usize] = at as u32;
    }
    let mut lag = vec![u32::MAX; order.len()];
    for (task, range) in down_off.windows(2).enumerate() {
        for &(down, _) in &downstream[range[0] as usize..range[1] as usize] {
            let down = down as usize;
            let gap = position[down].saturating_sub(position[task]);
            lag[down] = lag[down].min(gap);
        }
    }
    lag.retain(|&gap| gap != u32::MAX);
    if lag.is_empty() {
        return u32::MAX;
    }
    let at = lag.len() / 10;
    *lag.select_nth_unstable(at).1
}

fn group_tasks(dag: &Dag, nodes: &[u32], plan_of: &[u32]) -> Grouping {
    let mut task_index: HashMap<&str, u32> = HashMap::new();
    let mut members: Vec<Vec<u32>> = Vec::new();
    let mut task_of = Vec::with_capacity(nodes.len());
    for (p, &d) in nodes.iter().enumerate() {
        let id = dag.entry(d).meta.task_id();
        let t = *task_index.entry(id).or_insert_with(|| {
            members.push(Vec::new());
            (members.len() - 1) as u32
        });
        members[t as usize].push(p as u32);
        task_of.push(t);
    }
    // Members are in plan (topological) order already, since plan indices follow the graph's
    // stable order. Tasks need their own order: a group's first node may come before a node
    // of another task that a later member of the group reads.
    let mut task_deps: Vec<Vec<u32>> = vec![Vec::new(); members.len()];
    for (p, &d) in nodes.iter().enumerate() {
        for &dep in &dag.entry(d).deps {
            let pd = plan_of[dep as usize];
            if pd != u32::MAX && task_of[pd as usize] != task_of[p] {
                task_deps[task_of[p] as usize].push(task_of[pd as usize]);
            }
        }
    }
    // Task groups were checked to be contiguous when the graph was built, so this is a full
    // order of the tasks.
    let order = stable_order(&task_deps);

    let mut task_nodes = Vec::with_capacity(nodes.len());
    let tasks = members
        .iter()
        .map(|list| {
            let start = task_nodes.len() as u32;
            task_nodes.extend(list);
            let first = dag.entry(nodes[list[0] as usize]);
            let has_async = list
                .iter()
                .any(|&p| matches!(dag.entry(nodes[p as usize]).body, Body::Async(_)));
            TaskPlan {
                meta: TaskMeta {
                    id: first.meta.task_id().to_string(),
                    stage: first.meta.stage().map(str::to_string),
                    nodes: list
                        .iter()
                        .map(|&p| dag.entry(nodes[p as usize]).meta.name().to_string())
                        .collect(),
                    explicit: first.meta.task_group().is_some(),
                },
                nodes: start..task_nodes.len() as u32,
                stage: None,
                indegree: 0,
                has_async,
            }
        })
        .collect();
    (tasks, task_of, task_nodes, order)
}

fn stage_plans(dag: &Dag, tasks: &mut [TaskPlan]) -> Vec<StagePlan> {
    let mut stages: Vec<StagePlan> = Vec::new();
    for name in dag.stages() {
        let members: Vec<u32> = tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.meta.stage.as_deref() == Some(name.as_str()))
            .map(|(i, _)| i as u32)
            .collect();
        if members.is_empty() {
            continue;
        }
        let index = stages.len() as u32;
        for &t in &members {
            tasks[t as usize].stage = Some(index);
        }
        stages.push(StagePlan {
            name: name.clone(),
            tasks: members,
        });
    }
    stages
}
