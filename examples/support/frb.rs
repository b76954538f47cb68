//! The FRB pipeline's graph, shared by the `frb_pipeline` example and the tests that check
//! its telemetry.

#![allow(dead_code)] // the example and the tests each use part of it

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use dagtel::{BuildError, Dag, DagBuilder, Handle, NodeError, Request, RetryPolicy};

/// One block of raw intensity data: `channels` x `samples`, already beamformed.
pub struct DataBlock {
    pub id: String,
    pub start_sample: usize,
    /// Per beam, per channel, per sample.
    pub intensity: Vec<Vec<Vec<f32>>>,
}

#[derive(Clone, Debug)]
pub struct Candidate {
    pub id: String,
    pub beam: usize,
    pub block: String,
    pub dm: f32,
    pub sample: usize,
    pub snr: f32,
}

#[derive(Debug)]
pub struct Event {
    pub id: String,
    pub dm: f32,
    pub sample: usize,
    pub snr: f32,
    pub beams: Vec<usize>,
    pub candidates: Vec<String>,
}

#[derive(Debug)]
pub struct Classification {
    pub label: &'static str,
    pub score: f32,
}

#[derive(Clone, Copy)]
pub struct Config {
    pub beams: usize,
    pub blocks: usize,
    pub channels: usize,
    pub samples: usize,
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

/// The built pipeline and the handles of what a run asks for.
pub struct Pipeline {
    pub dag: Dag,
    pub config: Handle<Config>,
    pub event: Handle<Event>,
    pub classification: Handle<Classification>,
    pub registered: Handle<String>,
    pub replicated: Handle<String>,
}

impl Pipeline {
    /// The outputs a run of the pipeline produces.
    pub fn request(&self) -> Request {
        Request::new()
            .output(self.event)
            .output(self.classification)
            .output(self.registered)
            .output(self.replicated)
    }
}

/// Declares the pipeline for `cfg.blocks` blocks and `cfg.beams` beams.
pub fn build(cfg: &Config) -> Result<Pipeline, BuildError> {
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
                .run(config, move |ctx, cfg| {
                    let block = ingest(*cfg, b);
                    ctx.entity(&block.id);
                    ctx.dataset(
                        &block.id,
                        (cfg.beams * cfg.channels) as u64,
                        cfg.samples as u64,
                    );
                    Ok(block)
                })
        })
        .collect();

    let beams: Vec<Handle<Vec<Candidate>>> = (0..cfg.beams)
        .map(|beam| {
            g.node(format!("search_beam_{beam:02}"))
                .stage("search")
                .tag("layer", "compute")
                .tag("beam", beam.to_string())
                .run((config, blocks.clone()), move |ctx, (cfg, blocks)| {
                    let found = search(*cfg, beam, &blocks);
                    // A beam that found candidates produced an entity; the clustering node's
                    // links to it carry that id, so the trace shows which beams were merged.
                    if !found.is_empty() {
                        ctx.entity(format!("candidates-beam-{beam:02}"));
                    }
                    let best = found.iter().map(|c| c.snr).fold(0.0, f32::max);
                    tracing::debug!(beam, candidates = found.len(), "beam searched");
                    ctx.event(
                        "candidates.found",
                        serde_json::json!({ "count": found.len(), "best_snr": best }),
                    );
                    Ok(found)
                })
        })
        .collect();

    let event = g
        .node("cluster_candidates")
        .stage("cluster")
        .tag("layer", "compute")
        .run(beams, |ctx, per_beam| {
            let event = cluster(&per_beam)?;
            ctx.entity(&event.id);
            tracing::info!(
                event = %event.id,
                beams = ?event.beams,
                candidates = event.candidates.len(),
                "clustered candidates into one event"
            );
            Ok(event)
        });
    let classification = g
        .node("classify_event")
        .stage("classify")
        .tag("layer", "compute")
        .version("rules-v1")
        .run(event, |ctx, e| {
            ctx.entity(&e.id);
            let c = classify(e);
            ctx.event(
                "event.classified",
                serde_json::json!({ "label": c.label, "score": c.score }),
            );
            Ok(c)
        });

    let archived = g
        .node("archive_event")
        .stage("deliver")
        .tag("layer", "io")
        .run((event, classification), |ctx, (e, c)| {
            ctx.entity(&e.id);
            let path = format!("/archive/{}/{}-{}.h5", ctx.run_id(), e.id, c.label);
            ctx.artifact(
                "event.h5",
                serde_json::json!({ "path": path, "label": c.label }),
            );
            Ok(path)
        });
    let registered = g
        .node("register_event")
        .stage("deliver")
        .tag("layer", "io")
        .run((event, classification), |ctx, (e, c)| {
            ctx.entity(&e.id);
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
                    tracing::warn!(attempt = ctx.attempt(), "remote site busy, will retry");
                    return Err(NodeError::msg("remote site busy (HTTP 503)"));
                }
                Ok(format!("{path} -> site-b (attempt {})", ctx.attempt()))
            }
        });

    Ok(Pipeline {
        dag: g.build()?,
        config,
        event,
        classification,
        registered,
        replicated,
    })
}
