//! `OTEL_SDK_DISABLED=true` turns the SDK off, not the program's console: the global
//! `tracing` subscriber (console lines only) is still installed. One test per binary (global
//! state).

use dagtel::telemetry::config::ConfigBuilder;
use dagtel::telemetry::{InstallOptions, install};

#[test]
fn disabled_telemetry_still_installs_the_console_subscriber() {
    let r = ConfigBuilder::new()
        .env([("OTEL_SDK_DISABLED", "true")])
        .resolve()
        .unwrap();
    assert!(r.settings.disabled);
    let guard = install(
        &r.settings,
        "svc",
        InstallOptions::new().parent_env(Vec::<(String, String)>::new()),
    )
    .unwrap();
    assert!(guard.subscriber_installed());
    assert!(tracing::dispatcher::has_been_set());
    assert!(guard.tracer_provider().is_none() && guard.logger_provider().is_none());
    assert!(
        guard.subscriber_warnings().is_empty(),
        "{:?}",
        guard.subscriber_warnings()
    );
    guard.shutdown();
}
