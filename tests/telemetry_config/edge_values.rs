//! adversarial values for the environment parser.

use dagtel::telemetry::build_resource;
use dagtel::telemetry::config::{ConfigBuilder, ExporterKind, Resolved};
use opentelemetry::Key;

fn resolve(vars: &[(&str, &str)]) -> Resolved {
    ConfigBuilder::new()
        .env(vars.iter().copied())
        .resolve()
        .unwrap_or_else(|e| panic!("{vars:?}: {e}"))
}

/// A list with no entry at all (`,`) is neither empty (it is not blank) nor valid: the value
/// is silently dropped, with no warning (and no strict-mode error).
#[test]
fn a_list_of_only_commas_is_warned_about() {
    let r = resolve(&[("OTEL_TRACES_EXPORTER", ","), ("OTEL_PROPAGATORS", " , ,")]);
    assert_eq!(r.settings.exporters.traces, [ExporterKind::File]);
    assert_eq!(
        r.warnings.len(),
        2,
        "expected one warning per malformed list, got {:?}",
        r.warnings
    );
}

/// HTTP header names are case-insensitive: `X-Tenant=a,x-tenant=b` is a repeated key and
/// should keep its last value, not send two headers (the HTTP exporter collects them in a
/// HashMap, so which one wins is random).
#[test]
fn a_header_repeated_with_another_case_keeps_its_last_value() {
    let r = resolve(&[("OTEL_EXPORTER_OTLP_HEADERS", "X-Tenant=a,x-tenant=b")]);
    let headers = &r.settings.otlp.traces.headers;
    assert_eq!(headers.len(), 1, "{headers:?}");
    assert!(
        headers[0].0.eq_ignore_ascii_case("x-tenant") && headers[0].1 == "b",
        "{headers:?}"
    );
}

/// `service.name=` (empty) in OTEL_RESOURCE_ATTRIBUTES beats the name given to init and the
/// service becomes `unknown_service:<exe>`.
#[test]
fn an_empty_service_name_attribute_does_not_beat_the_init_name() {
    let r = ConfigBuilder::new()
        .env([("OTEL_RESOURCE_ATTRIBUTES", "service.name=,team=data")])
        .default_service_name("etl")
        .resolve()
        .unwrap();
    let resource = build_resource(&r.settings, "etl");
    let name = resource.get(&Key::from_static_str("service.name"));
    assert_eq!(
        name.map(|v| v.to_string()),
        Some("etl".to_owned()),
        "warnings: {:?}",
        r.warnings
    );
}

/// Port 99999 is not a port: `http::Uri` keeps the port as text, so the check accepts it, the
/// embedded default switches every signal to OTLP, and every export then fails.
#[test]
fn an_out_of_range_port_is_warned_about() {
    let r = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:99999")]);
    assert!(
        !r.warnings.is_empty(),
        "accepted: traces endpoint {} exporters {:?}",
        r.settings.otlp.traces.endpoint,
        r.settings.exporters.traces
    );
}

/// `http://collector:4318#x` + `/v1/traces` = a fragment, never sent: the request goes to `/`.
#[test]
fn the_signal_path_never_lands_in_a_fragment() {
    let r = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318#x")]);
    let e = &r.settings.otlp.traces.endpoint;
    assert!(
        !r.warnings.is_empty() || !e.contains("#x/v1/traces"),
        "endpoint {e}, no warning"
    );
}

/// An ignored endpoint counts as unset, so with no exporter chosen everything goes to files:
/// the warning must not let the default endpoint it names look like where the data goes.
#[test]
fn an_ignored_endpoint_says_when_no_signal_uses_otlp() {
    let r = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")]);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].used.contains("unused"), "{}", r.warnings[0]);

    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
        ("OTEL_TRACES_EXPORTER", "otlp"),
    ]);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(!r.warnings[0].used.contains("unused"), "{}", r.warnings[0]);
}
