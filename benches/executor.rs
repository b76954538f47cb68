//! Executor benchmarks: dagtel's parallel and sequential executors against a minimal rayon
//! executor (the "floor") and a sequential loop, on the same shapes in the same process.
//!
//! Run with `cargo bench --bench executor`; append `-- <filter>` to run some groups only
//! (e.g. `-- noop_layered_100k`). After criterion's own report, a summary prints ns/node
//! (median of the individual run times of each benchmark), the ratios and the targets.
//! See BENCHMARKS.md for results.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use dagtel::{Executor, Inputs, Run};

use support::{CsrDag, DagtelGraph, NOISY_LOAD, Shape, Stat, Work, cores, cpu_model};

/// Threads of the parallel executors (dagtel's pool and the floor's pool).
const THREADS: usize = 2;
const SEED: u64 = 0x5EED_DA67;

const DAGTEL_PAR: &str = "dagtel_par2";
const DAGTEL_SEQ: &str = "dagtel_seq";
const FLOOR: &str = "floor_par2";
const SEQ_LOOP: &str = "seq_loop";
/// Diagnostics (no-op shapes only): the floor plus one dagtel design choice each.
const FLOOR_NESTED: &str = "floor_nested";
const FLOOR_ARC: &str = "floor_arc";
const FLOOR_TIMED: &str = "floor_timed";
/// Diagnostic (CPU-bound shapes only): no scheduler, a schedule fixed in advance.
const STATIC: &str = "static_par2";
/// A benchmark group: its name and how to make its shape.
type ShapeMaker = (&'static str, fn() -> Shape);

const EXECUTORS: [&str; 8] = [
    DAGTEL_PAR,
    DAGTEL_SEQ,
    FLOOR,
    SEQ_LOOP,
    FLOOR_NESTED,
    FLOOR_ARC,
    FLOOR_TIMED,
    STATIC,
];

const NOOP_GROUPS: [&str; 3] = ["noop_chain_10k", "noop_fan_10k", "noop_layered_100k"];
const CPU_GROUPS: [&str; 3] = [
    "cpu_indep_64x1ms",
    "cpu_layered_10k_1us",
    "cpu_layered_10k_10us",
];

struct Executors {
    par: Executor,
    seq: Executor,
    floor_pool: rayon::ThreadPool,
}

struct GroupConfig {
    samples: usize,
    warm_up: Duration,
    measure: Duration,
    flat: bool,
}

const NOOP_CONFIG: GroupConfig = GroupConfig {
    samples: 20,
    warm_up: Duration::from_secs(1),
    measure: Duration::from_secs(4),
    flat: false,
};

const CPU_CONFIG: GroupConfig = GroupConfig {
    samples: 10,
    warm_up: Duration::from_secs(1),
    measure: Duration::from_secs(3),
    flat: true,
};

fn main() {
    let mut criterion = Criterion::default()
        .configure_from_args()
        .without_plots()
        .nresamples(20_000);
    print_machine();
    let executors = Executors {
        par: Executor::parallel().threads(THREADS),
        seq: Executor::sequential(),
        floor_pool: rayon::ThreadPoolBuilder::new()
            .num_threads(THREADS)
            .thread_name(|i| format!("floor-{i}"))
            .build()
            .expect("floor pool"),
    };

    let probe_start = support::parallelism_probe(THREADS);
    println!("[parallelism] before the benchmarks: {probe_start:.2} of {THREADS} threads");

    let noop: [ShapeMaker; 3] = [
        (NOOP_GROUPS[0], || Shape::chain(10_000)),
        (NOOP_GROUPS[1], || Shape::fan(10_000)),
        (NOOP_GROUPS[2], || Shape::layered(100, 1000, 3, SEED)),
    ];
    for (group, shape) in noop {
        bench_shape(
            &mut criterion,
            &executors,
            group,
            shape,
            Work::Noop,
            &NOOP_CONFIG,
        );
    }

    if CPU_GROUPS.iter().any(|g| selected(g)) {
        let probe = support::parallelism_probe(THREADS);
        println!("[parallelism] before the CPU-bound groups: {probe:.2} of {THREADS} threads");
        let spin_1ms = support::calibrate(Duration::from_millis(1));
        let spin_1us = support::calibrate(Duration::from_micros(1));
        let spin_10us = support::calibrate(Duration::from_micros(10));
        println!(
            "[calibration] spin rounds: 1 ms = {spin_1ms}, 1 us = {spin_1us}, 10 us = {spin_10us}"
        );
        let cpu: [(ShapeMaker, u64); 3] = [
            ((CPU_GROUPS[0], || Shape::independent(64)), spin_1ms),
            (
                (CPU_GROUPS[1], || Shape::layered(100, 100, 3, SEED)),
                spin_1us,
            ),
            (
                (CPU_GROUPS[2], || Shape::layered(100, 100, 3, SEED)),
                spin_10us,
            ),
        ];
        for ((group, shape), iters) in cpu {
            bench_shape(
                &mut criterion,
                &executors,
                group,
                shape,
                Work::Spin(iters),
                &CPU_CONFIG,
            );
        }
    }

    let probe_end = support::parallelism_probe(THREADS);
    println!("[parallelism] after the benchmarks: {probe_end:.2} of {THREADS} threads");
    criterion.final_summary();
    print_summary();
}

fn selected(group: &str) -> bool {
    match support::plain_filter() {
        None => true,
        Some(filter) => {
            let filter_group = filter.split('/').next().unwrap_or_default();
            group.contains(filter_group)
                || EXECUTORS
                    .iter()
                    .any(|e| format!("{group}/{e}").contains(&filter))
        }
    }
}

fn bench_shape(
    criterion: &mut Criterion,
    ex: &Executors,
    group_name: &str,
    make_shape: fn() -> Shape,
    work: Work,
    config: &GroupConfig,
) {
    if !selected(group_name) {
        return;
    }
    let shape = &make_shape();
    let n = shape.len();
    let rss_start = support::status_kib("VmRSS");
    let csr = CsrDag::new(shape, work);
    let rss_csr = support::status_kib("VmRSS");
    let graph = build_dagtel(shape, work);
    let rss_dagtel = support::status_kib("VmRSS");
    println!(
        "[{group_name}] {}: {n} nodes, {} edges, {} roots, {} sinks",
        shape.name,
        shape.edges(),
        shape.roots.len(),
        shape.sinks.len()
    );

    // Every executor must reproduce the reference checksum before anything is timed.
    let reference = shape.reference_checksum(work);
    let (run, par_peak) = support::peak_added(|| ex.par.run(&graph.plan, Inputs::new()));
    assert_eq!(
        dagtel_checksum(&graph, &run.expect("dagtel parallel run")),
        reference
    );
    let (run, seq_peak) = support::peak_added(|| ex.seq.run(&graph.plan, Inputs::new()));
    assert_eq!(
        dagtel_checksum(&graph, &run.expect("dagtel sequential run")),
        reference
    );
    let (slots, floor_peak) = support::peak_added(|| csr.run_floor(&ex.floor_pool));
    assert_eq!(
        shape.checksum(|i| slots[i as usize].load(std::sync::atomic::Ordering::Relaxed)),
        reference
    );
    drop(slots);
    let (values, loop_peak) = support::peak_added(|| csr.run_sequential());
    assert_eq!(shape.checksum(|i| values[i as usize]), reference);
    drop(values);
    let diagnostics = matches!(work, Work::Noop);
    if !diagnostics {
        let slots = csr.run_static(&ex.floor_pool);
        assert_eq!(shape.checksum(|i| slots[i as usize].value()), reference);
    }
    if diagnostics {
        let (slots, spawned) = csr.run_floor_nested(&ex.floor_pool, support::DAGTEL_MAX_NESTING);
        assert_eq!(
            shape.checksum(|i| slots[i as usize].load(std::sync::atomic::Ordering::Relaxed)),
            reference
        );
        let slots = csr.run_floor_arc(&ex.floor_pool);
        assert_eq!(
            shape.checksum(|i| {
                let value = slots[i as usize]
                    .get()
                    .and_then(|v| v.downcast_ref::<u64>());
                *value.expect("floor_arc slot")
            }),
            reference
        );
        let (slots, records) = csr.run_floor_timed(&ex.floor_pool);
        assert_eq!(
            shape.checksum(|i| slots[i as usize].load(std::sync::atomic::Ordering::Relaxed)),
            reference
        );
        assert!(
            records
                .iter()
                .all(|r| r.end.load(std::sync::atomic::Ordering::Relaxed) != 0),
            "floor_timed left a node without its record"
        );
        let others: Vec<String> = [96, 384, 1536]
            .into_iter()
            .map(|limit| {
                let (_, count) = csr.run_floor_nested(&ex.floor_pool, limit);
                format!("{count} at limit {limit}")
            })
            .collect();
        println!(
            "[{group_name}] with the nesting bound dagtel uses on a caller's pool ({}) the floor spawned {spawned} \
             jobs (halves of ready lists) in one run; {}",
            support::DAGTEL_MAX_NESTING,
            others.join(", ")
        );
    }
    println!("[{group_name}] every executor matches the reference checksum {reference:#x}");
    if n >= 100_000 {
        let kib = |x: Option<i64>| x.map_or("n/a".to_string(), |k| format!("{k} KiB"));
        let delta = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(b as i64 - a as i64),
            _ => None,
        };
        println!(
            "[memory] {group_name}: graph RSS: floor closures {}, dagtel Dag+Plan {}; \
             peak RSS added by one run: {DAGTEL_PAR} {}, {DAGTEL_SEQ} {}, {FLOOR} {}, {SEQ_LOOP} {}",
            kib(delta(rss_start, rss_csr)),
            kib(delta(rss_csr, rss_dagtel)),
            kib(par_peak),
            kib(seq_peak),
            kib(floor_peak),
            kib(loop_peak),
        );
    }

    let mut group = criterion.benchmark_group(group_name);
    group
        .sample_size(config.samples)
        .warm_up_time(config.warm_up)
        .measurement_time(config.measure)
        .throughput(Throughput::Elements(n as u64));
    if config.flat {
        group.sampling_mode(SamplingMode::Flat);
    }
    timed(&mut group, group_name, DAGTEL_PAR, n, || {
        ex.par.run(&graph.plan, Inputs::new()).expect("run")
    });
    timed(&mut group, group_name, DAGTEL_SEQ, n, || {
        ex.seq.run(&graph.plan, Inputs::new()).expect("run")
    });
    timed(&mut group, group_name, FLOOR, n, || {
        csr.run_floor(&ex.floor_pool)
    });
    timed(&mut group, group_name, SEQ_LOOP, n, || csr.run_sequential());
    if diagnostics {
        timed(&mut group, group_name, FLOOR_NESTED, n, || {
            csr.run_floor_nested(&ex.floor_pool, support::DAGTEL_MAX_NESTING)
        });
        timed(&mut group, group_name, FLOOR_ARC, n, || {
            csr.run_floor_arc(&ex.floor_pool)
        });
        timed(&mut group, group_name, FLOOR_TIMED, n, || {
            csr.run_floor_timed(&ex.floor_pool)
        });
    } else {
        timed(&mut group, group_name, STATIC, n, || {
            csr.run_static(&ex.floor_pool)
        });
    }
    group.finish();
    print_group(group_name);
    if n >= 100_000 {
        println!(
            "[memory] process VmHWM after {group_name}: {} KiB (VmRSS now {} KiB)",
            support::status_kib("VmHWM").unwrap_or(0),
            support::status_kib("VmRSS").unwrap_or(0)
        );
    }
}

