//! `RUST_LOG` as the install reads it: an invalid value is reported on the guard (and printed
//! by `init`), a blank one counts as unset. Each case runs this binary again in a child process
//! with `RUST_LOG` set (the subscriber is global, and tests never change their environment).

#[path = "support/telemetry.rs"]
mod support;

use dagtel::telemetry::config::{ExporterKind, Settings};
use dagtel::telemetry::{InstallOptions, install};

const CHILD: &str = "DAGTEL_TEST_RUST_LOG_CHILD";

fn warnings_in_child(rust_log: &str) -> String {
    child("install_in_child", rust_log)
}

fn child(test: &str, rust_log: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env("RUST_LOG", rust_log)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}"
    );
    stdout
}

#[test]
fn an_invalid_rust_log_is_reported_by_the_guard_and_a_blank_one_is_not() {
    let bad = warnings_in_child("my_app=notalevel");
    assert!(
        bad.contains("WARNINGS: [\"dagtel: telemetry configuration: ignored RUST_LOG="),
        "{bad}"
    );
    let blank = warnings_in_child("  ");
    assert!(blank.contains("WARNINGS: []"), "{blank}");
}

#[test]
fn install_in_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let mut s = Settings::default();
    s.exporters.traces.clear();
    s.exporters.logs.clear();
    s.exporters.metrics.clear();
    s.detectors.clear();
    let options = InstallOptions::new().parent_env(Vec::<(String, String)>::new());
    let guard = install(&s, "svc", options).unwrap();
    assert!(guard.subscriber_installed());
    println!("WARNINGS: {:?}", guard.subscriber_warnings());
    guard.shutdown();
}

/// Node reports are data: a `RUST_LOG` that says nothing of their target still exports them,
/// one that names it decides.
#[test]
fn node_reports_are_exported_unless_rust_log_names_their_target() {
    for (rust_log, exported) in [
        ("warn", true),
        ("my_app=debug", true),
        ("warn,dagtel::event=off", false),
    ] {
        let out = child("node_report_in_child", rust_log);
        assert!(
            out.contains(&format!("NODE REPORT EXPORTED: {exported}")),
            "RUST_LOG={rust_log}: {out}"
        );
    }
}

#[test]
fn node_report_in_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let s = support::settings("rust-log-node-report", &[ExporterKind::Memory]);
    let options = InstallOptions::new().parent_env(Vec::<(String, String)>::new());
    let guard = install(&s, "svc", options).unwrap();
    let mut g = dagtel::DagBuilder::new("reports");
    let step = g.node("step").run((), |ctx, ()| {
        ctx.event("rows_checked", serde_json::json!({ "rows": 3 }));
        Ok(1u8)
    });
    let plan = g.build().unwrap();
    let plan = plan.plan(&dagtel::Request::new().output(step)).unwrap();
    dagtel::Executor::sequential()
        .hook(guard.hooks())
        .run(&plan, dagtel::Inputs::new())
        .unwrap();
    guard.force_flush();
    let logs = guard
        .memory()
        .logs
        .as_ref()
        .unwrap()
        .get_emitted_logs()
        .unwrap();
    let exported = logs
        .iter()
        .any(|l| format!("{:?}", l.record.body()).contains("rows_checked"));
    println!("NODE REPORT EXPORTED: {exported}");
    guard.shutdown();
}
