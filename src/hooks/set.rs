//! Composition of hooks, resolved at compile time.
//!
//! An executor holds a [`HookSet`]: [`NoHooks`] (costs nothing) or a [`Stack`] of an inner set
//! and one [`Hooks`] implementation. Each level's state is a tuple of the inner set's state and
//! an `Option` of the hook's own (`None` when that hook's `before` failed, which disables its
//! matching `after` and its calls below that level).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::events::*;
use super::failures::{HookFailures, HookPhase, panic_message};
use super::{Hooks, Parents};

mod sealed {
    pub trait Sealed {}
}

/// A composed set of hooks, as executors hold them. Implemented by [`NoHooks`] and [`Stack`];
/// users implement [`Hooks`] instead.
#[allow(missing_docs)]
pub trait HookSet: sealed::Sealed + Send + Sync + 'static {
    type Run: Send + Sync;
    type Stage: Send + Sync;
    type Task: Send + Sync + Default;
    type Node: Send + Default;

    #[doc(hidden)]
    fn before_run(&self, ev: &RunStart<'_>, sink: &HookFailures) -> Self::Run;
    #[doc(hidden)]
    fn after_run(&self, st: Self::Run, ev: &RunEnd<'_>, sink: &HookFailures);
    #[doc(hidden)]
    fn before_stage(
        &self,
        run: &Self::Run,
        ev: &StageStart<'_>,
        sink: &HookFailures,
    ) -> Self::Stage;
    #[doc(hidden)]
    fn after_stage(
        &self,
        run: &Self::Run,
        st: &Self::Stage,
        ev: &StageEnd<'_>,
        sink: &HookFailures,
    );
    #[doc(hidden)]
    fn before_task(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        ev: &TaskStart<'_>,
        sink: &HookFailures,
    ) -> Self::Task;
    #[doc(hidden)]
    fn after_task(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        st: Self::Task,
        ev: &TaskEnd<'_>,
        sink: &HookFailures,
    );
    #[doc(hidden)]
    fn before_node(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        task: &Self::Task,
        ev: &NodeStart<'_>,
        sink: &HookFailures,
    ) -> Self::Node;
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn after_node(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        task: &Self::Task,
        st: Self::Node,
        ev: &NodeEnd<'_>,
        sink: &HookFailures,
    );
    #[doc(hidden)]
    fn around_node(
        &self,
        st: &Self::Node,
        ev: &NodeStart<'_>,
        body: &mut dyn FnMut(),
        sink: &HookFailures,
    );
    #[doc(hidden)]
    fn around_async(
        &self,
        st: &Self::Node,
        ev: &NodeStart<'_>,
        body: BoxFuture<'static, ()>,
        sink: &Arc<HookFailures>,
    ) -> BoxFuture<'static, ()>;
    /// Whether any hook wants this run's task and node events (see [`Hooks::node_events`]).
    fn node_events(&self, run: &Self::Run, sink: &HookFailures) -> bool;
    /// Runs `work`, wrapped by every hook's `around_work` (first-registered outermost).
    fn around_work(&self, run: &Self::Run, work: &mut dyn FnMut(), sink: &HookFailures);
    /// Whether any hook is installed (lets executors skip event construction entirely).
    #[doc(hidden)]
    const ACTIVE: bool;
}

/// No hooks: every call compiles to nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl sealed::Sealed for NoHooks {}
impl<T: HookSet> sealed::Sealed for std::sync::Arc<T> {}

/// A shared hook set delegates to its contents; executors share their hooks with each run.
impl<T: HookSet> HookSet for std::sync::Arc<T> {
    type Run = T::Run;
    type Stage = T::Stage;
    type Task = T::Task;
    type Node = T::Node;
    const ACTIVE: bool = T::ACTIVE;

    fn before_run(&self, ev: &RunStart<'_>, sink: &HookFailures) -> Self::Run {
        (**self).before_run(ev, sink)
    }
    fn after_run(&self, st: Self::Run, ev: &RunEnd<'_>, sink: &HookFailures) {
        (**self).after_run(st, ev, sink)
    }
    fn before_stage(
        &self,
        run: &Self::Run,
        ev: &StageStart<'_>,
        sink: &HookFailures,
    ) -> Self::Stage {
        (**self).before_stage(run, ev, sink)
    }
    fn after_stage(
        &self,
        run: &Self::Run,
        st: &Self::Stage,
        ev: &StageEnd<'_>,
        sink: &HookFailures,
    ) {
        (**self).after_stage(run, st, ev, sink)
    }
    fn before_task(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        ev: &TaskStart<'_>,
        sink: &HookFailures,
    ) -> Self::Task {
        (**self).before_task(run, stage, ev, sink)
    }
    fn after_task(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        st: Self::Task,
        ev: &TaskEnd<'_>,
        sink: &HookFailures,
    ) {
        (**self).after_task(run, stage, st, ev, sink)
    }
    fn before_node(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        task: &Self::Task,
        ev: &NodeStart<'_>,
        sink: &HookFailures,
    ) -> Self::Node {
        (**self).before_node(run, stage, task, ev, sink)
    }
    fn after_node(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        task: &Self::Task,
        st: Self::Node,
        ev: &NodeEnd<'_>,
        sink: &HookFailures,
    ) {
        (**self).after_node(run, stage, task, st, ev, sink)
    }
    fn around_node(
        &self,
        st: &Self::Node,
        ev: &NodeStart<'_>,
        body: &mut dyn FnMut(),
        sink: &HookFailures,
    ) {
        (**self).around_node(st, ev, body, sink)
    }
    fn around_async(
        &self,
        st: &Self::Node,
        ev: &NodeStart<'_>,
        body: BoxFuture<'static, ()>,
        sink: &Arc<HookFailures>,
    ) -> BoxFuture<'static, ()> {
        (**self).around_async(st, ev, body, sink)
    }
    fn node_events(&self, run: &Self::Run, sink: &HookFailures) -> bool {
        (**self).node_events(run, sink)
    }
    fn around_work(&self, run: &Self::Run, work: &mut dyn FnMut(), sink: &HookFailures) {
        (**self).around_work(run, work, sink)
    }
}

