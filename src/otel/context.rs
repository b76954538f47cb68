//! What a run puts into the OpenTelemetry [`Context`]: the run's scope for the whole run, and
//! the node's scope while a node runs. Processors read them to stamp every span and log record;
//! the `carry` helpers move them onto other threads and tasks.

use std::cell::Cell;
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::trace::SpanContext;
use opentelemetry::{Context, StringValue};

use super::metrics::Instruments;
use crate::execution::current;
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
        }
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
    entity: OnceLock<Arc<str>>,
    /// The node's own context (its span), while the attempt runs: reports go to the node's
    /// span even when a user span is current. A scope that is itself in that context (async
    /// nodes) has it cleared when the attempt ends, which breaks the cycle.
    node_cx: Mutex<Option<Context>>,
}

thread_local! {
    static ACTIVE: Cell<*const NodeScope> = const { Cell::new(std::ptr::null()) };
}

impl NodeScope {
    /// A scope for the node `name`.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            entity: OnceLock::new(),
            node_cx: Mutex::new(None),
        }
    }

    /// A scope for the node `name` whose span is in `node_cx`.
    pub(crate) fn with_context(name: impl Into<Arc<str>>, node_cx: Context) -> Self {
        Self {
            node_cx: Mutex::new(Some(node_cx)),
            ..Self::new(name)
        }
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
        self.entity.get()
    }

    /// Records the entity id; the first declaration wins. Returns whether this one did.
    pub fn set_entity(&self, id: impl Into<Arc<str>>) -> bool {
        self.entity.set(id.into()).is_ok()
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

    /// A copy that can go into a context: same name, entity so far and node context.
    fn to_shared(&self) -> Arc<NodeScope> {
        let copy = NodeScope::new(Arc::clone(&self.name));
        if let Some(entity) = self.entity() {
            let _ = copy.entity.set(Arc::clone(entity));
        }
        copy.set_node_context(self.node_context());
        Arc::new(copy)
    }

    /// Runs `f` with this scope as the thread's active node (see the type's docs).
    pub(crate) fn activate<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(*const NodeScope);
        impl Drop for Restore {
            fn drop(&mut self) {
                ACTIVE.with(|active| active.set(self.0));
            }
        }
        let _restore = Restore(ACTIVE.with(|active| active.replace(self)));
        f()
    }

    /// Calls `f` with the scope of the running node: the one in the current context (carried
    /// work, async nodes), else the thread's active node. `f` runs outside any borrow of the
    /// context, so it may attach contexts.
    pub(crate) fn with_running<R>(f: impl FnOnce(Option<&NodeScope>) -> R) -> R {
        if let Some(scope) = Context::map_current(|cx| cx.get::<Arc<NodeScope>>().cloned()) {
            return f(Some(&scope));
        }
        let active = ACTIVE.with(Cell::get);
        // SAFETY: a non-null pointer was stored by `activate`, which borrows the scope for its
        // whole call and restores the previous pointer when it returns or unwinds; so this
        // thread is inside that call and the scope is alive. `f` gets a reference bounded by
        // this call and cannot keep it.
        f(unsafe { active.as_ref() })
    }

    /// The scope of the node whose body is running on this thread (or that the current
    /// context was carried from), if any.
    ///
    /// In runs whose hooks skip node events (a sampled-out run, see
    /// [`Hooks::node_events`](crate::hooks::Hooks::node_events)) no hook keeps a node scope;
    /// [`carry`](super::carry) and the node's reports then make one from what the executor
    /// knows of the running node, and this returns `None`.
    pub fn current() -> Option<Arc<NodeScope>> {
        if let Some(scope) = Context::map_current(|cx| cx.get::<Arc<NodeScope>>().cloned()) {
            return Some(scope);
        }
        let active = ACTIVE.with(Cell::get);
        // SAFETY: as in `with_running`.
        unsafe { active.as_ref() }.map(NodeScope::to_shared)
    }

    /// [`current`](Self::current); else, inside a run's context, a scope made for the node the
    /// executor is running on this thread.
    pub(crate) fn here() -> Option<Arc<NodeScope>> {
        if let Some(scope) = Self::current() {
            return Some(scope);
        }
        Context::map_current(|cx| {
            cx.get::<RunScope>()?;
            current::with(|node| {
                let node = node?;
                let scope = NodeScope::new(node.node().shared_name());
                if let Some(entity) = node.entity() {
                    let _ = scope.entity.set(Arc::clone(entity));
                }
                Some(Arc::new(scope))
            })
        })
    }
}

/// The hooks' instruments and the DAG's name, from the run scope of the current context.
pub(crate) fn run_instruments() -> Option<(Arc<Instruments>, Arc<str>)> {
    Context::map_current(|cx| {
        let run = cx.get::<RunScope>()?;
        Some((run.instruments.clone()?, Arc::clone(&run.dag)))
    })
}

/// The run and node a record made on this thread belongs to.
#[derive(Debug, Default)]
pub(crate) struct Stamp {
    pub(crate) run_id: Option<Arc<str>>,
    pub(crate) node: Option<Arc<str>>,
    pub(crate) entity: Option<Arc<str>>,
}

/// The node scope of the current context (with its run); else the node the executor runs on
/// this thread, with its run (runs without node events put no node scope into the context);
/// else the run scope of the context alone.
pub(crate) fn stamp() -> Stamp {
    Context::map_current(|cx| {
        let run = || cx.get::<RunScope>().map(|r| r.run_id.shared());
        if let Some(node) = cx.get::<Arc<NodeScope>>() {
            return Stamp {
                run_id: run(),
                node: Some(Arc::clone(&node.name)),
                entity: node.entity().cloned(),
            };
        }
        current::with(|node| match node {
            Some(node) => Stamp {
                run_id: Some(node.run_id().shared()),
                node: Some(node.node().shared_name()),
                entity: node.entity().cloned(),
            },
            None => Stamp {
                run_id: run(),
                ..Stamp::default()
            },
        })
    })
}
