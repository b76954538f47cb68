//! Stress test of the parallel scheduler (the sweep, `execution/sweep.rs`, and the counters
//! and joins around it, `execution/parallel.rs`): many random graphs, each run sequentially
//! and then in parallel on random executors, with every run checked against a plain model.
//!
//! Each iteration draws, from a seed of its own: a shape (random sparse, wide fan-out/fan-in,
//! layered, long chain, comb), outputs of one machine word or boxed, async nodes, stages,
//! task groups, failing nodes (errors and panics), flaky nodes that a retry policy saves,
//! nodes that spin, yield, sleep briefly or wait on rayon, nodes that start a nested run of
//! a small plan on the same executor, fail-fast or continue, cancellation by a node or by
//! another thread, hooks taking node events or none, and executors with their own pool of
//! 1 to 4 threads or a caller's pool of one thread. Every run must keep these invariants:
//!
//! 1. A node's body ran exactly as many times as its record's attempts; skipped and
//!    unplanned nodes never ran.
//! 2. No node started before each of its inputs ended (one run clock: `started_at` against
//!    `ended_at()`), no node ran unless all its inputs succeeded, and every argument a body
//!    received is the model's value (values are a function of the node and its inputs).
//! 3. Statuses match the model: under `Continue` exactly; under fail-fast, nothing starts on
//!    a thread after a failure ended there (the part of "nothing new starts" that does not
//!    depend on when other threads see the failure), and skips name a failed node (an
//!    ancestor, for upstream skips). With cancellation: invariants 1 and 2, and no node
//!    starts on the cancelling node's thread after it.
//! 4. Outputs are the model's values, those of the sequential run under `Continue`.
//!
//! No timing is asserted: nodes sleep or spin only to vary the interleavings, and the
//! watchdog fires only when one iteration has run for two minutes (a hung run).
//!
//! `DAGTEL_STRESS_SCALE=N` (an integer, default 1) runs N times as many iterations.
//! `DAGTEL_STRESS_SEED=S` runs the one iteration of seed S, as printed by a failure.

#[path = "support/pools.rs"]
mod pools;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Once};
use std::time::{Duration, Instant};

use dagtel::hooks::{HookResult, Hooks, NoHooks, NodeStart, Parents, RunEnd, Stack};
use dagtel::*;

// ---------------------------------------------------------------------------------------
// Scale and seeds

/// Iterations at scale 1: about 5 s in release, and in debug builds (what plain
/// `cargo test` runs), where iterations cost several times more, with fewer of them.
const ITERATIONS: u64 = if cfg!(debug_assertions) { 250 } else { 400 };
/// The largest graph of a "big" iteration (chunks of the order reach their maximum length
/// from about 4,000 tasks on four threads).
const BIG_NODES: usize = if cfg!(debug_assertions) { 2_500 } else { 5_000 };
/// Seeds are this plus the iteration's number, mixed.
const BASE_SEED: u64 = 0x5eed_da97_e100_0000;

fn scale() -> u64 {
    match std::env::var("DAGTEL_STRESS_SCALE") {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("DAGTEL_STRESS_SCALE must be an integer, not {text:?}"))
            .max(1),
        Err(_) => 1,
    }
}

/// The seeds to run: every iteration's, or only the one named by `DAGTEL_STRESS_SEED`.
fn seeds() -> Vec<u64> {
    if let Ok(text) = std::env::var("DAGTEL_STRESS_SEED") {
        let text = text.trim();
        let seed = match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        };
        return vec![seed.unwrap_or_else(|_| panic!("DAGTEL_STRESS_SEED: bad seed {text:?}"))];
    }
    (0..ITERATIONS * scale())
        .map(|i| Rng(BASE_SEED.wrapping_add(i)).next_u64())
        .collect()
}

/// SplitMix64: small, fast, and good enough to draw graphs.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) < p * (1u64 << 53) as f64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------
// What a graph is made of

#[derive(Clone, Copy, Debug)]
enum Shape {
    Sparse,
    FanOutFanIn,
    Layered,
    Chain,
    Comb,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    /// Every attempt returns an error.
    Error,
    /// Every attempt panics.
    Panic,
    /// The first attempt returns an error, the second succeeds.
    FlakyError,
    /// The first attempt panics, the second succeeds.
    FlakyPanic,
}

impl Fault {
    fn is_permanent(self) -> bool {
        matches!(self, Fault::Error | Fault::Panic)
    }

    fn is_flaky(self) -> bool {
        matches!(self, Fault::FlakyError | Fault::FlakyPanic)
    }
}

/// What a body does besides computing its value, to vary the interleavings.
#[derive(Clone, Copy, Debug)]
enum Work {
    None,
    Spin(u32),
    /// Gives up the thread to the OS (tokio, for async nodes).
    Yield,
    /// Runs a pending rayon job inside the body, as a body waiting on rayon does.
    RayonYield,
    Sleep(Duration),
}

#[derive(Clone, Debug)]
struct NodeSpec {
    /// Inputs, each below this node's index; repeats allowed.
    parents: Vec<usize>,
    /// Output boxed in a slot (`Wide`) rather than a word cell (`u64`).
    wide: bool,
    is_async: bool,
    stage: Option<usize>,
    group: Option<usize>,
    fault: Fault,
    max_attempts: u32,
    backoff: bool,
    work: Work,
    /// Runs the nested plan on the executor running it.
    nested: bool,
    /// Cancels the run when its body runs.
    cancels: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cancel {
    None,
    /// A node's body cancels (the node marked `cancels`).
    ByNode,
    /// Another thread cancels after this long.
    External(Duration),
}

#[derive(Debug)]
struct Spec {
    seed: u64,
    shape: Shape,
    nodes: Vec<NodeSpec>,
    requested: Vec<usize>,
    policy: FailurePolicy,
    cancel: Cancel,
    /// The nested plan's middle node is async.
    nested_async: bool,
}

const STAGES: [&str; 3] = ["s0", "s1", "s2"];

fn node_name(i: usize) -> String {
    format!("n{i}")
}

fn index_of(name: &str) -> usize {
    name.strip_prefix('n')
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("not a node of the stress graph: {name}"))
}

