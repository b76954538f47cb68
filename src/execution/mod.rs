//! Running a plan: the sequential and the parallel executor, run records and errors.
//!
//! ```
//! use dagtel::{DagBuilder, Executor, FailurePolicy, Inputs, NodeStatus, Request};
//!
//! let mut g = DagBuilder::new("demo");
//! let x = g.input::<i64>("x");
//! let left = g.node("left").run(x, |_, x| Ok(x + 1));
//! let right = g.node("right").run(x, |_, x| Ok(x * 10));
//! let sum = g.node("sum").run((left, right), |_, (l, r)| Ok(l + r));
//! let dag = g.build().unwrap();
//! let plan = dag.plan(&Request::new().output(sum)).unwrap();
//!
//! let executor = Executor::parallel().threads(2).failure_policy(FailurePolicy::Continue);
//! let run = executor.run(&plan, Inputs::new().set(x, 4)).unwrap();
//! assert_eq!(run.outputs().get(sum), Some(&45));
//! assert_eq!(run.record().count(NodeStatus::Succeeded), 3);
//! ```

mod arrays;
mod clock;
pub(crate) mod current;
mod error;
mod inputs;
mod outputs;
mod parallel;
mod prefetch;
mod record;
mod sequential;
mod state;
mod sweep;
mod task;

use std::sync::{Arc, OnceLock};

pub(crate) use arrays::ArrayPool;
pub use error::{FinishedRun, RunError};
pub use inputs::Inputs;
pub use outputs::Outputs;
pub use record::{NodeRecord, NodeStatus, RunRecord, ThreadLabel};
pub(crate) use task::Tally;

use crate::cancel::CancelToken;
use crate::graph::Dag;
use crate::hooks::{ExecutionMode, HookSet, Hooks, NoHooks, Stack};
use crate::ids::RunId;
use crate::plan::{Plan, Request};
use state::{Latch, Scheduler, Setup};

/// What happens to the rest of the run when a node fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Start nothing new; nodes already running finish (the default, as in Hamilton).
    ///
    /// The failing node's thread starts nothing after it. Other threads read the halt
    /// without a lock before each node: one that was starting a node as the failure was
    /// recorded may still run it; every node started after the halt reached its thread is
    /// skipped with the reason `fail_fast`.
    #[default]
    FailFast,
    /// Keep running every node that does not depend on a failure.
    Continue,
}

/// Options of one run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    run_id: Option<RunId>,
    cancel: Option<CancelToken>,
}

impl RunOptions {
    /// Default options: a generated run id, no cancellation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses the caller's run id instead of a generated UUIDv7.
    pub fn run_id(mut self, id: impl Into<RunId>) -> Self {
        self.run_id = Some(id.into());
        self
    }

    /// Lets `token` cancel the run.
    pub fn cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }
}

/// A successful run: the requested outputs and the record of every node.
#[derive(Debug)]
pub struct Run {
    outputs: Outputs,
    record: RunRecord,
}

impl Run {
    /// The requested outputs.
    pub fn outputs(&self) -> &Outputs {
        &self.outputs
    }

    /// What happened to every node.
    pub fn record(&self) -> &RunRecord {
        &self.record
    }

    /// Both, owned.
    pub fn into_parts(self) -> (Outputs, RunRecord) {
        (self.outputs, self.record)
    }
}

enum Workers {
    Sequential,
    Sized(usize, OnceLock<Result<Arc<rayon::ThreadPool>, String>>),
    Given(Arc<rayon::ThreadPool>),
}

enum AsyncRuntime {
    Owned(OwnedRuntime),
    Given(tokio::runtime::Handle),
}

/// A runtime started on demand for async nodes.
#[derive(Default)]
struct OwnedRuntime(OnceLock<Result<tokio::runtime::Runtime, String>>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        // Dropping a runtime from async code panics; shutting it down in the background does not.
        if let Some(Ok(runtime)) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs plans. Build one, add hooks, and reuse it for many runs.
pub struct Executor<H: HookSet = NoHooks> {
    workers: Workers,
    runtime: AsyncRuntime,
    hooks: Arc<H>,
    policy: FailurePolicy,
}

impl Executor<NoHooks> {
    /// Runs one node at a time on the caller's thread.
    pub fn sequential() -> Self {
        Self::with_workers(Workers::Sequential)
    }

    /// Runs nodes in parallel on a rayon pool of one thread per core, owned by this executor
    /// and started on its first run (see [`threads`](Self::threads) and [`pool`](Self::pool)).
    pub fn parallel() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_workers(Workers::Sized(cores, OnceLock::new()))
    }

    fn with_workers(workers: Workers) -> Self {
        Self {
            workers,
            runtime: AsyncRuntime::Owned(OwnedRuntime::default()),
            hooks: Arc::new(NoHooks),
            policy: FailurePolicy::default(),
        }
    }
}

impl<H: HookSet> Executor<H> {
    /// Runs in parallel on a pool of `threads` threads owned by this executor (started on the
    /// first run).
    pub fn threads(mut self, threads: usize) -> Self {
        self.workers = Workers::Sized(threads.max(1), OnceLock::new());
        self
    }

    /// Runs in parallel on the caller's rayon pool.
    pub fn pool(mut self, pool: Arc<rayon::ThreadPool>) -> Self {
        self.workers = Workers::Given(pool);
        self
    }

    /// Runs async nodes on the caller's tokio runtime instead of one the executor starts.
    ///
    /// The runtime must be multi-threaded (`run` blocks its caller, so a current-thread
    /// runtime would never get to run the nodes) and have timers enabled (for timeouts and
    /// retry backoff); runs report [`RunError::Runtime`] otherwise. (Built with
    /// `panic = "abort"`, timers cannot be checked: make sure they are enabled.)
    pub fn tokio(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = AsyncRuntime::Given(handle);
        self
    }

