//! Installing globally: `tracing` spans and events reach the file exporter through the global
//! subscriber, and the SDK's own diagnostics never become log records. One test per binary,
//! since the global subscriber and providers can be installed once per process.

#[path = "support/telemetry.rs"]
mod support;

use dagtel::telemetry::config::ExporterKind;
use dagtel::telemetry::{InstallOptions, install, propagation};
use opentelemetry::global;
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

#[test]
fn tracing_spans_and_events_are_exported_and_internal_logs_are_not() {
    let s = support::settings("global", &[ExporterKind::File]);
    let guard = install(
        &s,
        "global-test",
        InstallOptions::new().parent_env(Vec::<(String, String)>::new()),
    )
    .unwrap();
    assert!(guard.subscriber_installed());
    assert!(guard.subscriber_warnings().is_empty());
    let dir = guard.telemetry_dir().unwrap().to_owned();

    let child_env = {
        let span = tracing::info_span!("run", dag.name = "etl");
        let _entered = span.enter();
        tracing::info!(rows = 10, "loaded");
        global::meter("test")
            .u64_counter("dag.runs")
            .build()
            .add(1, &[]);
        // The global propagator was installed: the current context goes to child processes.
        let cx = span.context();
        assert!(cx.span().span_context().is_valid());
        propagation::child_env(&cx, None)
    };
    assert!(
        child_env.iter().any(|(k, _)| k == "TRACEPARENT"),
        "{child_env:?}"
    );

    let report = guard.shutdown();
    assert!(report.is_complete(), "{report}");

    let spans: Vec<_> = support::traces(&dir)
        .into_iter()
        .flat_map(|r| r.resource_spans)
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .collect();
    let run = spans
        .iter()
        .find(|s| s.name == "run")
        .expect("the tracing span");
    assert_eq!(support::attr(&run.attributes, "dag.name"), Some("etl"));

    let scopes: Vec<_> = support::logs(&dir)
        .into_iter()
        .flat_map(|r| r.resource_logs)
        .flat_map(|rl| rl.scope_logs)
        .collect();
    let records: Vec<_> = scopes.iter().flat_map(|s| &s.log_records).collect();
    let loaded = records
        .iter()
        .find(|r| format!("{:?}", r.body).contains("loaded"))
        .expect("the tracing event");
    // Correlated with the span it was emitted in.
    assert_eq!(loaded.trace_id, run.trace_id);
    for scope in &scopes {
        let name = scope.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("");
        assert!(
            !name.starts_with("opentelemetry"),
            "internal log exported: {name}"
        );
    }
    let metric_names: Vec<_> = support::metrics(&dir)
        .into_iter()
        .flat_map(|r| r.resource_metrics)
        .flat_map(|rm| rm.scope_metrics)
        .flat_map(|sm| sm.metrics)
        .map(|m| m.name)
        .collect();
    assert!(
        metric_names.iter().any(|n| n == "dag.runs"),
        "{metric_names:?}"
    );
}