fn random_spec(seed: u64) -> Spec {
    let mut rng = Rng(seed);
    let shape = rng.pick(&[
        Shape::Sparse,
        Shape::Sparse,
        Shape::FanOutFanIn,
        Shape::Layered,
        Shape::Chain,
        Shape::Comb,
    ]);
    let n = if rng.chance(0.1) {
        rng.range(BIG_NODES / 4, BIG_NODES)
    } else {
        rng.range(6, 250)
    };
    let parents = shape_parents(&mut rng, shape, n);
    let mut nodes: Vec<NodeSpec> = parents
        .into_iter()
        .map(|parents| NodeSpec {
            parents,
            wide: false,
            is_async: false,
            stage: None,
            group: None,
            fault: Fault::None,
            max_attempts: 1,
            backoff: false,
            work: Work::None,
            nested: false,
            cancels: false,
        })
        .collect();
    add_kinds(&mut rng, &mut nodes);
    add_stages_and_groups(&mut rng, &mut nodes);
    let failures = rng.chance(0.5);
    add_faults(&mut rng, &mut nodes, failures);
    add_work(&mut rng, &mut nodes);
    let policy = if rng.chance(0.5) {
        FailurePolicy::Continue
    } else {
        FailurePolicy::FailFast
    };
    let mut cancel = if rng.chance(0.15) {
        if rng.chance(0.6) {
            Cancel::ByNode
        } else {
            Cancel::External(Duration::from_micros(rng.below(400) as u64))
        }
    } else {
        Cancel::None
    };
    // Nested runs and cancelling bodies go in tasks without async members (planned or not:
    // the request is drawn later). A run that blocks a tokio worker could wait for itself,
    // and a cancel from a pool thread is one whose thread the check can follow.
    let task_async = task_async(&nodes, |_| true);
    let sync_tasks: Vec<usize> = (0..n).filter(|&i| !task_async[i]).collect();
    if rng.chance(0.25) && !sync_tasks.is_empty() {
        for _ in 0..rng.range(1, 2) {
            nodes[rng.pick(&sync_tasks)].nested = true;
        }
    }
    if cancel == Cancel::ByNode {
        let plain: Vec<usize> = sync_tasks
            .iter()
            .copied()
            .filter(|&i| !nodes[i].nested && nodes[i].fault == Fault::None)
            .collect();
        if plain.is_empty() {
            cancel = Cancel::External(Duration::ZERO);
        } else {
            let canceller = rng.pick(&plain);
            nodes[canceller].cancels = true;
            nodes[canceller].work = Work::None;
        }
    }
    let requested = random_request(&mut rng, &nodes);
    Spec {
        seed,
        shape,
        nodes,
        requested,
        policy,
        cancel,
        nested_async: rng.chance(0.5),
    }
}

/// Each node's inputs, for a graph of `n` nodes of `shape`.
fn shape_parents(rng: &mut Rng, shape: Shape, n: usize) -> Vec<Vec<usize>> {
    let mut parents = vec![Vec::new(); n];
    match shape {
        Shape::Sparse => {
            for (i, list) in parents.iter_mut().enumerate().skip(1) {
                for _ in 0..rng.below(5) {
                    // Half of the inputs close by, as in real pipelines; half anywhere.
                    let p = if rng.chance(0.5) {
                        i - 1 - rng.below(i.min(8))
                    } else {
                        rng.below(i)
                    };
                    list.push(p);
                }
            }
        }
        Shape::FanOutFanIn => {
            let roots = rng.range(1, 3).min(n - 2);
            let sinks = rng.range(1, 3).min(n - roots - 1);
            let leaves = roots..n - sinks;
            for list in &mut parents[leaves.clone()] {
                for _ in 0..rng.range(1, 2) {
                    list.push(rng.below(roots));
                }
            }
            for (s, list) in parents[n - sinks..].iter_mut().enumerate() {
                // The first sink reads every leaf; the others about half of them.
                *list = leaves
                    .clone()
                    .filter(|_| s == 0 || rng.chance(0.5))
                    .collect();
            }
        }
        Shape::Layered => {
            let width = rng.range(2, 40).min(n);
            for (i, list) in parents.iter_mut().enumerate().skip(width) {
                let layer_start = i / width * width;
                let previous = layer_start - width..layer_start;
                for _ in 0..rng.range(1, 3) {
                    list.push(previous.start + rng.below(previous.len()));
                }
                if rng.chance(0.1) {
                    list.push(rng.below(layer_start));
                }
            }
        }
        Shape::Chain => {
            for (i, list) in parents.iter_mut().enumerate().skip(1) {
                list.push(i - 1);
                if rng.chance(0.05) {
                    list.push(rng.below(i));
                }
            }
        }
        Shape::Comb => {
            // Links at even indices, each with a leaf after it.
            for (i, list) in parents.iter_mut().enumerate().skip(1) {
                list.push(if i % 2 == 0 { i - 2 } else { i - 1 });
            }
        }
    }
    parents
}

/// Output types and async nodes.
fn add_kinds(rng: &mut Rng, nodes: &mut [NodeSpec]) {
    let p_wide = rng.pick(&[0.0, 0.25, 0.6]);
    let p_async = rng.pick(&[0.0, 0.0, 0.03, 0.15]);
    let mut async_left = 40;
    for node in nodes {
        node.wide = rng.chance(p_wide);
        if async_left > 0 && rng.chance(p_async) {
            node.is_async = true;
            async_left -= 1;
        }
    }
}

/// Stages, and task groups of consecutive nodes (a range of a topological order is always
/// contiguous), each group in its first node's stage.
fn add_stages_and_groups(rng: &mut Rng, nodes: &mut [NodeSpec]) {
    if rng.chance(0.5) {
        for node in nodes.iter_mut() {
            node.stage = rng.pick(&[None, Some(0), Some(1), Some(2)]);
        }
    }
    if rng.chance(0.4) {
        let mut group = 0;
        let mut i = 0;
        while i + 1 < nodes.len() {
            if rng.chance(0.12) {
                let len = rng.range(2, 4).min(nodes.len() - i);
                let stage = nodes[i].stage;
                for node in &mut nodes[i..i + len] {
                    node.group = Some(group);
                    node.stage = stage;
                }
                group += 1;
                i += len;
            } else {
                i += 1;
            }
        }
    }
}

fn add_faults(rng: &mut Rng, nodes: &mut [NodeSpec], failures: bool) {
    let p_fail = if failures {
        rng.pick(&[0.005, 0.02, 0.08])
    } else {
        0.0
    };
    let p_flaky = rng.pick(&[0.0, 0.02, 0.1]);
    let backoff = rng.chance(0.2);
    for node in nodes {
        if rng.chance(p_fail) {
            node.fault = rng.pick(&[Fault::Error, Fault::Panic]);
            node.max_attempts = rng.pick(&[1, 1, 2]);
        } else if rng.chance(p_flaky) {
            node.fault = rng.pick(&[Fault::FlakyError, Fault::FlakyPanic]);
            node.max_attempts = rng.range(2, 3) as u32;
        }
        node.backoff = backoff && node.max_attempts > 1;
    }
}

