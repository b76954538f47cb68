//! A fast-radio-burst search pipeline, shaped like CHIME/FRB's: ingest data blocks, search
//! every beam (fan-out), cluster candidates from all beams into one event (N-to-1 fan-in),
//! classify it, then archive, register and replicate it.
//!
//! The data is synthetic (a dispersed pulse injected into noise in a few beams), the DAG and
//! the execution are real: nodes run in parallel on rayon, `replicate` is async on tokio with
//! a retry and a timeout, and the run ends with a summary of every node.
//!
//! ```text
//! cargo run --release --example frb_pipeline [-- --beams 16 --blocks 8 --mermaid]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use dagtel::{
    DagBuilder, Executor, FailurePolicy, Handle, Inputs, NodeError, Request, RetryPolicy, RunError,
};

/// One block of raw intensity data: `channels` x `samples`, already beamformed.
struct DataBlock {
    id: String,
    start_sample: usize,
    /// Per beam, per channel, per sample.
    intensity: Vec<Vec<Vec<f32>>>,
}

#[derive(Clone, Debug)]
struct Candidate {
    id: String,
    beam: usize,
    block: String,
    dm: f32,
    sample: usize,
    snr: f32,
}

#[derive(Debug)]
struct Event {
    id: String,
    dm: f32,
    sample: usize,
    snr: f32,
    beams: Vec<usize>,
    candidates: Vec<String>,
}

#[derive(Debug)]
struct Classification {
    label: &'static str,
    score: f32,
}

#[derive(Clone, Copy)]
struct Config {
    beams: usize,
    blocks: usize,
    channels: usize,
    samples: usize,
}

const PULSE_DM: f32 = 350.0;
const PULSE_SAMPLE: usize = 700;
const PULSE_BEAMS: [usize; 3] = [3, 4, 5];
const DMS: [f32; 8] = [0.0, 50.0, 100.0, 200.0, 350.0, 500.0, 750.0, 1000.0];

/// Sample delay of channel `c` at dispersion measure `dm` (a simple quadratic sweep).
fn delay(dm: f32, channel: usize, channels: usize) -> usize {
    let f = 1.0 - channel as f32 / channels as f32 * 0.5; // 1.0 .. 0.5 (relative frequency)
    (dm * 0.04 * (1.0 / (f * f) - 1.0)) as usize
}

fn noise(seed: &mut u64) -> f32 {
    // xorshift64*: fast, deterministic noise in [-1, 1).
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    let bits = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
    bits as f32 / (1u64 << 23) as f32 - 1.0
}

