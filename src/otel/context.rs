//! What a run puts into the OpenTelemetry [`Context`]: the run's scope for the whole run, and
//! the node's scope while a node runs. Processors read them to stamp every span and log record;
//! the `carry` helpers move them onto other threads and tasks.

use std::cell::Cell;
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::trace::SpanContext;
use opentelemetry::{Context, StringValue};

use super::metrics::Instruments;
use crate::execution::current;
use crate::graph::NodeMeta;
use crate::ids::RunId;

/// The run a context belongs to; present in every context derived from a run's root.
#[derive(Clone, Debug)]
pub struct RunScope {
    run_id: RunId,
    dag: Arc<str>,
    root: Option<SpanContext>,
    /// Set only in the context the root span starts in: the hooks stamp the root themselves
    /// (so it has the run id in any SDK setup), and the run-id processor leaves it alone.
    root_pending: bool,
    /// The hooks' instruments, for what nodes report in runs without node scopes.
    instruments: Option<Arc<Instruments>>,
    /// The node (its declaration's address) the executor was running on the thread that
    /// started the run, if any: the node whose body the run runs in.
    launched_in: usize,
}

impl RunScope {
    /// A scope for `run_id` of the DAG named `dag`.
    pub fn new(run_id: RunId, dag: impl Into<Arc<str>>) -> Self {
        Self {
            run_id,
            dag: dag.into(),
            root: None,
            root_pending: false,
            instruments: None,
            launched_in: 0,
        }
    }

    /// The same scope, knowing the node (if any) whose body starts the run: the node the
    /// executor is running on this thread.
    pub(crate) fn launched_here(mut self) -> Self {
        self.launched_in =
            current::with(|node| node.map_or(0, |n| std::ptr::from_ref(n.node()) as usize));
        self
    }

    /// Whether the run was started in the body of `node`, which is running now: records made
    /// there outside the run's own nodes are the run's, not `node`'s.
    fn launched_in(&self, node: &NodeMeta) -> bool {
        self.launched_in != 0 && self.launched_in == std::ptr::from_ref(node) as usize
    }

    pub(crate) fn with_instruments(mut self, instruments: Arc<Instruments>) -> Self {
        self.instruments = Some(instruments);
        self
    }

    /// The same scope, knowing the run's root span (so detached work can link to it).
    pub fn with_root(mut self, root: SpanContext) -> Self {
        self.root = Some(root);
        self
    }

    /// The scope to start the root span in: the hooks stamp the run id on it themselves.
    pub(crate) fn for_root(&self) -> Self {
        Self {
            root_pending: true,
            ..self.clone()
        }
    }

    /// Whether this is the context of the run's root span, which is stamped by the hooks.
    pub fn stamps_itself(&self) -> bool {
        self.root_pending
    }

    /// The run's root span, once it has started.
    pub fn root(&self) -> Option<&SpanContext> {
        self.root.as_ref()
    }

    /// The run id.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// The run id as an attribute value (shares the id's allocation).
    pub fn run_id_value(&self) -> StringValue {
        StringValue::from(self.run_id.shared())
    }

    /// The DAG's name.
    pub fn dag(&self) -> &str {
        &self.dag
    }

    /// The run scope of the current context, if a run is active on this thread.
    pub fn current() -> Option<RunScope> {
        Context::map_current(|cx| cx.get::<RunScope>().cloned())
    }
}

/// The node whose body is running.
///
/// While a sync node's body runs under [`OtelHooks`](super::OtelHooks), its scope is the
/// thread's *active node*: kept in a thread-local, not in the context, which saves a context
/// value (three allocations) per node. Work carried to other threads ([`carry`](super::carry))
/// and async nodes find it in the context instead. [`NodeScope::current`] looks in both.
#[derive(Debug)]
pub struct NodeScope {
    name: Arc<str>,
    entity: Entity,
    /// The node's own context (its span), while the attempt runs: reports go to the node's
    /// span even when a user span is current. Cleared when the attempt ends (for a scope
    /// that is in that context, this breaks the cycle).
    node_cx: Mutex<Option<Context>>,
    /// The address of the node's declaration, to tell it is the executor's running node.
    owner: usize,
    /// Set on a scope made for a node of a run without hooks, to name it and its run in work
    /// carried from it: such a scope reports nothing (no hooks, no span, no metrics), and its
    /// run is this one, not the run of the context it is carried in (an outer run's, when the
    /// run is nested in a hooked node).
    silent_run: Option<Arc<str>>,
}

