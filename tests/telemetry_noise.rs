//! No telemetry about telemetry: with spans going over gRPC to a dead collector (so every
//! export makes the transport log), installed globally, only the program's own events at
//! `info` and above become log records. One test per binary: the subscriber is global.

#[path = "support/telemetry.rs"]
mod support;

use dagtel::telemetry::config::{ExporterKind, Protocol};
use dagtel::telemetry::{InstallOptions, install};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

#[test]
fn the_transports_own_events_and_debug_events_are_not_exported() {
    let mut s = support::settings("noise", &[ExporterKind::Memory]);
    s.exporters.traces = vec![ExporterKind::Otlp];
    s.otlp.traces.protocol = Protocol::Grpc;
    s.otlp.traces.endpoint = "http://127.0.0.1:9".into();
    s.span_batch.schedule_delay = std::time::Duration::from_millis(20);
    let guard = install(
        &s,
        "noise-test",
        InstallOptions::new().parent_env(Vec::<(String, String)>::new()),
    )
    .unwrap();
    assert!(guard.subscriber_installed());
    let tracer = guard.tracer_provider().unwrap().tracer("test");
    for round in 0..3 {
        tracer.start(format!("work {round}")).end();
        // Each flush is an export attempt against the dead collector.
        let _ = guard.force_flush();
    }
    tracing::debug!("a debug event stays local");
    tracing::info!(target: "my_app", "the program's own event");
    let _ = guard.force_flush();
    let logs = guard.memory().logs.clone().unwrap();
    let report = guard.shutdown();
    let records = logs.get_emitted_logs().unwrap();
    let targets: Vec<String> = records
        .iter()
        .map(|r| r.record.target().map(|t| t.to_string()).unwrap_or_default())
        .collect();
    assert_eq!(
        targets,
        ["my_app"],
        "only the program's info event: {targets:?}; {report}"
    );
}
