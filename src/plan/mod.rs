//! Planning: which nodes a request needs, grouped into tasks and stages.
//!
//! [`Dag::plan`] keeps only what the requested outputs need (Hamilton's
//! `execute(final_vars)`), stops at overridden nodes, and precomputes everything an executor
//! walks at run time: dependency counters, children, task and stage membership. A plan is
//! immutable and reusable: plan once, run many times.
//!
//! ```
//! use dagtel::{DagBuilder, Request};
//!
//! let mut g = DagBuilder::new("demo");
//! let raw = g.input::<Vec<u32>>("raw");
//! let clean = g.node("clean").run(raw, |_, r| Ok(r.clone()));
//! let _unused = g.node("unused").run(raw, |_, r| Ok(r.len()));
//! let total = g.node("total").run(clean, |_, c| Ok(c.iter().sum::<u32>()));
//! let dag = g.build().unwrap();
//!
//! let plan = dag.plan(&Request::new().output(total)).unwrap();
//! let names: Vec<&str> = plan.nodes().map(|n| n.name()).collect();
//! assert_eq!(names, ["clean", "total"]);
//! assert!(plan.to_mermaid().contains("clean"));
//! ```

mod build;
mod error;
mod render;
mod request;

use std::ops::Range;
use std::sync::Arc;

pub use error::PlanError;
pub use request::Request;
pub(crate) use request::Target;

use crate::graph::{Body, BodyRef, Dag, NodeMeta};

/// A task as hooks see it: its id, stage and node names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskMeta {
    id: String,
    stage: Option<String>,
    nodes: Vec<String>,
    explicit: bool,
}

impl TaskMeta {
    /// A task made of one node, as executors make by default. For programs that drive hooks
    /// from their own executor.
    pub fn single(node: &NodeMeta) -> Self {
        Self {
            id: node.task_id().to_string(),
            stage: node.stage().map(str::to_string),
            nodes: vec![node.name().to_string()],
            explicit: node.task_group().is_some(),
        }
    }

    /// A task with an explicit id and members.
    pub fn group(id: impl Into<String>, stage: Option<&str>, nodes: Vec<String>) -> Self {
        Self {
            id: id.into(),
            stage: stage.map(str::to_string),
            nodes,
            explicit: true,
        }
    }

    /// The task id: the group name, or the node name for a one-node task.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stage all its nodes share.
    pub fn stage(&self) -> Option<&str> {
        self.stage.as_deref()
    }

    /// Its nodes, in the order they run.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// Whether the task is a declared group rather than a node's implicit task.
    pub fn is_group(&self) -> bool {
        self.explicit
    }
}

pub(crate) struct TaskPlan {
    pub(crate) meta: TaskMeta,
    pub(crate) nodes: Range<u32>,
    pub(crate) stage: Option<u32>,
    pub(crate) indegree: u32,
    pub(crate) has_async: bool,
}

/// A stage of a plan: its name and the tasks in it.
#[derive(Clone, Debug)]
pub struct StagePlan {
    pub(crate) name: String,
    pub(crate) tasks: Vec<u32>,
}

impl StagePlan {
    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many tasks of this plan are in it.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }
}

/// What running one node needs, packed per plan node so the hot loop stays in a few dense
/// arrays (the graph's own entries and metadata are not touched while nodes run).
pub(crate) struct HotNode {
    pub(crate) body: Body,
    pub(crate) meta: Arc<NodeMeta>,
    /// The node's value slot (its graph index).
    pub(crate) slot: u32,
    pub(crate) max_attempts: u32,
    /// Store the output shared (`Arc`): an async node reads it, or the caller asked for it
    /// and it is not a word (word outputs are copied out of their cells).
    pub(crate) share: bool,
}

/// A task's members and stage, for groups and cold paths (one-node tasks run from their
/// [`TaskEntry`]); packed so that they do not touch the task's metadata (`TaskPlan::meta`,
/// with its strings), which only hooks read.
#[derive(Clone, Copy)]
pub(crate) struct TaskHot {
    /// Its nodes: `task_nodes[first..end]`.
    pub(crate) first: u32,
    pub(crate) end: u32,
    /// Its stage, or `u32::MAX`.
    pub(crate) stage: u32,
}

