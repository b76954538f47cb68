//! `ConfigBuilder::otlp_endpoint` followed by `otlp_signal_endpoint` turns the general
//! endpoint of the *other* signals into verbatim endpoints (no `/v1/<signal>` path).

use dagtel::telemetry::config::{ConfigBuilder, Signal};

#[test]
fn a_signal_endpoint_after_the_general_one_keeps_the_others_paths() {
    let r = ConfigBuilder::new()
        .env(Vec::<(String, String)>::new())
        .otlp_endpoint("http://collector:4318")
        .otlp_signal_endpoint(Signal::Traces, "http://traces:4318/custom")
        .resolve()
        .unwrap();
    let s = &r.settings;
    assert_eq!(s.otlp.traces.endpoint, "http://traces:4318/custom");
    assert_eq!(s.otlp.logs.endpoint, "http://collector:4318/v1/logs");
    assert_eq!(s.otlp.metrics.endpoint, "http://collector:4318/v1/metrics");
}

/// The same options in the other order work (control).
#[test]
fn control_signal_endpoint_first() {
    let r = ConfigBuilder::new()
        .env(Vec::<(String, String)>::new())
        .otlp_signal_endpoint(Signal::Traces, "http://traces:4318/custom")
        .otlp_endpoint("http://collector:4318")
        .resolve()
        .unwrap();
    let s = &r.settings;
    assert_eq!(s.otlp.traces.endpoint, "http://traces:4318/custom");
    assert_eq!(s.otlp.logs.endpoint, "http://collector:4318/v1/logs");
}

/// A second `otlp_endpoint` call must replace the first one for every signal, even after a
/// signal endpoint was set in between (the first general endpoint is no longer recognised
/// as general, so it is not forgotten... and its path is lost).
#[test]
fn a_second_general_endpoint_replaces_the_first() {
    let r = ConfigBuilder::new()
        .env(Vec::<(String, String)>::new())
        .otlp_endpoint("http://old:4318")
        .otlp_signal_endpoint(Signal::Traces, "http://traces:4318/custom")
        .otlp_endpoint("http://new:4318")
        .resolve()
        .unwrap();
    let s = &r.settings;
    assert_eq!(s.otlp.logs.endpoint, "http://new:4318/v1/logs");
    assert_eq!(s.otlp.metrics.endpoint, "http://new:4318/v1/metrics");
}
