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
            message: e.to_string(),
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

    let mut layer = Layer::new(source);
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
    super::env::lift_service_attributes(&mut layer, None);
    layer.normalize();
    Ok((layer, warnings))
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

fn show(value: &Value) -> String {
    match value {
        Value::String(_, s) => s.clone(),
        other => other
            .deserialize::<serde_json::Value>()
            .map(|j| j.to_string())
            .unwrap_or_default(),
    }
}