/// A scope's entity id: its own, or a cell shared with the executor's record of the node (a
/// sampled-out run's scopes for carried work: one per `carry`, one entity for all).
#[derive(Debug)]
enum Entity {
    Own(OnceLock<Arc<str>>),
    Shared(crate::execution::current::EntityCell),
}

impl Entity {
    fn cell(&self) -> &OnceLock<Arc<str>> {
        match self {
            Self::Own(cell) => cell,
            Self::Shared(cell) => cell,
        }
    }
}

/// `owner` of the scope that masks one inherited from an outer node (see [`NodeScope::mask`]).
const MASK: usize = usize::MAX;

thread_local! {
    /// The active node's scope and when it became active (see `current::next_mark`).
    static ACTIVE: Cell<(*const Arc<NodeScope>, u64)> = const { Cell::new((std::ptr::null(), 0)) };
}

/// Which node the code running on this thread belongs to.
pub(crate) enum Running<'a> {
    /// A node whose hook keeps its scope on the thread.
    Hooked(&'a Arc<NodeScope>),
    /// A node the executor runs with no node scope (runs without node events).
    Executor(&'a current::Current<'a>),
    /// Work carried from a node, or an async node.
    Carried(Arc<NodeScope>),
    /// No node.
    None,
}

/// `cx` as the context a new run starts from: a run started inside work carried from a node
/// (whose context holds that node's scope) is not that node's, so the scope is masked.
pub(crate) fn for_new_run(cx: Context) -> Context {
    match cx.get::<Arc<NodeScope>>() {
        Some(_) => cx.with_value(NodeScope::mask()),
        None => cx,
    }
}

/// Calls `f` with the node the code running here belongs to. The executor's running node
/// decides; a hook's active scope stands for it when it is that node's (or newer, or the
/// executor is not involved); work carried from elsewhere hides both, so the context's
/// carried scope comes last. `f` runs outside any borrow of the context (it may attach one).
pub(crate) fn running<R>(f: impl FnOnce(Running<'_>) -> R) -> R {
    let (active, active_mark) = ACTIVE.with(Cell::get);
    // SAFETY: a non-null pointer was stored by `NodeScope::activate`, which borrows the
    // `Arc` for its whole call and restores the previous pointer when it returns or unwinds;
    // so this thread is inside that call and the `Arc` is alive. `f` gets a reference
    // bounded by this call and cannot keep it.
    let active = unsafe { active.as_ref() };
    let mut f = Some(f);
    let decided = current::with(|node| {
        let pick = match (active, node) {
            (Some(scope), Some(node))
                if scope.owner == std::ptr::from_ref(node.node()) as usize
                    || active_mark > node.mark() =>
            {
                Running::Hooked(scope)
            }
            // An async node's poll whose context holds its hooks' scope of the same node:
            // that scope (below) has the node's span and entity.
            (_, Some(node)) if node.is_polled() && carries_scope_of(node.node()) => {
                return None;
            }
            (_, Some(node)) => Running::Executor(node),
            (Some(scope), None) => Running::Hooked(scope),
            (None, None) => return None,
        };
        f.take().map(|f| f(pick))
    });
    if let Some(result) = decided {
        return result;
    }
    let carried = Context::map_current(|cx| {
        cx.get::<Arc<NodeScope>>()
            .filter(|scope| scope.owner != MASK)
            .cloned()
    });
    let f = f.take().expect("not called yet");
    match carried {
        Some(scope) => f(Running::Carried(scope)),
        None => f(Running::None),
    }
}

/// Whether the current context holds a scope of `node`'s running attempt.
fn carries_scope_of(node: &NodeMeta) -> bool {
    Context::map_current(|cx| {
        cx.get::<Arc<NodeScope>>()
            .is_some_and(|scope| scope.is_for(node))
    })
}

/// Runs `f` as work carried from elsewhere: neither the executor's running node nor a hook's
/// active node of this thread is `f`'s (the context it attaches says which node it is).
pub(crate) fn hidden<R>(f: impl FnOnce() -> R) -> R {
    struct Restore((*const Arc<NodeScope>, u64));
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.with(|active| active.set(self.0));
        }
    }
    let _restore = Restore(ACTIVE.with(|active| active.replace((std::ptr::null(), 0))));
    current::hide(f)
}

