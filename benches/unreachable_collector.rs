//! Never block the pipeline: emitting 10k spans with the OTLP exporter pointed at a collector
//! that is not there (127.0.0.1:9, connection refused) against the same emission with
//! exporters off and with an in-memory exporter (the same batch-processor path, with a sink
//! that always succeeds).
//!
//! Run with `cargo bench --bench unreachable_collector`. Two groups:
//! - `emit_10k`: only the 10k `start`/`end` calls, the cost a pipeline thread sees;
//! - `emit_10k_and_shutdown`: emission plus the guard's shutdown, which with a dead collector
//!   is bounded by the shutdown timeout (1 s here), never longer.
//!
//! - `run_10k_nodes`: a whole pipeline run (10k nodes in layers of 100, each about 50 us of
//!   work, parallel executor, the guard's hooks), the time a user waits for a run.
//!
//! After criterion's report, a summary prints the medians, the ratios against `off`, and one
//! shutdown report per case (what was exported, failed and dropped: the memory stays bounded
//! by the 2048-span queue, the rest is dropped and counted).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use dagtel::telemetry::config::{ExporterKind, Protocol, Settings};
use dagtel::telemetry::{InstallOptions, TelemetryGuard, install};
use dagtel::{DagBuilder, Executor, Handle, Inputs, Plan};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry::{KeyValue, global};

const SPANS: usize = 10_000;
const SHUTDOWN: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
enum Case {
    Off,
    Memory,
    UnreachableGrpc,
    UnreachableHttp,
}

const CASES: [Case; 4] = [
    Case::Off,
    Case::Memory,
    Case::UnreachableGrpc,
    Case::UnreachableHttp,
];

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Off => "off",
            Case::Memory => "memory",
            Case::UnreachableGrpc => "otlp_grpc_unreachable",
            Case::UnreachableHttp => "otlp_http_unreachable",
        }
    }

    fn settings(self) -> Settings {
        let mut s = Settings::default();
        s.detectors = Vec::new();
        let (kind, protocol, endpoint) = match self {
            Case::Off => (ExporterKind::None, Protocol::HttpProtobuf, ""),
            Case::Memory => (ExporterKind::Memory, Protocol::HttpProtobuf, ""),
            Case::UnreachableGrpc => (ExporterKind::Otlp, Protocol::Grpc, "http://127.0.0.1:9"),
            Case::UnreachableHttp => (
                ExporterKind::Otlp,
                Protocol::HttpProtobuf,
                "http://127.0.0.1:9/v1/traces",
            ),
        };
        s.exporters.traces = vec![kind];
        s.exporters.logs = vec![ExporterKind::None];
        s.exporters.metrics = vec![ExporterKind::None];
        s.otlp.traces.protocol = protocol;
        s.otlp.traces.endpoint = endpoint.into();
        s
    }

    fn install(self) -> TelemetryGuard {
        let options = InstallOptions::new()
            .local()
            .shutdown_timeout(SHUTDOWN)
            .parent_env(Vec::<(String, String)>::new());
        install(&self.settings(), "bench", options).expect("install")
    }
}

/// Emits the spans; with no provider (exporters off) the global no-op tracer is used, which is
/// what instrumented code sees when telemetry is off.
fn emit(guard: &TelemetryGuard) -> Duration {
    let start = Instant::now();
    match guard.tracer_provider() {
        Some(tp) => {
            let tracer = tp.tracer("bench");
            for i in 0..SPANS {
                let mut span = tracer.start("node");
                span.set_attribute(KeyValue::new("i", i as i64));
                span.end();
            }
        }
        None => {
            let tracer = global::tracer("bench");
            for i in 0..SPANS {
                let mut span = tracer.start("node");
                span.set_attribute(KeyValue::new("i", i as i64));
                span.end();
            }
        }
    }
    start.elapsed()
}

const NODES: usize = 10_000;
const LAYER: usize = 100;

/// About 50 us of CPU work that depends on its input.
fn work(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// 10k nodes in layers of 100; each node reads two nodes of the layer above.
fn pipeline() -> (Plan, Handle<u64>) {
    let mut g = DagBuilder::new("bench_10k");
    let seed = g.input::<u64>("seed");
    let mut above: Vec<Handle<u64>> = Vec::new();
    let mut all = Vec::with_capacity(NODES);
    for i in 0..NODES {
        let node = g.node(format!("n{i}"));
        let h = if above.is_empty() {
            node.run(seed, move |_, s| Ok(work(s + i as u64)))
        } else {
            let (a, b) = (above[i % LAYER], above[(i * 7 + 3) % LAYER]);
            node.run((a, b), |_, (a, b)| Ok(work(a ^ b)))
        };
        all.push(h);
        if i % LAYER == LAYER - 1 {
            above = all[i + 1 - LAYER..=i].to_vec();
        }
    }
    let dag = g.build().expect("valid graph");
    (dag.plan_all().expect("valid plan"), seed)
}

/// One run of the 10k-node pipeline with the guard's hooks.
fn run_pipeline(guard: &TelemetryGuard, plan: &Plan, seed: Handle<u64>) -> Duration {
    let executor = Executor::parallel().hook(guard.hooks());
    let start = Instant::now();
    black_box(executor.run(plan, Inputs::new().set(seed, 1)).expect("run"));
    start.elapsed()
}

type Medians = Vec<(&'static str, Case, Option<Duration>)>;

/// One criterion group with a benchmark per case: each iteration installs fresh telemetry and
/// `timed` returns the part of its work that counts. Medians of the individual iterations are
/// kept for the summary.
fn measure(
    criterion: &mut Criterion,
    group: &'static str,
    medians: &mut Medians,
    timed: impl Fn(TelemetryGuard) -> Duration,
) {
    let mut g = criterion.benchmark_group(group);
    for case in CASES {
        let mut times = Vec::new();
        g.bench_function(case.name(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let took = timed(case.install());
                    times.push(took);
                    total += took;
                }
                total
            })
        });
        times.sort();
        medians.push((group, case, times.get(times.len() / 2).copied()));
    }
    g.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut medians = Vec::new();
    for (group, with_shutdown) in [("emit_10k", false), ("emit_10k_and_shutdown", true)] {
        measure(&mut criterion, group, &mut medians, |guard| {
            let mut took = emit(&guard);
            let start = Instant::now();
            drop(black_box(guard.shutdown()));
            if with_shutdown {
                took += start.elapsed();
            }
            took
        });
    }
    let (plan, seed) = pipeline();
    measure(&mut criterion, "run_10k_nodes", &mut medians, |guard| {
        let took = run_pipeline(&guard, &plan, seed);
        drop(black_box(guard.shutdown()));
        took
    });

    println!("\nsummary (median per 10k spans or per 10k-node run; ratio against exporters off)");
    for (group, case, median) in &medians {
        let off = medians
            .iter()
            .find(|(g, c, _)| g == group && matches!(c, Case::Off))
            .and_then(|(_, _, m)| *m);
        if let (Some(m), Some(off)) = (median, off) {
            println!(
                "  {group:<22} {:<22} {:>10.2?}  {:>8.1}x",
                case.name(),
                m,
                m.as_secs_f64() / off.as_secs_f64()
            );
        }
    }
    println!("\nshutdown reports (one run per case)");
    for case in CASES {
        let guard = case.install();
        emit(&guard);
        println!("  {}: {}", case.name(), guard.shutdown());
    }
}
