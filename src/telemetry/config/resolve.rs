//! Layering and the rules that need the merged result: endpoint paths, the embedded default
//! exporter, cross-field checks, provenance, strict mode.

use std::path::PathBuf;

use figment::Figment;
use figment::value::Value;

use super::builder::ConfigBuilder;
use super::env::{self, EnvSource, ProcessEnv};
use super::error::{ConfigError, ConfigWarning};
use super::explain::{Explanation, format_value, leaf_values};
use super::layer::{APPEND_PATH, Layer};
use super::parse::check_endpoint;
use super::settings::{BatchSettings, ExporterKind, Profile, Protocol, Settings};
use super::source::Source;
use super::{Signal, file, profile};

/// The resolved settings, the values that were ignored on the way, and where each setting came
/// from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Resolved {
    /// The settings the providers are built from.
    pub settings: Settings,
    /// Every ignored value, in the order found (environment, file, cross-field checks). Print
    /// them once, e.g. with [`Resolved::print_warnings`].
    pub warnings: Vec<ConfigWarning>,
    /// The TOML file that was read, if any.
    pub config_file: Option<PathBuf>,
    explanation: Explanation,
}

impl Resolved {
    /// Each setting with its value and layer; `Display` prints a table.
    pub fn explain(&self) -> &Explanation {
        &self.explanation
    }

    /// The layer the setting `key` (e.g. `sampler.kind`) came from.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.explanation.get(key).map(|r| &r.source)
    }

    /// Writes each warning to stderr, one line each.
    pub fn print_warnings(&self) {
        for w in &self.warnings {
            eprintln!("dagtel: telemetry configuration: {w}");
        }
    }
}

/// Resolves the settings from the process environment (and the file `DAGTEL_CONFIG` names),
/// with no explicit options.
pub fn resolve() -> Result<Resolved, ConfigError> {
    ConfigBuilder::new().resolve()
}

impl ConfigBuilder {
    /// Merges the layers, applies the rules that need the whole picture, and returns the
    /// result; in strict mode any ignored value is an error instead.
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        let env_source: &dyn EnvSource = match &self.env {
            Some(map) => map,
            None => &ProcessEnv,
        };
        let (env_layer, mut warnings) = env::layer(env_source);
        let config_file = self
            .config_file
            .clone()
            .or_else(|| env::config_file(env_source));
        let file_layer = match &config_file {
            Some(path) => {
                let (layer, file_warnings) = file::load(path)?;
                warnings.extend(file_warnings);
                Some(layer)
            }
            None => None,
        };
        // The profile decides which layer goes second, so it is picked first, by the same
        // precedence as every other setting.
        let chosen = self
            .profile
            .or_else(|| profile_in(&env_layer))
            .or_else(|| file_layer.as_ref().and_then(profile_in))
            .unwrap_or_default();

        let mut defaults = Layer::new(Source::Default);
        if let Ok(Value::Dict(_, dict)) = Value::serialize(Settings::default()) {
            defaults.dict = dict;
        }
        if let Some(name) = &self.default_service_name {
            defaults.set("service.name", name);
        }
        let mut layers = vec![defaults, profile::layer(chosen)];
        layers.extend(file_layer);
        layers.push(env_layer);
        layers.push(self.overrides.clone());

        // A value the cross-field checks reject is taken out of its layer and the layers are
        // merged again, so that the next lower layer's value applies (a file's bad sampler
        // ratio leaves the profile's, not the default). Each round takes a value out of a
        // layer above the defaults, so the rounds end.
        let (figment, mut settings) = loop {
            let figment = merge(&layers);
            let mut settings: Settings = figment.extract().map_err(value_error)?;
            let mut rejected = Vec::new();
            check_values(&mut settings, &source_in(&figment, &layers), &mut rejected);
            let mut removed = false;
            for key in rejected.iter().flat_map(|w| &w.keys) {
                removed |= take_out(&mut layers, &figment, key);
            }
            warnings.extend(rejected);
            if !removed {
                break (figment, settings);
            }
        };
        let source_of = source_in(&figment, &layers);
        finish_endpoints(&mut settings, &figment);
        default_exporters(&mut settings, &source_of);
        clamp_batches(&mut settings, &source_of, &mut warnings);

