//! the guard's deadline arithmetic.

use std::time::Duration;

use dagtel::telemetry::config::{ConfigBuilder, ExporterKind};
use dagtel::telemetry::{InstallOptions, install};

/// `shutdown_timeout(Duration::MAX)` ("wait as long as it takes") makes `shutdown` (and so
/// `Drop`) panic: `Instant::now() + Duration::MAX` overflows.
#[test]
fn a_huge_shutdown_timeout_does_not_panic() {
    let r = ConfigBuilder::new()
        .env(Vec::<(String, String)>::new())
        .exporters([ExporterKind::Memory])
        .resolve()
        .unwrap();
    let guard = install(
        &r.settings,
        "svc",
        InstallOptions::new()
            .local()
            .parent_env(Vec::<(String, String)>::new())
            .shutdown_timeout(Duration::MAX),
    )
    .unwrap();
    let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guard.shutdown()));
    assert!(report.is_ok(), "shutdown panicked");
}
