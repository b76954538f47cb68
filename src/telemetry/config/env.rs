//! Reading the `OTEL_*`, `DAGTEL_*` and `DEPLOYMENT_ENVIRONMENT` variables into one layer,
//! following the OpenTelemetry specification's rules (see [`super::parse`]).
//!
//! figment's own `Env` provider is not used: it parses values as typed data (`TRUE` is no
//! boolean, `123` is no string, one bad value fails the whole extraction), which contradicts
//! the specification. The environment is read through [`EnvSource`] so tests can pass a map.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use figment::value::Value;

use super::Signal;
use super::error::ConfigWarning;
use super::layer::{Layer, expand_key};
use super::parse::{self, Parser};
use super::settings::{
    Compression, Detector, ExemplarFilter, ExporterKind, HistogramAggregation, LogLevel, Profile,
    Propagator, Protocol, SamplerKind, TemporalityPreference,
};
use super::source::Source;
use crate::otel::NodeSeries;

/// Where environment variables are read from.
pub trait EnvSource {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment. Values that are not UTF-8 are read lossily (and then usually
/// rejected by the parser, with a warning).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }
}

impl EnvSource for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl<F: Fn(&str) -> Option<String>> EnvSource for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// The variable naming the TOML file.
pub(super) const CONFIG_VAR: &str = "DAGTEL_CONFIG";

/// One variable: its name, the layer key it sets (possibly a general key) and its parser.
pub(super) struct Spec {
    pub(super) var: String,
    pub(super) key: String,
    parse: Parser,
}

fn spec(var: impl Into<String>, key: impl Into<String>, parse: Parser) -> Spec {
    Spec {
        var: var.into(),
        key: key.into(),
        parse,
    }
}

/// Every variable, in reading order. Where two variables set the same key, the later one wins
/// (`OTEL_SERVICE_INSTANCE_ID` over `DAGTEL_SERVICE_INSTANCE_ID`, `DAGTEL_ENVIRONMENT` over
/// `DEPLOYMENT_ENVIRONMENT`).
pub(super) fn specs() -> Vec<Spec> {
    let mut v = vec![
        spec("OTEL_SDK_DISABLED", "disabled", parse::boolean),
        spec("DAGTEL_PROFILE", "profile", parse::choice::<Profile>),
        spec("DAGTEL_STRICT_CONFIG", "strict", parse::boolean),
        spec("DAGTEL_TELEMETRY_DIR", "telemetry_dir", parse::text),
        spec(
            "OTEL_RESOURCE_ATTRIBUTES",
            "resource_attributes",
            parse::resource_attributes,
        ),
        spec("OTEL_SERVICE_NAME", "service.name", parse::text),
        spec("DAGTEL_SERVICE_VERSION", "service.version", parse::text),
        spec("DAGTEL_SERVICE_NAMESPACE", "service.namespace", parse::text),
        spec(
            "DAGTEL_SERVICE_INSTANCE_ID",
            "service.instance_id",
            parse::text,
        ),
        spec(
            "OTEL_SERVICE_INSTANCE_ID",
            "service.instance_id",
            parse::text,
        ),
        spec("DEPLOYMENT_ENVIRONMENT", "service.environment", parse::text),
        spec("DAGTEL_ENVIRONMENT", "service.environment", parse::text),
        spec(
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS",
            "detectors",
            parse::list::<Detector>,
        ),
        spec(
            "OTEL_TRACES_SAMPLER",
            "sampler.kind",
            parse::choice::<SamplerKind>,
        ),
        spec("OTEL_TRACES_SAMPLER_ARG", "sampler.ratio", parse::ratio),
    ];
    for s in Signal::ALL {
        let upper = s.name().to_ascii_uppercase();
        v.push(spec(
            format!("OTEL_{upper}_EXPORTER"),
            format!("exporters.{s}"),
            parse::list::<ExporterKind>,
        ));
    }
    let otlp: [(&str, &str, Parser); 9] = [
        ("ENDPOINT", "endpoint", parse::endpoint),
        ("PROTOCOL", "protocol", parse::choice::<Protocol>),
        ("HEADERS", "headers", parse::headers),
        ("TIMEOUT", "timeout", parse::timeout),
        ("COMPRESSION", "compression", parse::choice::<Compression>),
        ("INSECURE", "insecure", parse::boolean),
        ("CERTIFICATE", "certificate", parse::text),
        ("CLIENT_KEY", "client_key", parse::text),
        ("CLIENT_CERTIFICATE", "client_certificate", parse::text),
    ];
    for (suffix, field, parser) in otlp {
        v.push(spec(
            format!("OTEL_EXPORTER_OTLP_{suffix}"),
            format!("otlp.{field}"),
            parser,
        ));
        for s in Signal::ALL {
            let upper = s.name().to_ascii_uppercase();
            v.push(spec(
                format!("OTEL_EXPORTER_OTLP_{upper}_{suffix}"),
                format!("otlp.{s}.{field}"),
                parser,
            ));
        }
    }
    let batch: [(&str, &str, Parser); 4] = [
        ("SCHEDULE_DELAY", "schedule_delay", parse::interval),
        ("EXPORT_TIMEOUT", "export_timeout", parse::timeout),
        ("MAX_QUEUE_SIZE", "max_queue_size", parse::positive),
        (
            "MAX_EXPORT_BATCH_SIZE",
            "max_export_batch_size",
            parse::positive,
        ),
    ];
    for (prefix, key) in [("BSP", "span_batch"), ("BLRP", "log_batch")] {
        for (suffix, field, parser) in batch {
            v.push(spec(
                format!("OTEL_{prefix}_{suffix}"),
                format!("{key}.{field}"),
                parser,
            ));
        }
    }
    v.extend([
        spec(
            "OTEL_METRIC_EXPORT_INTERVAL",
            "metrics.export_interval",
            parse::interval,
        ),
        spec(
            "OTEL_METRIC_EXPORT_TIMEOUT",
            "metrics.export_timeout",
            parse::timeout,
        ),
        spec(
            "OTEL_METRICS_EXEMPLAR_FILTER",
            "metrics.exemplar_filter",
            parse::choice::<ExemplarFilter>,
        ),
        spec(
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "metrics.temporality",
            parse::choice::<TemporalityPreference>,
        ),
        spec(
            "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
            "metrics.histogram_aggregation",
            parse::choice::<HistogramAggregation>,
        ),
        spec(
            "DAGTEL_NODE_METRICS",
            "metrics.node_series",
            parse::choice::<NodeSeries>,
        ),
    ]);
    // Attribute, event and link limits: every one a count that fits in `u32`.
    let limits: [(&str, &str); 10] = [
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "attribute_count"),
        (
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "attribute_value_length",
        ),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "span_attribute_count"),
        (
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "span_attribute_value_length",
        ),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "span_event_count"),
        ("OTEL_SPAN_LINK_COUNT_LIMIT", "span_link_count"),
        ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "event_attribute_count"),
        ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "link_attribute_count"),
        (
            "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT",
            "log_attribute_count",
        ),
        (
            "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "log_attribute_value_length",
        ),
    ];
    for (var, field) in limits {
        v.push(spec(var, format!("limits.{field}"), parse::count_u32));
    }
    v.extend([
        spec("OTEL_PROPAGATORS", "propagators", parse::list::<Propagator>),
        spec("OTEL_LOG_LEVEL", "sdk_log_level", parse::choice::<LogLevel>),
    ]);
    v
}