        let specs = env::specs();
        let explanation = Explanation::build(&settings, source_of, |key| {
            env::variables_for(&specs, key).into_iter().next()
        });
        merge_repeats(&mut warnings);
        for w in warnings.iter_mut().filter(|w| w.used.is_empty()) {
            w.used = used(&explanation, &w.keys);
            if let Some(note) = endpoint_unused(&settings, &w.keys) {
                w.used.push_str(note);
            }
        }
        if settings.strict && !warnings.is_empty() {
            return Err(ConfigError::Strict { problems: warnings });
        }
        Ok(Resolved {
            settings,
            warnings,
            config_file,
            explanation,
        })
    }
}

fn merge(layers: &[Layer]) -> Figment {
    layers
        .iter()
        .fold(Figment::new(), |f, layer| f.merge(layer.clone()))
}

/// Where each setting of `figment` (merged from `layers`) came from.
fn source_in<'a>(figment: &'a Figment, layers: &'a [Layer]) -> impl Fn(&str) -> Source + 'a {
    move |key: &str| {
        figment
            .find_metadata(key)
            .and_then(|md| layers.iter().find(|l| l.name() == md.name))
            .map_or(Source::Default, |l| l.source_of(key))
    }
}

/// Removes the rejected setting `key` from the layer that supplied it (with an endpoint's
/// companion keys), unless that is the defaults; whether anything was removed.
fn take_out(layers: &mut [Layer], figment: &Figment, key: &str) -> bool {
    let Some(name) = figment.find_metadata(key).map(|md| md.name.clone()) else {
        return false;
    };
    let Some(layer) = layers
        .iter_mut()
        .find(|l| l.name() == name && l.source != Source::Default)
    else {
        return false;
    };
    let mut keys = vec![key.to_owned()];
    if let Some(signal) = key.strip_suffix(".endpoint") {
        keys.push(format!("{signal}.endpoint_set"));
        keys.push(format!("{signal}.{}", super::layer::APPEND_PATH));
    }
    let mut removed = false;
    for key in keys {
        removed |= layer.remove(&key).is_some();
    }
    removed
}

fn profile_in(layer: &Layer) -> Option<Profile> {
    layer.get("profile")?.deserialize().ok()
}

fn value_error(e: figment::Error) -> ConfigError {
    let key = e.path.join(".");
    let mut message = e.kind.to_string();
    // The message quotes the value: of a header, a resource attribute or an endpoint, it may
    // be a credential.
    let secret = ["headers", "resource_attributes", "endpoint"]
        .iter()
        .any(|k| key == *k || key.ends_with(&format!(".{k}")));
    if secret {
        message = hide_quoted(&message);
    }
    ConfigError::Value {
        key,
        layer: e
            .metadata
            .as_ref()
            .map_or_else(|| "configuration".to_owned(), |m| m.name.to_string()),
        message,
    }
}

/// A gRPC binary metadata name (`-bin` suffix).
pub(crate) fn is_binary_header(name: &str) -> bool {
    name.len() > 4 && name[name.len() - 4..].eq_ignore_ascii_case("-bin")
}

/// A base64 value (padded or not), decoded.
pub(crate) fn decode_base64(value: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    engines.iter().find_map(|e| e.decode(value.trim()).ok())
}

