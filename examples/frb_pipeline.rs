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

#[path = "support/frb.rs"]
mod frb;

use dagtel::telemetry::{self, TelemetryBuilder, TelemetryError};
use dagtel::{Executor, FailurePolicy, Inputs, RunError, RunId, RunOptions};
use frb::Config;

struct Args {
    cfg: Config,
    mermaid: bool,
    explain: bool,
}

fn parse_args() -> Args {
    let mut cfg = Config {
        beams: 16,
        blocks: 8,
        channels: 64,
        samples: 256,
    };
    let mut mermaid = false;
    let mut explain = false;
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
            "--explain" => explain = true,
            other => {
                eprintln!(
                    "unknown argument {other}; use --beams N, --blocks N, --mermaid, --explain"
                );
                std::process::exit(2)
            }
        }
    }
    Args {
        cfg,
        mermaid,
        explain,
    }
}

fn main() {
    let Args {
        cfg,
        mermaid: print_mermaid,
        explain,
    } = parse_args();
    // Telemetry first: the standard OTEL_* variables (and DAGTEL_PROFILE, DAGTEL_CONFIG)
    // decide where it goes; with none set, OTLP/JSON files under ./telemetry/<run id>/.
    let run_id = RunId::generate();
    let telemetry = match TelemetryBuilder::new("frb_pipeline")
        .run_id(run_id.clone())
        .init()
    {
        Ok(telemetry) => telemetry,
        // Strict mode: the user asked for invalid settings to stop the program.
        Err(error @ TelemetryError::Config(_)) => {
            eprintln!("telemetry: {error}");
            std::process::exit(2);
        }
        // Anything else (an exporter that cannot be built): the pipeline runs regardless.
        Err(error) => {
            eprintln!("telemetry: {error}; running without telemetry");
            telemetry::disabled()
        }
    };
    if explain && let Some(table) = telemetry.explain() {
        println!("{table}");
    }
    let pipeline = match frb::build(&cfg) {
        Ok(pipeline) => pipeline,
        Err(error) => {
            eprintln!("invalid pipeline: {error}");
            std::process::exit(1);
        }
    };
    let plan = match pipeline.dag.plan(&pipeline.request()) {
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

    let telemetry_dir = telemetry.telemetry_dir().map(|d| d.to_path_buf());
    let executor = Executor::parallel()
        .failure_policy(FailurePolicy::Continue)
        .hook(telemetry.hooks());
    let inputs = Inputs::new().set(pipeline.config, cfg);
    let result = executor.run_with(&plan, inputs, RunOptions::new().run_id(run_id));
    let failed = report(result, &pipeline);
    // Flush and stop exporting: bounded, even when a collector is unreachable.
    let delivery = telemetry.shutdown();
    if !delivery.is_complete() {
        eprintln!("{delivery}");
    }
    if let Some(dir) = telemetry_dir {
        println!("telemetry: {}", dir.display());
    }
    if failed {
        std::process::exit(1);
    }
}

/// Prints the run's summary and outputs; true when the run failed.
fn report(result: Result<dagtel::Run, RunError>, pipeline: &frb::Pipeline) -> bool {
    match result {
        Ok(run) => {
            print!("{}", run.record().summary_table());
            let outputs = run.outputs();
            if let Some(c) = outputs.get(pipeline.classification) {
                println!("classification: {} (score {:.2})", c.label, c.score);
            }
            if let Some(e) = outputs.get(pipeline.event) {
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
            for line in [
                outputs.get(pipeline.registered),
                outputs.get(pipeline.replicated),
            ]
            .into_iter()
            .flatten()
            {
                println!("{line}");
            }
        }
        Err(RunError::Failed(run)) => {
            print!("{}", run.record.summary_table());
            eprintln!("{run}");
            return true;
        }
        Err(error) => {
            eprintln!("run failed: {error}");
            return true;
        }
    }
    false
}
