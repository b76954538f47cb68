//! OpenTelemetry overhead: dagtel's executors with and without `OtelHooks`, against the
//! cheapest possible instrumentation (one bare SDK span per node, the "span floor"), on the
//! same shapes in the same process.
//!
//! A second floor, `span_floor_content`, gives each bare span the content `OtelHooks` gives a
//! node span (attributes, fan-in links with their attributes): the difference between the two
//! floors is the cost of the content the conventions require, the rest of the instrumented
//! overhead is the hooks' machinery.
//!
//! Run with `cargo bench --bench otel`; append `-- <group>` to run one group (e.g.
//! `-- otel_layered_10k`). After criterion's own report, a summary prints ns/node (median of
//! the individual run times), the ratios the targets use, and the spans each variant dropped.
//! See BENCHMARKS.md for results.
//!
//! Before every timed run the batch processor is flushed (untimed), so each run starts with an
//! empty queue: a run is never slowed by the export backlog of earlier runs. A dropped span
//! is a failed measurement: it is printed at once, and every figure and ratio that uses the
//! variant is reported as invalid.
//!
//! Telemetry setup, identical for every instrumented variant and the floor:
//! - tracer provider: `RunIdSpanProcessor::wrap` around a `BatchSpanProcessor` over a span exporter
//!   that only counts what it receives; the queue holds several runs' spans so that nothing
//!   is dropped (drops are counted and printed anyway);
//! - meter provider: a `PeriodicReader` with the SDK's default interval (60 s) into an
//!   exporter that drops what it receives, with the cardinality limit of
//!   dagtel's instruments raised so that every node keeps its own series. Collections run on
//!   the reader's thread, which the CPU column counts.

#[allow(dead_code)] // shared with the executor bench, which uses more of it
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use dagtel::otel::conventions as conv;
use dagtel::otel::exemplars::{ExemplarFilter, Exemplars};
use dagtel::otel::{DEFAULT_MAX_LINKS, OtelHooks, RunScope};
use dagtel::processors::RunIdSpanProcessor;
use dagtel::{Executor, Inputs, Run, RunId};
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue, StringValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{
    Instrument, PeriodicReader, SdkMeterProvider, Stream, Temporality,
};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, SpanData,
    SpanExporter,
};
use rayon::prelude::*;

use support::{DagtelGraph, Shape, Work, cores};

/// Threads of the parallel executors and of the parallel floor.
const THREADS: usize = 2;
const SEED: u64 = 0x5EED_DA67;
/// BSP queue: the largest run here ends 100,001 spans within a fraction of a second, and the
/// queue is flushed before every timed run, so it holds a whole run without dropping a span.
const BSP_QUEUE: usize = 131_072;
/// Series per dagtel instrument: every node of every shape here keeps its own series (the
/// SDK's default, 2000, would send most nodes of a 10k-node graph to the overflow series).
const CARDINALITY: usize = 131_072;

const PLAIN_SEQ: &str = "plain_seq";
const PLAIN_PAR: &str = "plain_par2";
const OTEL_SEQ: &str = "otel_seq";
const OTEL_PAR: &str = "otel_par2";
const OFF_SEQ: &str = "always_off_seq";
const OFF_PAR: &str = "always_off_par2";
const FLOOR_SEQ: &str = "span_floor_seq";
const FLOOR_PAR: &str = "span_floor_par2";
const CONTENT_SEQ: &str = "span_floor_content_seq";
const CONTENT_PAR: &str = "span_floor_content_par2";
/// `otel_par2` with an exemplar reservoir (`trace_based`), as hooks from the bootstrap have.
const EXEMPLARS_PAR: &str = "otel_exemplars_par2";
const VARIANTS: [&str; 11] = [
    PLAIN_SEQ,
    PLAIN_PAR,
    OTEL_SEQ,
    OTEL_PAR,
    OFF_SEQ,
    OFF_PAR,
    FLOOR_SEQ,
    FLOOR_PAR,
    CONTENT_SEQ,
    CONTENT_PAR,
    EXEMPLARS_PAR,
];