/// `text` with every double-quoted part replaced by `"<hidden>"`.
fn hide_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        if i % 2 == 0 {
            out.push_str("\"<hidden>\"");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// "what was used instead": the final value of the affected settings and their layer.
/// For a warning about endpoints whose signals export nothing over OTLP (an ignored endpoint
/// counts as unset, so the embedded default sends to files): the endpoint it names as used is
/// used by nothing, which the warning must say lest the user look for data at `localhost`.
fn endpoint_unused(settings: &Settings, keys: &[String]) -> Option<&'static str> {
    let mut signals = keys.iter().filter_map(|key| {
        let signal = key.strip_prefix("otlp.")?.strip_suffix(".endpoint")?;
        Signal::ALL.into_iter().find(|s| s.name() == signal)
    });
    let first = signals.next()?;
    let otlp = |s: Signal| settings.exporters.get(s).contains(&ExporterKind::Otlp);
    (!otlp(first) && signals.all(|s| !otlp(s)))
        .then_some(" (unused: no signal exports over OTLP, see `exporters.*`)")
}

fn used(explanation: &Explanation, keys: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for key in keys {
        if let Some(row) = explanation.get(key) {
            let part = format!("{} ({})", row.value, row.source);
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
    }
    if parts.len() > 1 {
        // Signals ended up with different values: say which is which.
        keys.iter()
            .filter_map(|k| explanation.get(k))
            .map(|r| format!("{}: {} ({})", r.setting, r.value, r.source))
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        parts.pop().unwrap_or_default()
    }
}

/// A warning about a merged value: names the variable when it came from the environment,
/// else the key and its layer.
fn invalid(key: &str, value: String, problem: &str, source: &Source) -> ConfigWarning {
    let variable = match source {
        Source::Env(var) => var.clone(),
        other => format!("{key} in {other}"),
    };
    ConfigWarning::new(variable, value, problem, vec![key.to_owned()])
}

fn shown(settings: &Settings, key: &str) -> String {
    leaf_values(settings)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(k, v)| format_value(&k, &v))
        .unwrap_or_default()
}

/// Checks the values the environment parser never saw (file and builder), with the same
/// rules, resetting invalid ones to the default.
fn check_values(
    settings: &mut Settings,
    source_of: &dyn Fn(&str) -> Source,
    warnings: &mut Vec<ConfigWarning>,
) {
    let defaults = Settings::default();
    let mut report = |settings: &Settings, key: &str, problem: &str| {
        warnings.push(invalid(key, shown(settings, key), problem, &source_of(key)));
    };

    let r = settings.sampler.ratio;
    if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
        report(settings, "sampler.ratio", "outside [0, 1]");
        settings.sampler.ratio = defaults.sampler.ratio;
    }
    for signal in Signal::ALL {
        let otlp = settings.otlp.get(signal);
        if otlp.endpoint_set
            && let Err(problem) = check_endpoint(&otlp.endpoint, otlp.protocol)
        {
            report(settings, &format!("otlp.{signal}.endpoint"), &problem);
            settings.otlp.get_mut(signal).endpoint_set = false;
        }
        // gRPC sends a `-bin` header as binary metadata: its value must be base64.
        let otlp = settings.otlp.get(signal);
        if otlp.protocol == Protocol::Grpc {
            let bad: Vec<String> = otlp
                .headers
                .iter()
                .filter(|(name, value)| is_binary_header(name) && decode_base64(value).is_none())
                .map(|(name, _)| name.clone())
                .collect();
            if !bad.is_empty() {
                let key = format!("otlp.{signal}.headers");
                for name in &bad {
                    let problem = format!("gRPC header `{name}` (`-bin`) needs a base64 value");
                    report(settings, &key, &problem);
                }
                let otlp = settings.otlp.get_mut(signal);
                otlp.headers.retain(|(name, _)| !bad.contains(name));
            }
        }
        // TLS files only mean something for an https endpoint; for plain http they would
        // stop the exporter from being built, so they are ignored (with a warning).
        // An unset endpoint is the default one, `http://localhost:...`; a gRPC endpoint
        // without a scheme is `http://` when insecure (the exporter's rule).
        let otlp = settings.otlp.get(signal);
        let endpoint = match otlp.protocol {
            Protocol::Grpc => crate::telemetry::exporters::otlp::grpc_endpoint(otlp),
            _ => otlp.endpoint.clone(),
        };
        let plain_http = !otlp.endpoint_set
            || endpoint
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
        let files = [
            ("certificate", otlp.certificate.is_some()),
            ("client_key", otlp.client_key.is_some()),
            ("client_certificate", otlp.client_certificate.is_some()),
        ];
        if plain_http {
            let why = if otlp.endpoint_set && !otlp.endpoint.contains("://") {
                "needs an https:// endpoint; the gRPC endpoint has no scheme and `insecure` is \
                 true, so it is plain http"
            } else {
                "needs an https:// endpoint, the endpoint is http://"
            };
            for (file, set) in files {
                if set {
                    let key = format!("otlp.{signal}.{file}");
                    report(settings, &key, why);
                }
            }
            let otlp = settings.otlp.get_mut(signal);
            (otlp.certificate, otlp.client_key, otlp.client_certificate) = (None, None, None);
        }
    }
    type BatchOf = fn(&mut Settings) -> &mut BatchSettings;
    let batches: [(&str, BatchOf); 2] = [
        ("span_batch", |s| &mut s.span_batch),
        ("log_batch", |s| &mut s.log_batch),
    ];
    for (name, of) in batches {
        let default = *of(&mut defaults.clone());
        if of(settings).schedule_delay.is_zero() {
            let key = format!("{name}.schedule_delay");
            report(settings, &key, "must be at least 1 ms (zero would spin)");
            of(settings).schedule_delay = default.schedule_delay;
        }
        if of(settings).max_queue_size == 0 {
            report(
                settings,
                &format!("{name}.max_queue_size"),
                "must be at least 1",
            );
            of(settings).max_queue_size = default.max_queue_size;
        }
        if of(settings).max_export_batch_size == 0 {
            report(
                settings,
                &format!("{name}.max_export_batch_size"),
                "must be at least 1",
            );
            of(settings).max_export_batch_size = default.max_export_batch_size;
        }
    }
    if settings.metrics.export_interval.is_zero() {
        report(settings, "metrics.export_interval", "must be at least 1 ms");
        settings.metrics.export_interval = defaults.metrics.export_interval;
    }
}

