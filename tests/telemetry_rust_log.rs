//! `RUST_LOG` as the install reads it: an invalid value is reported on the guard (and printed
//! by `init`), a blank one counts as unset. Each case runs this binary again in a child process
//! with `RUST_LOG` set (the subscriber is global, and tests never change their environment).

use dagtel::telemetry::config::Settings;
use dagtel::telemetry::{InstallOptions, install};

const CHILD: &str = "DAGTEL_TEST_RUST_LOG_CHILD";

fn warnings_in_child(rust_log: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "install_in_child", "--nocapture"])
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