const NOOP_GROUPS: [&str; 4] = [
    "otel_chain_10k",
    "otel_fan_10k",
    "otel_layered_10k",
    "otel_layered_100k",
];
/// The group the targets are judged on: the core benchmark's 100k layered shape.
const TARGET_GROUP: &str = NOOP_GROUPS[3];
const CPU_GROUP: &str = "otel_cpu_layered_10k_10us";
/// A benchmark group: its name and how to make its shape.
type ShapeMaker = (&'static str, fn() -> Shape);

// ---------------------------------------------------------------------------------------------
// Telemetry
// ---------------------------------------------------------------------------------------------

/// A span exporter that drops every batch, counting the spans it received.
#[derive(Debug, Clone, Default)]
struct CountingExporter {
    spans: Arc<AtomicU64>,
}

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.spans.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// A metric exporter that drops what it receives: collections do all the SDK's work
/// (including the node durations sampled-out runs leave for them), nothing piles up.
#[derive(Debug, Default)]
struct DroppingMetricExporter;

impl PushMetricExporter for DroppingMetricExporter {
    async fn export(&self, _: &ResourceMetrics) -> OTelSdkResult {
        Ok(())
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// One tracer provider and one meter provider, set up as described in the module docs.
struct Telemetry {
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
    exported: Arc<AtomicU64>,
    /// Spans the variants timed so far should have exported.
    expected: AtomicU64,
}

impl Telemetry {
    fn new(sampler: Sampler) -> Self {
        let exporter = CountingExporter::default();
        let exported = Arc::clone(&exporter.spans);
        let batch = BspConfig::get();
        let tracer = SdkTracerProvider::builder()
            .with_sampler(sampler)
            // As the bootstrap installs it: the run-id stamp wrapping the batch processor.
            .with_span_processor(RunIdSpanProcessor::wrap(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batch)
                    .build(),
            ))
            .build();
        let reader = PeriodicReader::builder(DroppingMetricExporter)
            .with_interval(Duration::from_secs(60))
            .build();
        let meter = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_view(|i: &Instrument| {
                i.name()
                    .starts_with("dag.")
                    .then(|| {
                        Stream::builder()
                            .with_cardinality_limit(CARDINALITY)
                            .build()
                            .ok()
                    })
                    .flatten()
            })
            .build();
        Self {
            tracer,
            meter,
            exported,
            expected: AtomicU64::new(0),
        }
    }

    fn hooks(&self) -> OtelHooks {
        OtelHooks::new(&self.tracer, &self.meter)
    }

    fn hooks_with_exemplars(&self) -> OtelHooks {
        let reservoir = Exemplars::new(ExemplarFilter::TraceBased);
        OtelHooks::builder(&self.tracer, &self.meter)
            .exemplars(Arc::new(reservoir))
            .build()
    }

    /// Flushes the batch processor, so that the next run starts with an empty queue; returns
    /// the spans dropped since the last call (expected but never exported).
    fn drops(&self) -> u64 {
        let _ = self.tracer.force_flush();
        let expected = self.expected.swap(0, Ordering::Relaxed);
        let exported = self.exported.swap(0, Ordering::Relaxed);
        expected.saturating_sub(exported)
    }
}

struct BspConfig;

impl BspConfig {
    fn get() -> opentelemetry_sdk::trace::BatchConfig {
        BatchConfigBuilder::default()
            .with_max_queue_size(BSP_QUEUE)
            .build()
    }
}

// ---------------------------------------------------------------------------------------------
// Variants
// ---------------------------------------------------------------------------------------------

struct Executors<O, F> {
    plain_seq: Executor,
    plain_par: Executor,
    otel_seq: O,
    otel_par: O,
    off_seq: F,
    off_par: F,
    exemplars_par: O,
}

/// The span floor: per node, one span started and ended with the SDK directly, under a
/// per-run root span whose context carries a `RunScope` (so `RunIdSpanProcessor` stamps every
/// span, as under `OtelHooks`). The name is a `String` cloned from a precomputed one: a
/// span named after a runtime value cannot avoid that allocation.
struct Floor<'a> {
    tracer: SdkTracer,
    names: &'a [String],
    pool: &'a rayon::ThreadPool,
}

impl Floor<'_> {
    fn run_seq(&self) {
        let cx = root_context(&self.tracer);
        for name in self.names {
            self.tracer.start_with_context(name.clone(), &cx).end();
        }
        cx.span().end();
    }

    fn run_par(&self) {
        let cx = root_context(&self.tracer);
        self.pool.install(|| {
            self.names.par_iter().with_min_len(64).for_each(|name| {
                self.tracer.start_with_context(name.clone(), &cx).end();
            })
        });
        cx.span().end();
    }
}

