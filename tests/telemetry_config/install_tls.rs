//! TLS files with the *default* endpoint (`http://localhost:4318/...`, plain http)
//! are not ignored: the "with an http:// endpoint: warn, ignored" rule only looks at
//! endpoints some layer set, so the install fails without the `tls` feature.

use dagtel::telemetry::config::ConfigBuilder;
use dagtel::telemetry::{InstallOptions, install};

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
    let installed = install(
        &r.settings,
        "svc",
        InstallOptions::new()
            .local()
            .parent_env(Vec::<(String, String)>::new()),
    );
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