fn add_work(rng: &mut Rng, nodes: &mut [NodeSpec]) {
    let mut rayon_yields = 6;
    // Sleeps are capped per graph, so that iterations stay short.
    let mut sleep_left = Duration::from_millis(3);
    let mut sleep = |rng: &mut Rng, longest: u64| {
        let nap = Duration::from_micros(rng.range(20, longest as usize) as u64).min(sleep_left);
        sleep_left -= nap;
        Work::Sleep(nap)
    };
    for node in nodes.iter_mut() {
        let roll = rng.below(1000);
        node.work = match roll {
            0..80 => Work::Spin(rng.below(3000) as u32),
            80..110 => Work::Yield,
            110..130 if rayon_yields > 0 => {
                rayon_yields -= 1;
                Work::RayonYield
            }
            130..140 => sleep(rng, 300),
            _ => Work::None,
        };
    }
    // Now and then one long node: the positions after it in its chunk go to other threads.
    if rng.chance(0.3) {
        let long = rng.below(nodes.len());
        nodes[long].work = sleep(rng, 2_000);
    }
}

/// Every node without consumers, a few others, and now and then only a few nodes, so that
/// part of the graph is not planned.
fn random_request(rng: &mut Rng, nodes: &[NodeSpec]) -> Vec<usize> {
    let n = nodes.len();
    if rng.chance(0.2) {
        return (0..rng.range(1, 4)).map(|_| rng.below(n)).collect();
    }
    let mut consumed = vec![false; n];
    for node in nodes {
        for &p in &node.parents {
            consumed[p] = true;
        }
    }
    let mut requested: Vec<usize> = (0..n).filter(|&i| !consumed[i]).collect();
    requested.extend((0..rng.below(4)).map(|_| rng.below(n)));
    requested
}