impl NodeScope {
    /// A scope for the node `name`.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            entity: Entity::Own(OnceLock::new()),
            node_cx: Mutex::new(None),
            owner: 0,
            silent_run: None,
        }
    }

    /// The scope of `node`, whose span is in `node_cx`.
    pub(crate) fn for_node(node: &NodeMeta, node_cx: Option<Context>) -> Self {
        Self {
            node_cx: Mutex::new(node_cx),
            owner: node as *const NodeMeta as usize,
            ..Self::new(node.shared_name())
        }
    }

    /// A context value that hides the node scope of an outer context: a run started inside
    /// work carried from a node is not that node's.
    pub(crate) fn mask() -> Arc<NodeScope> {
        Arc::new(Self {
            owner: MASK,
            ..Self::new("")
        })
    }

    /// Whether this is the scope of `node`'s running attempt.
    pub(crate) fn is_for(&self, node: &NodeMeta) -> bool {
        self.owner == std::ptr::from_ref(node) as usize
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's name as an attribute value.
    pub fn name_value(&self) -> StringValue {
        StringValue::from(self.name.clone())
    }

    /// The entity id the node declared, once it has.
    pub fn entity(&self) -> Option<&Arc<str>> {
        self.entity.cell().get()
    }

    /// Records the entity id; the first declaration wins. Returns whether this one did.
    pub fn set_entity(&self, id: impl Into<Arc<str>>) -> bool {
        self.entity.cell().set(id.into()).is_ok()
    }

    /// The node's own context while its attempt runs (else `None`).
    pub(crate) fn node_context(&self) -> Option<Context> {
        self.node_cx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_node_context(&self, cx: Option<Context>) {
        *self.node_cx.lock().unwrap_or_else(|e| e.into_inner()) = cx;
    }

    /// Runs `f` with this scope as the thread's active node (see the type's docs).
    pub(crate) fn activate<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        struct Restore((*const Arc<NodeScope>, u64));
        impl Drop for Restore {
            fn drop(&mut self) {
                ACTIVE.with(|active| active.set(self.0));
            }
        }
        let me = (self as *const Arc<NodeScope>, current::next_mark());
        let _restore = Restore(ACTIVE.with(|active| active.replace(me)));
        f()
    }

    /// The scope of the node whose body is running on this thread (or that the current
    /// context was carried from), if any.
    ///
    /// In runs whose hooks skip node events (a sampled-out run, see
    /// [`Hooks::node_events`](crate::hooks::Hooks::node_events)) and in runs without hooks no
    /// hook keeps a node scope; [`carry`](super::carry) and the node's reports then make one
    /// from what the executor knows of the running node, and this returns `None` in the
    /// node's body. In work carried from the node it returns the scope `carry` made (in a run
    /// without hooks a silent one: it names the node, and what is reported there is not
    /// recorded).
    pub fn current() -> Option<Arc<NodeScope>> {
        running(|node| match node {
            Running::Hooked(scope) => Some(Arc::clone(scope)),
            Running::Carried(scope) => Some(scope),
            Running::Executor(_) | Running::None => None,
        })
    }

    /// The scope that node reports go to: [`current`](Self::current); else, inside the
    /// context of the executor's running node's own run (a run whose hooks skip node events,
    /// a sampled-out one), a scope made for that node. `None` in a run without hooks.
    pub(crate) fn here() -> Option<Arc<NodeScope>> {
        Self::of_running(false)
    }

    /// The scope to carry to other threads: [`here`](Self::here), or in a run without hooks a
    /// silent scope of the executor's running node, so that records made in carried work name
    /// the node and its run as the node's own records do.
    pub(crate) fn to_carry() -> Option<Arc<NodeScope>> {
        Self::of_running(true)
    }

    /// [`to_carry`](Self::to_carry) with `silent`, else [`here`](Self::here) (which makes no
    /// scope it would throw away: a report in a run without hooks stays a lookup).
    fn of_running(silent: bool) -> Option<Arc<NodeScope>> {
        running(|node| match node {
            Running::Hooked(scope) => {
                // As in `stamp`: between the nodes of a run started in this node's body, the
                // work is that run's and names no node.
                let nested = current::with(|n| {
                    n.is_some_and(|n| scope.is_for(n.node()) && nested_run(n.node()).is_some())
                });
                (!nested).then(|| Arc::clone(scope))
            }
            Running::Carried(scope) => (silent || scope.reports()).then_some(scope),
            Running::Executor(node) if nested_run(node.node()).is_some() => None,
            Running::Executor(node) => {
                // A run without hooks nested in a hooked node sees the outer run's scope,
                // which is not its own.
                let own_run = Context::map_current(|cx| {
                    cx.get::<RunScope>()
                        .is_some_and(|run| run.run_id == *node.run_id())
                });
                if !own_run && !silent {
                    return None;
                }
                let mut scope = NodeScope::for_node(node.node(), None);
                scope.entity = Entity::Shared(node.shared_entity());
                if !own_run {
                    scope.silent_run = Some(node.run_id().shared());
                }
                Some(Arc::new(scope))
            }
            Running::None => None,
        })
    }

    /// Whether what the node reports is recorded (see [`NodeScope::to_carry`]).
    pub(crate) fn reports(&self) -> bool {
        self.silent_run.is_none()
    }
}

