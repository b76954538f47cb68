//! a header value the configuration accepts (non-ASCII, allowed by the documented
//! rule "values must not contain line breaks") makes `install` fail outright with gRPC,
//! instead of being ignored with a warning like any other bad header.

use dagtel::telemetry::config::{ConfigBuilder, ExporterKind};
use dagtel::telemetry::{InstallOptions, install};

#[test]
fn a_header_the_config_accepts_does_not_fail_the_grpc_install() {
    let r = ConfigBuilder::new()
        .env([
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-trace-bin=abc,x-ok=1"),
        ])
        .exporters([ExporterKind::Otlp])
        .resolve()
        .unwrap();
    let installed = install(
        &r.settings,
        "svc",
        InstallOptions::new()
            .local()
            .parent_env(Vec::<(String, String)>::new()),
    );
    assert!(
        installed.is_ok() || !r.warnings.is_empty(),
        "config: no warning; install: {}",
        installed.err().map(|e| e.to_string()).unwrap_or_default()
    );
}