/// The span floor with content: the same bare loop as [`Floor`], but each span carries what
/// `OtelHooks` gives a node span on these shapes (no task groups, stages, layers or versions):
/// the name, `dag.node.name` (sharing the node's `Arc<str>`), `dag.node.attempt`, and for a
/// fan-in node `dag.node.parent_count` (with `dag.links.truncated` and `dag.links.dropped`
/// past [`DEFAULT_MAX_LINKS`]) and one link per parent carrying `dag.link.parent`; the run-id
/// processor stamps `dag.run.id`; `dag.status` is set before the span ends. It separates the
/// cost of the content the conventions require from the cost of the hooks' machinery.
///
/// Links point at the parents' spans of this run (their ids kept in an array of atomics, the
/// least machinery that can do it). The parallel loop ignores dependencies, like the plain
/// floor's, so a parent may not have ended yet: its link then carries a placeholder id, the
/// same content.
struct ContentFloor<'a> {
    tracer: SdkTracer,
    names: &'a [String],
    shared: Vec<Arc<str>>,
    shape: &'a Shape,
    pool: &'a rayon::ThreadPool,
}

impl ContentFloor<'_> {
    fn span(&self, i: usize, root: &Context, ids: &[AtomicU64]) {
        let parents = self.shape.parents_of(i);
        let mut attributes = Vec::with_capacity(8);
        attributes.push(KeyValue::new(
            conv::NODE_NAME,
            StringValue::from(Arc::clone(&self.shared[i])),
        ));
        attributes.push(KeyValue::new(conv::NODE_ATTEMPT, 1i64));
        let mut links = Vec::new();
        if parents.len() >= 2 {
            attributes.push(KeyValue::new(conv::NODE_PARENT_COUNT, parents.len() as i64));
            let kept = parents.len().min(DEFAULT_MAX_LINKS);
            if kept < parents.len() {
                attributes.push(KeyValue::new(conv::LINKS_TRUNCATED, true));
                attributes.push(KeyValue::new(
                    conv::LINKS_DROPPED,
                    (parents.len() - kept) as i64,
                ));
            }
            let trace = root.span().span_context().clone();
            links.reserve_exact(kept);
            for &p in &parents[..kept] {
                let id = match ids[p as usize].load(Ordering::Acquire) {
                    0 => u64::from(p) + 1,
                    id => id,
                };
                let context = SpanContext::new(
                    trace.trace_id(),
                    SpanId::from_bytes(id.to_be_bytes()),
                    trace.trace_flags(),
                    false,
                    trace.trace_state().clone(),
                );
                let name = StringValue::from(Arc::clone(&self.shared[p as usize]));
                links.push(Link::new(
                    context,
                    vec![KeyValue::new(conv::LINK_PARENT, name)],
                    0,
                ));
            }
        }
        let mut span = self
            .tracer
            .span_builder(self.names[i].clone())
            .with_attributes(attributes)
            .with_links(links)
            .start_with_context(&self.tracer, root);
        span.set_attribute(KeyValue::new(conv::STATUS, "ok"));
        let id = u64::from_be_bytes(span.span_context().span_id().to_bytes());
        span.end();
        ids[i].store(id, Ordering::Release);
    }

    fn ids(&self) -> Box<[AtomicU64]> {
        (0..self.names.len()).map(|_| AtomicU64::new(0)).collect()
    }

    fn run_seq(&self) {
        let cx = root_context(&self.tracer);
        let ids = self.ids();
        for i in 0..self.names.len() {
            self.span(i, &cx, &ids);
        }
        cx.span().end();
    }

    fn run_par(&self) {
        let cx = root_context(&self.tracer);
        let ids = self.ids();
        self.pool.install(|| {
            (0..self.names.len())
                .into_par_iter()
                .with_min_len(64)
                .for_each(|i| self.span(i, &cx, &ids))
        });
        cx.span().end();
    }
}

