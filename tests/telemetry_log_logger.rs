//! A program that set a `log` logger (env_logger and the like) but no `tracing` subscriber:
//! the install still sets dagtel's subscriber, which exports `tracing` events, and says only
//! that records of the `log` crate are not bridged. One test per binary (global state).

#[path = "support/telemetry.rs"]
mod support;

use dagtel::telemetry::config::ExporterKind;
use dagtel::telemetry::{InstallOptions, install};

struct Nop;

impl log::Log for Nop {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, _: &log::Record<'_>) {}
    fn flush(&self) {}
}

static NOP: Nop = Nop;

#[test]
fn a_log_logger_is_not_a_tracing_subscriber() {
    log::set_logger(&NOP).expect("no logger yet");
    let s = support::settings("log-logger", &[ExporterKind::Memory]);
    let guard = install(
        &s,
        "svc",
        InstallOptions::new().parent_env(Vec::<(String, String)>::new()),
    )
    .unwrap();
    assert!(guard.subscriber_installed());
    let warnings = guard.subscriber_warnings().to_vec();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("a `log` logger was already set"),
        "{warnings:?}"
    );

    assert!(support::event_reaches_memory_logs(
        &guard,
        "an event after install"
    ));
    guard.shutdown();
}
