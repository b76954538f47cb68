//! Carry the current OpenTelemetry [`Context`] into work that runs on other threads.
//!
//! The context — and with it the run's [`RunScope`](super::RunScope), the node's
//! [`NodeScope`] and the parent span — is thread-local. A rayon job or a tokio task does not
//! inherit it, so spans started there would lose their parent and the run id, and log records
//! would lose their run and node. Each helper here captures the context where the work is
//! *created* and attaches it on whatever thread the work *runs*, for exactly
//! the duration of the work:
//!
//! | work | helper |
//! |---|---|
//! | any closure run later, anywhere | [`carry`], [`carry_with`] |
//! | a closure called many times (rayon `map`, `for_each`) | [`carry_fn`], [`ParallelIteratorExt`] |
//! | `tokio::spawn` / `Handle::spawn` / `spawn_blocking` | [`spawn`], [`spawn_on`], [`spawn_blocking`] |
//! | `rayon::spawn` / `join` | [`rayon_spawn`], [`join`] |
//! | `rayon::scope` / `Scope::spawn` / `ThreadPool::install` | [`scope`], [`scope_spawn`], [`install`] |
//!
//! `rayon::scope` and `ThreadPool::install` run their closure on a pool thread, not the
//! caller's, so even the closure itself loses the context unless it is carried.
//!
//! # Why every job attaches its own context
//!
//! While `rayon::join` (or a scope) waits for a stolen half, the waiting thread runs *other*
//! jobs it steals, and those jobs see whatever context the waiting task had attached: they
//! would get the waiting task's run and parent span, not their own. Work started through these
//! helpers always attaches the context captured at its creation — even an empty one, when it
//! was created outside any run — so a job never inherits the context of the thread that
//! happens to run it. Jobs spawned with plain rayon calls get no such protection; inside them,
//! start spans with an explicit parent context rather than relying on the current one.
//!
//! ```
//! use dagtel::RunId;
//! use dagtel::otel::{RunScope, carry};
//! use rayon::prelude::*;
//!
//! let run = opentelemetry::Context::new().with_value(RunScope::new(RunId::from("run-1"), "etl"));
//! let _attached = run.attach();
//!
//! // A closure called once per item re-attaches the context on every call.
//! let ids: Vec<String> = (0..4)
//!     .into_par_iter()
//!     .map(carry::carry_fn(|_| RunScope::current().unwrap().run_id().to_string()))
//!     .collect();
//! assert!(ids.iter().all(|id| id == "run-1"));
//!
//! // Both halves of a join see the caller's context, whichever thread runs them.
//! let (a, b) = carry::join(
//!     || RunScope::current().is_some(),
//!     || RunScope::current().is_some(),
//! );
//! assert!(a && b);
//! ```

use std::future::Future;

use opentelemetry::Context;
use rayon::iter::{Map, ParallelIterator};

use super::NodeScope;
use super::context::hidden;

/// The context to carry: the current one, with a scope for the running node added when the
/// run's hooks put none there (runs without node events, see
/// [`NodeScope::current`](crate::otel::NodeScope::current), and runs without hooks).
fn captured() -> Context {
    let cx = Context::current();
    match NodeScope::to_carry() {
        Some(scope) => cx.with_value(scope),
        None => cx,
    }
}

/// Runs `f` with `cx` attached, as work carried from elsewhere (see [`hidden`]).
fn within<R>(cx: Context, f: impl FnOnce() -> R) -> R {
    let _attached = cx.attach();
    hidden(f)
}

/// Runs a rayon call that may wait (a join, a scope) with no context and no node: while it
/// waits, the thread runs other jobs of the pool, which may be none of the run's (a pool the
/// program shares with the executor). The halves attach their own captured context.
fn waiting<R>(f: impl FnOnce() -> R) -> R {
    within(Context::new(), f)
}

/// Wraps `f` so it runs with the context that is current *now*, on whatever thread calls it.
///
/// ```
/// use dagtel::RunId;
/// use dagtel::otel::{RunScope, carry};
///
/// let run = opentelemetry::Context::new().with_value(RunScope::new(RunId::from("run-1"), "etl"));
/// let job = {
///     let _attached = run.attach();
///     carry::carry(|| RunScope::current().map(|r| r.run_id().to_string()))
/// };
/// let seen = std::thread::spawn(job).join().unwrap();
/// assert_eq!(seen.as_deref(), Some("run-1"));
/// ```
pub fn carry<F, R>(f: F) -> impl FnOnce() -> R
where
    F: FnOnce() -> R,
{
    carry_with(captured(), f)
}

/// Wraps `f` so it runs with `cx` attached, on whatever thread calls it.
pub fn carry_with<F, R>(cx: Context, f: F) -> impl FnOnce() -> R
where
    F: FnOnce() -> R,
{
    move || within(cx, f)
}

