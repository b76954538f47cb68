//! Shared pieces of the executor benchmarks: graph shapes, node work, the two reference
//! executors (a minimal rayon "floor" and a sequential loop), dagtel graph construction,
//! result collection and memory readings.
//!
//! The floor follows the design measured in the peer survey (rust-dag-peers.md, sections
//! 1-4, "rayon-split"): CSR arrays instead of a graph library, in-degree counters computed
//! once per graph, `AtomicU64` output slots, boxed `dyn Fn(&[u64]) -> u64` nodes, the single
//! ready child run inline, and wider ready lists split with `rayon::join`.

use std::any::Any;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use dagtel::{DagBuilder, Handle, Plan, Request};
use smallvec::SmallVec;

// ---------------------------------------------------------------------------------------------
// Random numbers and work
// ---------------------------------------------------------------------------------------------

/// xorshift64*: enough randomness to pick parents, reproducible from a fixed seed.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u32) -> u32 {
        (self.next_u64() % u64::from(n)) as u32
    }
}

/// What a node does besides adding up its parents.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    /// Nothing: `index + sum of parents` (wrapping). Measures scheduling overhead.
    Noop,
    /// Also `iters` rounds of a 64-bit mixer, calibrated to a target duration.
    Spin(u64),
}

#[inline]
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A dependent chain of `iters` mixer rounds; `black_box` keeps the count opaque.
#[inline(never)]
pub fn spin(seed: u64, iters: u64) -> u64 {
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..black_box(iters) {
        x = mix64(x);
    }
    black_box(x)
}

/// Every executor computes exactly this for node `index`.
#[inline]
pub fn node_value(index: u64, parent_sum: u64, work: Work) -> u64 {
    let base = index.wrapping_add(parent_sum);
    match work {
        Work::Noop => base,
        Work::Spin(iters) => base.wrapping_add(spin(index, iters) & 0xff),
    }
}

/// Spin rounds that take about `target` on this machine (best of several timings, so a
/// busy neighbour makes the nodes slightly longer rather than shorter).
pub fn calibrate(target: Duration) -> u64 {
    let probe = 1u64 << 18;
    spin(1, probe); // warm up
    let best = (0..7)
        .map(|i| {
            let start = Instant::now();
            spin(i, probe);
            start.elapsed()
        })
        .min()
        .unwrap_or(Duration::from_millis(1));
    let per_iter = best.as_secs_f64() / probe as f64;
    ((target.as_secs_f64() / per_iter).round() as u64).max(1)
}

/// How many threads' worth of CPU the machine gives right now: the same spin on 1 thread,
/// then on `threads` threads at once; `threads` means full parallelism. On a shared VM this
/// drops when the host is busy, which caps every speedup measured meanwhile.
pub fn parallelism_probe(threads: usize) -> f64 {
    let iters = calibrate(Duration::from_millis(150));
    let once = |seed| {
        let start = Instant::now();
        spin(seed, iters);
        start.elapsed().as_secs_f64()
    };
    let single = once(1).min(once(2));
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || spin(t as u64, iters));
        }
    });
    let together = start.elapsed().as_secs_f64();
    threads as f64 * single / together
}

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

/// A DAG whose nodes are numbered in a topological order (every parent has a smaller index),
/// as CSR arrays.
pub struct Shape {
    pub name: String,
    pub parent_off: Vec<u32>,
    pub parents: Vec<u32>,
    pub child_off: Vec<u32>,
    pub children: Vec<u32>,
    pub indegree: Vec<u32>,
    pub roots: Vec<u32>,
    pub sinks: Vec<u32>,
}

