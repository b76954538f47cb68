//! A pipeline whose node runs a second pipeline in a child process, and both end up in one
//! trace: the node passes its context to the child through `TRACEPARENT` / `TRACESTATE` (the
//! OpenTelemetry environment-variable carrier) and `DAGTEL_RUN_ID`; the child's telemetry
//! bootstrap reads them, and its run's root span becomes a child of that node's span.
//!
//! ```text
//! cargo run --example nested_pipeline
//! ```
//!
//! With the default exporter each process writes its own `./telemetry/<run id>/` directory;
//! both `traces.jsonl` files share one trace id. Point both at a collector with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` to see the single trace in a backend.

use std::process::Command;

use dagtel::telemetry::{TelemetryBuilder, propagation};
use dagtel::{DagBuilder, Executor, Inputs, NodeError, Request, RunId, RunOptions};

fn main() {
    let child = std::env::args().any(|a| a == "--child");
    let run_id = RunId::generate();
    let service = if child {
        "nested_child"
    } else {
        "nested_parent"
    };
    let telemetry = match TelemetryBuilder::new(service).run_id(run_id.clone()).init() {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("telemetry: {error}");
            std::process::exit(1);
        }
    };
    if let Some(parent) = &telemetry.parent().run_id {
        println!("[{service}] started by run {parent}");
    }

    let mut g = DagBuilder::new(service);
    let n = g.input::<u64>("n");
    let out = if child {
        let squares = g
            .node("squares")
            .run(n, |_, n| Ok((1..=*n).map(|i| i * i).collect::<Vec<u64>>()));
        g.node("sum").run(squares, |_, s| Ok(s.iter().sum::<u64>()))
    } else {
        let prepared = g.node("prepare").run(n, |_, n| Ok(*n));
        g.node("run_child_pipeline").run(prepared, |_, n| {
            let exe = std::env::current_exe()?;
            let mut command = Command::new(exe);
            command.arg("--child").env("NESTED_N", n.to_string());
            propagation::inject_current(&mut command);
            let status = command.status()?;
            if !status.success() {
                return Err(NodeError::msg(format!("child pipeline failed: {status}")));
            }
            Ok(*n)
        })
    };
    let dag = g.build().expect("a valid graph");
    let plan = dag.plan(&Request::new().output(out)).expect("a valid plan");
    let n_value = std::env::var("NESTED_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let executor = Executor::parallel().hook(telemetry.hooks());
    let result = executor.run_with(
        &plan,
        Inputs::new().set(n, n_value),
        RunOptions::new().run_id(run_id.clone()),
    );
    let dir = telemetry.telemetry_dir().map(|d| d.display().to_string());
    let _ = telemetry.shutdown();
    match result {
        Ok(run) => println!(
            "[{service}] run {run_id}: {} -> {}",
            n_value,
            run.outputs().get(out).unwrap()
        ),
        Err(error) => {
            eprintln!("[{service}] {error}");
            std::process::exit(1);
        }
    }
    if let Some(dir) = dir {
        println!("[{service}] telemetry: {dir}");
    }
}