/// A floor run's root: a span whose context carries a `RunScope`.
fn root_context(tracer: &SdkTracer) -> Context {
    let cx = Context::new().with_value(RunScope::new(RunId::generate(), "floor"));
    let root = tracer.start_with_context("run floor", &cx);
    cx.with_span(root)
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

#[allow(dead_code)] // `otel_mimalloc.rs` includes this file as a module, with its own `main`
fn main() {
    run("system (glibc malloc on Linux)");
}

/// The whole suite; `allocator` names the global allocator in the report.
pub fn run(allocator: &str) {
    let mut criterion = Criterion::default()
        .configure_from_args()
        .without_plots()
        .nresamples(20_000);
    print_machine(allocator);
    let on = Telemetry::new(Sampler::AlwaysOn);
    let off = Telemetry::new(Sampler::AlwaysOff);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .thread_name(|i| format!("floor-{i}"))
        .build()
        .expect("floor pool");
    let ex = Executors {
        plain_seq: Executor::sequential(),
        plain_par: Executor::parallel().threads(THREADS),
        otel_seq: Executor::sequential().hook(on.hooks()),
        otel_par: Executor::parallel().threads(THREADS).hook(on.hooks()),
        off_seq: Executor::sequential().hook(off.hooks()),
        off_par: Executor::parallel().threads(THREADS).hook(off.hooks()),
        exemplars_par: Executor::parallel()
            .threads(THREADS)
            .hook(on.hooks_with_exemplars()),
    };
    println!(
        "[parallelism] before the benchmarks: {:.2} of {THREADS} threads",
        support::parallelism_probe(THREADS)
    );

    let noop: [ShapeMaker; 4] = [
        (NOOP_GROUPS[0], || Shape::chain(10_000)),
        (NOOP_GROUPS[1], || Shape::fan(10_000)),
        (NOOP_GROUPS[2], || Shape::layered(100, 100, 2, SEED)),
        // The executor benchmark's shape: 100 layers of 1000, 3 parents each.
        (NOOP_GROUPS[3], || Shape::layered(100, 1000, 3, SEED)),
    ];
    for (group, make) in noop {
        if !selected(group) {
            continue;
        }
        let shape = make();
        let graph = support::build_dagtel(&shape, Work::Noop);
        verify(&shape, &graph, Work::Noop, &ex);
        let names: Vec<String> = (0..shape.len()).map(|i| format!("n{i}")).collect();
        let floor = Floor {
            tracer: on.tracer.tracer("floor"),
            names: &names,
            pool: &pool,
        };
        let content = ContentFloor {
            tracer: on.tracer.tracer("floor"),
            names: &names,
            shared: names.iter().map(|n| Arc::from(n.as_str())).collect(),
            shape: &shape,
            pool: &pool,
        };
        let n = shape.len();
        let spans = n as u64 + 1;
        println!(
            "[{group}] {}: {n} nodes, {} edges",
            shape.name,
            shape.edges()
        );
        let mut g = criterion.benchmark_group(group);
        g.sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Elements(n as u64));
        let plan = &graph.plan;
        timed(&mut g, group, PLAIN_SEQ, n, None, || {
            ex.plain_seq.run(plan, Inputs::new()).expect("run")
        });
        timed(&mut g, group, PLAIN_PAR, n, None, || {
            ex.plain_par.run(plan, Inputs::new()).expect("run")
        });
        timed(&mut g, group, OTEL_SEQ, n, Some((&on, spans)), || {
            ex.otel_seq.run(plan, Inputs::new()).expect("run")
        });
        timed(&mut g, group, OTEL_PAR, n, Some((&on, spans)), || {
            ex.otel_par.run(plan, Inputs::new()).expect("run")
        });
        timed(&mut g, group, EXEMPLARS_PAR, n, Some((&on, spans)), || {
            ex.exemplars_par.run(plan, Inputs::new()).expect("run")
        });
        timed(&mut g, group, OFF_SEQ, n, Some((&off, 0)), || {
            ex.off_seq.run(plan, Inputs::new()).expect("run")
        });
        timed(&mut g, group, OFF_PAR, n, Some((&off, 0)), || {
            ex.off_par.run(plan, Inputs::new()).expect("run")
        });
        timed(&mut g, group, FLOOR_SEQ, n, Some((&on, spans)), || {
            floor.run_seq()
        });
        timed(&mut g, group, FLOOR_PAR, n, Some((&on, spans)), || {
            floor.run_par()
        });
        timed(&mut g, group, CONTENT_SEQ, n, Some((&on, spans)), || {
            content.run_seq()
        });
        timed(&mut g, group, CONTENT_PAR, n, Some((&on, spans)), || {
            content.run_par()
        });
        g.finish();
        print_group(group);
    }

    if selected(CPU_GROUP) {
        let iters = support::calibrate(Duration::from_micros(10));
        println!("[calibration] spin rounds for 10 us: {iters}");
        // The executor benchmark's 10 us shape: 100 layers of 100, 3 parents each.
        let shape = Shape::layered(100, 100, 3, SEED);
        let graph = support::build_dagtel(&shape, Work::Spin(iters));
        verify(&shape, &graph, Work::Spin(iters), &ex);
        let n = shape.len();
        let spans = n as u64 + 1;
        let mut g = criterion.benchmark_group(CPU_GROUP);
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(n as u64));
        let plan = &graph.plan;
        timed(&mut g, CPU_GROUP, PLAIN_SEQ, n, None, || {
            ex.plain_seq.run(plan, Inputs::new()).expect("run")
        });
        timed(&mut g, CPU_GROUP, PLAIN_PAR, n, None, || {
            ex.plain_par.run(plan, Inputs::new()).expect("run")
        });
        timed(&mut g, CPU_GROUP, OTEL_SEQ, n, Some((&on, spans)), || {
            ex.otel_seq.run(plan, Inputs::new()).expect("run")
        });
        timed(&mut g, CPU_GROUP, OTEL_PAR, n, Some((&on, spans)), || {
            ex.otel_par.run(plan, Inputs::new()).expect("run")
        });
        g.finish();
        print_group(CPU_GROUP);
    }

    println!(
        "[parallelism] after the benchmarks: {:.2} of {THREADS} threads",
        support::parallelism_probe(THREADS)
    );
    criterion.final_summary();
    print_summary(allocator);
    let _ = on.tracer.shutdown();
    let _ = off.tracer.shutdown();
    let _ = on.meter.shutdown();
    let _ = off.meter.shutdown();
}