impl TaskHot {
    pub(crate) fn nodes(&self) -> std::ops::Range<usize> {
        self.first as usize..self.end as usize
    }

    pub(crate) fn stage(&self) -> Option<u32> {
        (self.stage != u32::MAX).then_some(self.stage)
    }
}

/// Everything the hot loop reads to schedule a task and run its first node, in one cache
/// line (64 bytes, aligned): a one-node task, the common case, needs no other per-task or
/// per-node plan data to start, run and release its successors. Short dependency and
/// downstream lists are kept in the entry itself (a node then reads no list elsewhere);
/// longer ones are ranges into the plan's `dep_slots` and `downstream`. Groups of several
/// nodes read their members from `task_hot`, `task_nodes`, `hot` and `dep_off` instead.
#[repr(align(64))]
pub(crate) struct TaskEntry {
    /// The first node's body when it is sync (owned by the graph's arena, which the plan's
    /// graph keeps alive).
    pub(crate) body: Option<BodyRef>,
    /// The first node's declaration.
    pub(crate) meta: Arc<NodeMeta>,
    /// The first node's plan index.
    pub(crate) node: u32,
    /// The first node's value slot (its graph index).
    pub(crate) slot: u32,
    /// `SHARE`, `HAS_ASYNC`, `GROUP`, `STAGED`, `DEPS_INLINE`, `DOWN_INLINE`.
    flags: u8,
    /// How many dependency slots are in `lists[..n_deps]` (with `DEPS_INLINE`).
    n_deps: u8,
    /// How many downstream tasks are in `lists[down_at..]` (with `DOWN_INLINE`).
    n_down: u8,
    /// Where the downstream list (or its range) starts in `lists`.
    down_at: u8,
    /// The first node's dependency slots, inline or as a range `[start, end]` into
    /// `dep_slots`; then the task's downstream tasks (each counted down by one edge), inline
    /// or as a range into `downstream`.
    lists: [u32; INLINE],
}

/// Room for lists in a [`TaskEntry`], in `u32`s.
const INLINE: usize = 7;

#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<TaskEntry>() == 64);

const SHARE: u8 = 1;
const HAS_ASYNC: u8 = 2;
const GROUP: u8 = 4;
const STAGED: u8 = 8;
const DEPS_INLINE: u8 = 16;
const DOWN_INLINE: u8 = 32;

/// A task's downstream tasks, as its [`TaskEntry`] holds them.
pub(crate) enum Down<'a> {
    /// Each counted down by one edge.
    Inline(&'a [u32]),
    /// Each with the number of edges leading to it.
    Counted(&'a [(u32, u32)]),
}

/// What a [`TaskEntry`] is built from.
pub(crate) struct EntryParts<'a> {
    pub(crate) body: Option<BodyRef>,
    pub(crate) meta: Arc<NodeMeta>,
    pub(crate) node: u32,
    pub(crate) slot: u32,
    pub(crate) share: bool,
    pub(crate) has_async: bool,
    pub(crate) group: bool,
    pub(crate) staged: bool,
    /// The first node's dependency slots, at `dep_range` in `dep_slots`.
    pub(crate) deps: &'a [u32],
    pub(crate) dep_range: (u32, u32),
    /// The downstream tasks, at `down_range` in `downstream`.
    pub(crate) down: &'a [(u32, u32)],
    pub(crate) down_range: (u32, u32),
}

impl TaskEntry {
    pub(crate) fn new(parts: EntryParts<'_>) -> Self {
        let mut lists = [0u32; INLINE];
        let mut flags = 0;
        for (set, flag) in [
            (parts.share, SHARE),
            (parts.has_async, HAS_ASYNC),
            (parts.group, GROUP),
            (parts.staged, STAGED),
        ] {
            if set {
                flags |= flag;
            }
        }
        let (nd, nn) = (parts.deps.len(), parts.down.len());
        let single_edges = parts.down.iter().all(|&(_, edges)| edges == 1);
        // Dependencies go inline if the downstream list (or its range) still fits after them.
        let deps_inline = nd + 2 <= INLINE || (single_edges && nd + nn <= INLINE);
        let down_at = if deps_inline {
            lists[..nd].copy_from_slice(parts.deps);
            flags |= DEPS_INLINE;
            nd
        } else {
            lists[0] = parts.dep_range.0;
            lists[1] = parts.dep_range.1;
            2
        };
        if single_edges && down_at + nn <= INLINE {
            for (cell, &(task, _)) in lists[down_at..].iter_mut().zip(parts.down) {
                *cell = task;
            }
            flags |= DOWN_INLINE;
        } else {
            lists[down_at] = parts.down_range.0;
            lists[down_at + 1] = parts.down_range.1;
        }
        Self {
            body: parts.body,
            meta: parts.meta,
            node: parts.node,
            slot: parts.slot,
            flags,
            n_deps: if deps_inline { nd as u8 } else { 0 },
            n_down: if flags & DOWN_INLINE != 0 {
                nn as u8
            } else {
                0
            },
            down_at: down_at as u8,
            lists,
        }
    }