impl HookSet for NoHooks {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();
    const ACTIVE: bool = false;

    #[inline]
    fn before_run(&self, _: &RunStart<'_>, _: &HookFailures) {}
    #[inline]
    fn after_run(&self, _: (), _: &RunEnd<'_>, _: &HookFailures) {}
    #[inline]
    fn before_stage(&self, _: &(), _: &StageStart<'_>, _: &HookFailures) {}
    #[inline]
    fn after_stage(&self, _: &(), _: &(), _: &StageEnd<'_>, _: &HookFailures) {}
    #[inline]
    fn before_task(&self, _: &(), _: Option<&()>, _: &TaskStart<'_>, _: &HookFailures) {}
    #[inline]
    fn after_task(&self, _: &(), _: Option<&()>, _: (), _: &TaskEnd<'_>, _: &HookFailures) {}
    #[inline]
    fn before_node(&self, _: &(), _: Option<&()>, _: &(), _: &NodeStart<'_>, _: &HookFailures) {}
    #[inline]
    fn after_node(&self, _: &(), _: Option<&()>, _: &(), _: (), _: &NodeEnd<'_>, _: &HookFailures) {
    }
    #[inline]
    fn around_node(&self, _: &(), _: &NodeStart<'_>, body: &mut dyn FnMut(), _: &HookFailures) {
        body()
    }
    #[inline]
    fn around_async(
        &self,
        _: &(),
        _: &NodeStart<'_>,
        body: BoxFuture<'static, ()>,
        _: &Arc<HookFailures>,
    ) -> BoxFuture<'static, ()> {
        body
    }
    #[inline]
    fn node_events(&self, _: &(), _: &HookFailures) -> bool {
        false
    }
    #[inline]
    fn around_work(&self, _: &(), work: &mut dyn FnMut(), _: &HookFailures) {
        work()
    }
}

/// `inner` plus one more hook. "Before" methods run in registration order (inner first),
/// "after" methods in reverse, and wrappers nest with the first-registered outermost.
#[derive(Clone, Debug, Default)]
pub struct Stack<I, H> {
    pub(crate) inner: I,
    pub(crate) hook: H,
}

impl<I, H> sealed::Sealed for Stack<I, H> {}

fn name<H>() -> &'static str {
    std::any::type_name::<H>()
}

impl<I: HookSet, H: Hooks> HookSet for Stack<I, H> {
    type Run = (I::Run, Option<H::Run>);
    type Stage = (I::Stage, Option<H::Stage>);
    type Task = (I::Task, Option<H::Task>);
    type Node = (I::Node, Option<H::Node>);
    const ACTIVE: bool = true;

    fn before_run(&self, ev: &RunStart<'_>, sink: &HookFailures) -> Self::Run {
        let inner = self.inner.before_run(ev, sink);
        let own = sink.guard(name::<H>(), HookPhase::BeforeRun, || {
            self.hook.before_run(ev)
        });
        (inner, own)
    }

    fn after_run(&self, st: Self::Run, ev: &RunEnd<'_>, sink: &HookFailures) {
        if let Some(own) = st.1 {
            sink.guard(name::<H>(), HookPhase::AfterRun, || {
                self.hook.after_run(own, ev)
            });
        }
        self.inner.after_run(st.0, ev, sink);
    }

    fn before_stage(
        &self,
        run: &Self::Run,
        ev: &StageStart<'_>,
        sink: &HookFailures,
    ) -> Self::Stage {
        let inner = self.inner.before_stage(&run.0, ev, sink);
        let own = run.1.as_ref().and_then(|r| {
            sink.guard(name::<H>(), HookPhase::BeforeStage, || {
                self.hook.before_stage(r, ev)
            })
        });
        (inner, own)
    }

    fn after_stage(
        &self,
        run: &Self::Run,
        st: &Self::Stage,
        ev: &StageEnd<'_>,
        sink: &HookFailures,
    ) {
        if let (Some(r), Some(own)) = (&run.1, &st.1) {
            sink.guard(name::<H>(), HookPhase::AfterStage, || {
                self.hook.after_stage(r, own, ev)
            });
        }
        self.inner.after_stage(&run.0, &st.0, ev, sink);
    }

    fn before_task(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        ev: &TaskStart<'_>,
        sink: &HookFailures,
    ) -> Self::Task {
        let inner = self
            .inner
            .before_task(&run.0, stage.map(|s| &s.0), ev, sink);
        let own = run.1.as_ref().and_then(|r| {
            let parents = own_parents::<I, H>(r, stage, None);
            sink.guard(name::<H>(), HookPhase::BeforeTask, || {
                self.hook.before_task(parents, ev)
            })
        });
        (inner, own)
    }

    fn after_task(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        st: Self::Task,
        ev: &TaskEnd<'_>,
        sink: &HookFailures,
    ) {
        if let (Some(r), Some(own)) = (&run.1, st.1) {
            let parents = own_parents::<I, H>(r, stage, None);
            sink.guard(name::<H>(), HookPhase::AfterTask, || {
                self.hook.after_task(parents, own, ev)
            });
        }
        self.inner
            .after_task(&run.0, stage.map(|s| &s.0), st.0, ev, sink);
    }

    fn before_node(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        task: &Self::Task,
        ev: &NodeStart<'_>,
        sink: &HookFailures,
    ) -> Self::Node {
        let inner = self
            .inner
            .before_node(&run.0, stage.map(|s| &s.0), &task.0, ev, sink);
        let own = run.1.as_ref().and_then(|r| {
            let parents = own_parents::<I, H>(r, stage, task.1.as_ref());
            sink.guard(name::<H>(), HookPhase::BeforeNode, || {
                self.hook.before_node(parents, ev)
            })
        });
        (inner, own)
    }

    fn after_node(
        &self,
        run: &Self::Run,
        stage: Option<&Self::Stage>,
        task: &Self::Task,
        st: Self::Node,
        ev: &NodeEnd<'_>,
        sink: &HookFailures,
    ) {
        if let (Some(r), Some(own)) = (&run.1, st.1) {
            let parents = own_parents::<I, H>(r, stage, task.1.as_ref());
            sink.guard(name::<H>(), HookPhase::AfterNode, || {
                self.hook.after_node(parents, own, ev)
            });
        }
        self.inner
            .after_node(&run.0, stage.map(|s| &s.0), &task.0, st.0, ev, sink);
    }

    fn around_node(
        &self,
        st: &Self::Node,
        ev: &NodeStart<'_>,
        body: &mut dyn FnMut(),
        sink: &HookFailures,
    ) {
        let hook = &self.hook;
        let own = &st.1;
        self.inner.around_node(
            &st.0,
            ev,
            &mut || match own {
                Some(state) => contained_around(hook, state, ev, body, sink),
                None => body(),
            },
            sink,
        );
    }

    fn around_async(
        &self,
        st: &Self::Node,
        ev: &NodeStart<'_>,
        body: BoxFuture<'static, ()>,
        sink: &Arc<HookFailures>,
    ) -> BoxFuture<'static, ()> {
        let wrapped = match &st.1 {
            Some(state) => contained_around_async(&self.hook, state, ev, body, sink),
            None => body,
        };
        self.inner.around_async(&st.0, ev, wrapped, sink)
    }

    fn node_events(&self, run: &Self::Run, sink: &HookFailures) -> bool {
        // Every hook of the set is asked (no short cut): each may prepare for its answer.
        let inner = self.inner.node_events(&run.0, sink);
        let own = run.1.as_ref().is_some_and(|r| {
            // A hook that cannot answer gets the events: the safe default.
            sink.guard(name::<H>(), HookPhase::NodeEvents, || {
                Ok(self.hook.node_events(r))
            })
            .unwrap_or(true)
        });
        inner || own
    }

    fn around_work(&self, run: &Self::Run, work: &mut dyn FnMut(), sink: &HookFailures) {
        let hook = &self.hook;
        let own = &run.1;
        self.inner.around_work(
            &run.0,
            &mut || match own {
                Some(state) => contained_work(hook, state, work, sink),
                None => work(),
            },
            sink,
        );
    }
}

/// Runs `hook.around_work`, making sure the work runs exactly once whatever the hook does.
fn contained_work<H: Hooks>(hook: &H, state: &H::Run, work: &mut dyn FnMut(), sink: &HookFailures) {
    run_once_within(
        name::<H>(),
        HookPhase::AroundWork,
        |inner| hook.around_work(state, inner),
        work,
        sink,
    );
}

/// Wraps `body` with `hook`'s wrapper so that whatever the wrapper does is contained and
/// attributed to it: a panic when called or polled, or finishing without having run the body
/// to its end. The body stays in a slot the wrapper only borrows: when the wrapper is done
/// and the body is not, dagtel takes it back and drives it to its end itself, from where it
/// was. So a body the wrapper dropped, forgot or handed to another task (and did not await)
/// runs exactly once, never twice at once. A wrapper that is itself dropped (an outer wrapper
/// dropped it, or the runtime shut down) is not blamed.
fn contained_around_async<H: Hooks>(
    hook: &H,
    state: &H::Node,
    ev: &NodeStart<'_>,
    body: BoxFuture<'static, ()>,
    sink: &Arc<HookFailures>,
) -> BoxFuture<'static, ()> {
    let slot = Arc::new(BodySlot {
        body: Mutex::new(Some(body)),
        finished: AtomicBool::new(false),
    });
    let tracked = TrackedBody {
        slot: Arc::clone(&slot),
    };
    let wrapper = catch_unwind(AssertUnwindSafe(|| {
        hook.around_async(state, ev, Box::pin(tracked))
    }));
    let sink = Arc::clone(sink);
    async move {
        let problem = match wrapper {
            Err(payload) => Some(format!("panicked: {}", panic_message(payload))),
            Ok(wrapper) => match AssertUnwindSafe(wrapper).catch_unwind().await {
                Err(payload) => Some(format!("panicked while polled: {}", panic_message(payload))),
                Ok(()) => None,
            },
        };
        let unfinished = !slot.finished.load(Ordering::Acquire);
        let problem = match problem {
            Some(problem) => Some(problem),
            None if unfinished => Some(
                "finished without running the node's future to its end; dagtel ran it on \
                 without wrappers"
                    .to_string(),
            ),
            None => None,
        };
        if let Some(problem) = problem {
            sink.record(name::<H>(), HookPhase::AroundAsync, problem);
        }
        if unfinished {
            // Taken back (waiting, if another task is polling it right now): whoever holds
            // the wrapper's handle on it finds it gone and ends at once.
            let body = crate::sync::lock(&slot.body).take();
            if let Some(body) = body {
                body.await;
            }
        }
    }
    .boxed()
}

/// The body as one hook's wrapper sees it: a handle on the slot that holds it.
struct TrackedBody {
    slot: Arc<BodySlot>,
}

/// A node's future, lent to a wrapper.
struct BodySlot {
    /// Locked only while the wrapper polls it; `None` once it ended or was taken back.
    body: Mutex<Option<BoxFuture<'static, ()>>>,
    finished: AtomicBool,
}

impl std::future::Future for TrackedBody {
    type Output = ();
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let mut body = crate::sync::lock(&self.slot.body);
        let Some(future) = body.as_mut() else {
            return std::task::Poll::Ready(()); // taken back: dagtel runs it
        };
        let done = future.as_mut().poll(cx);
        if done.is_ready() {
            *body = None;
            self.slot.finished.store(true, Ordering::Release);
        }
        done
    }
}

/// The hook's own view of its parents' states, projected out of the stack's tuples.
fn own_parents<'a, I: HookSet, H: Hooks>(
    run: &'a H::Run,
    stage: Option<&'a (I::Stage, Option<H::Stage>)>,
    task: Option<&'a H::Task>,
) -> Parents<'a, H> {
    Parents {
        run,
        stage: stage.and_then(|s| s.1.as_ref()),
        task,
    }
}

