//! credentials in headers/endpoints must never appear in warnings, errors, Debug
//! output or explain().

use crate::TempToml;
use dagtel::telemetry::config::{ConfigBuilder, Resolved};

const SECRET: &str = "s3cr3tT0k3n";

fn resolve(vars: &[(&str, &str)]) -> Resolved {
    ConfigBuilder::new()
        .env(vars.iter().copied())
        .resolve()
        .unwrap_or_else(|e| panic!("{vars:?}: {e}"))
}

fn all_text(r: &Resolved) -> String {
    let warnings: Vec<String> = r.warnings.iter().map(|w| w.to_string()).collect();
    format!("{}\n{}", warnings.join("\n"), r.explain())
}

/// The derived `Debug` of `Settings` (and so of `Resolved` and `TelemetryGuard`) prints every
/// header value and the endpoint's user info.
#[test]
fn debug_output_hides_header_values_and_endpoint_userinfo() {
    let auth = format!("authorization=Bearer%20{SECRET}");
    let endpoint = format!("http://user:{SECRET}@collector:4318");
    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_HEADERS", auth.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
    ]);
    let debug = format!("{r:?}");
    assert!(
        !debug.contains(SECRET),
        "Debug of Resolved leaks: ...{}...",
        {
            let i = debug.find(SECRET).unwrap();
            &debug[i.saturating_sub(60)..i + SECRET.len()]
        }
    );
}

/// `Authorization: Basic <base64>==` (curl's colon syntax) has an `=`, so the warning shows
/// everything before it as the "name": the credential itself.
#[test]
fn a_header_warning_never_shows_a_credential_written_before_an_equals_sign() {
    let cred = "dXNlcjpzM2NyM3RUMGszbg==";
    let value = format!("Authorization: Basic {cred}");
    let r = resolve(&[("OTEL_EXPORTER_OTLP_HEADERS", value.as_str())]);
    assert_eq!(r.warnings.len(), 1);
    let text = all_text(&r);
    assert!(
        !text.contains(&cred[..16]),
        "warning leaks the credential: {}",
        r.warnings[0]
    );
}

/// A scheme-less gRPC endpoint with user info is accepted, but `mask_url` only masks URLs
/// with `://`: explain() shows the password.
#[test]
fn explain_masks_userinfo_of_a_scheme_less_grpc_endpoint() {
    let endpoint = format!("user:{SECRET}@collector:4317");
    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let row = r.explain().get("otlp.traces.endpoint").unwrap();
    assert!(!row.value.contains(SECRET), "explain shows {}", row.value);
}

/// Same endpoint with the default (HTTP) protocol: rejected, and the warning prints it whole.
#[test]
fn a_warning_masks_userinfo_of_a_scheme_less_endpoint() {
    let endpoint = format!("user:{SECRET}@collector:4318");
    let r = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    assert!(!r.warnings.is_empty());
    let text = all_text(&r);
    assert!(!text.contains(SECRET), "{}", r.warnings[0]);
}

/// A password with an unencoded `#`: the URI is rejected, and `mask_url` stops the authority
/// at `#`, so it masks nothing.
#[test]
fn a_warning_masks_userinfo_when_the_password_has_a_hash() {
    let endpoint = format!("https://user:{SECRET}#x@collector:4318");
    let r = resolve(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_str())]);
    let text = all_text(&r);
    assert!(
        !text.contains(SECRET),
        "warnings {:?}; explain shows {}",
        r.warnings,
        r.explain().get("otlp.traces.endpoint").unwrap().value
    );
}

/// `headers` written in the file as the environment variable's string (a natural mistake):
/// figment's type error quotes the whole string.
#[test]
fn a_file_type_error_never_quotes_header_values() {
    let f = TempToml::new(&format!(
        "[otlp]\nheaders = \"authorization=Bearer {SECRET}\"\n"
    ));
    let err = ConfigBuilder::new()
        .config_file(&f.0)
        .env(Vec::<(String, String)>::new())
        .resolve()
        .unwrap_err();
    let text = format!("{err} / {err:?}");
    assert!(!text.contains(SECRET), "{text}");
}

/// A misspelt table (`[otlp.trace]`) is an unknown key, and its warning prints the whole
/// table as JSON, header values included.
#[test]
fn an_unknown_file_key_warning_never_prints_header_values() {
    let f = TempToml::new(&format!(
        "[otlp.trace]\nheaders = {{ authorization = \"Bearer {SECRET}\" }}\n"
    ));
    let r = ConfigBuilder::new()
        .config_file(&f.0)
        .env(Vec::<(String, String)>::new())
        .resolve()
        .unwrap();
    assert!(!r.warnings.is_empty());
    let text = all_text(&r);
    assert!(!text.contains(SECRET), "{:?}", r.warnings);
}

/// A TOML syntax error on a header line: the parser's message quotes the line.
#[test]
fn a_file_syntax_error_never_quotes_header_values() {
    let f = TempToml::new(&format!(
        "[otlp]\nheaders = {{ authorization = \"Bearer {SECRET}\" \n"
    ));
    let err = ConfigBuilder::new()
        .config_file(&f.0)
        .env(Vec::<(String, String)>::new())
        .resolve()
        .unwrap_err();
    let text = format!("{err}");
    assert!(!text.contains(SECRET), "{text}");
}