/// Wraps a closure that is called many times (a rayon `map` or `for_each`) so each call runs
/// with the context that is current *now*.
///
/// The context is attached per call, not per thread: a worker that runs calls from several
/// iterators, or steals one while another waits, gives each call its own context.
///
/// ```
/// use dagtel::RunId;
/// use dagtel::otel::{RunScope, carry};
/// use rayon::prelude::*;
///
/// let run = opentelemetry::Context::new().with_value(RunScope::new(RunId::from("run-1"), "etl"));
/// let _attached = run.attach();
/// let stamped: usize = (0..100)
///     .into_par_iter()
///     .map(carry::carry_fn(|_| usize::from(RunScope::current().is_some())))
///     .sum();
/// assert_eq!(stamped, 100);
/// ```
pub fn carry_fn<F, A, R>(f: F) -> impl Fn(A) -> R
where
    F: Fn(A) -> R,
{
    let cx = captured();
    move |arg| within(cx.clone(), || f(arg))
}

/// [`tokio::spawn`] with the current context attached to every poll of `fut`.
///
/// # Panics
///
/// Like [`tokio::spawn`], when called outside a tokio runtime.
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Carried::new(fut))
}

/// [`tokio::runtime::Handle::spawn`] with the current context attached to every poll of `fut`;
/// for callers outside the runtime.
pub fn spawn_on<F>(handle: &tokio::runtime::Handle, fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    handle.spawn(Carried::new(fut))
}

/// A future polled with the context captured when it was made attached and the polling
/// thread's running node hidden: polled inside another node's body (a `block_on` there, a
/// current-thread runtime), it still reports as the node that spawned it.
struct Carried<F> {
    cx: Context,
    inner: std::pin::Pin<Box<F>>,
}

impl<F: Future> Carried<F> {
    fn new(inner: F) -> Self {
        Self {
            cx: captured(),
            inner: Box::pin(inner),
        }
    }
}

impl<F: Future> Future for Carried<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        task: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.get_mut();
        within(this.cx.clone(), || this.inner.as_mut().poll(task))
    }
}

/// [`tokio::task::spawn_blocking`] with the current context attached while `f` runs.
///
/// # Panics
///
/// Like [`tokio::task::spawn_blocking`], when called outside a tokio runtime.
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(carry(f))
}

/// [`rayon::spawn`] with the current context attached while `f` runs.
///
/// Runs on the pool the caller is in (see [`rayon::ThreadPool::install`]), else the global one.
pub fn rayon_spawn<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    rayon::spawn(carry(f));
}

/// [`rayon::join`] with the current context attached to both halves.
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let cx = captured();
    waiting(|| rayon::join(carry_with(cx.clone(), a), carry_with(cx, b)))
}

/// [`rayon::scope`] with the current context attached while `op` runs (on a pool thread).
pub fn scope<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&rayon::Scope<'scope>) -> R + Send,
    R: Send,
{
    let cx = captured();
    waiting(|| rayon::scope(move |s| within(cx, || op(s))))
}

/// [`rayon::ThreadPool::install`] with the current context attached while `op` runs (on a
/// thread of `pool`).
pub fn install<OP, R>(pool: &rayon::ThreadPool, op: OP) -> R
where
    OP: FnOnce() -> R + Send,
    R: Send,
{
    pool.install(carry(op))
}

/// [`rayon::Scope::spawn`] with the current context attached while `f` runs.
///
/// ```
/// use dagtel::RunId;
/// use dagtel::otel::{RunScope, carry};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let run = opentelemetry::Context::new().with_value(RunScope::new(RunId::from("run-1"), "etl"));
/// let _attached = run.attach();
/// let stamped = AtomicUsize::new(0);
/// carry::scope(|s| {
///     for _ in 0..8 {
///         carry::scope_spawn(s, |_| {
///             if RunScope::current().is_some() {
///                 stamped.fetch_add(1, Ordering::Relaxed);
///             }
///         });
///     }
/// });
/// assert_eq!(stamped.into_inner(), 8);
/// ```
pub fn scope_spawn<'scope, F>(scope: &rayon::Scope<'scope>, f: F)
where
    F: FnOnce(&rayon::Scope<'scope>) + Send + 'scope,
{
    let cx = captured();
    scope.spawn(move |s| within(cx, || f(s)));
}

/// Context-carrying adapters for rayon parallel iterators.
pub trait ParallelIteratorExt: ParallelIterator {
    /// [`ParallelIterator::map`] whose closure runs, on every call, with the context that was
    /// current when the adapter was built (see [`carry_fn`]). Indexed iterators stay indexed.
    ///
    /// ```
    /// use dagtel::RunId;
    /// use dagtel::otel::RunScope;
    /// use dagtel::otel::carry::ParallelIteratorExt as _;
    /// use rayon::prelude::*;
    ///
    /// let run = opentelemetry::Context::new().with_value(RunScope::new(RunId::from("r"), "etl"));
    /// let _attached = run.attach();
    /// let seen: Vec<bool> = vec![1, 2, 3]
    ///     .into_par_iter()
    ///     .map_in_context(|_| RunScope::current().is_some())
    ///     .collect();
    /// assert_eq!(seen, [true, true, true]);
    /// ```
    fn map_in_context<F, R>(self, f: F) -> Map<Self, impl Fn(Self::Item) -> R + Send + Sync>
    where
        F: Fn(Self::Item) -> R + Send + Sync,
        R: Send,
    {
        self.map(carry_fn(f))
    }
}

impl<I: ParallelIterator> ParallelIteratorExt for I {}
