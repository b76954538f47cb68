use dagtel::otel::OtelHooks;
use dagtel::*;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::time::Instant;
fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut g = DagBuilder::new("ab");
    let mut prev: Vec<Handle<u64>> = Vec::new();
    let mut state = 7u64;
    let mut last = Vec::new();
    for l in 0..100 {
        let mut layer = Vec::new();
        for i in 0..100u64 {
            let h = if l == 0 {
                g.node(format!("n{l}_{i}")).run((), move |_, ()| Ok(i))
            } else {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let a = prev[(state % 100) as usize];
                let b = prev[((state >> 8) % 100) as usize];
                g.node(format!("n{l}_{i}")).run(vec![a, b], move |_, ps| {
                    Ok(ps.iter().fold(i, |x, p| x.wrapping_add(**p)))
                })
            };
            layer.push(h);
        }
        last = layer.clone();
        prev = layer;
    }
    let dag = g.build().unwrap();
    let plan = dag
        .plan(&last.iter().fold(Request::new(), |r, h| r.output(*h)))
        .unwrap();
    let tp = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let mp = SdkMeterProvider::builder()
        .with_reader(
            PeriodicReader::builder(InMemoryMetricExporter::default())
                .with_interval(std::time::Duration::from_secs(1))
                .build(),
        )
        .build();
    let t = Instant::now();
    match which.as_str() {
        "off" => {
            let ex = Executor::sequential().hook(OtelHooks::new(&tp, &mp));
            for _ in 0..runs {
                ex.run(&plan, Inputs::new()).unwrap();
            }
        }
        _ => {
            let ex = Executor::sequential();
            for _ in 0..runs {
                ex.run(&plan, Inputs::new()).unwrap();
            }
        }
    }
    println!(
        "{which}: {:.1} ns/node",
        t.elapsed().as_nanos() as f64 / (runs * 10_000) as f64
    );
}