/// Runs `hook.around_node`, making sure the body runs exactly once whatever the hook does.
fn contained_around<H: Hooks>(
    hook: &H,
    state: &H::Node,
    ev: &NodeStart<'_>,
    body: &mut dyn FnMut(),
    sink: &HookFailures,
) {
    run_once_within(
        name::<H>(),
        HookPhase::AroundNode,
        |inner| hook.around_node(state, ev, inner),
        body,
        sink,
    );
}

/// Calls a hook's wrapper around `body` and makes sure `body` runs exactly once: a wrapper
/// that fails, panics or returns without calling it is recorded, and `body` then runs
/// unwrapped.
fn run_once_within(
    hook: &'static str,
    phase: HookPhase,
    wrapper: impl FnOnce(&mut dyn FnMut()) -> super::HookResult,
    body: &mut dyn FnMut(),
    sink: &HookFailures,
) {
    let mut ran = false;
    let result = catch_unwind(AssertUnwindSafe(|| {
        wrapper(&mut || {
            if !ran {
                ran = true;
                body();
            }
        })
    }));
    let problem = match result {
        Ok(Ok(())) if ran => None,
        Ok(Ok(())) => Some("returned without running the work it wraps".to_string()),
        Ok(Err(error)) => Some(error.message().to_string()),
        Err(payload) => Some(format!("panicked: {}", panic_message(payload))),
    };
    if let Some(message) = problem {
        sink.record(hook, phase, message);
    }
    if !ran {
        body();
    }
}
