//! One table row per variable: a valid value (used, no warning, provenance `env:<VAR>`), a
//! garbage value (ignored with one warning naming variable and value, everything else as if
//! unset), the same garbage in strict mode (an error naming both), and blank values (unset).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dagtel::telemetry::config::{
    Compression, ConfigBuilder, ConfigError, Detector, ExemplarFilter, ExporterKind,
    HistogramAggregation, LogLevel, Profile, Propagator, Protocol, SamplerKind, Settings, Signal,
    Source, TemporalityPreference, variables,
};

use super::{resolve, strict_error};

struct Case {
    var: String,
    valid: &'static str,
    /// The setting the valid value lands in (the first signal's, for general variables).
    key: String,
    check: Box<dyn Fn(&Settings) -> bool>,
    /// The garbage, and how the warning shows it (header values are never echoed).
    garbage: Option<(&'static str, String)>,
}

fn case(
    var: impl Into<String>,
    valid: &'static str,
    key: impl Into<String>,
    check: impl Fn(&Settings) -> bool + 'static,
    garbage: Option<&'static str>,
) -> Case {
    Case {
        var: var.into(),
        valid,
        key: key.into(),
        check: Box::new(check),
        garbage: garbage.map(|g| (g, g.to_owned())),
    }
}

fn otlp_cases(out: &mut Vec<Case>) {
    let prefixes: [(String, Option<Signal>); 4] = [
        ("OTEL_EXPORTER_OTLP_".to_owned(), None),
        (
            "OTEL_EXPORTER_OTLP_TRACES_".to_owned(),
            Some(Signal::Traces),
        ),
        ("OTEL_EXPORTER_OTLP_LOGS_".to_owned(), Some(Signal::Logs)),
        (
            "OTEL_EXPORTER_OTLP_METRICS_".to_owned(),
            Some(Signal::Metrics),
        ),
    ];
    for (prefix, only) in prefixes {
        // The signals the variable must change; the others must keep their default.
        let hits = move |s: Signal| only.is_none_or(|o| o == s);
        let first = only.unwrap_or(Signal::Traces);
        let key = move |field: &str| format!("otlp.{first}.{field}");
        let each = move |f: fn(&dagtel::telemetry::config::OtlpSettings, Signal) -> bool| {
            move |s: &Settings| {
                let d = Settings::default();
                Signal::ALL.iter().all(|&sig| {
                    if hits(sig) {
                        f(s.otlp.get(sig), sig)
                    } else {
                        s.otlp.get(sig).protocol == d.otlp.get(sig).protocol
                            && s.otlp.get(sig).headers == d.otlp.get(sig).headers
                            && s.otlp.get(sig).timeout == d.otlp.get(sig).timeout
                            && !s.otlp.get(sig).endpoint_set
                    }
                })
            }
        };
        let general = only.is_none();
        out.push(case(
            format!("{prefix}ENDPOINT"),
            "http://collector:4318",
            key("endpoint"),
            move |s: &Settings| {
                Signal::ALL.iter().all(|&sig| {
                    let o = s.otlp.get(sig);
                    if !hits(sig) {
                        !o.endpoint_set
                    } else if general {
                        o.endpoint == format!("http://collector:4318/v1/{sig}") && o.endpoint_set
                    } else {
                        o.endpoint == "http://collector:4318" && o.endpoint_set
                    }
                })
            },
            Some("ftp://collector"),
        ));
        out.push(case(
            format!("{prefix}PROTOCOL"),
            "GRPC",
            key("protocol"),
            each(|o, _| o.protocol == Protocol::Grpc && o.endpoint == "http://localhost:4317"),
            Some("carrier-pigeon"),
        ));
        let mut headers = case(
            format!("{prefix}HEADERS"),
            "x-tenant=acme,authorization=Bearer%20abc",
            key("headers"),
            each(|o, _| {
                o.headers
                    == [
                        ("x-tenant".to_owned(), "acme".to_owned()),
                        ("authorization".to_owned(), "Bearer abc".to_owned()),
                    ]
            }),
            None,
        );
        headers.garbage = Some(("Bearer s3cr3t", "<entry 1 hidden, 13 chars>".to_owned()));
        out.push(headers);
        out.push(case(
            format!("{prefix}TIMEOUT"),
            "2500",
            key("timeout"),
            each(|o, _| o.timeout == Duration::from_millis(2500)),
            Some("-1"),
        ));
        out.push(case(
            format!("{prefix}COMPRESSION"),
            "GZip",
            key("compression"),
            each(|o, _| o.compression == Compression::Gzip),
            Some("brotli"),
        ));
        out.push(case(
            format!("{prefix}INSECURE"),
            "TRUE",
            key("insecure"),
            each(|o, _| o.insecure),
            Some("yes"),
        ));
        for (suffix, field) in [
            ("CERTIFICATE", "certificate"),
            ("CLIENT_KEY", "client_key"),
            ("CLIENT_CERTIFICATE", "client_certificate"),
        ] {
            out.push(case(
                format!("{prefix}{suffix}"),
                "/etc/tls/file.pem",
                key(field),
                move |s: &Settings| {
                    let want = Some(PathBuf::from("/etc/tls/file.pem"));
                    Signal::ALL.iter().all(|&sig| {
                        let o = s.otlp.get(sig);
                        let got = match field {
                            "certificate" => &o.certificate,
                            "client_key" => &o.client_key,
                            _ => &o.client_certificate,
                        };
                        (*got == want) == hits(sig)
                    })
                },
                None,
            ));
        }
    }
}

fn batch_cases(out: &mut Vec<Case>) {
    type Of = fn(&Settings) -> dagtel::telemetry::config::BatchSettings;
    let batches: [(&str, &str, Of); 2] = [
        ("BSP", "span_batch", |s| s.span_batch),
        ("BLRP", "log_batch", |s| s.log_batch),
    ];
    for (prefix, key, of) in batches {
        out.push(case(
            format!("OTEL_{prefix}_SCHEDULE_DELAY"),
            "250",
            format!("{key}.schedule_delay"),
            move |s| of(s).schedule_delay == Duration::from_millis(250),
            Some("soon"),
        ));
        out.push(case(
            format!("OTEL_{prefix}_EXPORT_TIMEOUT"),
            "0",
            format!("{key}.export_timeout"),
            move |s| of(s).export_timeout == Duration::ZERO,
            Some("-5"),
        ));
        out.push(case(
            format!("OTEL_{prefix}_MAX_QUEUE_SIZE"),
            "8192",
            format!("{key}.max_queue_size"),
            move |s| of(s).max_queue_size == 8192,
            Some("0"),
        ));
        out.push(case(
            format!("OTEL_{prefix}_MAX_EXPORT_BATCH_SIZE"),
            "64",
            format!("{key}.max_export_batch_size"),
            move |s| of(s).max_export_batch_size == 64,
            Some("1e3"),
        ));
    }
}

fn limit_cases(out: &mut Vec<Case>) {
    type Get = fn(&Settings) -> (u32, Option<u32>);
    let rows: [(&str, &str, &str, Get); 10] = [
        (
            "OTEL_ATTRIBUTE_COUNT_LIMIT",
            "16",
            "limits.span_attribute_count",
            |s| {
                let both =
                    s.limits.span_attribute_count == 16 && s.limits.log_attribute_count == 16;
                (if both { 16 } else { 0 }, None)
            },
        ),
        (
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "16",
            "limits.span_attribute_value_length",
            |s| {
                (
                    16,
                    s.limits
                        .span_attribute_value_length
                        .and(s.limits.log_attribute_value_length),
                )
            },
        ),
        (
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
            "16",
            "limits.span_attribute_count",
            |s| (s.limits.span_attribute_count, None),
        ),
        (
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "16",
            "limits.span_attribute_value_length",
            |s| (16, s.limits.span_attribute_value_length),
        ),
        (
            "OTEL_SPAN_EVENT_COUNT_LIMIT",
            "16",
            "limits.span_event_count",
            |s| (s.limits.span_event_count, None),
        ),
        (
            "OTEL_SPAN_LINK_COUNT_LIMIT",
            "16",
            "limits.span_link_count",
            |s| (s.limits.span_link_count, None),
        ),
        (
            "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
            "16",
            "limits.event_attribute_count",
            |s| (s.limits.event_attribute_count, None),
        ),
        (
            "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
            "16",
            "limits.link_attribute_count",
            |s| (s.limits.link_attribute_count, None),
        ),
        (
            "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT",
            "16",
            "limits.log_attribute_count",
            |s| (s.limits.log_attribute_count, None),
        ),
        (
            "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "16",
            "limits.log_attribute_value_length",
            |s| (16, s.limits.log_attribute_value_length),
        ),
    ];
    let garbage = ["-3", "4294967296", "lots", "1.5", "0x10"];
    for (i, (var, valid, key, get)) in rows.into_iter().enumerate() {
        let value_length = var.contains("VALUE_LENGTH");
        out.push(case(
            var,
            valid,
            key,
            move |s| {
                let (count, length) = get(s);
                count == 16 && (!value_length || length == Some(16))
            },
            Some(garbage[i % garbage.len()]),
        ));
    }
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        case(
            "OTEL_SDK_DISABLED",
            "TRUE",
            "disabled",
            |s| s.disabled,
            Some("yes"),
        ),
        case(
            "DAGTEL_PROFILE",
            "Dev",
            "profile",
            |s| s.profile == Profile::Dev,
            Some("staging"),
        ),
        case(
            "DAGTEL_STRICT_CONFIG",
            "true",
            "strict",
            |s| s.strict,
            Some("1"),
        ),
        case(
            "DAGTEL_TELEMETRY_DIR",
            "/var/lib/dagtel",
            "telemetry_dir",
            |s| s.telemetry_dir == Path::new("/var/lib/dagtel"),
            None,
        ),
        case(
            "OTEL_RESOURCE_ATTRIBUTES",
            "team=data, region=eu%20west",
            "resource_attributes",
            |s| {
                s.resource_attributes
                    == [
                        ("team".to_owned(), "data".to_owned()),
                        ("region".to_owned(), "eu west".to_owned()),
                    ]
            },
            Some("novalue"),
        ),
        case(
            "OTEL_SERVICE_NAME",
            "etl",
            "service.name",
            |s| s.service.name.as_deref() == Some("etl"),
            None,
        ),
        case(
            "DAGTEL_SERVICE_VERSION",
            "1.2.3",
            "service.version",
            |s| s.service.version.as_deref() == Some("1.2.3"),
            None,
        ),
        case(
            "DAGTEL_SERVICE_NAMESPACE",
            "pipelines",
            "service.namespace",
            |s| s.service.namespace.as_deref() == Some("pipelines"),
            None,
        ),
        case(
            "DAGTEL_SERVICE_INSTANCE_ID",
            "i-1",
            "service.instance_id",
            |s| s.service.instance_id.as_deref() == Some("i-1"),
            None,
        ),
        case(
            "OTEL_SERVICE_INSTANCE_ID",
            "i-2",
            "service.instance_id",
            |s| s.service.instance_id.as_deref() == Some("i-2"),
            None,
        ),
        case(
            "DEPLOYMENT_ENVIRONMENT",
            "staging",
            "service.environment",
            |s| s.service.environment.as_deref() == Some("staging"),
            None,
        ),
        case(
            "DAGTEL_ENVIRONMENT",
            "prod-eu",
            "service.environment",
            |s| s.service.environment.as_deref() == Some("prod-eu"),
            None,
        ),
        case(
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS",
            "os, HOST",
            "detectors",
            |s| s.detectors == [Detector::Os, Detector::Host],
            Some("gpu"),
        ),
        case(
            "OTEL_TRACES_SAMPLER",
            "TraceIdRatio",
            "sampler.kind",
            |s| s.sampler.kind == SamplerKind::TraceIdRatio,
            Some("sometimes"),
        ),
        case(
            "OTEL_TRACES_SAMPLER_ARG",
            "0.5",
            "sampler.ratio",
            |s| s.sampler.ratio == 0.5,
            Some("1.5"),
        ),
        case(
            "OTEL_METRIC_EXPORT_INTERVAL",
            "15000",
            "metrics.export_interval",
            |s| s.metrics.export_interval == Duration::from_secs(15),
            Some("0"),
        ),
        case(
            "OTEL_METRIC_EXPORT_TIMEOUT",
            "100",
            "metrics.export_timeout",
            |s| s.metrics.export_timeout == Duration::from_millis(100),
            Some("ten"),
        ),
        case(
            "OTEL_METRICS_EXEMPLAR_FILTER",
            "ALWAYS_OFF",
            "metrics.exemplar_filter",
            |s| s.metrics.exemplar_filter == ExemplarFilter::AlwaysOff,
            Some("sometimes"),
        ),
        case(
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "Delta",
            "metrics.temporality",
            |s| s.metrics.temporality == TemporalityPreference::Delta,
            Some("weekly"),
        ),
        case(
            "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
            "base2_exponential_bucket_histogram",
            "metrics.histogram_aggregation",
            |s| {
                s.metrics.histogram_aggregation
                    == HistogramAggregation::Base2ExponentialBucketHistogram
            },
            Some("exponential_bucket_histogram"),
        ),
        case(
            "DAGTEL_NODE_METRICS",
            "Layer",
            "metrics.node_series",
            |s| s.metrics.node_series == dagtel::otel::NodeSeries::Layer,
            Some("per-node"),
        ),
        case(
            "OTEL_PROPAGATORS",
            "baggage",
            "propagators",
            |s| s.propagators == [Propagator::Baggage],
            Some("b3"),
        ),
        case(
            "OTEL_LOG_LEVEL",
            "DEBUG",
            "sdk_log_level",
            |s| s.sdk_log_level == LogLevel::Debug,
            Some("loud"),
        ),
    ];
    for signal in Signal::ALL {
        let upper = signal.name().to_ascii_uppercase();
        v.push(case(
            format!("OTEL_{upper}_EXPORTER"),
            "console",
            format!("exporters.{signal}"),
            move |s| {
                Signal::ALL.iter().all(|&sig| {
                    let want = if sig == signal {
                        ExporterKind::Console
                    } else {
                        ExporterKind::File
                    };
                    *s.exporters.get(sig) == [want]
                })
            },
            Some("kafka"),
        ));
    }
    otlp_cases(&mut v);
    batch_cases(&mut v);
    limit_cases(&mut v);
    v
}