/// Every variable dagtel reads, in reading order.
pub fn variables() -> Vec<String> {
    let mut v: Vec<String> = specs().into_iter().map(|s| s.var).collect();
    v.insert(3, CONFIG_VAR.to_owned());
    v
}

/// The variables that can set the settings key `key`, the most specific first.
pub(super) fn variables_for(specs: &[Spec], key: &str) -> Vec<String> {
    let mut specific = Vec::new();
    let mut general = Vec::new();
    for s in specs {
        if s.key == key {
            specific.push(s.var.clone());
        } else if expand_key(&s.key).iter().any(|k| k == key) {
            general.push(s.var.clone());
        }
    }
    // Among same-key variables the later one wins; list the winner first.
    specific.reverse();
    specific.extend(general);
    specific
}

/// Reads a value: surrounding whitespace is trimmed and an empty value counts as unset.
fn read(env: &dyn EnvSource, var: &str) -> Option<String> {
    env.var(var)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The TOML file named by `DAGTEL_CONFIG`, if any.
pub(super) fn config_file(env: &dyn EnvSource) -> Option<PathBuf> {
    read(env, CONFIG_VAR).map(PathBuf::from)
}

/// The environment layer (general keys already resolved per signal) and a warning for every
/// ignored value.
pub(super) fn layer(env: &dyn EnvSource) -> (Layer, Vec<ConfigWarning>) {
    let mut layer = Layer::new(Source::Env(String::new()));
    let mut warnings = Vec::new();
    for spec in specs() {
        let Some(raw) = read(env, &spec.var) else {
            continue;
        };
        let parsed = (spec.parse)(&raw);
        for (part, problem) in parsed.problems {
            warnings.push(ConfigWarning::new(
                &spec.var,
                part,
                problem,
                expand_key(&spec.key),
            ));
        }
        if let Some(value) = parsed.value {
            layer.set_from(&spec.key, value, &spec.var);
        }
    }
    lift_service_attributes(&mut layer, Some("OTEL_RESOURCE_ATTRIBUTES"));
    layer.normalize();
    (layer, warnings)
}

/// Resource attributes that have a dedicated setting move to it, unless the dedicated variable
/// is set too (the specification: `OTEL_SERVICE_NAME` beats `service.name` from
/// `OTEL_RESOURCE_ATTRIBUTES`; dagtel applies the same rule to the other service keys), so
/// each attribute has exactly one place in the settings, ranked with the layer that set it
/// (the environment's or a file's). `origin` names the variable they came from (none for a
/// file).
pub(super) fn lift_service_attributes(layer: &mut Layer, origin: Option<&str>) {
    const DEDICATED: [(&str, &str); 5] = [
        ("service.name", "service.name"),
        ("service.version", "service.version"),
        ("service.namespace", "service.namespace"),
        ("service.instance.id", "service.instance_id"),
        ("deployment.environment.name", "service.environment"),
    ];
    let Some(Value::Array(_, items)) = layer.get("resource_attributes").cloned() else {
        return;
    };
    let mut kept = Vec::new();
    for item in items {
        let pair: Option<(String, String)> = item.deserialize().ok();
        // An empty `service.name=` names nothing: the name given to `init` stays.
        let pair = pair.filter(|(_, v)| !v.trim().is_empty());
        match pair.and_then(|(k, v)| DEDICATED.iter().find(|(a, _)| *a == k).map(|d| (d.1, v))) {
            Some((key, value)) => {
                if layer.get(key).is_none() {
                    match origin {
                        Some(var) => layer.set_from(key, Value::from(value), var),
                        None => layer.set_value(key, Value::from(value)),
                    }
                }
            }
            None => kept.push(item),
        }
    }
    if kept.is_empty() {
        // Only service keys: leave the attributes of lower layers alone.
        layer.remove("resource_attributes");
    } else {
        match origin {
            Some(var) => layer.set_from("resource_attributes", Value::from(kept), var),
            None => layer.set_value("resource_attributes", Value::from(kept)),
        }
    }
}
