use std::any::Any;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::FutureExt;

use super::deps::Deps;
use super::handle::{DepSpec, Handle, Key};
use super::meta::{DeclaredNode, NodeKind, RetryPolicy};
use super::{AsyncBody, Body, BodyArena, BuildError, Dag, validate};
use crate::node::{Args, AsyncNodeCtx, NodeCtx, NodeResult, OwnedArgs};
use crate::value::{TypeTag, Value};

static NEXT_BUILDER_ID: AtomicU32 = AtomicU32::new(1);

/// Declares the nodes of a graph. See the [crate docs](crate) for a full example.
///
/// ```
/// use dagtel::DagBuilder;
///
/// let mut g = DagBuilder::new("numbers");
/// let n = g.input::<u64>("n");
/// let doubled = g.node("doubled").run(n, |_, n| Ok(n * 2));
/// let _sum = g.node("sum").run((n, doubled), |_, (n, d)| Ok(n + d));
/// let dag = g.build().unwrap();
/// assert_eq!(dag.len(), 3);
/// ```
pub struct DagBuilder {
    id: u32,
    name: String,
    decls: Vec<Declaration>,
    by_name: HashMap<String, u32>,
    named_refs: Vec<String>,
    stages: Vec<String>,
    problems: Vec<BuildError>,
    /// Where sync bodies are placed, in declaration order.
    bodies: Arc<BodyArena>,
}

pub(crate) struct Declaration {
    pub(crate) node: DeclaredNode,
    pub(crate) body: Body,
    pub(crate) deps: Vec<DepSpec>,
    pub(crate) output: TypeTag,
}

impl DagBuilder {
    /// A builder for a graph called `name` (the name shows in telemetry and reports).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            id: NEXT_BUILDER_ID.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            decls: Vec::new(),
            by_name: HashMap::new(),
            named_refs: Vec::new(),
            stages: Vec::new(),
            problems: Vec::new(),
            bodies: Arc::default(),
        }
    }

    /// Declares an external input of type `T`, supplied per run.
    pub fn input<T: Any + Send + Sync>(&mut self, name: impl Into<String>) -> Handle<T> {
        let node = DeclaredNode {
            name: name.into(),
            kind: NodeKind::Input,
            tags: Vec::new(),
            stage: None,
            task_group: None,
            deps: Vec::new(),
            output_type: std::any::type_name::<T>(),
            version: None,
            retry: RetryPolicy::NONE,
            timeout: None,
            position: None,
        };
        self.declare(node, Body::Input, Vec::new(), TypeTag::of::<T>())
    }

    /// A reference to a node or input by name, resolved when the graph is built.
    ///
    /// Use it for graphs generated from configuration, or to refer to a node declared later.
    /// The name and the type `T` are checked by [`build`](Self::build).
    pub fn dep<T: Any + Send + Sync>(&mut self, name: impl Into<String>) -> Handle<T> {
        let index = self.named_refs.len() as u32;
        self.named_refs.push(name.into());
        Handle::new(self.id, Key::Named(index))
    }

    /// Declares a stage, fixing its position in reports; nodes can also name stages that
    /// were not declared, which are then added in order of first use.
    pub fn stage(&mut self, name: impl Into<String>) -> &mut Self {
        let name = name.into();
        if is_blank(&name) {
            let declared = "declared with `DagBuilder::stage`".into();
            self.problems.push(blank_name("stage", &name, declared));
        }
        if !self.stages.contains(&name) {
            self.stages.push(name);
        }
        self
    }

    /// Starts declaring a node; finish with [`NodeBuilder::run`] or [`NodeBuilder::run_async`].
    pub fn node(&mut self, name: impl Into<String>) -> NodeBuilder<'_> {
        NodeBuilder {
            graph: self,
            name: name.into(),
            tags: Vec::new(),
            stage: None,
            task_group: None,
            version: None,
            retry: RetryPolicy::NONE,
            timeout: None,
        }
    }

    /// Validates the declarations and freezes them into a [`Dag`].
    ///
    /// Errors, checked in this order: duplicate names, blank names and invalid node options
    /// (found as the nodes were declared), then node by node handles from another builder and
    /// missing dependencies, then type mismatches, cycles, and task groups that mix stages or
    /// are not contiguous.
    pub fn build(mut self) -> Result<Dag, BuildError> {
        if is_blank(&self.name) {
            let blank = blank_name("graph", &self.name, "the graph's own name".into());
            self.problems.insert(0, blank);
        }
        let mut problems = self.problems;
        // Stable: duplicates first, each kind in declaration order.
        problems.sort_by_key(|p| !matches!(p, BuildError::DuplicateName { .. }));
        if let Some(problem) = problems.into_iter().next() {
            return Err(problem);
        }
        validate::build(validate::Parts {
            id: self.id,
            name: self.name,
            decls: self.decls,
            by_name: self.by_name,
            named_refs: self.named_refs,
            stages: self.stages,
        })
    }

    fn declare<T>(
        &mut self,
        node: DeclaredNode,
        body: Body,
        deps: Vec<DepSpec>,
        output: TypeTag,
    ) -> Handle<T> {
        let index = self.decls.len() as u32;
        let what = match node.kind {
            NodeKind::Input => "input",
            _ => "node",
        };
        if is_blank(&node.name) {
            let declared = self.where_declared(index as usize);
            self.problems.push(blank_name(what, &node.name, declared));
        }
        let owned = [("stage", &node.stage), ("task group", &node.task_group)];
        for (what, name) in owned {
            if let Some(name) = name.as_ref().filter(|n| is_blank(n)) {
                let declared = format!("the {what} of {}", self.describe(index as usize, &node));
                self.problems.push(blank_name(what, name, declared));
            }
        }
        match self.by_name.entry(node.name.clone()) {
            Entry::Occupied(_) => self.problems.push(BuildError::DuplicateName {
                name: node.name.clone(),
            }),
            Entry::Vacant(slot) => {
                slot.insert(index);
            }
        }
        if let Some(stage) = &node.stage
            && !self.stages.contains(stage)
        {
            self.stages.push(stage.clone());
        }
        self.decls.push(Declaration {
            node,
            body,
            deps,
            output,
        });
        Handle::new(self.id, Key::Node(index))
    }
}