/// The hooks' instruments and the DAG's name, from the run scope of the node's context `cx`,
/// else of the current context (a node may have attached a context of its own).
pub(crate) fn run_instruments(cx: &Context) -> Option<(Arc<Instruments>, Arc<str>)> {
    let of = |cx: &Context| {
        let run = cx.get::<RunScope>()?;
        Some((run.instruments.clone()?, Arc::clone(&run.dag)))
    };
    of(cx).or_else(|| Context::map_current(of))
}

/// The run and node a record made on this thread belongs to.
#[derive(Debug, Default)]
pub(crate) struct Stamp {
    pub(crate) run_id: Option<Arc<str>>,
    pub(crate) node: Option<Arc<str>>,
    pub(crate) entity: Option<Arc<str>>,
}

/// The node the code running here belongs to (see [`running`]), with its run.
pub(crate) fn stamp() -> Stamp {
    let run = || Context::map_current(|cx| cx.get::<RunScope>().map(|r| r.run_id.shared()));
    // A node body that attached a context of its own (a detached root, say) is still in its
    // run: the node's context knows which.
    let run_of = |scope: &NodeScope| {
        run().or_else(|| {
            scope
                .node_context()
                .and_then(|cx| cx.get::<RunScope>().map(|r| r.run_id.shared()))
        })
    };
    running(|node| match node {
        Running::Hooked(scope) => {
            // Only when the hook's scope is the executor's running node's: a newer scope (a
            // hand-driven node in that run) is a node of the run, and names itself.
            let nested = current::with(|n| {
                n.filter(|n| scope.is_for(n.node()))
                    .and_then(|n| nested_run(n.node()))
            });
            if let Some(run_id) = nested {
                return Stamp {
                    run_id: Some(run_id),
                    ..Stamp::default()
                };
            }
            Stamp {
                run_id: run_of(scope),
                node: Some(Arc::clone(&scope.name)),
                entity: scope.entity().cloned(),
            }
        }
        Running::Carried(scope) => Stamp {
            run_id: scope.silent_run.clone().or_else(|| run_of(&scope)),
            node: Some(Arc::clone(&scope.name)),
            entity: scope.entity().cloned(),
        },
        Running::Executor(node) => match nested_run(node.node()) {
            Some(run_id) => Stamp {
                run_id: Some(run_id),
                ..Stamp::default()
            },
            None => Stamp {
                run_id: Some(node.run_id().shared()),
                node: Some(node.node().shared_name()),
                entity: node.entity().cloned(),
            },
        },
        Running::None => Stamp {
            run_id: run(),
            ..Stamp::default()
        },
    })
}

/// The run of the current context when it was started in the body of `node` (running on this
/// thread): a record made there, outside that run's own nodes (its hooks' records between its
/// nodes), is the run's and names no node.
fn nested_run(node: &NodeMeta) -> Option<Arc<str>> {
    Context::map_current(|cx| {
        cx.get::<RunScope>()
            .filter(|run| run.launched_in(node))
            .map(|run| run.run_id.shared())
    })
}