    /// Store the first node's output shared (see [`HotNode::share`]).
    #[inline(always)]
    pub(crate) fn share(&self) -> bool {
        self.flags & SHARE != 0
    }

    #[inline(always)]
    pub(crate) fn has_async(&self) -> bool {
        self.flags & HAS_ASYNC != 0
    }

    /// More than one node: run the members from `task_hot` and `hot`.
    #[inline(always)]
    pub(crate) fn group(&self) -> bool {
        self.flags & GROUP != 0
    }

    /// In a stage (which `task_hot` names).
    #[inline(always)]
    pub(crate) fn staged(&self) -> bool {
        self.flags & STAGED != 0
    }

    /// The first node's dependency slots, in argument order (`dep_slots` is the plan's).
    #[inline(always)]
    pub(crate) fn deps<'a>(&'a self, dep_slots: &'a [u32]) -> &'a [u32] {
        if self.flags & DEPS_INLINE != 0 {
            self.lists.get(..self.n_deps as usize).unwrap_or_default()
        } else {
            let (start, end) = (self.lists[0] as usize, self.lists[1] as usize);
            dep_slots.get(start..end).unwrap_or_default()
        }
    }

    /// Where the dependency list starts in `dep_slots`, if it is not inline.
    #[cfg(test)]
    pub(crate) fn deps_elsewhere(&self) -> Option<usize> {
        (self.flags & DEPS_INLINE == 0).then_some(self.lists[0] as usize)
    }

    /// The task's downstream tasks (`downstream` is the plan's).
    #[inline(always)]
    pub(crate) fn down<'a>(&'a self, downstream: &'a [(u32, u32)]) -> Down<'a> {
        let at = self.down_at as usize;
        if self.flags & DOWN_INLINE != 0 {
            Down::Inline(
                self.lists
                    .get(at..at + self.n_down as usize)
                    .unwrap_or_default(),
            )
        } else {
            let (start, end) = match self.lists.get(at..at + 2) {
                Some(&[start, end]) => (start as usize, end as usize),
                _ => (0, 0),
            };
            Down::Counted(downstream.get(start..end).unwrap_or_default())
        }
    }

    /// Where the downstream list starts in `downstream`, if it is not inline.
    #[cfg(test)]
    pub(crate) fn down_elsewhere(&self) -> Option<usize> {
        (self.flags & DOWN_INLINE == 0)
            .then(|| self.lists.get(self.down_at as usize).copied())
            .flatten()
            .map(|start| start as usize)
    }
}

