//! The node whose body runs on this thread, for code that has no `NodeCtx` at hand: the log
//! processor and the console format name it on every record, `ctx.entity` keeps the node's
//! entity id in it, and the `carry` helpers make a context from it for other threads.
//!
//! The executor sets it around every sync node body and every poll of an async node's
//! attempt, in every run: a thread-local pointer write before and after, so it costs next to
//! nothing, and it is there in runs whose hooks skip node events (see `Hooks::node_events`),
//! where no per-node context is built.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use crate::graph::NodeMeta;
use crate::ids::RunId;

/// A running node: its run, its declaration and the entity id it declared.
#[derive(Debug)]
pub(crate) struct Current<'a> {
    run_id: &'a RunId,
    node: &'a NodeMeta,
    entity: OnceLock<Arc<str>>,
    /// The entity cell shared with scopes made for work carried from this node (see
    /// [`shared_entity`](Self::shared_entity)); created on first need.
    shared: OnceLock<EntityCell>,
    /// When it became current (see [`next_mark`]).
    mark: Cell<u64>,
    /// Whether it stands for an async node during one poll (see [`Current::polled`]).
    polled: bool,
}

/// An entity id cell that several scopes of one node attempt share.
pub(crate) type EntityCell = Arc<OnceLock<Arc<str>>>;

/// What this thread is doing, in one thread-local (one address computation for all of it).
struct Here {
    /// The running node (see [`Current::scope`]).
    current: Cell<*const Current<'static>>,
    /// The run whose work this thread is doing outside any node body (see
    /// `RunShared::at_work`); null inside a node body, spawned jobs and migrated join halves
    /// (see `off_work`), so that a job of the run picked up inside other work enters the run
    /// afresh instead of inheriting whatever that work attached.
    working_on: Cell<*const ()>,
    /// See [`next_mark`].
    marks: Cell<u64>,
}

thread_local! {
    static HERE: Here = const {
        Here {
            current: Cell::new(std::ptr::null()),
            working_on: Cell::new(std::ptr::null()),
            marks: Cell::new(0),
        }
    };
}

/// The run this thread is doing work for outside any node body (null if none).
pub(crate) fn working_on() -> *const () {
    HERE.with(|here| here.working_on.get())
}

/// Makes `run` the one this thread works for until the guard drops.
pub(crate) fn work_on(run: *const ()) -> impl Drop {
    HERE.with(|here| Restore {
        current: here.current.get(),
        working_on: here.working_on.replace(run),
    })
}

/// Runs `f` as work of no run, for a job of a run that this thread may have picked up while it
/// waited inside other work: the job then enters its run afresh (see `RunShared::at_work`)
/// instead of trusting that the context attached is still the run's.
pub(crate) fn off_work<R>(f: impl FnOnce() -> R) -> R {
    let _restore = HERE.with(|here| Restore {
        current: here.current.get(),
        working_on: here.working_on.replace(std::ptr::null()),
    });
    f()
}

/// Puts this thread's running node and run back as they were before a scope.
struct Restore {
    current: *const Current<'static>,
    working_on: *const (),
}

impl Drop for Restore {
    fn drop(&mut self) {
        HERE.with(|here| {
            here.current.set(self.current);
            here.working_on.set(self.working_on);
        });
    }
}

/// A number that grows each time something becomes this thread's running node, so that of two
/// thread-local notions of it (this one and a hook's) the newer can be told.
pub(crate) fn next_mark() -> u64 {
    HERE.with(|here| {
        let mark = here.marks.get() + 1;
        here.marks.set(mark);
        mark
    })
}

/// Runs `f` with no node current on this thread (work carried from elsewhere says which node
/// it belongs to itself); the current one is back afterwards.
pub(crate) fn hide<R>(f: impl FnOnce() -> R) -> R {
    let _restore = HERE.with(|here| Restore {
        current: here.current.replace(std::ptr::null()),
        working_on: here.working_on.get(),
    });
    f()
}

impl<'a> Current<'a> {
    /// The node `node` of run `run_id`, borrowing both.
    pub(crate) fn new(run_id: &'a RunId, node: &'a NodeMeta) -> Self {
        Self {
            run_id,
            node,
            entity: OnceLock::new(),
            shared: OnceLock::new(),
            mark: Cell::new(0),
            polled: false,
        }
    }