/// Every executor, instrumented or not, must compute the reference checksum.
fn verify<O, F>(shape: &Shape, graph: &DagtelGraph, work: Work, ex: &Executors<O, F>)
where
    O: RunPlan,
    F: RunPlan,
{
    let reference = shape.reference_checksum(work);
    let runs = [
        ex.plain_seq.run(&graph.plan, Inputs::new()),
        ex.plain_par.run(&graph.plan, Inputs::new()),
        ex.otel_seq.run_plan(graph),
        ex.otel_par.run_plan(graph),
        ex.off_seq.run_plan(graph),
        ex.off_par.run_plan(graph),
        ex.exemplars_par.run_plan(graph),
    ];
    for run in runs {
        assert_eq!(checksum(graph, &run.expect("run")), reference);
    }
}

/// The instrumented executors have their own types; this runs a graph on any of them.
trait RunPlan {
    fn run_plan(&self, graph: &DagtelGraph) -> Result<Run, dagtel::RunError>;
}

impl<H: dagtel::hooks::HookSet> RunPlan for Executor<H> {
    fn run_plan(&self, graph: &DagtelGraph) -> Result<Run, dagtel::RunError> {
        self.run(&graph.plan, Inputs::new())
    }
}

fn checksum(graph: &DagtelGraph, run: &Run) -> u64 {
    graph.sinks.iter().fold(0u64, |sum, &h| {
        sum.wrapping_add(*run.outputs().get(h).expect("sink output present"))
    })
}

