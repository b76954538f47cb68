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

use dagtel::{Executor, FailurePolicy, Inputs, RunError};
use frb::Config;

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

    let executor = Executor::parallel().failure_policy(FailurePolicy::Continue);
    match executor.run(&plan, Inputs::new().set(pipeline.config, cfg)) {
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
            std::process::exit(1);
        }
        Err(error) => {
            eprintln!("run failed: {error}");
            std::process::exit(1);
        }
    }
}