impl DagBuilder {
    /// Names a declaration by its place, for a node whose own name cannot: "declaration 3 of
    /// graph `etl`, after `load`".
    fn where_declared(&self, index: usize) -> String {
        let mut place = format!("declaration {} of graph `{}`", index + 1, self.name);
        if let Some(previous) = index.checked_sub(1).map(|i| &self.decls[i].node.name) {
            place.push_str(&format!(", after `{previous}`"));
        }
        place
    }

    /// "node `load`", or the place of a node named with nothing but whitespace.
    fn describe(&self, index: usize, node: &DeclaredNode) -> String {
        if is_blank(&node.name) {
            self.where_declared(index)
        } else {
            format!("node `{}`", node.name)
        }
    }
}

fn is_blank(name: &str) -> bool {
    name.trim().is_empty()
}

fn blank_name(what: &'static str, name: &str, declared: String) -> BuildError {
    let name = name.to_owned();
    BuildError::BlankName {
        what,
        name,
        declared,
    }
}

/// Options of one node, then its body. Made by [`DagBuilder::node`].
pub struct NodeBuilder<'g> {
    graph: &'g mut DagBuilder,
    name: String,
    tags: Vec<(String, String)>,
    stage: Option<String>,
    task_group: Option<String>,
    version: Option<String>,
    retry: RetryPolicy,
    timeout: Option<Duration>,
}

impl NodeBuilder<'_> {
    /// Adds a key/value tag. The `layer` tag is read by instrumentation to choose a scope.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Puts the node in a stage (a named phase of the pipeline, reported as a unit).
    pub fn stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = Some(stage.into());
        self
    }

    /// Puts the node in an explicit task group: the group's nodes run one after another, as
    /// one unit, on one thread. Without a group each node is its own task.
    pub fn task(mut self, group: impl Into<String>) -> Self {
        self.task_group = Some(group.into());
        self
    }

    /// Declares a code version; it feeds the node's fingerprint.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Retries failed attempts (errors, panics, timeouts) by this policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Limits each attempt of an async node; building fails if set on a sync node.
    ///
    /// The limit is checked where the body awaits: a body that blocks its thread (e.g. with
    /// `std::thread::sleep` or a blocking read) runs to its end and is not timed out, and
    /// holds a tokio worker meanwhile. Blocking work belongs in
    /// [`carry::spawn_blocking`](crate::otel::carry::spawn_blocking) (or
    /// `tokio::task::spawn_blocking`), awaited by the body.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Finishes a synchronous node: `body` gets the context and references to the
    /// dependencies' values, shaped like `deps` (see [`Deps`]).
    pub fn run<D, R, F>(self, deps: D, body: F) -> Handle<R>
    where
        D: Deps,
        R: Any + Send + Sync,
        F: for<'a> Fn(&NodeCtx<'_>, D::Refs<'a>) -> NodeResult<R> + Send + Sync + 'static,
    {
        let (specs, layout) = deps.specs();
        let body =
            self.graph
                .bodies
                .place(move |ctx: &NodeCtx<'_>, args: &Args<'_>, share: bool| {
                    let refs = D::fetch(&layout, args)?;
                    body(ctx, refs).map(|value| Value::new(value, share))
                });
        self.finish(NodeKind::Sync, Body::Sync(body), specs)
    }

    /// Finishes an `async` node, run on tokio: `body` gets an owned context and `Arc`s of the
    /// dependencies' values, and returns a future.
    pub fn run_async<D, R, F, Fut>(self, deps: D, body: F) -> Handle<R>
    where
        D: Deps,
        R: Any + Send + Sync,
        F: Fn(AsyncNodeCtx, D::Owned) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = NodeResult<R>> + Send + 'static,
    {
        let (specs, layout) = deps.specs();
        let body: AsyncBody = Arc::new(move |ctx: AsyncNodeCtx, args: OwnedArgs, share: bool| {
            match D::fetch_owned(&layout, &args) {
                Ok(owned) => body(ctx, owned)
                    .map(move |result| result.map(|value| Value::new(value, share)))
                    .boxed(),
                Err(error) => futures_util::future::ready(Err(error)).boxed(),
            }
        });
        self.finish(NodeKind::Async, Body::Async(body), specs)
    }

    fn finish<R: Any>(self, kind: NodeKind, body: Body, specs: Vec<DepSpec>) -> Handle<R> {
        if self.timeout.is_some() && kind != NodeKind::Async {
            self.graph.problems.push(BuildError::InvalidOption {
                node: self.name.clone(),
                reason: "a timeout applies to async nodes only (`run_async`)".into(),
            });
        }
        let node = DeclaredNode {
            name: self.name,
            kind,
            tags: self.tags,
            stage: self.stage,
            task_group: self.task_group,
            deps: Vec::new(),
            output_type: std::any::type_name::<R>(),
            version: self.version,
            retry: self.retry,
            timeout: self.timeout,
            position: None,
        };
        self.graph.declare(node, body, specs, TypeTag::of::<R>())
    }
}