/// Whether each node's task runs on tokio: the node, or a member of its group, is async
/// (counting only the members for which `planned` holds).
fn task_async(nodes: &[NodeSpec], planned: impl Fn(usize) -> bool) -> Vec<bool> {
    let mut group_async = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        if let Some(g) = node.group {
            *group_async.entry(g).or_insert(false) |= node.is_async && planned(i);
        }
    }
    nodes
        .iter()
        .map(|node| match node.group {
            Some(g) => group_async[&g],
            None => node.is_async,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The model

/// A node's inputs in argument order: its word inputs, then its boxed ones.
fn argument_order(nodes: &[NodeSpec], i: usize) -> Vec<usize> {
    let parents = &nodes[i].parents;
    let words = parents.iter().filter(|&&p| !nodes[p].wide);
    let wides = parents.iter().filter(|&&p| nodes[p].wide);
    words.chain(wides).copied().collect()
}

/// What node `i` computes from the run's seed and its arguments. Not symmetric in the
/// arguments, so arguments delivered in the wrong order change it.
fn node_value(i: usize, seed: u64, args: &[u64]) -> u64 {
    let start = (seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(17);
    args.iter().fold(start, |acc, &v| {
        (acc.rotate_left(9) ^ v).wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// What the nested plan computes from its input.
fn nested_value(x: u64) -> u64 {
    (x.rotate_left(3).wrapping_add(1)).wrapping_mul(x ^ 0x5555)
}

struct Model {
    /// What every node computes when it runs (failing or not).
    values: Vec<u64>,
    /// Statuses of a run that is not cancelled, under `Continue`.
    status: Vec<NodeStatus>,
    planned: Vec<bool>,
    /// Attempts of a node that succeeds.
    attempts: Vec<u32>,
    args: Vec<Vec<usize>>,
    task_async: Vec<bool>,
    any_failure: bool,
}

fn model(spec: &Spec) -> Model {
    let nodes = &spec.nodes;
    let n = nodes.len();
    let args: Vec<Vec<usize>> = (0..n).map(|i| argument_order(nodes, i)).collect();
    let mut values = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    for i in 0..n {
        let inputs: Vec<u64> = args[i].iter().map(|&p| values[p]).collect();
        values.push(node_value(i, spec.seed, &inputs));
        let upstream_failed = nodes[i]
            .parents
            .iter()
            .any(|&p| status[p] != NodeStatus::Succeeded);
        status.push(if upstream_failed {
            NodeStatus::Skipped
        } else if nodes[i].fault.is_permanent() {
            NodeStatus::Failed
        } else {
            NodeStatus::Succeeded
        });
    }
    let mut planned = vec![false; n];
    let mut stack = spec.requested.clone();
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut planned[i], true) {
            stack.extend(&nodes[i].parents);
        }
    }
    let any_failure = (0..n).any(|i| planned[i] && status[i] == NodeStatus::Failed);
    let task_async = task_async(nodes, |i| planned[i]);
    Model {
        values,
        status,
        planned,
        attempts: nodes
            .iter()
            .map(|node| if node.fault.is_flaky() { 2 } else { 1 })
            .collect(),
        args,
        task_async,
        any_failure,
    }
}

// ---------------------------------------------------------------------------------------
// Executors

#[derive(Clone, Copy, Debug, PartialEq)]
enum Workers {
    Sequential,
    Own(usize),
    CallersPool,
}

const WORKERS: [Workers; 6] = [
    Workers::Sequential,
    Workers::Own(1),
    Workers::Own(2),
    Workers::Own(3),
    Workers::Own(4),
    Workers::CallersPool,
];

#[derive(Clone, Copy, Debug)]
struct ExecChoice {
    workers: Workers,
    policy: FailurePolicy,
    hooked: bool,
}

impl ExecChoice {
    /// Position in [`EXECUTORS`].
    fn index(self) -> usize {
        let workers = WORKERS.iter().position(|&w| w == self.workers).unwrap();
        let policy = usize::from(self.policy == FailurePolicy::Continue);
        (workers * 2 + policy) * 2 + usize::from(self.hooked)
    }
}

type HookedExecutor = Executor<Stack<Arc<NoHooks>, AttemptCounter>>;

enum AnyExecutor {
    Plain(Executor),
    Hooked(HookedExecutor),
}

impl AnyExecutor {
    fn run_with(&self, plan: &Plan, inputs: Inputs, options: RunOptions) -> Result<Run, RunError> {
        match self {
            AnyExecutor::Plain(exec) => exec.run_with(plan, inputs, options),
            AnyExecutor::Hooked(exec) => exec.run_with(plan, inputs, options),
        }
    }
}

/// One pool of one thread shared by the executors on a caller's pool.
static CALLERS_POOL: LazyLock<Arc<rayon::ThreadPool>> = LazyLock::new(pools::one_thread_pool);

/// Every executor the test uses, in [`ExecChoice::index`] order, made once: pools and
/// runtimes start on first use and are reused by later runs, as in a real program.
static EXECUTORS: LazyLock<Vec<AnyExecutor>> = LazyLock::new(|| {
    let mut all = Vec::new();
    for workers in WORKERS {
        for policy in [FailurePolicy::FailFast, FailurePolicy::Continue] {
            for hooked in [false, true] {
                let exec = match workers {
                    Workers::Sequential => Executor::sequential(),
                    Workers::Own(threads) => Executor::parallel().threads(threads),
                    Workers::CallersPool => Executor::parallel().pool(CALLERS_POOL.clone()),
                }
                .failure_policy(policy);
                all.push(if hooked {
                    AnyExecutor::Hooked(exec.hook(AttemptCounter))
                } else {
                    AnyExecutor::Plain(exec)
                });
            }
        }
    }
    all
});

/// Problems the hook found, taken by the check of each run.
static HOOK_PROBLEMS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A hook that takes node events, so that runs take the executor's hooked path, and checks
/// at the end of each run (nested ones too) that it saw one `before_node` per attempt that
/// the record counts.
struct AttemptCounter;

impl Hooks for AttemptCounter {
    type Run = AtomicU32;
    type Stage = ();
    type Task = ();
    type Node = ();

    fn before_node(&self, parents: Parents<'_, Self>, node: &NodeStart<'_>) -> HookResult {
        if node.attempt > 0 {
            parents.run.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn after_run(&self, seen: AtomicU32, run: &RunEnd<'_>) -> HookResult {
        if let Some(record) = run.record {
            let recorded: u32 = record.nodes().map(|n| n.attempts).sum();
            let seen = seen.into_inner();
            if seen != recorded {
                lock(&HOOK_PROBLEMS).push(format!(
                    "run of `{}`: the hook saw {seen} attempts, the record counts {recorded}",
                    run.dag
                ));
            }
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// The graph, and what its bodies do

/// A boxed output (three words: stored in a slot, not a word cell), which knows whether it
/// arrived whole.
#[derive(Debug, PartialEq)]
struct Wide([u64; 3]);

impl Wide {
    fn new(v: u64) -> Self {
        Wide([v, v ^ 0xa5a5_a5a5_a5a5_a5a5, v.rotate_left(29)])
    }

    fn value(&self) -> Option<u64> {
        let v = self.0[0];
        (*self == Wide::new(v)).then_some(v)
    }
}

/// What the bodies share with the test: per-node call counts, problems they found, the
/// current run's cancel token and executor.
struct Probe {
    calls: Vec<AtomicU32>,
    problems: Mutex<Vec<String>>,
    cancel: Mutex<CancelToken>,
    /// Index in [`EXECUTORS`] of the executor of the current run (nested runs use it).
    executor: AtomicUsize,
}

impl Probe {
    fn problem(&self, text: String) {
        lock(&self.problems).push(text);
    }
}

/// The small plan that nested nodes run: x -> (a, b) -> c.
struct NestedPlan {
    plan: Plan,
    x: Handle<u64>,
    c: Handle<u64>,
}

fn nested_plan(with_async: bool) -> NestedPlan {
    let mut g = DagBuilder::new("nested");
    let x = g.input::<u64>("x");
    let a = g
        .node("a")
        .run(x, |_, x| Ok(x.rotate_left(3).wrapping_add(1)));
    let b = if with_async {
        g.node("b").run_async(x, |_, x| async move {
            tokio::task::yield_now().await;
            Ok(*x ^ 0x5555)
        })
    } else {
        g.node("b").run(x, |_, x| Ok(x ^ 0x5555))
    };
    let c = g.node("c").run((a, b), |_, (a, b)| Ok(a.wrapping_mul(*b)));
    let plan = g.build().unwrap().plan(&Request::new().output(c)).unwrap();
    NestedPlan { plan, x, c }
}

/// Everything one body needs.
struct Body {
    i: usize,
    spec: NodeSpec,
    /// Inputs in argument order.
    args: Vec<usize>,
    /// The model's values of all nodes.
    expected: Arc<Vec<u64>>,
    probe: Arc<Probe>,
    nested: Option<Arc<NestedPlan>>,
}

impl Body {
    /// A sync attempt.
    fn run_sync(
        &self,
        attempt: u32,
        seed: u64,
        words: &[&u64],
        wides: &[&Wide],
    ) -> NodeResult<u64> {
        let value = self.enter(seed, words, wides);
        self.work_on_this_thread();
        self.run_nested(value);
        self.finish(attempt, value)
    }

    /// An async attempt: its work awaits on tokio instead of blocking the thread.
    async fn run_async(
        &self,
        attempt: u32,
        seed: u64,
        words: &[Arc<u64>],
        wides: &[Arc<Wide>],
    ) -> NodeResult<u64> {
        let words: Vec<&u64> = words.iter().map(|w| &**w).collect();
        let wides: Vec<&Wide> = wides.iter().map(|w| &**w).collect();
        let value = self.enter(seed, &words, &wides);
        self.work_on_tokio().await;
        self.finish(attempt, value)
    }

    /// The start of every attempt: counts it, checks the arguments against the model,
    /// cancels the run if this node does, and computes the value from what it received.
    fn enter(&self, seed: u64, words: &[&u64], wides: &[&Wide]) -> u64 {
        self.probe.calls[self.i].fetch_add(1, Ordering::SeqCst);
        let mut received: Vec<u64> = words.iter().map(|v| **v).collect();
        for (k, wide) in wides.iter().enumerate() {
            let v = wide.value().unwrap_or_else(|| {
                self.probe.problem(format!(
                    "n{}: boxed argument {k} arrived torn: {wide:?}",
                    self.i
                ));
                wide.0[0]
            });
            received.push(v);
        }
        if received.len() != self.args.len() {
            self.probe.problem(format!(
                "n{}: {} arguments, {} inputs",
                self.i,
                received.len(),
                self.args.len()
            ));
        }
        for (k, (&p, &got)) in self.args.iter().zip(&received).enumerate() {
            if got != self.expected[p] {
                self.probe.problem(format!(
                    "n{}: argument {k} (from n{p}) is {got:#x}, the model says {:#x}",
                    self.i, self.expected[p]
                ));
            }
        }
        if self.spec.cancels {
            lock(&self.probe.cancel).cancel();
        }
        node_value(self.i, seed, &received)
    }

    fn work_on_this_thread(&self) {
        match self.spec.work {
            Work::None => {}
            Work::Spin(n) => (0..n).for_each(|_| std::hint::spin_loop()),
            Work::Yield => std::thread::yield_now(),
            Work::RayonYield => {
                let _ = rayon::yield_now();
            }
            Work::Sleep(nap) => std::thread::sleep(nap),
        }
    }

    async fn work_on_tokio(&self) {
        match self.spec.work {
            Work::Sleep(nap) => tokio::time::sleep(nap).await,
            Work::None => {}
            _ => tokio::task::yield_now().await,
        }
    }

    /// Runs the nested plan on the current run's executor and checks what it returns.
    fn run_nested(&self, value: u64) {
        let Some(nested) = &self.nested else { return };
        let exec = &EXECUTORS[self.probe.executor.load(Ordering::SeqCst)];
        let inputs = Inputs::new().set(nested.x, value);
        match exec.run_with(&nested.plan, inputs, RunOptions::new()) {
            Ok(run) => {
                let got = run.outputs().get(nested.c).copied();
                if got != Some(nested_value(value)) {
                    self.probe
                        .problem(format!("n{}: the nested run returned {got:?}", self.i));
                }
                if run.record().nodes().any(|n| n.attempts != 1) {
                    self.probe.problem(format!(
                        "n{}: nested run record:\n{}",
                        self.i,
                        run.record().summary_table()
                    ));
                }
            }
            Err(err) => self
                .probe
                .problem(format!("n{}: the nested run failed: {err}", self.i)),
        }
    }

    /// The end of an attempt: fails it as the node's fault says, or returns the value.
    fn finish(&self, attempt: u32, value: u64) -> NodeResult<u64> {
        let i = self.i;
        match (self.spec.fault, attempt) {
            (Fault::Error, _) | (Fault::FlakyError, 1) => {
                Err(NodeError::msg(format!("n{i} fails on purpose")))
            }
            (Fault::Panic, _) | (Fault::FlakyPanic, 1) => panic!("n{i} panics on purpose"),
            _ => Ok(value),
        }
    }
}

/// A node's output, of either type.
#[derive(Clone, Copy)]
enum Out {
    Word(Handle<u64>),
    Wide(Handle<Wide>),
}

fn declare(g: &mut DagBuilder, seed: Handle<u64>, handles: &[Out], body: Body) -> Out {
    let spec = &body.spec;
    let mut words = Vec::new();
    let mut wides = Vec::new();
    for &p in &body.args {
        match handles[p] {
            Out::Word(h) => words.push(h),
            Out::Wide(h) => wides.push(h),
        }
    }
    let mut node = g.node(node_name(body.i));
    if let Some(stage) = spec.stage {
        node = node.stage(STAGES[stage]);
    }
    if let Some(group) = spec.group {
        node = node.task(format!("g{group}"));
    }
    if spec.max_attempts > 1 {
        let mut policy = RetryPolicy::attempts(spec.max_attempts);
        if spec.backoff {
            let (first, most) = (Duration::from_micros(20), Duration::from_micros(100));
            policy = policy.with_backoff(first, 2.0, most);
        }
        node = node.retry(policy);
    }
    let deps = (seed, words, wides);
    let (wide, is_async) = (spec.wide, spec.is_async);
    let body = Arc::new(body);
    match (wide, is_async) {
        (false, false) => Out::Word(node.run(deps, move |ctx, (s, w, x)| {
            body.run_sync(ctx.attempt(), *s, &w, &x)
        })),
        (true, false) => Out::Wide(node.run(deps, move |ctx, (s, w, x)| {
            body.run_sync(ctx.attempt(), *s, &w, &x).map(Wide::new)
        })),
        (false, true) => Out::Word(node.run_async(deps, move |ctx, (s, w, x)| {
            let body = Arc::clone(&body);
            async move { body.run_async(ctx.attempt(), *s, &w, &x).await }
        })),
        (true, true) => Out::Wide(node.run_async(deps, move |ctx, (s, w, x)| {
            let body = Arc::clone(&body);
            async move {
                body.run_async(ctx.attempt(), *s, &w, &x)
                    .await
                    .map(Wide::new)
            }
        })),
    }
}

struct Built {
    plan: Plan,
    seed: Handle<u64>,
    handles: Vec<Out>,
}

fn build(spec: &Spec, model: &Model, probe: &Arc<Probe>) -> Built {
    let mut g = DagBuilder::new("stress");
    // Declared in reverse, so that their order is not the order of first use.
    for stage in STAGES.iter().rev() {
        g.stage(*stage);
    }
    let seed = g.input::<u64>("seed");
    let nested = spec
        .nodes
        .iter()
        .any(|n| n.nested)
        .then(|| Arc::new(nested_plan(spec.nested_async)));
    let expected = Arc::new(model.values.clone());
    let mut handles = Vec::with_capacity(spec.nodes.len());
    for (i, node) in spec.nodes.iter().enumerate() {
        let body = Body {
            i,
            spec: node.clone(),
            args: model.args[i].clone(),
            expected: Arc::clone(&expected),
            probe: Arc::clone(probe),
            nested: nested.clone().filter(|_| node.nested),
        };
        let out = declare(&mut g, seed, &handles, body);
        handles.push(out);
    }
    let dag = g.build().expect("stress graphs are valid");
    let request = spec
        .requested
        .iter()
        .fold(Request::new(), |r, &i| match handles[i] {
            Out::Word(h) => r.output(h),
            Out::Wide(h) => r.output(h),
        });
    Built {
        plan: dag.plan(&request).expect("stress plans are valid"),
        seed,
        handles,
    }
}

// ---------------------------------------------------------------------------------------
// Running and checking

/// Keeps the panics that nodes raise on purpose out of the test's output.
fn quiet_planned_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload_as_str().is_some_and(is_planned_panic) {
                default(info);
            }
        }));
    });
}

/// Whether `message` is exactly what [`Body::finish`] panics with.
fn is_planned_panic(message: &str) -> bool {
    let index = message
        .strip_prefix('n')
        .and_then(|rest| rest.strip_suffix(" panics on purpose"));
    index.is_some_and(|i| i.parse::<usize>().is_ok())
}

/// What one run left behind.
struct Ran {
    record: RunRecord,
    outputs: BTreeMap<usize, u64>,
    /// `ok`, `failed` or `cancelled`.
    ended: &'static str,
}

fn run_once(case: &Case<'_>, exec: ExecChoice) -> Result<Ran, String> {
    let probe = &case.probe;
    for calls in &probe.calls {
        calls.store(0, Ordering::SeqCst);
    }
    let token = CancelToken::new();
    *lock(&probe.cancel) = token.clone();
    probe.executor.store(exec.index(), Ordering::SeqCst);
    let canceller = match case.spec.cancel {
        Cancel::External(after) => {
            let token = token.clone();
            Some(std::thread::spawn(move || {
                std::thread::sleep(after);
                token.cancel();
            }))
        }
        _ => None,
    };
    let inputs = Inputs::new().set(case.built.seed, case.spec.seed);
    let options = RunOptions::new().cancel(token);
    let result = EXECUTORS[exec.index()].run_with(&case.built.plan, inputs, options);
    if let Some(canceller) = canceller {
        canceller.join().unwrap();
    }
    let (outputs, record, ended) = match result {
        Ok(run) => {
            let (outputs, record) = run.into_parts();
            (outputs, record, "ok")
        }
        Err(RunError::Failed(run)) => {
            let run = *run;
            (run.outputs, run.record, "failed")
        }
        Err(RunError::Cancelled(run)) => {
            let run = *run;
            (run.outputs, run.record, "cancelled")
        }
        Err(other) => return Err(format!("the run did not get to its nodes: {other}")),
    };
    let mut values = BTreeMap::new();
    for &i in &case.spec.requested {
        let value = match case.built.handles[i] {
            Out::Word(h) => outputs.get(h).copied(),
            Out::Wide(h) => outputs.get(h).map(|w| w.value().unwrap_or(!w.0[0])),
        };
        if let Some(value) = value {
            values.insert(i, value);
        }
    }
    Ok(Ran {
        record,
        outputs: values,
        ended,
    })
}

/// One iteration's graph, model and plan.
struct Case<'a> {
    spec: &'a Spec,
    model: &'a Model,
    built: &'a Built,
    probe: &'a Arc<Probe>,
}

/// Problems found in one run, kept in order (the first ones are the telling ones).
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, text: impl Into<String>) {
        self.0.push(text.into());
    }
}

