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
/// per-node plan data to start, run and release its successors. Groups of several nodes
/// read their members from `task_hot`, `task_nodes`, `hot` and `dep_off` instead.
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
    /// The first node's dependency slots: `dep_slots[deps.0..deps.1]`.
    pub(crate) deps: (u32, u32),
    /// The task's downstream tasks: `downstream[down.0..down.1]`.
    pub(crate) down: (u32, u32),
    /// Its stage, or `u32::MAX`.
    pub(crate) stage: u32,
    /// The first node's attempts in all.
    pub(crate) max_attempts: u32,
    /// Store the first node's output shared (see [`HotNode::share`]).
    pub(crate) share: bool,
    pub(crate) has_async: bool,
    /// More than one node: run the members from `task_hot` and `hot`.
    pub(crate) group: bool,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<TaskEntry>() == 64);

impl TaskEntry {
    pub(crate) fn stage(&self) -> Option<u32> {
        (self.stage != u32::MAX).then_some(self.stage)
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
    /// Plan index -> graph index, in topological order.
    pub(crate) nodes: Vec<u32>,
    /// Graph index -> plan index, `u32::MAX` for nodes the plan does not run.
    pub(crate) plan_of: Vec<u32>,
    /// The distinct downstream tasks of each task (ranges in `TaskEntry::down`) and how many
    /// edges lead to each: a task counts each of them down once, by that many.
    pub(crate) downstream: Vec<(u32, u32)>,
    pub(crate) child_off: Vec<u32>,
    pub(crate) children: Vec<u32>,
    pub(crate) tasks: Vec<TaskPlan>,
    pub(crate) task_nodes: Vec<u32>,
    pub(crate) task_order: Vec<u32>,
    pub(crate) roots: Vec<u32>,
    pub(crate) stages: Vec<StagePlan>,
    pub(crate) inputs: Vec<u32>,
    pub(crate) overrides: Vec<u32>,
    pub(crate) outputs: Vec<u32>,
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
        self.names(&self.inner.outputs)
    }

    fn names(&self, list: &[u32]) -> Vec<&str> {
        list.iter().map(|&i| self.meta(i).name()).collect()
    }

    /// Producer -> consumer edges into the nodes that run (inputs and overrides included as
    /// producers).
    pub fn edges(&self) -> Vec<(&str, &str)> {
        let mut edges = Vec::new();
        for &d in &self.inner.nodes {
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
