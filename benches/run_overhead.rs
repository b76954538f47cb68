//! The fixed cost of a run: small plans (one node, a chain of ten) run again and again, so
//! that what a run costs beyond its nodes (run id, clock, per-run arrays, record, scheduling
//! round trip, hooks) is what is timed.
//!
//! References in the same process: a round trip through a rayon pool of the same size
//! (`pool.install` of an empty closure from outside the pool, the least a parallel run can
//! wait for), one through a tokio runtime like the executor's own (a task spawned from
//! outside it that answers on a channel), and calling the ten node bodies directly.
//!
//! `seq_async_1_node` and `par2_async_1_node` run one async node (on the executor's own tokio
//! runtime): the round trip to tokio and back.
//!
//! Run with `cargo bench --bench run_overhead`. After criterion's report, a summary prints
//! the median time per run of each benchmark and the ratios. See BENCHMARKS.md.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use dagtel::otel::OtelHooks;
use dagtel::processors::RunIdSpanProcessor;
use dagtel::{DagBuilder, Executor, Handle, Inputs, Plan, Request};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};

const THREADS: usize = 2;

/// Every timed run of each benchmark, per run.
static RUNS: Mutex<BTreeMap<String, Vec<Duration>>> = Mutex::new(BTreeMap::new());

/// A span exporter that drops every batch.
#[derive(Debug)]
struct Dropping;

impl SpanExporter for Dropping {
    async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

/// A chain of `len` no-op nodes; plans its last one.
fn chain(len: usize) -> (Plan, Handle<u64>) {
    let mut g = DagBuilder::new(format!("chain-{len}"));
    let mut last = g.node("n0").run((), |_, ()| Ok(1u64));
    for i in 1..len {
        last = g.node(format!("n{i}")).run(last, |_, x| Ok(*x + 1));
    }
    let plan = g
        .build()
        .expect("valid chain")
        .plan(&Request::new().output(last))
        .expect("plannable chain");
    (plan, last)
}

/// Times `run` once per iteration and keeps each time under `name`.
fn bench(c: &mut Criterion, name: &str, mut run: impl FnMut()) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut times = Vec::with_capacity(iters as usize);
            for _ in 0..iters {
                let start = Instant::now();
                run();
                let took = start.elapsed();
                times.push(took);
                total += took;
            }
            RUNS.lock()
                .expect("results lock")
                .entry(name.to_string())
                .or_default()
                .extend(times);
            total
        })
    });
}

fn median(name: &str) -> Option<Duration> {
    let mut runs = RUNS.lock().expect("results lock");
    let times = runs.get_mut(name)?;
    times.sort();
    times.get(times.len() / 2).copied()
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let seq = Executor::sequential();
    let par = Executor::parallel().threads(THREADS);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()
        .expect("rayon pool");
    let tracer = SdkTracerProvider::builder()
        .with_span_processor(RunIdSpanProcessor::wrap(
            BatchSpanProcessor::builder(Dropping).build(),
        ))
        .build();
    let meter = SdkMeterProvider::builder().build();
    let hooked = Executor::sequential().hook(OtelHooks::new(&tracer, &meter));

    let mut g = DagBuilder::new("async-1");
    let async_out = g
        .node("a")
        .run_async((), |_, ()| async { Ok::<u64, dagtel::NodeError>(1) });
    let async_one = g
        .build()
        .expect("valid graph")
        .plan(&Request::new().output(async_out))
        .expect("plannable graph");
    let (one, one_out) = chain(1);
    let (ten, ten_out) = chain(10);
    let check = |run: dagtel::Run, out: Handle<u64>, expected: u64| {
        assert_eq!(*run.outputs().get(out).expect("requested output"), expected);
    };

    bench(&mut c, "seq_1_node", || {
        check(seq.run(&one, Inputs::new()).expect("run"), one_out, 1)
    });
    bench(&mut c, "seq_chain_10", || {
        check(seq.run(&ten, Inputs::new()).expect("run"), ten_out, 10)
    });
    bench(&mut c, "par2_1_node", || {
        check(par.run(&one, Inputs::new()).expect("run"), one_out, 1)
    });
    bench(&mut c, "par2_chain_10", || {
        check(par.run(&ten, Inputs::new()).expect("run"), ten_out, 10)
    });
    bench(&mut c, "seq_async_1_node", || {
        check(
            seq.run(&async_one, Inputs::new()).expect("run"),
            async_out,
            1,
        )
    });
    bench(&mut c, "par2_async_1_node", || {
        check(
            par.run(&async_one, Inputs::new()).expect("run"),
            async_out,
            1,
        )
    });
    bench(&mut c, "seq_otel_1_node", || {
        check(hooked.run(&one, Inputs::new()).expect("run"), one_out, 1)
    });
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    bench(&mut c, "tokio_round_trip", || {
        let (done, wait) = std::sync::mpsc::channel();
        tokio.spawn(async move {
            let _ = done.send(black_box(1u64));
        });
        assert_eq!(wait.recv().expect("the task ran"), 1);
    });
    bench(&mut c, "pool_round_trip", || {
        black_box(pool.install(|| black_box(1u64)));
    });
    bench(&mut c, "direct_chain_10", || {
        let mut x = black_box(1u64);
        for _ in 1..10 {
            x = black_box(x + 1);
        }
        assert_eq!(x, 10);
    });
    c.final_summary();
    let _ = tracer.shutdown();
    print_summary();
}

fn print_summary() {
    println!("\n=== run overhead: median time per run ===");
    let names = [
        "seq_1_node",
        "seq_chain_10",
        "par2_1_node",
        "par2_chain_10",
        "seq_async_1_node",
        "par2_async_1_node",
        "seq_otel_1_node",
        "pool_round_trip",
        "tokio_round_trip",
        "direct_chain_10",
    ];
    let medians: BTreeMap<&str, Option<Duration>> =
        names.iter().map(|&name| (name, median(name))).collect();
    for (name, median) in &medians {
        match median {
            Some(m) => println!("| {name} | {:.2} us |", m.as_secs_f64() * 1e6),
            None => println!("| {name} | not run |"),
        }
    }
    let ratio = |a: &str, b: &str| match (medians[a], medians[b]) {
        (Some(a), Some(b)) if !b.is_zero() => format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64()),
        _ => "n/a".to_string(),
    };
    println!(
        "ratios: par2_1_node/pool_round_trip = {}, seq_async_1_node/tokio_round_trip = {}, \
         par2_async_1_node/tokio_round_trip = {}, seq_otel_1_node/seq_1_node = {}, \
         seq_chain_10/seq_1_node = {}",
        ratio("par2_1_node", "pool_round_trip"),
        ratio("seq_async_1_node", "tokio_round_trip"),
        ratio("par2_async_1_node", "tokio_round_trip"),
        ratio("seq_otel_1_node", "seq_1_node"),
        ratio("seq_chain_10", "seq_1_node"),
    );
}
