//! The optional TOML file (`DAGTEL_CONFIG`).
//!
//! Its keys are the dotted settings keys that `explain()` prints (`[span_batch]
//! max_queue_size = 4096`), durations in milliseconds, plus the general keys the environment
//! has (`[otlp] endpoint = ...` for every signal, `[limits] attribute_count = ...`).
//! `resource_attributes` and `headers` may be written as tables. Unknown keys are reported
//! like invalid environment values; values of the wrong type are errors naming the file.

use std::collections::BTreeSet;
use std::path::Path;

use figment::Provider;
use figment::providers::{Format, Toml};
use figment::value::{Dict, Value};

use super::Signal;
use super::error::{ConfigError, ConfigWarning};
use super::explain::leaf_keys;
use super::layer::{LIMIT_FALLBACKS, Layer, OTLP_SHARED};
use super::settings::Settings;
use super::source::Source;

/// Reads and parses the file into a layer; unknown keys become warnings.
pub(super) fn load(path: &Path) -> Result<(Layer, Vec<ConfigWarning>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::FileRead {
        path: path.to_owned(),
        source,
    })?;
    let mut data = Toml::string(&text)
        .data()
        .map_err(|e| ConfigError::FileSyntax {
            path: path.to_owned(),
            message: syntax_message(&e),
        })?;
    let dict = data.remove(&figment::Profile::Default).unwrap_or_default();

    let source = Source::File(path.to_owned());
    let mut warnings = Vec::new();
    let mut unknown = Vec::new();
    check_keys(&dict, "", &vocabulary(), &mut |key, value| {
        warnings.push(ConfigWarning::new(
            format!("{key} in {source}"),
            show(value),
            "unknown setting",
            Vec::new(),
        ));
        unknown.push(key.to_owned());
    });

    let mut layer = Layer::new(source.clone());
    layer.dict = dict;
    // Ignored means ignored: some unknown keys (`otlp.traces.endpoint_set`) are internal
    // fields extraction would otherwise read.
    for key in unknown {
        layer.remove(&key);
    }
    let mut pair_keys = vec!["resource_attributes".to_owned(), "otlp.headers".to_owned()];
    pair_keys.extend(Signal::ALL.iter().map(|s| format!("otlp.{s}.headers")));
    for key in pair_keys {
        if let Some(Value::Dict(_, table)) = layer.get(&key) {
            let pairs: Vec<Value> = table
                .iter()
                .map(|(k, v)| Value::from(vec![Value::from(k.clone()), v.clone()]))
                .collect();
            layer.set_value(&key, Value::from(pairs));
        }
    }
    clean_lists(&mut layer, &source, &mut warnings);
    super::env::lift_service_attributes(&mut layer, None);
    layer.normalize();
    Ok((layer, warnings))
}

/// Lists in the file follow the same rules as in the environment: repeats dropped, `none`
/// alone means none, `none` with other values and unknown values are warned about, and an
/// empty list is `none`.
fn clean_lists(layer: &mut Layer, source: &Source, warnings: &mut Vec<ConfigWarning>) {
    use super::parse::{self, Parser};
    use super::settings::{Detector, ExporterKind, Propagator};
    let mut lists: Vec<(String, Parser)> = vec![
        ("detectors".to_owned(), parse::list::<Detector>),
        ("propagators".to_owned(), parse::list::<Propagator>),
    ];
    for signal in Signal::ALL {
        lists.push((format!("exporters.{signal}"), parse::list::<ExporterKind>));
    }
    for (key, parse) in lists {
        let Some(Value::Array(_, items)) = layer.get(&key).cloned() else {
            continue;
        };
        let names: Vec<String> = items
            .iter()
            .map(|item| item.as_str().map_or_else(|| show(item), str::to_owned))
            .collect();
        let joined = if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(",")
        };
        let parsed = parse(&joined);
        for (part, problem) in parsed.problems {
            let variable = format!("{key} in {source}");
            warnings.push(ConfigWarning::new(
                variable,
                part,
                problem,
                vec![key.clone()],
            ));
        }
        match parsed.value {
            Some(value) => layer.set_value(&key, value),
            None => {
                layer.remove(&key);
            }
        }
    }
}

/// Every key a file may set.
fn vocabulary() -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = leaf_keys(&Settings::default())
        .into_iter()
        .filter(|k| !k.ends_with(".endpoint_set"))
        .collect();
    keys.insert("otlp.endpoint".to_owned());
    keys.extend(OTLP_SHARED.iter().map(|f| format!("otlp.{f}")));
    keys.extend(LIMIT_FALLBACKS.iter().map(|(g, _)| (*g).to_owned()));
    keys
}

fn check_keys(
    dict: &Dict,
    prefix: &str,
    known: &BTreeSet<String>,
    unknown: &mut dyn FnMut(&str, &Value),
) {
    for (k, v) in dict {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if known.contains(&key) {
            continue;
        }
        let table_prefix = format!("{key}.");
        match v {
            Value::Dict(_, inner) if known.iter().any(|x| x.starts_with(&table_prefix)) => {
                check_keys(inner, &key, known, unknown);
            }
            _ => unknown(&key, v),
        }
    }
}

/// An unknown setting's value as a warning shows it: a table (a misspelt `[otlp.trace]`, with
/// its headers, say) only by its size, since it may hold credentials.
fn show(value: &Value) -> String {
    match value {
        Value::String(_, s) => s.clone(),
        Value::Dict(_, table) => format!("<table with {} keys>", table.len()),
        other => other
            .deserialize::<serde_json::Value>()
            .map(|j| j.to_string())
            .unwrap_or_default(),
    }
}

/// A TOML syntax error without the quoted line (which may be a header's credential): what
/// went wrong and where.
fn syntax_message(error: &figment::Error) -> String {
    let text = error.kind.to_string();
    // The parser's message starts with the position and the problem; the quoted source line
    // follows a line break.
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid TOML");
    let problem = text
        .lines()
        .map(str::trim)
        .rfind(|l| {
            !l.is_empty() && !l.starts_with('|') && !l.starts_with('^') && !l.contains(" | ")
        })
        .unwrap_or("");
    if problem.is_empty() || problem == first.trim() {
        first.trim().to_owned()
    } else {
        format!("{}: {problem}", first.trim())
    }
}