/// Whether `group` matches criterion's filter (see [`support::plain_filter`]): groups it
/// cannot match are not even built, so a filtered run (e.g. under `perf record`) measures only
/// what it names.
fn selected(group: &str) -> bool {
    support::plain_filter().is_none_or(|f| {
        let wanted = f.split('/').next().unwrap_or_default();
        group.contains(wanted) || wanted.contains(group)
    })
}

/// Times each run individually (recorded for the summary); the result is dropped inside the
/// timed region. With `telemetry`, the batch processor is flushed before every timed run
/// (untimed), so that each run starts with an empty queue and no run is slowed by the
/// backlog of the previous ones; the spans each run should export are counted, and any span
/// dropped is reported at once and marks the variant's figures invalid.
fn timed<R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    group_name: &str,
    variant: &str,
    nodes: usize,
    telemetry: Option<(&Telemetry, u64)>,
    mut run: impl FnMut() -> R,
) {
    if let Some((t, _)) = telemetry {
        t.drops(); // start from an empty queue
    }
    let load = support::LoadMeter::start();
    let mut runs = 0u64;
    let mut dropped = 0u64;
    let mut cpu = (0u64, 0u64);
    group.bench_function(variant, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let cpu_before = process_cpu_ns();
            for _ in 0..iters {
                if let Some((t, _)) = telemetry {
                    dropped += t.drops(); // untimed: the previous run's spans are exported
                }
                let start = Instant::now();
                drop(black_box(run()));
                let took = start.elapsed();
                support::record(group_name, variant, nodes, took);
                total += took;
                runs += 1;
                if let Some((t, spans)) = telemetry {
                    t.expected.fetch_add(spans, Ordering::Relaxed);
                }
            }
            if let (Some(before), Some(after)) = (cpu_before, process_cpu_ns()) {
                cpu.0 += after.saturating_sub(before);
                cpu.1 += iters;
            }
            total
        })
    });
    if cpu.1 > 0 {
        CPU.lock().unwrap_or_else(|e| e.into_inner()).insert(
            (group_name.to_string(), variant.to_string()),
            cpu.0 as f64 / (cpu.1 * nodes as u64) as f64,
        );
    }
    load.finish(group_name, variant);
    if let Some((t, spans)) = telemetry
        && runs > 0
    {
        dropped += t.drops();
        if dropped > 0 {
            println!(
                "!!! {group_name}/{variant}: the batch processor DROPPED {dropped} of {} spans: \
                 this variant's figures, and every ratio using them, are INVALID",
                runs * spans
            );
        }
        DROPS.lock().unwrap_or_else(|e| e.into_inner()).push((
            format!("{group_name}/{variant}"),
            runs * spans,
            dropped,
        ));
    }
}

/// Whether `variant` of `group` dropped no span (a variant without telemetry drops none).
fn valid(group: &str, variant: &str) -> bool {
    let name = format!("{group}/{variant}");
    DROPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .all(|(n, _, dropped)| *n != name || *dropped == 0)
}

/// CPU time of every thread of this process so far, in ns (the first field of each
/// `/proc/self/task/*/schedstat`). Unlike wall time, other processes do not inflate it, so on a
/// shared machine it is the steadier measure of a sequential variant's cost; it includes the
/// batch processor's exporting thread. (For parallel variants it also counts idle workers
/// spinning before they sleep.)
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread that has just exited has no file any more; its time is lost either way.
        if let Ok(stat) = std::fs::read_to_string(path) {
            total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// CPU ns per node (all threads), per benchmark, over every run (warm-up included).
static CPU: std::sync::Mutex<std::collections::BTreeMap<(String, String), f64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn cpu_per_node(group: &str, variant: &str) -> Option<f64> {
    CPU.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(group.to_string(), variant.to_string()))
        .copied()
}

/// Spans expected and dropped, per benchmark.
static DROPS: std::sync::Mutex<Vec<(String, u64, u64)>> = std::sync::Mutex::new(Vec::new());

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