    /// Sets what a failure does to the rest of the run.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Adds a hook; hooks run in the order they were added ("after" methods in reverse).
    pub fn hook<X: Hooks>(self, hook: X) -> Executor<Stack<Arc<H>, X>> {
        Executor {
            workers: self.workers,
            runtime: self.runtime,
            hooks: Arc::new(Stack {
                inner: self.hooks,
                hook,
            }),
            policy: self.policy,
        }
    }

    /// Plans `request` and runs it.
    pub fn execute(&self, dag: &Dag, request: &Request, inputs: Inputs) -> Result<Run, RunError> {
        let plan = dag.plan(request)?;
        self.run(&plan, inputs)
    }

    /// Runs a plan with a generated run id.
    pub fn run(&self, plan: &Plan, inputs: Inputs) -> Result<Run, RunError> {
        self.run_with(plan, inputs, RunOptions::default())
    }

    /// Runs a plan. Blocks until every node has finished or been skipped; from async code,
    /// call it inside `tokio::task::spawn_blocking` (through [`carry::spawn_blocking`](crate::otel::carry::spawn_blocking)
    /// to keep the task's OpenTelemetry context).
    ///
    /// The run's work sees the OpenTelemetry context that is current here, on whichever pool
    /// or tokio thread it runs, under whatever its hooks attach: a span that a node body
    /// starts nests under the caller's span, with or without hooks.
    pub fn run_with(
        &self,
        plan: &Plan,
        inputs: Inputs,
        options: RunOptions,
    ) -> Result<Run, RunError> {
        let pool = self.resolve_pool()?;
        let tokio = if plan.has_async() {
            Some(self.tokio_handle()?)
        } else {
            None
        };
        let mode = match &pool {
            None => ExecutionMode::Sequential,
            Some(pool) => ExecutionMode::Parallel {
                threads: pool.current_num_threads(),
            },
        };
        let setup = Setup {
            hooks: Arc::clone(&self.hooks),
            policy: self.policy,
            mode,
            sched: Scheduler {
                max_nesting: match self.workers {
                    Workers::Sized(..) => parallel::NESTING_OWN_POOL,
                    _ => parallel::NESTING_DEFAULT_STACK,
                },
                pool: pool.clone(),
                tokio,
                pending: Default::default(),
                latch: Arc::new(Latch::default()),
                local: Default::default(),
                sweep: sweep::Sweep::new(
                    pool.as_ref().map_or(0, |pool| pool.current_num_threads()),
                    plan.inner.task_order.len(),
                    plan.inner.upstream_lag,
                ),
            },
        };
        let shared = state::prepare(plan, inputs, options, setup)?;
        match &pool {
            None => sequential::run(&shared),
            Some(pool) => parallel::run(&shared, pool),
        }
        state::finish(shared)
    }

    fn resolve_pool(&self) -> Result<Option<Arc<rayon::ThreadPool>>, RunError> {
        Ok(match &self.workers {
            Workers::Sequential => None,
            Workers::Given(pool) => Some(Arc::clone(pool)),
            Workers::Sized(threads, pool) => {
                let built = pool.get_or_init(|| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(*threads)
                        .stack_size(parallel::OWN_POOL_STACK)
                        .thread_name(|i| format!("dagtel-worker-{i}"))
                        .build()
                        .map(Arc::new)
                        .map_err(|e| e.to_string())
                });
                Some(built.clone().map_err(RunError::Pool)?)
            }
        })
    }

    fn tokio_handle(&self) -> Result<tokio::runtime::Handle, RunError> {
        match &self.runtime {
            AsyncRuntime::Given(handle) => check_runtime(handle).map(|()| handle.clone()),
            AsyncRuntime::Owned(runtime) => runtime
                .0
                .get_or_init(|| {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .thread_name("dagtel-async")
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())
                })
                .as_ref()
                .map(|rt| rt.handle().clone())
                .map_err(|e| RunError::Runtime(e.clone())),
        }
    }
}

/// Refuses runtimes that would hang or panic a run, with the reason.
fn check_runtime(handle: &tokio::runtime::Handle) -> Result<(), RunError> {
    if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
        return Err(RunError::Runtime(
            "a current-thread runtime cannot run async nodes while `run` blocks its thread; \
             use a multi-thread runtime"
                .into(),
        ));
    }
    if !has_timers(handle) {
        return Err(RunError::Runtime(
            "the runtime has no timers, which async node timeouts and retry backoff need; \
             build it with `enable_time()` or `enable_all()`"
                .into(),
        ));
    }
    Ok(())
}

/// Whether `handle`'s runtime has timers. Tokio has no query for it (tokio-rs/tokio#8361), so
/// this makes a timer and catches the panic of a runtime without them. Where a panic aborts,
/// the probe cannot be made: the runtime is taken as it is, and one without timers panics at
/// the first async timeout or backoff.
fn has_timers(handle: &tokio::runtime::Handle) -> bool {
    if cfg!(panic = "abort") {
        return true;
    }
    let _context = handle.enter();
    std::panic::catch_unwind(|| drop(tokio::time::sleep(std::time::Duration::ZERO))).is_ok()
}

impl<H: HookSet> std::fmt::Debug for Executor<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let workers = match &self.workers {
            Workers::Sequential => "sequential".to_string(),
            Workers::Sized(threads, _) => format!("parallel, own pool of {threads}"),
            Workers::Given(pool) => {
                format!("parallel, caller's pool of {}", pool.current_num_threads())
            }
        };
        f.debug_struct("Executor")
            .field("workers", &workers)
            .field("failure_policy", &self.policy)
            .field("hooks", &std::any::type_name::<H>())
            .finish()
    }
}