pub(crate) struct PlanInner {
    pub(crate) hot: Vec<HotNode>,
    /// Per task, see [`TaskEntry`].
    pub(crate) entries: Vec<TaskEntry>,
    pub(crate) task_hot: Vec<TaskHot>,
    /// Per plan node, the value slots of its dependencies, in argument order (CSR).
    pub(crate) dep_off: Vec<u32>,
    pub(crate) dep_slots: Vec<u32>,
    pub(crate) dag: Dag,
    /// Plan index -> graph index, in topological order. Shared: node metrics waiting to be
    /// recorded keep it, not the plan (which keeps the graph's bodies and their data).
    pub(crate) nodes: Arc<[u32]>,
    /// Graph index -> plan index, `u32::MAX` for nodes the plan does not run.
    pub(crate) plan_of: Vec<u32>,
    /// The distinct downstream tasks of each task (see `TaskEntry::down`) and how many edges
    /// lead to each: a task counts each of them down once, by that many.
    pub(crate) downstream: Vec<(u32, u32)>,
    pub(crate) child_off: Vec<u32>,
    pub(crate) children: Vec<u32>,
    pub(crate) tasks: Vec<TaskPlan>,
    pub(crate) task_nodes: Vec<u32>,
    pub(crate) task_order: Vec<u32>,
    /// How far back in `task_order` a task's latest upstream task typically is (see
    /// `build::upstream_lag`).
    pub(crate) upstream_lag: u32,
    pub(crate) stages: Vec<StagePlan>,
    pub(crate) inputs: Vec<u32>,
    pub(crate) overrides: Vec<u32>,
    /// The outputs' names, in request order: every hooked run hands them to `before_run`,
    /// and reading each from its node's declaration was a cache miss per output.
    pub(crate) output_names: Box<[Arc<str>]>,
    /// The requested outputs sorted, each once (the order a run's [`Outputs`](crate::Outputs) keeps).
    pub(crate) output_slots: Vec<u32>,
    /// The value slots a run may leave a value in: those of inputs, overrides and of nodes
    /// whose values are not words (or are stored shared). The others stay empty (their
    /// values go to word cells), so the end of a run empties only these.
    pub(crate) boxed_slots: Vec<u32>,
    pub(crate) has_async: bool,
    /// Whether any task is a declared group.
    pub(crate) has_groups: bool,
    /// Per-run arrays kept for reuse by later runs of this plan.
    pub(crate) arrays: Arc<crate::execution::ArrayPool>,
}

/// What one run will execute; see the [module docs](self). Clones share the same plan.
///
/// A plan also keeps the per-run arrays (value slots, counters, records) of up to two
/// finished runs and reuses them for later runs, so they are held as long as the plan is.
#[derive(Clone)]
pub struct Plan {
    pub(crate) inner: Arc<PlanInner>,
}

impl Dag {
    /// Plans the nodes needed for `request`.
    pub fn plan(&self, request: &Request) -> Result<Plan, PlanError> {
        build::plan(self, request)
    }

    /// Plans every node of the graph (every sink requested).
    pub fn plan_all(&self) -> Result<Plan, PlanError> {
        let sinks = self
            .inner
            .topo
            .iter()
            .filter(|&&i| self.inner.children[i as usize].is_empty())
            .map(|&i| self.entry(i).meta.name().to_string());
        self.plan(&Request::new().named(sinks))
    }
}

impl Plan {
    /// The graph this plan runs.
    pub fn dag(&self) -> &Dag {
        &self.inner.dag
    }

    fn meta(&self, index: u32) -> &NodeMeta {
        &self.inner.dag.entry(index).meta
    }