fn print_machine(allocator: &str) {
    let model = support::cpu_model();
    println!(
        "[machine] {} logical CPUs, {model}; parallel variants use {THREADS} threads; \
         BSP queue {BSP_QUEUE}, metric cardinality limit {CARDINALITY}; allocator: {allocator}",
        cores()
    );
}

fn per_node(group: &str, variant: &str) -> Option<f64> {
    support::stat(group, variant).map(|s| s.per_node())
}

fn print_group(group: &str) {
    let rows: Vec<(&str, support::Stat)> = VARIANTS
        .into_iter()
        .filter_map(|v| support::stat(group, v).map(|s| (v, s)))
        .collect();
    if rows.is_empty() {
        return;
    }
    println!();
    println!("#### {group} ({} nodes)", rows[0].1.nodes);
    println!(
        "| variant | ns/node (median) | ns/node (best) | CPU ns/node (all threads) | runs | other load |"
    );
    println!("|---|---|---|---|---|---|");
    for (variant, s) in &rows {
        println!(
            "| {variant} | {:.1} | {:.1} | {} | {} | {} |",
            s.per_node(),
            s.best_per_node(),
            cpu_per_node(group, variant).map_or("n/a".into(), |c| format!("{c:.1}")),
            s.runs,
            support::fmt_load(s.other_load)
        );
    }
}

fn fmt(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |x| format!("{x:.2}"))
}

/// A ratio of `group`'s figures for `variants`, or why it is not valid.
fn ratio(group: &str, variants: &[&str], value: Option<f64>) -> String {
    if variants.iter().any(|v| !valid(group, v)) {
        return "INVALID (spans dropped)".into();
    }
    fmt(value)
}

