//! A program that set its own global `tracing` subscriber before installing: the install
//! cannot put its own in place, so `tracing` events do not become log records, and the guard
//! says so (`init` prints it) instead of reporting nothing lost. One test per binary, since a
//! global subscriber can be set once per process.

#[path = "support/telemetry.rs"]
mod support;

use dagtel::telemetry::config::ExporterKind;
use dagtel::telemetry::{InstallOptions, install};

#[test]
fn an_existing_subscriber_is_reported_and_its_layers_still_export() {
    let s = support::settings("own-subscriber", &[ExporterKind::Memory]);
    let options = || InstallOptions::new().parent_env(Vec::<(String, String)>::new());

    // The program's own subscriber, set first (as most programs do).
    tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .try_init()
        .expect("no subscriber set yet in this process");
    let guard = install(&s, "svc", options()).unwrap();
    assert!(!guard.subscriber_installed());
    let warnings = guard.subscriber_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("dagtel::telemetry::subscriber::layers"),
        "{warnings:?}"
    );
    guard.shutdown();

    // Nothing to warn about when neither traces nor logs are exported.
    let mut metrics_only = support::settings("own-subscriber-metrics", &[ExporterKind::Memory]);
    metrics_only.exporters.logs.clear();
    metrics_only.exporters.traces.clear();
    let guard = install(&metrics_only, "svc", options()).unwrap();
    assert!(guard.logger_provider().is_none() && guard.tracer_provider().is_none());
    assert!(guard.subscriber_warnings().is_empty());
    guard.shutdown();
}