impl Shape {
    fn from_parents(name: impl Into<String>, lists: Vec<Vec<u32>>) -> Self {
        let n = lists.len();
        let mut parent_off = Vec::with_capacity(n + 1);
        let mut parents = Vec::new();
        parent_off.push(0);
        let mut child_count = vec![0u32; n];
        for (i, list) in lists.iter().enumerate() {
            for &p in list {
                assert!((p as usize) < i, "parents must come first");
                child_count[p as usize] += 1;
            }
            parents.extend_from_slice(list);
            parent_off.push(parents.len() as u32);
        }
        let mut child_off = Vec::with_capacity(n + 1);
        child_off.push(0u32);
        for &c in &child_count {
            let last = *child_off.last().unwrap_or(&0);
            child_off.push(last + c);
        }
        let mut fill: Vec<u32> = child_off[..n].to_vec();
        let mut children = vec![0u32; parents.len()];
        for (i, list) in lists.iter().enumerate() {
            for &p in list {
                children[fill[p as usize] as usize] = i as u32;
                fill[p as usize] += 1;
            }
        }
        let indegree: Vec<u32> = lists.iter().map(|l| l.len() as u32).collect();
        let roots = (0..n as u32)
            .filter(|&i| indegree[i as usize] == 0)
            .collect();
        let sinks = (0..n as u32)
            .filter(|&i| child_count[i as usize] == 0)
            .collect();
        Self {
            name: name.into(),
            parent_off,
            parents,
            child_off,
            children,
            indegree,
            roots,
            sinks,
        }
    }

    /// `n` nodes, each depending on the previous one.
    pub fn chain(n: usize) -> Self {
        let lists = (0..n)
            .map(|i| {
                if i == 0 {
                    Vec::new()
                } else {
                    vec![i as u32 - 1]
                }
            })
            .collect();
        Self::from_parents(format!("chain {n}"), lists)
    }

    /// One root, `leaves` nodes depending on it, one sink depending on all leaves.
    pub fn fan(leaves: usize) -> Self {
        let mut lists = vec![Vec::new()];
        lists.extend((0..leaves).map(|_| vec![0]));
        lists.push((1..=leaves as u32).collect());
        Self::from_parents(format!("fan-out/fan-in {leaves}"), lists)
    }

    /// `layers` x `width` nodes; each node past the first layer picks `fan_in` distinct
    /// parents from the previous layer.
    pub fn layered(layers: usize, width: usize, fan_in: usize, seed: u64) -> Self {
        let mut rng = XorShift::new(seed);
        let mut lists = Vec::with_capacity(layers * width);
        for layer in 0..layers {
            for _ in 0..width {
                if layer == 0 {
                    lists.push(Vec::new());
                    continue;
                }
                let base = ((layer - 1) * width) as u32;
                let mut picked: Vec<u32> = Vec::with_capacity(fan_in);
                while picked.len() < fan_in.min(width) {
                    let p = base + rng.below(width as u32);
                    if !picked.contains(&p) {
                        picked.push(p);
                    }
                }
                lists.push(picked);
            }
        }
        Self::from_parents(format!("layered {layers}x{width}, {fan_in} parents"), lists)
    }

    /// `n` nodes without edges.
    pub fn independent(n: usize) -> Self {
        Self::from_parents(format!("{n} independent"), vec![Vec::new(); n])
    }

    pub fn len(&self) -> usize {
        self.indegree.len()
    }

    pub fn parents_of(&self, i: usize) -> &[u32] {
        &self.parents[self.parent_off[i] as usize..self.parent_off[i + 1] as usize]
    }

    fn children_of(&self, i: usize) -> &[u32] {
        &self.children[self.child_off[i] as usize..self.child_off[i + 1] as usize]
    }

    pub fn edges(&self) -> usize {
        self.parents.len()
    }

    /// The expected result: wrapping sum of the sinks' values, computed directly.
    pub fn reference_checksum(&self, work: Work) -> u64 {
        let mut values = vec![0u64; self.len()];
        for i in 0..self.len() {
            let sum = self
                .parents_of(i)
                .iter()
                .fold(0u64, |a, &p| a.wrapping_add(values[p as usize]));
            values[i] = node_value(i as u64, sum, work);
        }
        self.checksum(|i| values[i as usize])
    }

    pub fn checksum(&self, value_of: impl Fn(u32) -> u64) -> u64 {
        self.sinks
            .iter()
            .fold(0u64, |a, &s| a.wrapping_add(value_of(s)))
    }
}

// ---------------------------------------------------------------------------------------------
// Reference executors over CSR arrays
// ---------------------------------------------------------------------------------------------

