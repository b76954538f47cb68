//! A program with its own global `tracing` subscriber: installed with
//! `InstallOptions::without_subscriber()` before it, its subscriber carries dagtel's layers and
//! events are exported; an install that finds a subscriber already set says so (`init` prints
//! it) instead of reporting nothing lost. One binary, since a global subscriber can be set once
//! per process.

#[path = "support/telemetry.rs"]
mod support;

use dagtel::telemetry::config::ExporterKind;
use dagtel::telemetry::{InstallOptions, install, subscriber};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn options() -> InstallOptions {
    InstallOptions::new().parent_env(Vec::<(String, String)>::new())
}

#[test]
fn a_programs_own_subscriber_exports_through_the_layers_and_a_late_install_warns() {
    // The order that works: install without the subscriber, then set the program's own with
    // dagtel's layers in it.
    let s = support::settings("own-subscriber", &[ExporterKind::Memory]);
    let guard = install(&s, "svc", options().without_subscriber()).unwrap();
    assert!(!guard.subscriber_installed());
    assert!(guard.subscriber_warnings().is_empty());
    tracing_subscriber::registry()
        .with(subscriber::layers(
            guard.tracer_provider(),
            guard.logger_provider(),
        ))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .try_init()
        .expect("no subscriber set yet in this process");
    assert!(support::event_reaches_memory_logs(
        &guard,
        "through the program's subscriber"
    ));
    guard.shutdown();

    // An install that finds the subscriber set: nothing of its own reaches `tracing`.
    let late = support::settings("own-subscriber-late", &[ExporterKind::Memory]);
    let guard = install(&late, "svc", options()).unwrap();
    assert!(!guard.subscriber_installed());
    let warnings = guard.subscriber_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("InstallOptions::without_subscriber()")
            && warnings[0].contains("subscriber::layers"),
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