#[test]
fn the_table_covers_every_variable() {
    let table: BTreeSet<String> = cases().into_iter().map(|c| c.var).collect();
    let mut known: BTreeSet<String> = variables().into_iter().collect();
    // The file variable is exercised by the file tests.
    assert!(known.remove("DAGTEL_CONFIG"));
    assert_eq!(table, known);
}

const UNUSED_ENDPOINT: &str = " (unused: no signal exports over OTLP, see `exporters.*`)";

/// `vars`, plus an https endpoint when `var` is a TLS file: with the default (plain http)
/// endpoint, TLS files are ignored with a warning.
fn with_tls_endpoint<'a>(var: &str, vars: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = vars.to_vec();
    if var.contains("CERTIFICATE") || var.contains("CLIENT_KEY") {
        vars.push(("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"));
    }
    vars
}

#[test]
fn valid_values_are_used_and_traced_to_their_variable() {
    let baseline = resolve(&[]).settings;
    for c in cases() {
        let r = resolve(&with_tls_endpoint(&c.var, &[(&c.var, c.valid)]));
        assert!(r.warnings.is_empty(), "{}: {:?}", c.var, r.warnings);
        assert!(
            (c.check)(&r.settings),
            "{}={}: {:#?}",
            c.var,
            c.valid,
            r.settings
        );
        assert_ne!(r.settings, baseline, "{} changed nothing", c.var);
        assert_eq!(
            r.source(&c.key),
            Some(&Source::Env(c.var.clone())),
            "{} -> {}",
            c.var,
            c.key
        );
    }
}

