//! Extreme and malformed values go all the way through: resolved with a warning, then
//! installed without a panic, an abort or an export thread that spins. (The table tests in
//! `telemetry_config` check every variable's parsing; these check what the providers get.)

use std::time::Duration;

use dagtel::telemetry::config::{ConfigBuilder, MAX_QUEUE_SIZE, Resolved};
use dagtel::telemetry::{InstallOptions, install};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use proptest::prelude::*;

fn resolve(vars: &[(&str, &str)]) -> Resolved {
    let mut env = vec![
        ("OTEL_TRACES_EXPORTER", "memory"),
        ("OTEL_LOGS_EXPORTER", "memory"),
        ("OTEL_METRICS_EXPORTER", "memory"),
        ("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "none"),
    ];
    env.extend_from_slice(vars);
    ConfigBuilder::new()
        .env(env)
        .resolve()
        .expect("not strict: resolves")
}

fn installs(resolved: &Resolved) {
    let options = InstallOptions::new()
        .local()
        .shutdown_timeout(Duration::from_secs(2))
        .parent_env(Vec::<(String, String)>::new());
    let guard = install(&resolved.settings, "garbage", options).expect("installs");
    guard
        .tracer_provider()
        .unwrap()
        .tracer("t")
        .start("s")
        .end();
    let report = guard.shutdown();
    // In memory everything is delivered; an OTLP endpoint here is never reachable.
    let otlp = resolved
        .settings
        .exporters
        .traces
        .iter()
        .any(|k| format!("{k:?}") == "Otlp");
    assert!(otlp || report.is_complete(), "{report}");
}

fn warned(resolved: &Resolved, variable: &str) -> bool {
    resolved.warnings.iter().any(|w| w.variable == variable)
}

#[test]
fn huge_queue_sizes_are_clamped_not_allocated() {
    for value in ["18446744073709551615", "100000000000", "131073"] {
        for var in ["OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BLRP_MAX_QUEUE_SIZE"] {
            let r = resolve(&[(var, value)]);
            let (mine, other) = if var == "OTEL_BSP_MAX_QUEUE_SIZE" {
                (&r.settings.span_batch, &r.settings.log_batch)
            } else {
                (&r.settings.log_batch, &r.settings.span_batch)
            };
            assert_eq!(
                (mine.max_queue_size, other.max_queue_size <= MAX_QUEUE_SIZE),
                (MAX_QUEUE_SIZE, true),
                "{var}={value}: clamped to the limit, not replaced by the default"
            );
            let warning = r.warnings.iter().find(|w| w.variable == var);
            assert!(
                warning.is_some_and(|w| w.used.contains("clamped")),
                "{var}={value} warns that it was clamped: {:?}",
                r.warnings
            );
            installs(&r);
        }
    }
}

#[test]
fn a_zero_schedule_delay_is_refused() {
    for var in ["OTEL_BSP_SCHEDULE_DELAY", "OTEL_BLRP_SCHEDULE_DELAY"] {
        let r = resolve(&[(var, "0")]);
        assert!(warned(&r, var), "{var}=0 warns: {:?}", r.warnings);
        assert!(!r.settings.span_batch.schedule_delay.is_zero());
        assert!(!r.settings.log_batch.schedule_delay.is_zero());
        installs(&r);
    }
}

#[test]
fn bad_endpoints_warn_and_fall_back_to_the_default() {
    for (value, protocol) in [
        ("garbage", "http/protobuf"),
        ("localhost:4318", "http/protobuf"),
        ("http://[::1", "grpc"),
        ("ftp://collector", "grpc"),
    ] {
        let r = resolve(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", value),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_TRACES_EXPORTER", "otlp"),
        ]);
        assert!(
            warned(&r, "OTEL_EXPORTER_OTLP_ENDPOINT"),
            "{value}: {:?}",
            r.warnings
        );
        assert!(!r.settings.otlp.traces.endpoint_set);
        assert!(
            r.settings
                .otlp
                .traces
                .endpoint
                .starts_with("http://localhost:")
        );
        installs(&r);
    }
}

#[test]
fn tls_files_with_a_plain_http_endpoint_are_ignored_with_a_warning() {
    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ssl/ca.pem"),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/ssl/key.pem"),
        ("OTEL_TRACES_EXPORTER", "otlp"),
    ]);
    let count = |var: &str| r.warnings.iter().filter(|w| w.variable == var).count();
    assert_eq!(
        (
            count("OTEL_EXPORTER_OTLP_CERTIFICATE"),
            count("OTEL_EXPORTER_OTLP_CLIENT_KEY")
        ),
        (1, 1),
        "one warning per ignored variable, not one per signal: {:?}",
        r.warnings
    );
    assert!(r.settings.otlp.traces.certificate.is_none());
    assert!(r.settings.otlp.traces.client_key.is_none());
    installs(&r);
}

#[test]
fn the_signal_path_goes_before_the_query_string() {
    let r = resolve(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://collector:4318/otlp?tenant=a",
    )]);
    assert_eq!(
        r.settings.otlp.traces.endpoint,
        "http://collector:4318/otlp/v1/traces?tenant=a"
    );
    let table = r.explain().to_string();
    assert!(!table.contains("tenant=a"), "the query is masked: {table}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any value of the numeric batch and limit variables resolves and installs.
    #[test]
    fn any_number_resolves_and_installs(
        var in prop::sample::select(vec![
            "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_SCHEDULE_DELAY",
            "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_BLRP_MAX_QUEUE_SIZE", "OTEL_BLRP_SCHEDULE_DELAY",
            "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_SPAN_LINK_COUNT_LIMIT",
            "OTEL_METRIC_EXPORT_INTERVAL",
        ]),
        value in prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            (0u64..10).prop_map(|n| n.to_string()),
            Just("-1".to_string()),
            Just("1e9".to_string()),
            "[ -~]{0,12}",
        ],
    ) {
        installs(&resolve(&[(var, value.as_str())]));
    }
}