pub type NodeFn = Box<dyn Fn(&[u64]) -> u64 + Send + Sync>;

/// A graph prepared for the floor and the sequential loop: boxed node closures plus the
/// shape's CSR arrays, in-degrees and a topological order, all computed once.
pub struct CsrDag<'s> {
    shape: &'s Shape,
    nodes: Vec<NodeFn>,
    order: Vec<u32>,
}

type ReadyList = SmallVec<[u32; 8]>;

impl<'s> CsrDag<'s> {
    pub fn new(shape: &'s Shape, work: Work) -> Self {
        let nodes = (0..shape.len() as u64)
            .map(|i| -> NodeFn {
                Box::new(move |parents: &[u64]| {
                    let sum = parents.iter().fold(0u64, |a, &p| a.wrapping_add(p));
                    node_value(i, sum, work)
                })
            })
            .collect();
        // Node indices are already topological; keep an explicit order anyway, as a real
        // sequential executor would hold one.
        let order = (0..shape.len() as u32).collect();
        Self {
            shape,
            nodes,
            order,
        }
    }

    /// The sequential loop: nodes in the precomputed order, plain `Vec<u64>` outputs.
    pub fn run_sequential(&self) -> Vec<u64> {
        let shape = self.shape;
        let mut out = vec![0u64; shape.len()];
        let mut args: Vec<u64> = Vec::with_capacity(16);
        for &v in &self.order {
            let v = v as usize;
            args.clear();
            args.extend(shape.parents_of(v).iter().map(|&p| out[p as usize]));
            out[v] = (self.nodes[v])(&args);
        }
        out
    }

    /// The floor: minimal rayon executor on `pool`.
    pub fn run_floor(&self, pool: &rayon::ThreadPool) -> Box<[AtomicU64]> {
        let run = FloorRun::new(self);
        pool.install(|| run.drive_many(&self.shape.roots));
        run.slots
    }
}

/// The floor's scheduling rule, shared by its variants: run one ready node inline, split wider
/// ready lists with `rayon::join`.
trait Drive: Sync {
    /// Runs `first` and then, while exactly one child becomes ready, that child.
    fn drive(&self, first: u32);

    fn drive_many(&self, ready: &[u32]) {
        match ready {
            [] => {}
            [one] => self.drive(*one),
            _ => {
                let (left, right) = ready.split_at(ready.len() / 2);
                rayon::join(|| self.drive_many(left), || self.drive_many(right));
            }
        }
    }
}

struct FloorRun<'a, 's> {
    dag: &'a CsrDag<'s>,
    counters: Box<[AtomicU32]>,
    slots: Box<[AtomicU64]>,
}

impl Drive for FloorRun<'_, '_> {
    fn drive(&self, first: u32) {
        let mut node = first;
        loop {
            let ready = self.step(node as usize);
            match ready.len() {
                0 => return,
                1 => node = ready[0],
                _ => return self.drive_many(&ready),
            }
        }
    }
}