/// The largest batch queue dagtel builds: the SDK preallocates every slot (about 370 bytes
/// for a span), so a larger value costs memory whether or not it is ever used.
pub const MAX_QUEUE_SIZE: usize = 131_072;

/// Unset endpoints get the protocol's default; endpoints from a general setting get the
/// signal path for HTTP; endpoints for one signal stay verbatim.
fn finish_endpoints(settings: &mut Settings, figment: &Figment) {
    for signal in Signal::ALL {
        let append: bool = figment
            .extract_inner(&format!("otlp.{signal}.{APPEND_PATH}"))
            .unwrap_or(false);
        let otlp = settings.otlp.get_mut(signal);
        if !otlp.endpoint_set {
            otlp.endpoint = default_endpoint(otlp.protocol, signal);
        } else if append && otlp.protocol != Protocol::Grpc {
            // The signal path goes before any query string.
            let (base, query) = match otlp.endpoint.split_once('?') {
                Some((base, query)) => (base, format!("?{query}")),
                None => (otlp.endpoint.as_str(), String::new()),
            };
            otlp.endpoint = format!("{}/v1/{signal}{query}", base.trim_end_matches('/'));
        }
    }
}

/// The specification's default endpoint for a protocol.
pub(super) fn default_endpoint(protocol: Protocol, signal: Signal) -> String {
    match protocol {
        Protocol::Grpc => "http://localhost:4317".to_owned(),
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            format!("http://localhost:4318/v1/{signal}")
        }
    }
}

/// The embedded default: a signal whose exporters nobody chose goes to OTLP when an endpoint
/// is set for it, else to the local files.
fn default_exporters(settings: &mut Settings, source_of: &dyn Fn(&str) -> Source) {
    for signal in Signal::ALL {
        if source_of(&format!("exporters.{signal}")) == Source::Default {
            let kind = if settings.otlp.get(signal).endpoint_set {
                ExporterKind::Otlp
            } else {
                ExporterKind::File
            };
            *settings.exporters.get_mut(signal) = vec![kind];
        }
    }
}