#[test]
fn garbage_is_ignored_with_one_warning_naming_variable_and_value() {
    let baseline = resolve(&[]).settings;
    for c in cases() {
        let Some((garbage, shown)) = &c.garbage else {
            continue;
        };
        let r = resolve(&[(&c.var, garbage)]);
        assert_eq!(
            r.settings, baseline,
            "{}={garbage} changed a setting",
            c.var
        );
        assert_eq!(r.warnings.len(), 1, "{}: {:?}", c.var, r.warnings);
        let w = &r.warnings[0];
        assert_eq!(w.variable, c.var);
        assert_eq!(&w.value, shown);
        assert!(!w.problem.is_empty());
        // An endpoint no signal uses (nothing exports over OTLP by default) says so.
        let used = w.used.trim_end_matches(UNUSED_ENDPOINT);
        assert!(used.ends_with("(default)"), "{}: used {:?}", c.var, w.used);
        let line = w.to_string();
        assert!(
            line.contains(&c.var) && line.contains(shown.as_str()),
            "{line}"
        );
    }
}

#[test]
fn strict_mode_makes_garbage_an_error_naming_variable_and_value() {
    for c in cases() {
        let Some((garbage, shown)) = &c.garbage else {
            continue;
        };
        let err = strict_error(&[(&c.var, garbage)]);
        let ConfigError::Strict { problems } = &err else {
            panic!("{}: {err}", c.var);
        };
        assert_eq!(problems.len(), 1);
        let msg = err.to_string();
        assert!(
            msg.contains(&c.var) && msg.contains(shown.as_str()),
            "{msg}"
        );
        if c.var.contains("HEADERS") {
            assert!(!msg.contains(garbage), "secret echoed: {msg}");
        }
    }
}

