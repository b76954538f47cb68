//! Lifecycle hooks, modelled on Apache Hamilton's lifecycle adapters.
//!
//! A [`Hooks`] implementation is called around the run, each stage, each task and each node
//! attempt. Every `before_*` returns a state that the matching `after_*` receives, on the same
//! thread for sync nodes (and in the same tokio task for async ones), so an instrumentation can
//! carry a span from start to end without global maps or locks. Child levels see their
//! parents' states through [`Parents`], which is how a node span finds its task span.
//!
//! [`Hooks::around_node`] and [`Hooks::around_async`] wrap the node body itself (Hamilton's
//! `NodeExecutionMethod`), e.g. to make a span current while user code runs.
//!
//! Hooks compose: [`Executor::hook`](crate::Executor::hook) stacks them; `before_*` run in
//! registration order, `after_*` in reverse. A hook that returns an error or panics is
//! contained: the failure is counted in the run record, the node and the other hooks go on.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Instant;
//! use dagtel::hooks::{Hooks, HookResult, NodeEnd, NodeStart, Parents};
//! use dagtel::{DagBuilder, Executor, Inputs, Request};
//!
//! #[derive(Default)]
//! struct SlowNodes { slow: AtomicUsize }
//!
//! impl Hooks for SlowNodes {
//!     type Run = ();
//!     type Stage = ();
//!     type Task = ();
//!     type Node = Option<Instant>;
//!
//!     fn before_node(&self, _: Parents<'_, Self>, _: &NodeStart<'_>) -> HookResult<Self::Node> {
//!         Ok(Some(Instant::now()))
//!     }
//!     fn after_node(&self, _: Parents<'_, Self>, started: Self::Node, node: &NodeEnd<'_>) -> HookResult {
//!         if started.is_some_and(|t| t.elapsed().as_millis() > 100) {
//!             self.slow.fetch_add(1, Ordering::Relaxed);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let mut g = DagBuilder::new("demo");
//! let x = g.input::<u32>("x");
//! let y = g.node("y").run(x, |_, x| Ok(x + 1));
//! let dag = g.build().unwrap();
//! let plan = dag.plan(&Request::new().output(y)).unwrap();
//! let executor = Executor::sequential().hook(SlowNodes::default());
//! let run = executor.run(&plan, Inputs::new().set(x, 1)).unwrap();
//! assert_eq!(run.outputs().get(y), Some(&2));
//! ```

mod events;
mod failures;
mod lifecycle;
mod set;

use futures_util::future::BoxFuture;

pub use events::*;
pub use failures::{HookError, HookFailure, HookFailures, HookPhase, HookResult};
pub use lifecycle::{ActiveNode, ActiveRun, ActiveStage, ActiveTask, Lifecycle, RunInfo};
pub use set::{HookSet, NoHooks, Stack};

pub(crate) use failures::panic_message;