/// One warning per ignored value: a general variable checked once per signal (a certificate
/// file without https, a gRPC `-bin` header) reports the same problem for each, so those
/// become one warning about all the settings it affects. A file's or the builder's general
/// key is reported under each signal's key (`otlp.traces.certificate in file:..`); merged,
/// the warning names the general one.
fn merge_repeats(warnings: &mut Vec<ConfigWarning>) {
    let mut merged: Vec<ConfigWarning> = Vec::with_capacity(warnings.len());
    for w in warnings.drain(..) {
        let general = general_name(&w.variable);
        let same = |m: &&mut ConfigWarning| {
            (general_name(&m.variable), &m.value, &m.problem, &m.used)
                == (general.clone(), &w.value, &w.problem, &w.used)
        };
        match merged.iter_mut().find(same) {
            Some(m) => {
                m.variable = general;
                for key in w.keys {
                    if !m.keys.contains(&key) {
                        m.keys.push(key);
                    }
                }
            }
            None => merged.push(w),
        }
    }
    *warnings = merged;
}

/// `otlp.<signal>.<setting> in <layer>` as `otlp.<setting> in <layer>`; anything else as is.
fn general_name(variable: &str) -> String {
    if let Some((key, layer)) = variable.split_once(" in ") {
        for signal in Signal::ALL {
            let prefix = format!("otlp.{}.", signal.name());
            if let Some(setting) = key.strip_prefix(&prefix) {
                return format!("otlp.{setting} in {layer}");
            }
        }
    }
    variable.to_owned()
}

/// A queue larger than dagtel allocates, or a batch larger than the queue (it could never be
/// filled): clamp it, with a warning.
fn clamp_batches(
    settings: &mut Settings,
    source_of: &dyn Fn(&str) -> Source,
    warnings: &mut Vec<ConfigWarning>,
) {
    for (name, batch) in [
        ("span_batch", &mut settings.span_batch),
        ("log_batch", &mut settings.log_batch),
    ] {
        // Clamped, not rejected: a larger queue asks for as much room as dagtel gives, and the
        // lower layers' value (the default 2048) would be further from what was meant.
        if batch.max_queue_size > MAX_QUEUE_SIZE {
            let key = format!("{name}.max_queue_size");
            let mut w = invalid(
                &key,
                batch.max_queue_size.to_string(),
                &format!(
                    "larger than {MAX_QUEUE_SIZE}, the most dagtel allocates (each queued record \
                     takes a preallocated slot of a few hundred bytes)"
                ),
                &source_of(&key),
            );
            w.used = format!("{MAX_QUEUE_SIZE} (clamped)");
            warnings.push(w);
            batch.max_queue_size = MAX_QUEUE_SIZE;
        }
        if batch.max_export_batch_size > batch.max_queue_size {
            let key = format!("{name}.max_export_batch_size");
            let queue_key = format!("{name}.max_queue_size");
            // A batch size nobody chose (the default, or a profile's) follows a smaller queue
            // without a word: a valid `OTEL_BSP_MAX_QUEUE_SIZE=256` is not a mistake.
            if matches!(source_of(&key), Source::Default | Source::Profile(_)) {
                batch.max_export_batch_size = batch.max_queue_size;
                continue;
            }
            let mut w = invalid(
                &key,
                batch.max_export_batch_size.to_string(),
                &format!(
                    "larger than the max queue size {} ({})",
                    batch.max_queue_size,
                    source_of(&queue_key)
                ),
                &source_of(&key),
            );
            w.used = format!("{} (clamped to the queue size)", batch.max_queue_size);
            warnings.push(w);
            batch.max_export_batch_size = batch.max_queue_size;
        }
    }
}