impl<'a, 's> FloorRun<'a, 's> {
    /// Fresh counters (the in-degrees) and zeroed slots for one run of `dag`.
    fn new(dag: &'a CsrDag<'s>) -> Self {
        Self {
            dag,
            counters: dag
                .shape
                .indegree
                .iter()
                .map(|&d| AtomicU32::new(d))
                .collect(),
            slots: (0..dag.shape.len()).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Runs one node and returns the children it made ready.
    #[inline]
    fn step(&self, node: usize) -> ReadyList {
        let shape = self.dag.shape;
        let args: SmallVec<[u64; 8]> = shape
            .parents_of(node)
            .iter()
            .map(|&p| self.slots[p as usize].load(Ordering::Relaxed))
            .collect();
        let value = (self.dag.nodes[node])(&args);
        self.slots[node].store(value, Ordering::Relaxed);
        let mut ready = ReadyList::new();
        for &c in shape.children_of(node) {
            // AcqRel: the thread that takes a child to zero sees every parent's slot.
            if self.counters[c as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                ready.push(c);
            }
        }
        ready
    }
}

// ---------------------------------------------------------------------------------------------
// The machine's ceiling: a schedule fixed in advance
// ---------------------------------------------------------------------------------------------

/// One node's output and whether it is written, on a line of its own: the static schedule
/// below measures the machine, not false sharing.
#[repr(align(64))]
#[derive(Default)]
pub struct StaticSlot {
    value: AtomicU64,
    done: std::sync::atomic::AtomicBool,
}

impl StaticSlot {
    pub fn value(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

impl CsrDag<'_> {
    /// No scheduler at all: thread `t` of `pool` runs the nodes whose index is `t` modulo
    /// the pool's size, in index order, and spins until each one's inputs are written. No
    /// counter, no queue, no atomic read-modify-write. It never finishes early behind a slow
    /// node, so it is no executor, but on nodes of equal cost it shows how fast the machine
    /// runs the graph on that many threads.
    pub fn run_static(&self, pool: &rayon::ThreadPool) -> Box<[StaticSlot]> {
        let shape = self.shape;
        let slots: Box<[StaticSlot]> = (0..shape.len()).map(|_| StaticSlot::default()).collect();
        let threads = pool.current_num_threads();
        pool.broadcast(|ctx| {
            let mut args: SmallVec<[u64; 8]> = SmallVec::new();
            for node in (ctx.index()..shape.len()).step_by(threads) {
                args.clear();
                for &p in shape.parents_of(node) {
                    let parent = &slots[p as usize];
                    while !parent.done.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    args.push(parent.value.load(Ordering::Relaxed));
                }
                let slot = &slots[node];
                slot.value
                    .store((self.nodes[node])(&args), Ordering::Relaxed);
                slot.done.store(true, Ordering::Release);
            }
        });
        slots
    }
}

// ---------------------------------------------------------------------------------------------
// Diagnostic variants of the floor, each adding one of dagtel's design choices
// ---------------------------------------------------------------------------------------------

/// The join-nesting bound dagtel uses on a caller's pool (`NESTING_DEFAULT_STACK` in
/// src/execution/parallel.rs); on its own pool (large stacks) it uses 512.
pub const DAGTEL_MAX_NESTING: u32 = 24;

thread_local! {
    /// Open `rayon::join` splits on this thread's stack, stolen work included.
    static NESTING: Cell<u32> = const { Cell::new(0) };
}

impl CsrDag<'_> {
    /// The floor with dagtel's nesting rule (src/execution/parallel.rs): joins are counted
    /// per thread, and beyond `max_nesting` a ready list is handed to two spawned jobs (its
    /// halves) instead of a join. dagtel spawns with `pool.spawn` plus a shared pending
    /// counter and an `Arc` of the run; here `rayon::scope` spawns, whose job counter is shared
    /// in the same way. Returns the slots and how many jobs were spawned.
    pub fn run_floor_nested(
        &self,
        pool: &rayon::ThreadPool,
        max_nesting: u32,
    ) -> (Box<[AtomicU64]>, usize) {
        let run = FloorRun::new(self);
        let spawned = AtomicUsize::new(0);
        let nested = Nested {
            run: &run,
            max_nesting,
            spawned: &spawned,
        };
        pool.install(|| rayon::scope(|s| nested.drive_many(s, &self.shape.roots)));
        (run.slots, spawned.into_inner())
    }

    /// The floor with dagtel's value storage: each output boxed in an
    /// `Arc<dyn Any + Send + Sync>` inside a `OnceLock`, parents read back by downcast.
    pub fn run_floor_arc(&self, pool: &rayon::ThreadPool) -> Box<[OnceLock<AnyValue>]> {
        let run = ArcRun {
            dag: self,
            counters: self
                .shape
                .indegree
                .iter()
                .map(|&d| AtomicU32::new(d))
                .collect(),
            slots: (0..self.shape.len()).map(|_| OnceLock::new()).collect(),
        };
        pool.install(|| run.drive_many(&self.shape.roots));
        run.slots
    }
}

/// One node's entry in [`CsrDag::run_floor_timed`]: what dagtel's run record must hold of a
/// node that succeeded at its first try (start and end readings, the thread).
#[derive(Default)]
pub struct TimedRecord {
    pub start: AtomicU64,
    pub end: AtomicU64,
    pub thread: AtomicU64,
}

/// Requests a line for writing (`prefetchw`), as dagtel does for the lines a node writes.
#[inline(always)]
fn prefetch_write<T>(address: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetchw` never faults and changes no memory.
    unsafe {
        std::arch::asm!("prefetchw [{}]", in(reg) address, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// A raw clock reading: the TSC on x86_64 (what dagtel's clock reads), else nanoseconds.
#[inline(always)]
fn clock_raw() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` exists on every x86_64 CPU and touches no memory.
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

impl CsrDag<'_> {
    /// The floor plus the per-node content of a run record, which the floor itself does not
    /// keep: start, end and thread of every node, with one clock reading per node (a node's
    /// end is the next node's start on the same thread, as in dagtel). The reading is taken
    /// once the node has counted its children down, and the record stored then: that placement
    /// cost the floor least (read between the body and the count-down, where dagtel reads it,
    /// it added ~50 ns per node more on the Intel machine). Its records are allocated per run,
    /// as the floor's counters and slots are.
    pub fn run_floor_timed(
        &self,
        pool: &rayon::ThreadPool,
    ) -> (Box<[AtomicU64]>, Box<[TimedRecord]>) {
        let run = TimedRun {
            run: FloorRun::new(self),
            records: (0..self.shape.len())
                .map(|_| TimedRecord::default())
                .collect(),
        };
        pool.install(|| run.drive_many(&self.shape.roots));
        (run.run.slots, run.records)
    }
}

struct TimedRun<'a, 's> {
    run: FloorRun<'a, 's>,
    records: Box<[TimedRecord]>,
}

impl TimedRun<'_, '_> {
    fn store(&self, node: u32, start: u64, end: u64, thread: u64) {
        let record = &self.records[node as usize];
        record.start.store(start, Ordering::Relaxed);
        record.end.store(end, Ordering::Relaxed);
        record.thread.store(thread, Ordering::Relaxed);
    }
}

impl Drive for TimedRun<'_, '_> {
    fn drive(&self, first: u32) {
        let thread = rayon::current_thread_index().unwrap_or(usize::MAX) as u64;
        let mut node = first;
        let mut start = clock_raw();
        loop {
            prefetch_write(&self.records[node as usize]);
            let ready = self.run.step(node as usize);
            let end = clock_raw();
            self.store(node, start, end, thread);
            start = end;
            match ready.len() {
                0 => return,
                1 => node = ready[0],
                _ => return self.drive_many(&ready),
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Nested<'r, 'a, 's> {
    run: &'r FloorRun<'a, 's>,
    max_nesting: u32,
    spawned: &'r AtomicUsize,
}

impl<'r> Nested<'r, '_, '_> {
    fn drive_many(&self, scope: &rayon::Scope<'r>, ready: &[u32]) {
        match ready {
            [] => {}
            [one] => self.drive(scope, *one),
            _ => {
                let (left, right) = ready.split_at(ready.len() / 2);
                let depth = NESTING.with(Cell::get);
                if depth < self.max_nesting {
                    NESTING.with(|n| n.set(depth + 1));
                    rayon::join(
                        || self.drive_many(scope, left),
                        || self.drive_many(scope, right),
                    );
                    NESTING.with(|n| n.set(n.get().saturating_sub(1)));
                } else {
                    for half in [left, right] {
                        self.spawned.fetch_add(1, Ordering::Relaxed);
                        let this = *self;
                        let half = ReadyList::from_slice(half);
                        scope.spawn(move |s| this.drive_many(s, &half));
                    }
                }
            }
        }
    }

    fn drive(&self, scope: &rayon::Scope<'r>, first: u32) {
        let mut node = first;
        loop {
            let ready = self.run.step(node as usize);
            match ready.len() {
                0 => return,
                1 => node = ready[0],
                _ => return self.drive_many(scope, &ready),
            }
        }
    }
}

pub type AnyValue = Arc<dyn Any + Send + Sync>;

struct ArcRun<'a, 's> {
    dag: &'a CsrDag<'s>,
    counters: Box<[AtomicU32]>,
    slots: Box<[OnceLock<AnyValue>]>,
}

impl Drive for ArcRun<'_, '_> {
    fn drive(&self, first: u32) {
        let shape = self.dag.shape;
        let mut node = first as usize;
        loop {
            let args: SmallVec<[u64; 8]> = shape
                .parents_of(node)
                .iter()
                .map(|&p| {
                    self.slots[p as usize]
                        .get()
                        .and_then(|v| v.downcast_ref::<u64>())
                        .copied()
                        .unwrap_or_default()
                })
                .collect();
            let value = (self.dag.nodes[node])(&args);
            let _ = self.slots[node].set(Arc::new(value));
            let mut ready = ReadyList::new();
            for &c in shape.children_of(node) {
                if self.counters[c as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                    ready.push(c);
                }
            }
            match ready.len() {
                0 => return,
                1 => node = ready[0] as usize,
                _ => return self.drive_many(&ready),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The same shape as a dagtel graph
// ---------------------------------------------------------------------------------------------

pub struct DagtelGraph {
    pub plan: Plan,
    pub sinks: Vec<Handle<u64>>,
}

/// Declares one dagtel node per shape node: no deps as `()`, one parent as a `Handle<u64>`,
/// several as a `Vec<Handle<u64>>` fan-in (body gets `Many<u64>`). Plans every sink.
pub fn build_dagtel(shape: &Shape, work: Work) -> DagtelGraph {
    let mut g = DagBuilder::new(shape.name.clone());
    let mut handles: Vec<Handle<u64>> = Vec::with_capacity(shape.len());
    for i in 0..shape.len() {
        let index = i as u64;
        let name = format!("n{i}");
        let handle = match shape.parents_of(i) {
            [] => g
                .node(name)
                .run((), move |_, ()| Ok(node_value(index, 0, work))),
            [p] => g.node(name).run(handles[*p as usize], move |_, p| {
                Ok(node_value(index, *p, work))
            }),
            many => {
                let deps: Vec<Handle<u64>> = many.iter().map(|&p| handles[p as usize]).collect();
                g.node(name).run(deps, move |_, ps| {
                    let sum = ps.iter().fold(0u64, |a, p| a.wrapping_add(**p));
                    Ok(node_value(index, sum, work))
                })
            }
        };
        handles.push(handle);
    }
    let dag = g.build().expect("benchmark graph is valid");
    let sinks: Vec<Handle<u64>> = shape.sinks.iter().map(|&s| handles[s as usize]).collect();
    let request = sinks
        .iter()
        .fold(Request::new(), |request, &h| request.output(h));
    let plan = dag.plan(&request).expect("benchmark plan is valid");
    assert_eq!(
        plan.len(),
        shape.len(),
        "every node is an ancestor of a sink"
    );
    DagtelGraph { plan, sinks }
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// Per-run wall times of each benchmark, kept for the summary printed after criterion.
static RESULTS: Mutex<BTreeMap<(String, String), Series>> = Mutex::new(BTreeMap::new());

pub struct Series {
    pub nodes: usize,
    pub runs_ns: Vec<f64>,
    /// CPU time used by other processes (and taken by the hypervisor) while this benchmark
    /// ran, as a share of the machine's capacity over that time.
    pub other_load: Option<f64>,
}

pub fn record(group: &str, exec: &str, nodes: usize, run: Duration) {
    let mut results = RESULTS.lock().unwrap_or_else(|e| e.into_inner());
    results
        .entry((group.to_string(), exec.to_string()))
        .or_insert_with(|| Series {
            nodes,
            runs_ns: Vec::new(),
            other_load: None,
        })
        .runs_ns
        .push(run.as_nanos() as f64);
}

pub fn record_load(group: &str, exec: &str, share: f64) {
    let mut results = RESULTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(series) = results.get_mut(&(group.to_string(), exec.to_string())) {
        series.other_load = Some(share);
    }
}

/// Other processes using more than this share of the machine make a row unreliable.
pub const NOISY_LOAD: f64 = 0.10;

/// Measures how much of the machine other processes used while one benchmark ran.
pub struct LoadMeter {
    ticks: Option<(u64, u64)>,
    wall: Instant,
}

impl LoadMeter {
    pub fn start() -> Self {
        Self {
            ticks: cpu_ticks(),
            wall: Instant::now(),
        }
    }

    /// Records the other load since [`start`](Self::start) for the summary.
    pub fn finish(self, group: &str, exec: &str) {
        if let (Some((busy0, own0)), Some((busy1, own1))) = (self.ticks, cpu_ticks()) {
            let capacity = self.wall.elapsed().as_secs_f64() * 100.0 * cores() as f64;
            let other = (busy1 - busy0).saturating_sub(own1 - own0);
            record_load(group, exec, other as f64 / capacity);
        }
    }
}

/// A summary cell for an other-load share: `3%`, `14% NOISY` or `n/a`.
pub fn fmt_load(share: Option<f64>) -> String {
    share.map_or("n/a".into(), |x| {
        let flag = if x > NOISY_LOAD { " NOISY" } else { "" };
        format!("{:.0}%{flag}", x * 100.0)
    })
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPU's model name, from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Busy clock ticks (USER_HZ, 100 per second) of the whole machine, hypervisor steal
/// included, and of this process, so far.
pub fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    let busy = fields.iter().take(8).sum::<u64>() - fields.get(3)? - fields.get(4)?;
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = own.rsplit_once(')')?.1;
    let mut rest = after.split_whitespace().skip(11);
    let utime: u64 = rest.next()?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    Some((busy, utime + stime))
}

/// Median and best run time (ns), and the node count, of one benchmark.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub median_ns: f64,
    pub best_ns: f64,
    pub runs: usize,
    pub nodes: usize,
    pub other_load: Option<f64>,
}

impl Stat {
    pub fn per_node(&self) -> f64 {
        self.median_ns / self.nodes as f64
    }

    pub fn best_per_node(&self) -> f64 {
        self.best_ns / self.nodes as f64
    }
}

pub fn stat(group: &str, exec: &str) -> Option<Stat> {
    let results = RESULTS.lock().unwrap_or_else(|e| e.into_inner());
    let series = results.get(&(group.to_string(), exec.to_string()))?;
    let mut runs = series.runs_ns.clone();
    if runs.is_empty() {
        return None;
    }
    runs.sort_by(f64::total_cmp);
    let mid = runs.len() / 2;
    let median_ns = if runs.len() % 2 == 1 {
        runs[mid]
    } else {
        (runs[mid - 1] + runs[mid]) / 2.0
    };
    Some(Stat {
        median_ns,
        best_ns: runs[0],
        runs: runs.len(),
        nodes: series.nodes,
        other_load: series.other_load,
    })
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

/// A `Vm*` field of /proc/self/status, in KiB.
pub fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resets VmHWM (peak RSS) to the current RSS (Linux >= 4.0).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs `f` and returns its result with the peak RSS it added above the RSS before it, KiB.
pub fn peak_added<R>(f: impl FnOnce() -> R) -> (R, Option<i64>) {
    let reset = reset_peak();
    let before = status_kib("VmRSS");
    let result = f();
    let peak = status_kib("VmHWM");
    let added = match (reset, before, peak) {
        (true, Some(b), Some(p)) => Some(p as i64 - b as i64),
        _ => None,
    };
    (result, added)
}

/// The benchmark filter given on the command line, if it is a plain name (no regex
/// syntax): groups it cannot match are then not even built, so a filtered run (e.g. under
/// `/usr/bin/time -v` for peak RSS) measures only what it names.
pub fn plain_filter() -> Option<String> {
    const TAKES_VALUE: [&str; 18] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--save-baseline",
        "-s",
        "--baseline",
        "-b",
        "--baseline-lenient",
        "--load-baseline",
        "--profile-time",
        "--output-format",
        "--color",
        "-c",
        "--plotting-backend",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if TAKES_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            let plain = arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/');
            return plain.then_some(arg);
        }
    }
    None
}