/// One instrumentation's callbacks; every method has a no-op default.
///
/// The four state types are what this hook carries from each `before_*` to its `after_*`;
/// use `()` for levels it does not care about. They need `Default` so that the default
/// methods can produce them.
pub trait Hooks: Send + Sync + 'static {
    /// Kept for the whole run; shared by every thread, so `Sync`.
    type Run: Send + Sync + Default;
    /// Kept while a stage runs; shared by the stage's tasks, so `Sync`.
    type Stage: Send + Sync + Default;
    /// Kept while a task runs; its nodes borrow it, so `Sync`.
    type Task: Send + Sync + Default;
    /// Kept while a node attempt runs.
    type Node: Send + Default;

    /// The run is starting.
    fn before_run(&self, run: &RunStart<'_>) -> HookResult<Self::Run> {
        let _ = run;
        Ok(Default::default())
    }

    /// The run has ended (always called once `before_run` succeeded, also on failure).
    fn after_run(&self, state: Self::Run, run: &RunEnd<'_>) -> HookResult {
        let _ = (state, run);
        Ok(())
    }

    /// A stage's first task is starting.
    fn before_stage(&self, run: &Self::Run, stage: &StageStart<'_>) -> HookResult<Self::Stage> {
        let _ = (run, stage);
        Ok(Default::default())
    }

    /// A stage's last task has ended. The state is borrowed: other threads may have read it
    /// until now, and it is dropped when the run ends.
    fn after_stage(
        &self,
        run: &Self::Run,
        state: &Self::Stage,
        stage: &StageEnd<'_>,
    ) -> HookResult {
        let _ = (run, state, stage);
        Ok(())
    }

    /// A task is starting.
    fn before_task(
        &self,
        parents: Parents<'_, Self>,
        task: &TaskStart<'_>,
    ) -> HookResult<Self::Task> {
        let _ = (parents, task);
        Ok(Default::default())
    }

    /// A task has ended.
    fn after_task(
        &self,
        parents: Parents<'_, Self>,
        state: Self::Task,
        task: &TaskEnd<'_>,
    ) -> HookResult {
        let _ = (parents, state, task);
        Ok(())
    }

    /// A node attempt is starting. Skipped nodes get a `before_node`/`after_node` pair too,
    /// with attempt 0 and a [`NodeOutcome::Skipped`](crate::NodeOutcome::Skipped) outcome.
    fn before_node(
        &self,
        parents: Parents<'_, Self>,
        node: &NodeStart<'_>,
    ) -> HookResult<Self::Node> {
        let _ = (parents, node);
        Ok(Default::default())
    }

    /// A node attempt has ended.
    fn after_node(
        &self,
        parents: Parents<'_, Self>,
        state: Self::Node,
        node: &NodeEnd<'_>,
    ) -> HookResult {
        let _ = (parents, state, node);
        Ok(())
    }

    /// Wraps a sync node's body; must call `body` once. If it does not (or fails before), the
    /// executor runs the body itself and records the hook failure.
    fn around_node(
        &self,
        state: &Self::Node,
        node: &NodeStart<'_>,
        body: &mut dyn FnMut(),
    ) -> HookResult {
        let _ = (state, node);
        body();
        Ok(())
    }

    /// Wraps an async node's future (e.g. to attach a context to every poll).
    fn around_async(
        &self,
        state: &Self::Node,
        node: &NodeStart<'_>,
        body: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, ()> {
        let _ = (state, node);
        body
    }

    /// Whether this hook wants the task and node events of this run (`before_task`,
    /// `after_task`, `before_node`, `after_node`, `around_node`, `around_async`). Asked once,
    /// right after `before_run`, except for plans with async nodes, which always deliver
    /// them (the question is not asked).
    ///
    /// When no hook of an executor wants them, the run's tasks and nodes take the executor's
    /// hook-free path: the hooks then see the run and its stages only, [`around_work`]
    /// on every thread that runs nodes, and the per-node facts in [`RunEnd::record`] when
    /// the run ends. A hook that answers `false` (an instrumentation whose run was sampled
    /// out, say) makes such runs nearly as cheap as runs without hooks; if another hook
    /// answers `true`, it gets the node events after all and must handle them.
    ///
    /// [`around_work`]: Hooks::around_work
    ///
    /// A hook that looks at one run in ten closely and at the others only as a whole:
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use dagtel::hooks::{HookResult, Hooks, NodeStart, Parents, RunEnd, RunStart};
    /// use dagtel::{DagBuilder, Executor, Inputs, NodeStatus, Request};
    ///
    /// #[derive(Default)]
    /// struct OneInTen { runs: AtomicUsize, node_calls: AtomicUsize, slow: AtomicUsize }
    ///
    /// impl Hooks for &'static OneInTen {
    ///     type Run = bool; // whether this run is looked at closely
    ///     type Stage = ();
    ///     type Task = ();
    ///     type Node = ();
    ///
    ///     fn before_run(&self, _: &RunStart<'_>) -> HookResult<bool> {
    ///         Ok(self.runs.fetch_add(1, Ordering::Relaxed) % 10 == 0)
    ///     }
    ///     fn node_events(&self, closely: &bool) -> bool {
    ///         *closely
    ///     }
    ///     fn before_node(&self, _: Parents<'_, Self>, _: &NodeStart<'_>) -> HookResult {
    ///         self.node_calls.fetch_add(1, Ordering::Relaxed);
    ///         Ok(())
    ///     }
    ///     fn after_run(&self, _: bool, run: &RunEnd<'_>) -> HookResult {
    ///         // Every run, looked at closely or not, ends with its record.
    ///         if let Some(record) = run.record {
    ///             let slow = record.nodes().filter(|n| n.duration.as_secs() >= 60).count();
    ///             self.slow.fetch_add(slow, Ordering::Relaxed);
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let hook: &'static OneInTen = Box::leak(Box::default());
    /// let mut g = DagBuilder::new("demo");
    /// let x = g.input::<u32>("x");
    /// let y = g.node("y").run(x, |_, x| Ok(x + 1));
    /// let plan = g.build().unwrap().plan(&Request::new().output(y)).unwrap();
    /// let executor = Executor::parallel().threads(2).hook(hook);
    /// for _ in 0..20 {
    ///     let run = executor.run(&plan, Inputs::new().set(x, 1)).unwrap();
    ///     assert_eq!(run.record().count(NodeStatus::Succeeded), 1);
    /// }
    /// assert_eq!(hook.node_calls.load(Ordering::Relaxed), 2, "runs 0 and 10 only");
    /// ```
    fn node_events(&self, run: &Self::Run) -> bool {
        let _ = run;
        true
    }

    /// Wraps each stretch of work a thread does for the run: the sequential executor's whole
    /// loop, each chain of tasks a rayon worker runs without a break, and each poll of a task
    /// with async nodes on tokio. Node bodies run inside it, so this is where run-level
    /// state (an OpenTelemetry context, say) can be made current on every thread, in runs
    /// with or without node events. Must call `work` once; if it does not (or fails before),
    /// the executor does and records the failure. Must be re-entrant: a job of the run that a
    /// thread takes up while it waits inside other work (a join, a node body's rayon wait) is
    /// a stretch of its own, inside the one the thread was in.
    fn around_work(&self, run: &Self::Run, work: &mut dyn FnMut()) -> HookResult {
        let _ = run;
        work();
        Ok(())
    }
}