#[test]
fn strict_mode_can_come_from_the_environment() {
    let err = ConfigBuilder::new()
        .env([
            ("DAGTEL_STRICT_CONFIG", "TRUE"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "many"),
        ])
        .resolve()
        .unwrap_err();
    assert!(
        err.to_string().contains("OTEL_BSP_MAX_QUEUE_SIZE=\"many\""),
        "{err}"
    );
    // Strict mode with nothing invalid resolves.
    assert!(resolve(&[("DAGTEL_STRICT_CONFIG", "true")]).settings.strict);
}

#[test]
fn blank_values_count_as_unset() {
    let baseline = resolve(&[]).settings;
    for var in variables() {
        for blank in ["", "   ", "\t"] {
            let r = resolve(&[(&var, blank)]);
            assert_eq!(r.settings, baseline, "{var}={blank:?}");
            assert!(r.warnings.is_empty(), "{var}={blank:?}: {:?}", r.warnings);
        }
    }
}

#[test]
fn per_signal_otlp_variables_beat_the_general_one() {
    let fields: [(&str, &str, &str); 7] = [
        (
            "ENDPOINT",
            "http://general:4318",
            "http://specific:4318/custom",
        ),
        ("PROTOCOL", "grpc", "http/json"),
        ("HEADERS", "a=general", "a=specific"),
        ("TIMEOUT", "1000", "2000"),
        ("COMPRESSION", "gzip", "none"),
        ("INSECURE", "true", "false"),
        ("CERTIFICATE", "/general.pem", "/specific.pem"),
    ];
    for (field, general, specific) in fields {
        for signal in Signal::ALL {
            let upper = signal.name().to_ascii_uppercase();
            let g = format!("OTEL_EXPORTER_OTLP_{field}");
            let sv = format!("OTEL_EXPORTER_OTLP_{upper}_{field}");
            let r = resolve(&with_tls_endpoint(&g, &[(&g, general), (&sv, specific)]));
            assert!(r.warnings.is_empty(), "{:?}", r.warnings);
            let key = format!("otlp.{signal}.{}", field.to_ascii_lowercase());
            let row = r.explain().get(&key).unwrap();
            assert_eq!(row.source, Source::Env(sv.clone()), "{key}");
            for other in Signal::ALL.into_iter().filter(|s| *s != signal) {
                let key = format!("otlp.{other}.{}", field.to_ascii_lowercase());
                assert_eq!(r.source(&key), Some(&Source::Env(g.clone())), "{key}");
            }
            let o = r.settings.otlp.get(signal);
            match field {
                "ENDPOINT" => assert_eq!(o.endpoint, specific),
                "PROTOCOL" => assert_eq!(o.protocol, Protocol::HttpJson),
                "HEADERS" => assert_eq!(o.headers, [("a".to_owned(), "specific".to_owned())]),
                "TIMEOUT" => assert_eq!(o.timeout, Duration::from_secs(2)),
                "COMPRESSION" => assert_eq!(o.compression, Compression::None),
                "INSECURE" => assert!(!o.insecure),
                _ => assert_eq!(o.certificate, Some(PathBuf::from(specific))),
            }
        }
    }
}

#[test]
fn span_and_log_limits_beat_the_general_attribute_limits() {
    let r = resolve(&[
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "20"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "30"),
        ("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "40"),
    ]);
    let l = r.settings.limits;
    assert_eq!((l.span_attribute_count, l.log_attribute_count), (20, 10));
    assert_eq!(
        (l.span_attribute_value_length, l.log_attribute_value_length),
        (Some(30), Some(40))
    );
    // The event and link limits are not attribute-count fallbacks.
    assert_eq!(
        (l.event_attribute_count, l.link_attribute_count),
        (128, 128)
    );
    assert_eq!(
        r.source("limits.log_attribute_count"),
        Some(&Source::Env("OTEL_ATTRIBUTE_COUNT_LIMIT".into()))
    );
}

#[test]
fn the_documentation_lists_every_variable() {
    let doc = include_str!("../../docs/configuration.md");
    for var in variables() {
        assert!(
            doc.contains(&format!("`{var}`")),
            "docs/configuration.md misses {var}"
        );
    }
}