/// Times each run individually (and records it for the summary); the result, including a
/// dagtel `Run` with its outputs and record, is dropped inside the timed region, since a
/// caller pays for that too.
fn timed<R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    group_name: &str,
    exec: &str,
    nodes: usize,
    mut run: impl FnMut() -> R,
) {
    let load = support::LoadMeter::start();
    group.bench_function(exec, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                drop(black_box(run()));
                let took = start.elapsed();
                support::record(group_name, exec, nodes, took);
                total += took;
            }
            total
        })
    });
    load.finish(group_name, exec);
}

fn build_dagtel(shape: &Shape, work: Work) -> DagtelGraph {
    let start = Instant::now();
    let graph = support::build_dagtel(shape, work);
    println!(
        "[build] dagtel graph + plan for {} nodes: {:.1} ms",
        shape.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    graph
}

fn dagtel_checksum(graph: &DagtelGraph, run: &Run) -> u64 {
    assert_eq!(
        run.outputs().len(),
        graph.sinks.len(),
        "every sink is an output"
    );
    graph.sinks.iter().fold(0u64, |sum, &h| {
        sum.wrapping_add(*run.outputs().get(h).expect("sink output present"))
    })
}

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

fn print_machine() {
    println!(
        "[machine] {} logical CPUs, {}; parallel executors use {THREADS} threads",
        cores(),
        cpu_model()
    );
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn ratio(a: Option<Stat>, b: Option<Stat>) -> Option<f64> {
    Some(a?.median_ns / b?.median_ns)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{r:.2}x"))
}

fn print_group(group: &str) {
    let rows: Vec<(&str, Stat)> = EXECUTORS
        .into_iter()
        .filter_map(|e| support::stat(group, e).map(|s| (e, s)))
        .collect();
    if rows.is_empty() {
        return;
    }
    println!();
    println!("#### {group} ({} nodes)", rows[0].1.nodes);
    println!("| executor | ns/node (median) | ns/node (best) | run (median) | runs | other load |");
    println!("|---|---|---|---|---|---|");
    for (exec, s) in &rows {
        println!(
            "| {exec} | {:.1} | {:.1} | {} | {} | {} |",
            s.per_node(),
            s.best_per_node(),
            fmt_ns(s.median_ns),
            s.runs,
            support::fmt_load(s.other_load)
        );
    }
    let get = |e| support::stat(group, e);
    if group.starts_with("noop") {
        println!(
            "ratios: {DAGTEL_PAR}/{FLOOR} = {}, {DAGTEL_SEQ}/{SEQ_LOOP} = {}, \
             {FLOOR}/{SEQ_LOOP} = {}, {DAGTEL_PAR}/{DAGTEL_SEQ} = {}",
            fmt_ratio(ratio(get(DAGTEL_PAR), get(FLOOR))),
            fmt_ratio(ratio(get(DAGTEL_SEQ), get(SEQ_LOOP))),
            fmt_ratio(ratio(get(FLOOR), get(SEQ_LOOP))),
            fmt_ratio(ratio(get(DAGTEL_PAR), get(DAGTEL_SEQ))),
        );
        println!(
            "diagnostics: {FLOOR_NESTED}/{FLOOR} = {}, {FLOOR_ARC}/{FLOOR} = {}, \
             {FLOOR_TIMED}/{FLOOR} = {}, {DAGTEL_PAR}/{FLOOR_TIMED} = {}",
            fmt_ratio(ratio(get(FLOOR_NESTED), get(FLOOR))),
            fmt_ratio(ratio(get(FLOOR_ARC), get(FLOOR))),
            fmt_ratio(ratio(get(FLOOR_TIMED), get(FLOOR))),
            fmt_ratio(ratio(get(DAGTEL_PAR), get(FLOOR_TIMED))),
        );
    } else {
        println!(
            "speedups: {DAGTEL_PAR} vs {DAGTEL_SEQ} = {}, {DAGTEL_PAR} vs {SEQ_LOOP} = {}, \
             {FLOOR} vs {SEQ_LOOP} = {}, {DAGTEL_PAR}/{FLOOR} time = {}",
            fmt_ratio(ratio(get(DAGTEL_SEQ), get(DAGTEL_PAR))),
            fmt_ratio(ratio(get(SEQ_LOOP), get(DAGTEL_PAR))),
            fmt_ratio(ratio(get(SEQ_LOOP), get(FLOOR))),
            fmt_ratio(ratio(get(DAGTEL_PAR), get(FLOOR))),
        );
        println!(
            "ceiling: {STATIC} vs {SEQ_LOOP} = {} (no scheduler: the machine's own speedup on \
             this graph), {DAGTEL_PAR}/{STATIC} time = {}",
            fmt_ratio(ratio(get(SEQ_LOOP), get(STATIC))),
            fmt_ratio(ratio(get(DAGTEL_PAR), get(STATIC))),
        );
    }
}

fn print_summary() {
    println!();
    println!("=== dagtel executor benchmarks: summary ===");
    print_machine();
    for group in NOOP_GROUPS.iter().chain(&CPU_GROUPS) {
        print_group(group);
    }
    let get = |g, e| support::stat(g, e);
    let cores = cores() as f64;
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    // The largest share of the machine other processes used while the rows of a verdict ran.
    let load = |group: &str, execs: &[&str]| {
        let worst = execs
            .iter()
            .filter_map(|e| support::stat(group, e).and_then(|s| s.other_load))
            .fold(0.0f64, f64::max);
        let flag = if worst > NOISY_LOAD { ", NOISY" } else { "" };
        format!(" (max other load {:.0}%{flag})", worst * 100.0)
    };
    println!();
    println!("#### targets");
    if let Some(r) = ratio(get(NOOP_GROUPS[2], DAGTEL_PAR), get(NOOP_GROUPS[2], FLOOR)) {
        println!(
            "- per-node time on the 100k layered DAG <= 1.5x the floor: {r:.2}x -> {}{}",
            verdict(r <= 1.5),
            load(NOOP_GROUPS[2], &[DAGTEL_PAR, FLOOR])
        );
    }
    for (group, share, label) in [
        (CPU_GROUPS[0], 0.95, "1 ms nodes"),
        (CPU_GROUPS[1], 0.90, "1 us nodes"),
    ] {
        let vs_self = ratio(get(group, DAGTEL_SEQ), get(group, DAGTEL_PAR));
        let vs_loop = ratio(get(group, SEQ_LOOP), get(group, DAGTEL_PAR));
        if let (Some(s), Some(l)) = (vs_self, vs_loop) {
            let need = share * cores;
            println!(
                "- speedup >= {share} x {cores} cores = {need:.2}x with {label}: \
                 {s:.2}x vs {DAGTEL_SEQ} -> {}, {l:.2}x vs {SEQ_LOOP} -> {}{}",
                verdict(s >= need),
                verdict(l >= need),
                load(group, &[DAGTEL_PAR, DAGTEL_SEQ, SEQ_LOOP])
            );
        }
    }
}