    /// The async node `node` of run `run_id` during one poll of its future. A new one is made
    /// for each poll; they share `entity`, so an entity declared in one poll is the node's in
    /// the next. A scope its hooks put in its context speaks for it first (see
    /// [`is_polled`](Self::is_polled)).
    pub(crate) fn polled(run_id: &'a RunId, node: &'a NodeMeta, entity: &EntityCell) -> Self {
        let shared = OnceLock::new();
        let _ = shared.set(Arc::clone(entity));
        Self {
            shared,
            polled: true,
            ..Self::new(run_id, node)
        }
    }

    /// Whether this is an async node's poll, whose hooks may keep their own scope of the node
    /// in its context (an instrumentation's, holding its span and entity).
    pub(crate) fn is_polled(&self) -> bool {
        self.polled
    }

    /// When it became current: compare with [`next_mark`] values.
    pub(crate) fn mark(&self) -> u64 {
        self.mark.get()
    }

    pub(crate) fn run_id(&self) -> &RunId {
        self.run_id
    }

    pub(crate) fn node(&self) -> &NodeMeta {
        self.node
    }

    pub(crate) fn entity(&self) -> Option<&Arc<str>> {
        match self.shared.get() {
            Some(shared) => shared.get(),
            None => self.entity.get(),
        }
    }

    /// Records the entity id; the first declaration wins.
    pub(crate) fn set_entity(&self, id: &str) {
        match self.shared.get() {
            Some(shared) => {
                let _ = shared.get_or_init(|| Arc::from(id));
            }
            None => {
                let _ = self.entity.get_or_init(|| Arc::from(id));
            }
        }
    }

    /// The node's entity cell as shared with work carried from it, so that an entity declared
    /// there or here later is the node's everywhere. Created on first call, holding the entity
    /// declared so far.
    pub(crate) fn shared_entity(&self) -> EntityCell {
        Arc::clone(self.shared.get_or_init(|| {
            let cell = OnceLock::new();
            if let Some(entity) = self.entity.get() {
                let _ = cell.set(Arc::clone(entity));
            }
            Arc::new(cell)
        }))
    }

    /// Runs `f` with this node current on this thread; the previous one (a node of an outer
    /// run, or none) is current again afterwards, also when `f` unwinds.
    ///
    /// No run's work is this thread's meanwhile (see [`working_on`]): what the body does is
    /// its own, and a job of the run that the body's waits pick up enters the run afresh.
    pub(crate) fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let me = (self as *const Current<'a>).cast::<Current<'static>>();
        let _restore = HERE.with(|here| {
            let mark = here.marks.get() + 1;
            here.marks.set(mark);
            self.mark.set(mark);
            Restore {
                current: here.current.replace(me),
                working_on: here.working_on.replace(std::ptr::null()),
            }
        });
        f()
    }
}

/// Calls `f` with the node current on this thread, if any.
pub(crate) fn with<R>(f: impl FnOnce(Option<&Current<'_>>) -> R) -> R {
    let current = HERE.with(|here| here.current.get());
    // SAFETY: a non-null pointer was stored by `Current::scope`, which borrows the `Current`
    // for the whole scope and restores the previous pointer when the scope ends (also when
    // unwinding). So while it is stored, this thread is inside that scope and the value is
    // alive; `f` only gets a reference bounded by this call, so it cannot keep it.
    f(unsafe { current.as_ref() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore() {
        let run = RunId::from("run-1");
        let outer = Arc::new(NodeMeta::new("outer"));
        let inner = Arc::new(NodeMeta::new("inner"));
        assert!(with(|c| c.is_none()));
        Current::new(&run, &outer).scope(|| {
            assert_eq!(
                with(|c| c.map(|c| c.node().name().to_string())).as_deref(),
                Some("outer")
            );
            Current::new(&run, &inner).scope(|| {
                with(|c| c.expect("inner").set_entity("e-1"));
                assert_eq!(
                    with(|c| c.and_then(|c| c.entity().cloned())).as_deref(),
                    Some("e-1")
                );
            });
            assert_eq!(
                with(|c| c.map(|c| c.node().name().to_string())).as_deref(),
                Some("outer")
            );
            assert!(with(|c| c.and_then(|c| c.entity().cloned())).is_none());
        });
        assert!(with(|c| c.is_none()));
    }

    #[test]
    fn restored_when_the_scope_unwinds() {
        let run = RunId::from("run-1");
        let node = Arc::new(NodeMeta::new("boom"));
        let caught = std::panic::catch_unwind(|| {
            Current::new(&run, &node).scope(|| panic!("node body panicked"));
        });
        assert!(caught.is_err());
        assert!(with(|c| c.is_none()));
    }
}