/// The states of the enclosing run, stage and task, as a hook's own types.
///
/// `stage` is `None` for nodes outside any stage (or when this hook's `before_stage` failed);
/// `task` is `None` in task methods themselves.
pub struct Parents<'a, H: Hooks + ?Sized> {
    /// The run's state.
    pub run: &'a H::Run,
    /// The stage's state.
    pub stage: Option<&'a H::Stage>,
    /// The task's state (node methods only).
    pub task: Option<&'a H::Task>,
}

impl<H: Hooks + ?Sized> Clone for Parents<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H: Hooks + ?Sized> Copy for Parents<'_, H> {}

/// A shared hook is a hook: keep one clone to read what the hook gathered after the run.
impl<T: Hooks> Hooks for std::sync::Arc<T> {
    type Run = T::Run;
    type Stage = T::Stage;
    type Task = T::Task;
    type Node = T::Node;

    fn before_run(&self, run: &RunStart<'_>) -> HookResult<Self::Run> {
        (**self).before_run(run)
    }
    fn after_run(&self, state: Self::Run, run: &RunEnd<'_>) -> HookResult {
        (**self).after_run(state, run)
    }
    fn before_stage(&self, run: &Self::Run, stage: &StageStart<'_>) -> HookResult<Self::Stage> {
        (**self).before_stage(run, stage)
    }
    fn after_stage(
        &self,
        run: &Self::Run,
        state: &Self::Stage,
        stage: &StageEnd<'_>,
    ) -> HookResult {
        (**self).after_stage(run, state, stage)
    }
    fn before_task(
        &self,
        parents: Parents<'_, Self>,
        task: &TaskStart<'_>,
    ) -> HookResult<Self::Task> {
        (**self).before_task(parents.cast(), task)
    }
    fn after_task(
        &self,
        parents: Parents<'_, Self>,
        state: Self::Task,
        task: &TaskEnd<'_>,
    ) -> HookResult {
        (**self).after_task(parents.cast(), state, task)
    }
    fn before_node(
        &self,
        parents: Parents<'_, Self>,
        node: &NodeStart<'_>,
    ) -> HookResult<Self::Node> {
        (**self).before_node(parents.cast(), node)
    }
    fn after_node(
        &self,
        parents: Parents<'_, Self>,
        state: Self::Node,
        node: &NodeEnd<'_>,
    ) -> HookResult {
        (**self).after_node(parents.cast(), state, node)
    }
    fn around_node(
        &self,
        state: &Self::Node,
        node: &NodeStart<'_>,
        body: &mut dyn FnMut(),
    ) -> HookResult {
        (**self).around_node(state, node, body)
    }
    fn around_async(
        &self,
        state: &Self::Node,
        node: &NodeStart<'_>,
        body: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, ()> {
        (**self).around_async(state, node, body)
    }
    fn node_events(&self, run: &Self::Run) -> bool {
        (**self).node_events(run)
    }
    fn around_work(&self, run: &Self::Run, work: &mut dyn FnMut()) -> HookResult {
        (**self).around_work(run, work)
    }
}

impl<'a, T: Hooks> Parents<'a, std::sync::Arc<T>> {
    fn cast(self) -> Parents<'a, T> {
        Parents {
            run: self.run,
            stage: self.stage,
            task: self.task,
        }
    }
}