/// The record's nodes by graph index.
fn records_by_index(record: &RunRecord, n: usize) -> Vec<Option<NodeRecord<'_>>> {
    let mut by_index = vec![None; n];
    for node in record.nodes() {
        let i = index_of(node.name);
        by_index[i] = Some(node);
    }
    by_index
}

fn ran(node: &NodeRecord<'_>) -> bool {
    node.attempts > 0
}

fn check_run(case: &Case<'_>, exec: ExecChoice, got: &Ran, problems: &mut Problems) {
    let n = case.spec.nodes.len();
    let record = &got.record;
    let nodes = records_by_index(record, n);
    check_planned_and_calls(case, &nodes, record.len(), problems);
    check_order_and_inputs(case, &nodes, problems);
    check_statuses(case, &nodes, problems);
    check_threads(case, exec, &nodes, problems);
    if exec.policy == FailurePolicy::FailFast {
        for failed in nodes.iter().flatten() {
            if failed.status == NodeStatus::Failed {
                check_nothing_starts_after(exec, failed, &nodes, problems);
            }
        }
    }
    if case.spec.cancel == Cancel::ByNode {
        let canceller = case.spec.nodes.iter().position(|node| node.cancels);
        if let Some(Some(canceller)) = canceller.map(|c| &nodes[c])
            && ran(canceller)
        {
            check_nothing_starts_after(exec, canceller, &nodes, problems);
        }
    }
    check_outputs(case, got, &nodes, problems);
    check_run_result(case, got, &nodes, problems);
    problems.0.extend(lock(&case.probe.problems).drain(..));
    problems.0.extend(lock(&HOOK_PROBLEMS).drain(..));
}