fn ingest(cfg: Config, block: usize) -> DataBlock {
    let start_sample = block * cfg.samples;
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (block as u64 + 1);
    let intensity = (0..cfg.beams)
        .map(|beam| {
            (0..cfg.channels)
                .map(|c| {
                    (0..cfg.samples)
                        .map(|s| {
                            let mut v = noise(&mut seed);
                            let t = start_sample + s;
                            if PULSE_BEAMS.contains(&beam)
                                && t == PULSE_SAMPLE + delay(PULSE_DM, c, cfg.channels)
                            {
                                v += if beam == 4 { 9.0 } else { 5.0 };
                            }
                            v
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    DataBlock {
        id: format!("block-{block:03}"),
        start_sample,
        intensity,
    }
}

/// Incoherent dedispersion over a few trial DMs, then a threshold on the S/N.
fn search(cfg: Config, beam: usize, blocks: &[&DataBlock]) -> Vec<Candidate> {
    let mut found = Vec::new();
    for block in blocks {
        let data = &block.intensity[beam];
        for &dm in &DMS {
            let mut series = vec![0f32; cfg.samples];
            for (c, channel) in data.iter().enumerate() {
                let shift = delay(dm, c, cfg.channels);
                for (s, value) in series.iter_mut().enumerate() {
                    if let Some(x) = channel.get(s + shift) {
                        *value += x;
                    }
                }
            }
            let norm = (cfg.channels as f32).sqrt() * 0.577; // std of uniform noise summed
            if let Some((s, peak)) = series.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) {
                let snr = peak / norm;
                if snr > 7.0 {
                    found.push(Candidate {
                        id: format!("cand-b{beam:02}-{}-dm{dm}", block.id),
                        beam,
                        block: block.id.clone(),
                        dm,
                        sample: block.start_sample + s,
                        snr,
                    });
                }
            }
        }
    }
    found
}

/// Groups the candidates of every beam that agree in time and DM into one event.
fn cluster(per_beam: &[&Vec<Candidate>]) -> Result<Event, NodeError> {
    let best = per_beam
        .iter()
        .flat_map(|c| c.iter())
        .max_by(|a, b| a.snr.total_cmp(&b.snr))
        .ok_or_else(|| NodeError::msg("no candidates above threshold in any beam"))?;
    let members: Vec<&Candidate> = per_beam
        .iter()
        .flat_map(|c| c.iter())
        .filter(|c| c.sample.abs_diff(best.sample) <= 8 && (c.dm - best.dm).abs() <= 150.0)
        .collect();
    let mut beams: Vec<usize> = members.iter().map(|c| c.beam).collect();
    beams.sort_unstable();
    beams.dedup();
    Ok(Event {
        id: format!("event-{}-dm{:.0}", best.sample, best.dm),
        dm: best.dm,
        sample: best.sample,
        snr: best.snr,
        beams,
        candidates: members
            .iter()
            .map(|c| format!("{}@{}", c.id, c.block))
            .collect(),
    })
}

fn classify(event: &Event) -> Classification {
    // Real bursts are dispersed and seen in a few adjacent beams; RFI is at DM 0 or everywhere.
    let astrophysical = event.dm > 50.0 && event.beams.len() <= 6;
    Classification {
        label: if astrophysical { "FRB" } else { "RFI" },
        score: (event.snr / 20.0).min(1.0),
    }
}

fn parse_args() -> (Config, bool) {
    let mut cfg = Config {
        beams: 16,
        blocks: 8,
        channels: 64,
        samples: 256,
    };
    let mut mermaid = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| {
                    eprintln!("{what} needs a positive number");
                    std::process::exit(2)
                })
        };
        match arg.as_str() {
            "--beams" => cfg.beams = number("--beams").max(6),
            "--blocks" => cfg.blocks = number("--blocks").max(4),
            "--mermaid" => mermaid = true,
            other => {
                eprintln!("unknown argument {other}; use --beams N, --blocks N, --mermaid");
                std::process::exit(2)
            }
        }
    }
    (cfg, mermaid)
}

fn main() {
    let (cfg, print_mermaid) = parse_args();
    let mut g = DagBuilder::new("frb_pipeline");
    g.stage("ingest")
        .stage("search")
        .stage("cluster")
        .stage("classify")
        .stage("deliver");
    let config = g.input::<Config>("config");

    let blocks: Vec<Handle<DataBlock>> = (0..cfg.blocks)
        .map(|b| {
            g.node(format!("ingest_block_{b:03}"))
                .stage("ingest")
                .tag("layer", "io")
                .run(config, move |_, cfg| Ok(ingest(*cfg, b)))
        })
        .collect();

    let beams: Vec<Handle<Vec<Candidate>>> = (0..cfg.beams)
        .map(|beam| {
            g.node(format!("search_beam_{beam:02}"))
                .stage("search")
                .tag("layer", "compute")
                .tag("beam", beam.to_string())
                .run((config, blocks.clone()), move |_, (cfg, blocks)| {
                    Ok(search(*cfg, beam, &blocks))
                })
        })
        .collect();

    let event = g
        .node("cluster_candidates")
        .stage("cluster")
        .tag("layer", "compute")
        .run(beams, |_, per_beam| cluster(&per_beam));
    let classification = g
        .node("classify_event")
        .stage("classify")
        .tag("layer", "compute")
        .version("rules-v1")
        .run(event, |_, e| Ok(classify(e)));

    let archived = g
        .node("archive_event")
        .stage("deliver")
        .tag("layer", "io")
        .run((event, classification), |ctx, (e, c)| {
            Ok(format!("/archive/{}/{}-{}.h5", ctx.run_id(), e.id, c.label))
        });
    let registered = g
        .node("register_event")
        .stage("deliver")
        .tag("layer", "io")
        .run((event, classification), |_, (e, c)| {
            Ok(format!(
                "catalog entry {} ({}, score {:.2})",
                e.id, c.label, c.score
            ))
        });
    // Replication talks to a remote site: async, with a timeout, retried on transient errors.
    let flaky_site = Arc::new(AtomicU32::new(0));
    let replicated = g
        .node("replicate_event")
        .stage("deliver")
        .tag("layer", "io")
        .timeout(Duration::from_secs(2))
        .retry(RetryPolicy::attempts(3).with_backoff(
            Duration::from_millis(20),
            2.0,
            Duration::from_millis(200),
        ))
        .run_async(archived, move |ctx, path| {
            let flaky_site = flaky_site.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(15)).await;
                if flaky_site.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(NodeError::msg("remote site busy (HTTP 503)"));
                }
                Ok(format!("{path} -> site-b (attempt {})", ctx.attempt()))
            }
        });

    let dag = match g.build() {
        Ok(dag) => dag,
        Err(error) => {
            eprintln!("invalid pipeline: {error}");
            std::process::exit(1);
        }
    };
    let event_out = event;
    let request = Request::new()
        .output(event)
        .output(classification)
        .output(registered)
        .output(replicated);
    let plan = match dag.plan(&request) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("cannot plan: {error}");
            std::process::exit(1);
        }
    };
    if print_mermaid {
        println!("{}", plan.to_mermaid());
    }
    println!(
        "frb_pipeline: {} blocks x {} beams, {} nodes in {} stages",
        cfg.blocks,
        cfg.beams,
        plan.len(),
        plan.stages().len()
    );

    let executor = Executor::parallel().failure_policy(FailurePolicy::Continue);
    match executor.run(&plan, Inputs::new().set(config, cfg)) {
        Ok(run) => {
            print!("{}", run.record().summary_table());
            let outputs = run.outputs();
            if let Some(c) = outputs.get(classification) {
                println!("classification: {} (score {:.2})", c.label, c.score);
            }
            if let Some(e) = run.outputs().get(event_out) {
                println!(
                    "{}: S/N {:.1} at DM {} sample {}, beams {:?}, {} candidates merged",
                    e.id,
                    e.snr,
                    e.dm,
                    e.sample,
                    e.beams,
                    e.candidates.len()
                );
            }
            for line in [outputs.get(registered), outputs.get(replicated)]
                .into_iter()
                .flatten()
            {
                println!("{line}");
            }
        }
        Err(RunError::Failed(run)) => {
            print!("{}", run.record.summary_table());
            eprintln!("{run}");
            std::process::exit(1);
        }
        Err(error) => {
            eprintln!("run failed: {error}");
            std::process::exit(1);
        }
    }
}
