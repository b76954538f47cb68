//! Settings that resolve must also install: TLS files with the default (http) endpoint, a
//! gRPC `-bin` header, and the guard's deadline arithmetic with a huge shutdown timeout.

use std::time::Duration;

use dagtel::telemetry::config::{ConfigBuilder, ExporterKind};
use dagtel::telemetry::{InstallOptions, install};

/// Installs locally, without the process environment.
fn local() -> InstallOptions {
    InstallOptions::new()
        .local()
        .parent_env(Vec::<(String, String)>::new())
}

#[test]
fn a_certificate_with_the_default_http_endpoint_is_ignored_with_a_warning() {
    let r = ConfigBuilder::new()
        .env([
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ssl/ca.pem"),
        ])
        .resolve()
        .unwrap();
    assert!(r.settings.otlp.traces.endpoint.starts_with("http://"));
    let installed = install(&r.settings, "svc", local());
    assert!(
        r.settings.otlp.traces.certificate.is_none() && !r.warnings.is_empty(),
        "endpoint {}, certificate kept {:?}, warnings {:?}, install: {}",
        r.settings.otlp.traces.endpoint,
        r.settings.otlp.traces.certificate,
        r.warnings,
        match installed {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.to_string(),
        }
    );
}

/// A gRPC endpoint without a scheme is plain `http://` when insecure: its TLS files are
/// ignored with a warning too, instead of failing the install.
#[test]
fn a_certificate_with_an_insecure_scheme_less_grpc_endpoint_is_ignored_with_a_warning() {
    let r = ConfigBuilder::new()
        .env([
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ssl/ca.pem"),
        ])
        .resolve()
        .unwrap();
    assert!(r.settings.otlp.traces.certificate.is_none(), "{r:?}");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.variable == "OTEL_EXPORTER_OTLP_CERTIFICATE"
                && w.problem.contains("no scheme and `insecure` is true")),
        "{:?}",
        r.warnings
    );
    assert!(install(&r.settings, "svc", local()).is_ok());
}

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
    let installed = install(&r.settings, "svc", local());
    assert!(
        installed.is_ok() || !r.warnings.is_empty(),
        "config: no warning; install: {}",
        installed.err().map(|e| e.to_string()).unwrap_or_default()
    );
}

/// `shutdown_timeout(Duration::MAX)` ("wait as long as it takes") makes `shutdown` (and so
/// `Drop`) panic: `Instant::now() + Duration::MAX` overflows.
#[test]
fn a_huge_shutdown_timeout_does_not_panic() {
    let r = ConfigBuilder::new()
        .env(Vec::<(String, String)>::new())
        .exporters([ExporterKind::Memory])
        .resolve()
        .unwrap();
    let guard = install(&r.settings, "svc", local().shutdown_timeout(Duration::MAX)).unwrap();
    let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guard.shutdown()));
    assert!(report.is_ok(), "shutdown panicked");
}
