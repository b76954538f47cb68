//! values the merged-settings checks reject (file, builder, endpoint/protocol) fall
//! back to the *default*, not to the next lower layer, and keep the provenance of the layer
//! whose value was rejected.

use crate::TempToml;
use dagtel::telemetry::config::{ConfigBuilder, Source};

/// `DAGTEL_PROFILE=prod` samples 1%. A ratio of 1.5 in the file is invalid ("warn: the lower
/// layer's value is used", says the Settings table), so prod's 0.01 should stay; instead the
/// default 1.0 is used and production samples every trace.
#[test]
fn an_invalid_file_ratio_keeps_the_profiles_ratio() {
    let f = TempToml::new("[sampler]\nratio = 1.5\n");
    let r = ConfigBuilder::new()
        .env([("DAGTEL_PROFILE", "prod")])
        .config_file(&f.0)
        .resolve()
        .unwrap();
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert_eq!(r.settings.sampler.ratio, 0.01, "warning: {}", r.warnings[0]);
}

/// Whatever value is used, explain() must say where it came from: after the file's 1.5 is
/// replaced by the default 1.0, explain() still says `file:...`.
#[test]
fn explain_does_not_credit_the_file_with_a_value_it_did_not_set() {
    let f = TempToml::new("[sampler]\nratio = 1.5\n");
    let r = ConfigBuilder::new()
        .env(Vec::<(String, String)>::new())
        .config_file(&f.0)
        .resolve()
        .unwrap();
    let row = r.explain().get("sampler.ratio").unwrap();
    assert_eq!(r.settings.sampler.ratio, 1.0);
    assert_eq!(
        row.source,
        Source::Default,
        "explain: {} from {}; warning: {}",
        row.value,
        row.source,
        r.warnings[0]
    );
}

/// An endpoint from the environment that the protocol rejects (no scheme, HTTP protocol):
/// the file's valid endpoint is the lower layer's value, but the default localhost is used
/// (and with it the embedded `file` exporter instead of `otlp`).
#[test]
fn an_env_endpoint_rejected_after_merging_keeps_the_files_endpoint() {
    let f = TempToml::new("[otlp]\nendpoint = \"http://file-collector:4318\"\n");
    let r = ConfigBuilder::new()
        .env([("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")])
        .config_file(&f.0)
        .resolve()
        .unwrap();
    // One warning for the one variable, naming what each signal used instead.
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        ["traces", "logs", "metrics"]
            .iter()
            .all(|s| r.warnings[0].used.contains(&format!("otlp.{s}.endpoint"))),
        "{}",
        r.warnings[0]
    );
    assert_eq!(
        r.settings.otlp.traces.endpoint,
        "http://file-collector:4318/v1/traces",
        "warning: {}; explain source {}",
        r.warnings[0],
        r.explain().get("otlp.traces.endpoint").unwrap().source
    );
}

/// A general OTLP setting in a file that each signal rejects (a CA certificate with a plain
/// http endpoint) is one warning, named by the file's key.
#[test]
fn a_general_file_setting_rejected_for_every_signal_warns_once() {
    let f = TempToml::new(
        "[otlp]\nendpoint = \"http://collector:4318\"\ncertificate = \"/etc/ssl/ca.pem\"\n",
    );
    let r = ConfigBuilder::new()
        .env(Vec::<(String, String)>::new())
        .config_file(&f.0)
        .resolve()
        .unwrap();
    let certificate: Vec<&str> = r
        .warnings
        .iter()
        .filter(|w| w.variable.contains("certificate"))
        .map(|w| w.variable.as_str())
        .collect();
    assert_eq!(certificate.len(), 1, "{:?}", r.warnings);
    assert!(
        certificate[0].starts_with("otlp.certificate in file:"),
        "{certificate:?}"
    );
    assert!(r.settings.otlp.traces.certificate.is_none());
}
