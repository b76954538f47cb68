use thiserror::Error;

/// Why a graph could not be built. Each variant names the nodes involved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Two nodes (or inputs) share a name.
    #[error("duplicate name `{name}`: every node and input needs its own name")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A node depends on a name that no node or input has.
    #[error("node `{node}` depends on `{missing}`, which is not a node or input of this graph")]
    MissingDependency {
        /// The consumer.
        node: String,
        /// The name it asked for.
        missing: String,
    },
    /// A consumer expects another type than its producer makes.
    #[error(
        "type mismatch: node `{consumer}` expects `{expected}` from `{producer}`, \
         which produces `{found}`"
    )]
    TypeMismatch {
        /// The node reading the value.
        consumer: String,
        /// The node or input making it.
        producer: String,
        /// What the consumer asked for.
        expected: &'static str,
        /// What the producer makes.
        found: &'static str,
    },
    /// Dependencies form a cycle; `nodes` lists it in data-flow order, first node repeated last.
    #[error("dependency cycle: {}", .nodes.join(" -> "))]
    Cycle {
        /// The nodes of the cycle, in order.
        nodes: Vec<String>,
    },
    /// A graph, node, input, stage or task group named with nothing but whitespace: names are
    /// what spans, metrics, records and errors show.
    #[error("blank {what} name {name:?} ({declared}): names need text in them")]
    BlankName {
        /// What was named: `graph`, `node`, `input`, `stage` or `task group`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// Which declaration gave it, for a graph generated from configuration: e.g.
        /// ``declaration 3 of graph `etl`, after `load` `` for a node or input, ``the stage of
        /// node `load` `` for a stage, ``the graph's own name`` for the graph.
        declared: String,
    },
    /// A handle made by another builder was used here.
    #[error(
        "node `{node}` uses a handle from another graph builder as its dependency handle {position} \
         (of type `{type_name}`): handles are valid only in the builder that made them; \
         refer to a node of this graph, or by name with `DagBuilder::dep`"
    )]
    ForeignHandle {
        /// The node that used it.
        node: String,
        /// Which of the node's dependency handles it is, counted from 1 in the order given; a
        /// `Vec` or `Many` of handles counts each of its handles.
        position: usize,
        /// The type the handle stands for.
        type_name: &'static str,
    },
    /// A node option that does not apply to this kind of node.
    #[error("node `{node}`: {reason}")]
    InvalidOption {
        /// The node.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// Nodes of one task group are in different stages.
    #[error("task `{task}` mixes stages `{first}` and `{second}`: a task runs within one stage")]
    TaskSpansStages {
        /// The task group.
        task: String,
        /// One stage found in it.
        first: String,
        /// Another stage found in it.
        second: String,
    },
    /// A task group is not contiguous: a path leaves it and comes back, so it cannot run as one unit.
    #[error("task `{task}` cannot run as one unit: {path} leaves the task and comes back")]
    TaskCycle {
        /// The task group.
        task: String,
        /// The task-level cycle, in order.
        path: String,
    },
    /// A task group has the same name as a node outside it.
    #[error("task group `{task}` has the name of a node outside the group")]
    TaskNameTaken {
        /// The task group.
        task: String,
    },
}