fn print_summary(allocator: &str) {
    println!();
    println!("=== dagtel OpenTelemetry overhead: summary ===");
    print_machine(allocator);
    for group in NOOP_GROUPS.iter().chain([&CPU_GROUP]) {
        print_group(group);
    }
    println!();
    println!("#### ratios (per node, medians)");
    println!(
        "overhead/floor = (instrumented - uninstrumented) / span floor, same mode; \
         instr/floor = instrumented / span floor; off/plain = always_off / uninstrumented; \
         overhead/content = (instrumented - uninstrumented) / span floor with the node spans' \
         content (above 1: the hooks' machinery costs more than the content they must emit)"
    );
    println!(
        "| shape | overhead/floor seq | overhead/floor par2 | instr/floor seq | instr/floor par2 \
         | off/plain seq | off/plain par2 | overhead/content seq | overhead/content par2 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for group in NOOP_GROUPS {
        let get = |v| per_node(group, v);
        let overhead = |i, p, f| {
            let value = || Some((get(i)? - get(p)?) / get(f)?);
            ratio(group, &[i, p, f], value())
        };
        let over = |a, b| ratio(group, &[a, b], (|| Some(get(a)? / get(b)?))());
        println!(
            "| {group} | {} | {} | {} | {} | {} | {} | {} | {} |",
            overhead(OTEL_SEQ, PLAIN_SEQ, FLOOR_SEQ),
            overhead(OTEL_PAR, PLAIN_PAR, FLOOR_PAR),
            over(OTEL_SEQ, FLOOR_SEQ),
            over(OTEL_PAR, FLOOR_PAR),
            over(OFF_SEQ, PLAIN_SEQ),
            over(OFF_PAR, PLAIN_PAR),
            overhead(OTEL_SEQ, PLAIN_SEQ, CONTENT_SEQ),
            overhead(OTEL_PAR, PLAIN_PAR, CONTENT_PAR),
        );
    }
    println!();
    println!(
        "the same from CPU time (all threads; sequential variants, steadier on a busy machine):"
    );
    println!(
        "| shape | overhead/floor seq (CPU) | instr/floor seq (CPU) | off/plain seq (CPU) \
         | overhead/content seq (CPU) |"
    );
    println!("|---|---|---|---|---|");
    for group in NOOP_GROUPS {
        let get = |v| cpu_per_node(group, v);
        let overhead = |f| {
            let value = || Some((get(OTEL_SEQ)? - get(PLAIN_SEQ)?) / get(f)?);
            ratio(group, &[OTEL_SEQ, PLAIN_SEQ, f], value())
        };
        let over = |a, b| ratio(group, &[a, b], (|| Some(get(a)? / get(b)?))());
        println!(
            "| {group} | {} | {} | {} | {} |",
            overhead(FLOOR_SEQ),
            over(OTEL_SEQ, FLOOR_SEQ),
            over(OFF_SEQ, PLAIN_SEQ),
            overhead(CONTENT_SEQ),
        );
    }
    println!();
    println!("exemplars (a trace_based reservoir, as from the bootstrap), parallel:");
    println!("| shape | otel_exemplars/otel par2 |");
    println!("|---|---|");
    for group in NOOP_GROUPS {
        let get = |v| per_node(group, v);
        let value = (|| Some(get(EXEMPLARS_PAR)? / get(OTEL_PAR)?))();
        println!(
            "| {group} | {} |",
            ratio(group, &[EXEMPLARS_PAR, OTEL_PAR], value)
        );
    }
    let speedup = |par, seq| Some(per_node(CPU_GROUP, seq)? / per_node(CPU_GROUP, par)?);
    let cores = cores() as f64;
    let plain = speedup(PLAIN_PAR, PLAIN_SEQ);
    let instr = speedup(OTEL_PAR, OTEL_SEQ);
    let instr_valid = valid(CPU_GROUP, OTEL_SEQ) && valid(CPU_GROUP, OTEL_PAR);
    println!(
        "10 us nodes, speedup par2 vs seq: uninstrumented {} ({} x cores), instrumented {} \
         ({} x cores)",
        fmt(plain),
        fmt(plain.map(|s| s / cores)),
        ratio(CPU_GROUP, &[OTEL_SEQ, OTEL_PAR], instr),
        ratio(CPU_GROUP, &[OTEL_SEQ, OTEL_PAR], instr.map(|s| s / cores)),
    );
    println!();
    println!("#### spans dropped by the batch processor (flushed before every timed run)");
    let drops = DROPS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (name, expected, dropped) in &drops {
        let mark = if *dropped > 0 { "  <-- INVALID" } else { "" };
        println!("{name}: {dropped} of {expected}{mark}");
    }
    println!();
    println!("#### targets");
    let verdict = |ok: bool, valid: bool| match (valid, ok) {
        (false, _) => "INVALID: spans dropped, not a measurement",
        (true, true) => "MET",
        (true, false) => "NOT MET",
    };
    let layered = TARGET_GROUP;
    let get = |v| per_node(layered, v);
    let ok = |vs: &[&str]| vs.iter().all(|v| valid(layered, v));
    if let (Some(i), Some(p), Some(f)) = (get(OTEL_SEQ), get(PLAIN_SEQ), get(FLOOR_SEQ)) {
        let r = (i - p) / f;
        println!(
            "- (instrumented - uninstrumented) / span floor <= 1.3, {layered}, sequential: \
             {r:.2} -> {}",
            verdict(r <= 1.3, ok(&[OTEL_SEQ, PLAIN_SEQ, FLOOR_SEQ]))
        );
    }
    if let (Some(i), Some(p), Some(f)) = (get(OTEL_SEQ), get(PLAIN_SEQ), get(CONTENT_SEQ)) {
        let r = (i - p) / f;
        println!(
            "  (diagnostic, no target) the same over the span floor with content: {r:.2}{}",
            if ok(&[OTEL_SEQ, PLAIN_SEQ, CONTENT_SEQ]) {
                ""
            } else {
                " (INVALID: spans dropped)"
            }
        );
    }
    if let (Some(o), Some(p)) = (get(OFF_SEQ), get(PLAIN_SEQ)) {
        let r = o / p;
        println!(
            "- always_off instrumented / uninstrumented <= 1.2, {layered}, sequential: {r:.2} -> {}",
            verdict(r <= 1.2, ok(&[OFF_SEQ, PLAIN_SEQ]))
        );
    }
    if let Some(s) = instr {
        let r = s / cores;
        println!(
            "- instrumented speedup with 10 us nodes / cores >= 0.9: {r:.2} -> {}",
            verdict(r >= 0.9, instr_valid)
        );
    }
}