/// Invariant 1: the planned nodes have one record each and ran as often as it says; the
/// others never ran.
fn check_planned_and_calls(
    case: &Case<'_>,
    nodes: &[Option<NodeRecord<'_>>],
    records: usize,
    problems: &mut Problems,
) {
    let planned = case.model.planned.iter().filter(|&&p| p).count();
    if records != planned {
        problems.add(format!("{records} records for {planned} planned nodes"));
    }
    for (i, node) in nodes.iter().enumerate() {
        let calls = case.probe.calls[i].load(Ordering::SeqCst);
        match node {
            None if case.model.planned[i] => problems.add(format!("n{i} is planned, no record")),
            None if calls != 0 => problems.add(format!("n{i} is not planned but ran {calls}x")),
            None => {}
            Some(_) if !case.model.planned[i] => problems.add(format!("n{i} has a record")),
            Some(node) => {
                if calls != node.attempts {
                    problems.add(format!(
                        "n{i} ({}) ran {calls} time(s), its record counts {} attempt(s)",
                        node.status, node.attempts
                    ));
                }
                if node.status == NodeStatus::Skipped && (ran(node) || node.started_at.is_some()) {
                    problems.add(format!("n{i} is skipped but has attempts or a start"));
                }
            }
        }
    }
}

/// Invariant 2: a node that ran had every input succeed, and started after each ended.
fn check_order_and_inputs(
    case: &Case<'_>,
    nodes: &[Option<NodeRecord<'_>>],
    problems: &mut Problems,
) {
    for (i, node) in nodes.iter().enumerate() {
        let Some(node) = node.as_ref().filter(|node| ran(node)) else {
            continue;
        };
        let Some(started) = node.started_at else {
            problems.add(format!("n{i} ran but has no start"));
            continue;
        };
        for &p in &case.spec.nodes[i].parents {
            let Some(input) = &nodes[p] else { continue };
            if input.status != NodeStatus::Succeeded {
                problems.add(format!("n{i} ran although its input n{p} {}", input.status));
            }
            if let Some(ended) = input.ended_at()
                && started < ended
            {
                problems.add(format!(
                    "n{i} started {:?} before its input n{p} ended",
                    ended.duration_since(started).unwrap_or_default()
                ));
            }
        }
    }
}

/// Invariant 3: statuses, outcomes and attempts against the model.
fn check_statuses(case: &Case<'_>, nodes: &[Option<NodeRecord<'_>>], problems: &mut Problems) {
    let spec = case.spec;
    let model = case.model;
    let exact = spec.policy == FailurePolicy::Continue && spec.cancel == Cancel::None;
    for (i, node) in nodes.iter().enumerate() {
        let Some(node) = node else { continue };
        let want = model.status[i];
        if exact && node.status != want {
            problems.add(format!("n{i} {}, the model says {want}", node.status));
        }
        let node_spec = &spec.nodes[i];
        match (&node.status, &node.outcome) {
            (NodeStatus::Succeeded, Some(NodeOutcome::Succeeded)) => {
                if want != NodeStatus::Succeeded {
                    problems.add(format!("n{i} succeeded, the model says {want}"));
                }
                if node.attempts != model.attempts[i] {
                    problems.add(format!(
                        "n{i} succeeded after {} attempt(s), not {}",
                        node.attempts, model.attempts[i]
                    ));
                }
            }
            (NodeStatus::Failed, Some(outcome)) => {
                let by_fault = match node_spec.fault {
                    Fault::Error | Fault::FlakyError => {
                        *outcome
                            == NodeOutcome::Failed {
                                message: format!("n{i} fails on purpose"),
                            }
                    }
                    Fault::Panic | Fault::FlakyPanic => {
                        *outcome
                            == NodeOutcome::Panicked {
                                message: format!("n{i} panics on purpose"),
                            }
                    }
                    Fault::None => false,
                };
                // A flaky node fails only when a cancel came before its retry.
                let may_fail = node_spec.fault.is_permanent()
                    || (node_spec.fault.is_flaky() && spec.cancel != Cancel::None);
                if !by_fault || !may_fail {
                    problems.add(format!("n{i} failed with {outcome:?}"));
                }
                let full = node.attempts == node_spec.max_attempts;
                if node.attempts == 0 || (spec.cancel == Cancel::None && !full) {
                    problems.add(format!(
                        "n{i} failed after {} of {} attempts",
                        node.attempts, node_spec.max_attempts
                    ));
                }
            }
            (NodeStatus::Skipped, Some(NodeOutcome::Skipped(reason))) => {
                check_skip_reason(case, i, reason, nodes, problems);
            }
            (status, outcome) => problems.add(format!("n{i}: {status} with {outcome:?}")),
        }
    }
}

fn check_skip_reason(
    case: &Case<'_>,
    i: usize,
    reason: &SkipReason,
    nodes: &[Option<NodeRecord<'_>>],
    problems: &mut Problems,
) {
    let failed = |name: &str| {
        let a = index_of(name);
        nodes[a]
            .as_ref()
            .is_some_and(|n| n.status == NodeStatus::Failed)
    };
    match reason {
        SkipReason::UpstreamFailed { ancestor } => {
            if !failed(ancestor) || !is_ancestor(case, index_of(ancestor), i, nodes) {
                problems.add(format!(
                    "n{i} skipped for {ancestor}, not a failed ancestor"
                ));
            }
        }
        SkipReason::FailFast { failed: name } => {
            if case.spec.policy != FailurePolicy::FailFast || !failed(name) {
                problems.add(format!("n{i} skipped by fail-fast after {name}"));
            }
        }
        SkipReason::Cancelled => {
            if case.spec.cancel == Cancel::None {
                problems.add(format!(
                    "n{i} skipped as cancelled in a run nobody cancelled"
                ));
            }
        }
        other => problems.add(format!("n{i} skipped: {other:?}")),
    }
}

/// Whether `a` is an ancestor of `i`. Tries first the path the executor's markers take (an
/// input that is `a` or was skipped naming it), then searches the whole graph.
fn is_ancestor(case: &Case<'_>, a: usize, i: usize, nodes: &[Option<NodeRecord<'_>>]) -> bool {
    let parents = &case.spec.nodes[i].parents;
    let names_a = |p: usize| {
        nodes[p].as_ref().is_some_and(|n| {
            matches!(&n.outcome, Some(NodeOutcome::Skipped(SkipReason::UpstreamFailed { ancestor }))
                if index_of(ancestor) == a)
        })
    };
    if parents.iter().any(|&p| p == a || names_a(p)) {
        return true;
    }
    let mut seen = vec![false; i + 1];
    let mut stack = parents.clone();
    while let Some(p) = stack.pop() {
        if p == a {
            return true;
        }
        if p > a && !std::mem::replace(&mut seen[p], true) {
            stack.extend(&case.spec.nodes[p].parents);
        }
    }
    false
}

/// Where nodes ran: a worker of the run's pool, tokio for async tasks, the caller's thread
/// for sequential runs.
fn check_threads(
    case: &Case<'_>,
    exec: ExecChoice,
    nodes: &[Option<NodeRecord<'_>>],
    problems: &mut Problems,
) {
    let threads = match exec.workers {
        Workers::Sequential => 0,
        Workers::Own(n) => n as u32,
        Workers::CallersPool => 1,
    };
    for (i, node) in nodes.iter().enumerate() {
        let Some(node) = node.as_ref().filter(|node| ran(node)) else {
            continue;
        };
        let fine = match node.thread {
            ThreadLabel::Async => case.model.task_async[i],
            ThreadLabel::Caller => !case.model.task_async[i] && threads == 0,
            ThreadLabel::Worker(w) => !case.model.task_async[i] && w < threads,
            _ => false,
        };
        if !fine {
            problems.add(format!("n{i} ran on {}", node.thread));
        }
        let stage = case.spec.nodes[i].stage.map(|s| STAGES[s]);
        let task = match case.spec.nodes[i].group {
            Some(g) => format!("g{g}"),
            None => node_name(i),
        };
        if node.stage() != stage || node.task() != task {
            problems.add(format!("n{i} in {:?}/{}", node.stage(), node.task()));
        }
    }
}

/// Whether `a` and `b` ran on one thread, one after the other: in a sequential run every
/// node does; in a parallel one, nodes on the same pool worker (tokio's threads have no
/// label).
fn same_thread(exec: ExecChoice, a: &NodeRecord<'_>, b: &NodeRecord<'_>) -> bool {
    exec.workers == Workers::Sequential
        || matches!((a.thread, b.thread), (ThreadLabel::Worker(x), ThreadLabel::Worker(y)) if x == y)
}

/// Fail-fast and cancellation: once `stopper` (a failed node, or the node that cancelled)
/// has ended, nothing starts on its thread. The thread that ran it sees the failure or the
/// cancel at its next node for certain; other threads may start nodes a little later, which
/// the documentation allows ("running nodes finish").
fn check_nothing_starts_after(
    exec: ExecChoice,
    stopper: &NodeRecord<'_>,
    nodes: &[Option<NodeRecord<'_>>],
    problems: &mut Problems,
) {
    let Some(end) = stopper.ended_at() else {
        return;
    };
    for node in nodes.iter().flatten() {
        if node.name == stopper.name || !ran(node) || !same_thread(exec, stopper, node) {
            continue;
        }
        if node.started_at.is_some_and(|start| start >= end) {
            problems.add(format!(
                "{} started on {} {:?} after {} ({}) ended there",
                node.name,
                node.thread,
                node.started_at
                    .unwrap()
                    .duration_since(end)
                    .unwrap_or_default(),
                stopper.name,
                stopper.status
            ));
        }
    }
}

/// Invariant 4, first half: outputs delivered are exactly the requested nodes that
/// succeeded, with the model's values.
fn check_outputs(
    case: &Case<'_>,
    got: &Ran,
    nodes: &[Option<NodeRecord<'_>>],
    problems: &mut Problems,
) {
    for &i in &case.spec.requested {
        let succeeded = nodes[i]
            .as_ref()
            .is_some_and(|n| n.status == NodeStatus::Succeeded);
        match got.outputs.get(&i) {
            Some(&v) if !succeeded => problems.add(format!("output n{i} = {v:#x}, not succeeded")),
            Some(&v) if v != case.model.values[i] => problems.add(format!(
                "output n{i} = {v:#x}, the model says {:#x}",
                case.model.values[i]
            )),
            None if succeeded => problems.add(format!("output n{i} missing")),
            _ => {}
        }
    }
}

/// The run's result agrees with its record, and with the model when nothing cancelled it.
fn check_run_result(
    case: &Case<'_>,
    got: &Ran,
    nodes: &[Option<NodeRecord<'_>>],
    problems: &mut Problems,
) {
    let count = |status| {
        nodes
            .iter()
            .flatten()
            .filter(|n| n.status == status)
            .count()
    };
    let failed = count(NodeStatus::Failed);
    let all_succeeded = count(NodeStatus::Succeeded) == got.record.len();
    let consistent = match got.ended {
        "ok" => all_succeeded,
        "failed" => failed > 0,
        _ => case.spec.cancel != Cancel::None && got.record.outcome == Outcome::Cancelled,
    };
    if !consistent {
        problems.add(format!(
            "the run ended {} with {failed} failure(s), outcome {:?}",
            got.ended, got.record.outcome
        ));
    }
    if case.spec.cancel == Cancel::None && case.model.any_failure != (failed > 0) {
        problems.add(format!(
            "{failed} node(s) failed; the model expects failures: {}",
            case.model.any_failure
        ));
    }
}

/// The executors that run one iteration's graph: the sequential one, then two parallel
/// ones, each with or without the hook.
fn executors_for(rng: &mut Rng, policy: FailurePolicy) -> Vec<ExecChoice> {
    let mut choices = vec![ExecChoice {
        workers: Workers::Sequential,
        policy,
        hooked: rng.chance(0.3),
    }];
    for _ in 0..2 {
        choices.push(ExecChoice {
            workers: rng.pick(&WORKERS[1..]),
            policy,
            hooked: rng.chance(0.3),
        });
    }
    choices
}

/// The summary table's header and the rows of the nodes that `problems` name (at most 40).
fn record_excerpt(record: &RunRecord, problems: &[String]) -> String {
    let named = |row: &str| {
        let name = row.split_whitespace().next().unwrap_or("");
        problems.iter().any(|p| {
            p.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|word| word == name)
        })
    };
    let table = record.summary_table();
    let mut rows = table.lines();
    let header = rows.next().unwrap_or_default();
    let mut excerpt = vec![header];
    excerpt.extend(rows.filter(|row| named(row)).take(40));
    excerpt.join("\n")
}

fn describe(spec: &Spec) -> String {
    let count = |f: &dyn Fn(&NodeSpec) -> bool| spec.nodes.iter().filter(|n| f(n)).count();
    format!(
        "{:?} of {} nodes ({} async, {} boxed, {} grouped, {} permanent faults, {} flaky, \
         {} nested), {} requested, {:?}, cancel {:?}",
        spec.shape,
        spec.nodes.len(),
        count(&|n| n.is_async),
        count(&|n| n.wide),
        count(&|n| n.group.is_some()),
        count(&|n| n.fault.is_permanent()),
        count(&|n| n.fault.is_flaky()),
        count(&|n| n.nested),
        spec.requested.len(),
        spec.policy,
        spec.cancel,
    )
}

/// Runs one iteration; returns its problems, each naming the run it came from.
fn iteration(seed: u64) -> Vec<String> {
    let spec = random_spec(seed);
    let model = model(&spec);
    let probe = Arc::new(Probe {
        calls: (0..spec.nodes.len()).map(|_| AtomicU32::new(0)).collect(),
        problems: Mutex::new(Vec::new()),
        cancel: Mutex::new(CancelToken::new()),
        executor: AtomicUsize::new(0),
    });
    let built = build(&spec, &model, &probe);
    let case = Case {
        spec: &spec,
        model: &model,
        built: &built,
        probe: &probe,
    };
    let mut rng = Rng(seed ^ 0xe4ec_u64);
    let mut all = Vec::new();
    let mut sequential_outputs = None;
    for exec in executors_for(&mut rng, spec.policy) {
        let mut problems = Problems::default();
        match run_once(&case, exec) {
            Ok(got) => {
                check_run(&case, exec, &got, &mut problems);
                // Invariant 4, second half: under `Continue` the outputs do not depend on
                // the executor.
                if spec.policy == FailurePolicy::Continue && spec.cancel == Cancel::None {
                    match &sequential_outputs {
                        None => sequential_outputs = Some(got.outputs.clone()),
                        Some(sequential) if *sequential != got.outputs => {
                            problems.add("outputs differ from the sequential run's")
                        }
                        Some(_) => {}
                    }
                }
                if !problems.0.is_empty() {
                    // The first problems tell; the rest would bury the records.
                    problems.0.truncate(15);
                    let excerpt = record_excerpt(&got.record, &problems.0);
                    problems.add(format!("records of the nodes named above:\n{excerpt}"));
                }
            }
            Err(err) => problems.add(err),
        }
        all.extend(problems.0.into_iter().map(|p| format!("{exec:?}: {p}")));
    }
    if !all.is_empty() {
        all.insert(0, describe(&spec));
    }
    all
}

/// The iteration under way and when it started, for the watchdog.
static UNDER_WAY: Mutex<Option<(u64, Instant)>> = Mutex::new(None);

/// A scheduler that loses a task hangs its run rather than failing it: after two minutes on
/// one iteration (seconds are normal), this names the seed and aborts the test.
fn start_watchdog() {
    const LIMIT: Duration = Duration::from_secs(120);
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            if let Some((seed, started)) = *lock(&UNDER_WAY)
                && started.elapsed() > LIMIT
            {
                // Straight to stderr: the test harness captures `eprintln!` on this thread
                // too, and would drop it with the process.
                let _ = writeln!(
                    std::io::stderr(),
                    "the iteration of seed {seed} has run for {LIMIT:?}: a run hangs \
                     (rerun with DAGTEL_STRESS_SEED={seed})"
                );
                std::process::abort();
            }
        }
    });
}

#[test]
fn random_runs_keep_the_schedulers_invariants() {
    quiet_planned_panics();
    start_watchdog();
    let seeds = seeds();
    let mut failures = Vec::new();
    for &seed in &seeds {
        *lock(&UNDER_WAY) = Some((seed, Instant::now()));
        let problems = iteration(seed);
        if !problems.is_empty() {
            failures.push(format!(
                "seed {seed} (rerun with DAGTEL_STRESS_SEED={seed}):\n  {}",
                problems.join("\n  ")
            ));
            if failures.len() == 3 {
                break;
            }
        }
    }
    *lock(&UNDER_WAY) = None;
    assert!(
        failures.is_empty(),
        "iterations broke an invariant (up to three shown, out of {} planned):\n{}",
        seeds.len(),
        failures.join("\n\n")
    );
}