    /// The nodes that will run, in a topological order.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeMeta> + '_ {
        self.inner.nodes.iter().map(|&i| self.meta(i))
    }

    /// How many nodes will run.
    pub fn len(&self) -> usize {
        self.inner.nodes.len()
    }

    /// Whether nothing will run (every output is an input or an override).
    pub fn is_empty(&self) -> bool {
        self.inner.nodes.is_empty()
    }

    /// External inputs the run needs.
    pub fn inputs(&self) -> Vec<&str> {
        self.names(&self.inner.inputs)
    }

    /// Overridden nodes the run needs values for.
    pub fn overrides(&self) -> Vec<&str> {
        self.names(&self.inner.overrides)
    }

    /// The requested outputs.
    pub fn outputs(&self) -> Vec<&str> {
        self.inner.output_names.iter().map(|name| &**name).collect()
    }

    fn names(&self, list: &[u32]) -> Vec<&str> {
        list.iter().map(|&i| self.meta(i).name()).collect()
    }

    /// Producer -> consumer edges into the nodes that run (inputs and overrides included as
    /// producers).
    pub fn edges(&self) -> Vec<(&str, &str)> {
        let mut edges = Vec::new();
        for &d in self.inner.nodes.iter() {
            let consumer = self.meta(d).name();
            for &dep in &self.inner.dag.entry(d).deps {
                edges.push((self.meta(dep).name(), consumer));
            }
        }
        edges
    }

    /// The tasks, in a valid execution order.
    pub fn tasks(&self) -> impl Iterator<Item = &TaskMeta> + '_ {
        self.inner
            .task_order
            .iter()
            .map(|&t| &self.inner.tasks[t as usize].meta)
    }

    /// The stages that have nodes in this plan, in declaration order.
    pub fn stages(&self) -> &[StagePlan] {
        &self.inner.stages
    }

    /// Names of the tasks of a stage.
    pub fn stage_tasks(&self, stage: &StagePlan) -> Vec<&str> {
        stage
            .tasks
            .iter()
            .map(|&t| self.inner.tasks[t as usize].meta.id())
            .collect()
    }

    /// Whether any node is `async` (the executor then needs a tokio runtime).
    pub fn has_async(&self) -> bool {
        self.inner.has_async
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("dag", &self.inner.dag.name())
            .field("nodes", &self.inner.nodes.len())
            .field("tasks", &self.inner.tasks.len())
            .field("outputs", &self.outputs())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A downstream task by id, with its edge count.
    type DownEdge = (String, u32);

    /// Each task's downstream tasks, by task id.
    fn downstream_of(plan: &Plan) -> Vec<(String, Vec<DownEdge>)> {
        let inner = &*plan.inner;
        let id = |t: u32| inner.tasks[t as usize].meta.id().to_string();
        (0..inner.tasks.len() as u32)
            .map(|t| {
                let list = match inner.entries[t as usize].down(&inner.downstream) {
                    Down::Inline(list) => list.iter().map(|&d| (d, 1)).collect::<Vec<_>>(),
                    Down::Counted(list) => list.to_vec(),
                };
                let mut list: Vec<DownEdge> =
                    list.into_iter().map(|(d, edges)| (id(d), edges)).collect();
                list.sort();
                (id(t), list)
            })
            .filter(|(_, list)| !list.is_empty())
            .collect()
    }

    #[test]
    fn downstream_lists_count_edges() {
        let mut g = crate::DagBuilder::new("edges");
        let a = g.node("a").run((), |_, ()| Ok(1u64));
        let d = g.node("d").run((), |_, ()| Ok(2u64));
        g.node("b").run(a, |_, a| Ok(*a));
        // Two edges from `a` and one from `d`.
        g.node("c").run((a, a, d), |_, (x, y, z)| Ok(*x + *y + *z));
        g.node("e").run((a, a), |_, (x, y)| Ok(*x + *y));
        // A group whose two members each depend on `d`: one task, two edges.
        g.node("g1").task("grp").run(d, |_, d| Ok(*d));
        g.node("g2").task("grp").run(d, |_, d| Ok(*d + 1));
        let wanted = crate::Request::new().named(["b", "c", "e", "g1", "g2"]);
        let plan = g.build().unwrap().plan(&wanted).unwrap();
        let s = |id: &str, edges| (id.to_string(), edges);
        assert_eq!(
            downstream_of(&plan),
            vec![
                ("a".to_string(), vec![s("b", 1), s("c", 2), s("e", 2)]),
                ("d".to_string(), vec![s("c", 1), s("grp", 2)]),
            ]
        );
    }

    /// A plan of `layers` layers of `width` nodes, each node past the first reading the
    /// nodes `0`, `width / 2` and `i` of the layer before (at offset `i`, distinct for `i`
    /// not `0` or `width / 2`).
    fn layered_plan(layers: usize, width: usize) -> Plan {
        let mut g = crate::DagBuilder::new("layered");
        let mut previous: Vec<crate::Handle<u64>> = Vec::new();
        for layer in 0..layers {
            let current: Vec<_> = (0..width)
                .map(|i| {
                    let node = g.node(format!("n{layer}_{i}"));
                    if layer == 0 {
                        node.run((), |_, ()| Ok(1u64))
                    } else {
                        let picks = (previous[0], previous[width / 2], previous[i]);
                        node.run(picks, |_, (a, b, c)| Ok(*a + *b + *c))
                    }
                })
                .collect();
            previous = current;
        }
        g.build().unwrap().plan_all().unwrap()
    }

    #[test]
    fn upstream_lag_is_the_tenth_percentile_distance_to_a_tasks_latest_upstream_task() {
        // Offset i of a layer reads offsets 0, width/2 and i of the layer before: its latest
        // upstream task is max(width/2, i) of them, width - max(width/2, i) + i back.
        let width = 40;
        let lags = {
            let mut lags: Vec<u32> = (0..width)
                .map(|i| (width - (width / 2).max(i) + i) as u32)
                .collect();
            // Every layer past the first has the same lags.
            lags = lags.repeat(4);
            lags.sort_unstable();
            lags
        };
        assert_eq!(
            layered_plan(5, width).inner.upstream_lag,
            lags[lags.len() / 10]
        );
        // A node right after its input: one position.
        let mut g = crate::DagBuilder::new("chain");
        let mut last = g.node("c0").run((), |_, ()| Ok(0u64));
        for i in 1..50 {
            last = g.node(format!("c{i}")).run(last, |_, x| Ok(*x + 1));
        }
        let chain = g.build().unwrap().plan_all().unwrap();
        assert_eq!(chain.inner.upstream_lag, 1);
        // Nothing upstream of anything.
        let mut g = crate::DagBuilder::new("flat");
        for i in 0..10 {
            g.node(format!("f{i}")).run((), |_, ()| Ok(0u64));
        }
        let flat = g.build().unwrap().plan_all().unwrap();
        assert_eq!(flat.inner.upstream_lag, u32::MAX);
    }

    /// Builds an entry over the given lists (as the plan's `dep_slots` and `downstream`,
    /// placed after some other task's items) and reads them back.
    fn round_trip(deps: &[u32], down: &[(u32, u32)]) -> (bool, bool) {
        let mut dep_slots = vec![99, 98];
        dep_slots.extend_from_slice(deps);
        let mut downstream = vec![(77, 1)];
        downstream.extend_from_slice(down);
        let entry = TaskEntry::new(EntryParts {
            body: None,
            meta: Arc::new(NodeMeta::new("n")),
            node: 5,
            slot: 9,
            share: true,
            has_async: false,
            group: true,
            staged: false,
            deps: &dep_slots[2..],
            dep_range: (2, dep_slots.len() as u32),
            down: &downstream[1..],
            down_range: (1, downstream.len() as u32),
        });
        assert_eq!(entry.deps(&dep_slots), deps);
        let read: Vec<(u32, u32)> = match entry.down(&downstream) {
            Down::Inline(list) => list.iter().map(|&t| (t, 1)).collect(),
            Down::Counted(list) => list.to_vec(),
        };
        assert_eq!(read, down);
        assert_eq!((entry.node, entry.slot), (5, 9));
        assert!(entry.share() && entry.group() && !entry.has_async() && !entry.staged());
        if let Some(start) = entry.deps_elsewhere() {
            assert_eq!(start, 2);
        }
        if let Some(start) = entry.down_elsewhere() {
            assert_eq!(start, 1);
        }
        (
            entry.deps_elsewhere().is_none(),
            entry.down_elsewhere().is_none(),
        )
    }

    #[test]
    fn short_lists_are_kept_in_the_entry() {
        let singles = |n: u32| (0..n).map(|t| (100 + t, 1)).collect::<Vec<_>>();
        let slots = |n: u32| (0..n).map(|i| 10 + i).collect::<Vec<_>>();
        assert_eq!(round_trip(&[], &[]), (true, true));
        assert_eq!(round_trip(&slots(3), &singles(3)), (true, true));
        assert_eq!(round_trip(&slots(3), &singles(4)), (true, true));
        assert_eq!(round_trip(&slots(3), &singles(5)), (true, false));
        assert_eq!(round_trip(&slots(6), &singles(1)), (true, true));
        assert_eq!(round_trip(&slots(6), &singles(3)), (false, true));
        assert_eq!(round_trip(&slots(7), &[]), (true, true));
        assert_eq!(round_trip(&slots(8), &singles(5)), (false, true));
        assert_eq!(round_trip(&[], &singles(7)), (true, true));
        assert_eq!(round_trip(&slots(10), &singles(10)), (false, false));
        // A downstream task reached by two edges is counted down by two: kept as a range.
        assert_eq!(round_trip(&slots(2), &[(5, 2), (6, 1)]), (true, false));
        assert_eq!(round_trip(&slots(6), &[(5, 2)]), (false, false));
    }
}
