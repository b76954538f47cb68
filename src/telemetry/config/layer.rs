//! One configuration layer: a partial settings tree (dotted keys, the same shape as
//! [`Settings`](super::Settings) serializes to) that figment merges over the layers below it.
//!
//! Layers may also use the *general* keys the environment has (`otlp.endpoint`,
//! `otlp.protocol`, ..., `limits.attribute_count`, `limits.attribute_value_length`).
//! [`Layer::normalize`] resolves them inside the layer, before merging: a per-signal value set
//! in the same layer wins, otherwise the general value is copied to every signal. Across
//! layers, the higher layer wins key by key.

use std::collections::BTreeMap;

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Provider};
use serde::Serialize;

use super::Signal;
use super::source::Source;

/// OTLP fields that have a general variable and one per signal (the endpoint is handled
/// apart: only the general one gets the `/v1/<signal>` path).
pub(super) const OTLP_SHARED: [&str; 8] = [
    "protocol",
    "headers",
    "timeout",
    "compression",
    "insecure",
    "certificate",
    "client_key",
    "client_certificate",
];

/// General limits and the per-model limits they stand for.
pub(super) const LIMIT_FALLBACKS: [(&str, [&str; 2]); 2] = [
    (
        "limits.attribute_count",
        ["limits.span_attribute_count", "limits.log_attribute_count"],
    ),
    (
        "limits.attribute_value_length",
        [
            "limits.span_attribute_value_length",
            "limits.log_attribute_value_length",
        ],
    ),
];

/// Hidden per-signal key: the endpoint came from a general setting, so HTTP protocols get the
/// `/v1/<signal>` path appended once the protocol is known.
pub(super) const APPEND_PATH: &str = "append_path";

/// The settings keys a general key stands for (itself when it is not general).
pub(super) fn expand_key(key: &str) -> Vec<String> {
    if let Some((_, specific)) = LIMIT_FALLBACKS.iter().find(|(g, _)| *g == key) {
        return specific.iter().map(|s| (*s).to_owned()).collect();
    }
    match key.strip_prefix("otlp.") {
        Some(field) if field == "endpoint" || OTLP_SHARED.contains(&field) => Signal::ALL
            .iter()
            .map(|s| format!("otlp.{s}.{field}"))
            .collect(),
        _ => vec![key.to_owned()],
    }
}

/// A partial settings tree and where it came from.
#[derive(Clone, Debug)]
pub(super) struct Layer {
    pub(super) source: Source,
    pub(super) dict: Dict,
    /// For the environment layer: the variable behind each key.
    origins: BTreeMap<String, String>,
}

impl Layer {
    pub(super) fn new(source: Source) -> Self {
        Self {
            source,
            dict: Dict::new(),
            origins: BTreeMap::new(),
        }
    }

    /// The figment metadata name; unique among the layers of one resolution.
    pub(super) fn name(&self) -> String {
        match self.source {
            Source::Env(_) => "env".to_owned(),
            ref s => s.to_string(),
        }
    }

    /// Sets `key` to a serializable value.
    pub(super) fn set<T: Serialize>(&mut self, key: &str, value: T) {
        if let Ok(v) = Value::serialize(value) {
            self.set_value(key, v);
        }
    }

    pub(super) fn set_value(&mut self, key: &str, value: Value) {
        insert(&mut self.dict, key, value);
    }

    /// Sets `key` and records the environment variable it came from.
    pub(super) fn set_from(&mut self, key: &str, value: Value, var: &str) {
        self.set_value(key, value);
        self.origins.insert(key.to_owned(), var.to_owned());
    }

    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        get(&self.dict, key)
    }

    pub(super) fn remove(&mut self, key: &str) -> Option<Value> {
        self.origins.remove(key);
        remove(&mut self.dict, key)
    }

    /// Where the value at `key` in this layer came from.
    pub(super) fn source_of(&self, key: &str) -> Source {
        match self.origins.get(key) {
            Some(var) => Source::Env(var.clone()),
            None => self.source.clone(),
        }
    }

    fn copy(&mut self, from: &str, to: &str, value: Value) {
        self.set_value(to, value);
        if let Some(var) = self.origins.get(from).cloned() {
            self.origins.insert(to.to_owned(), var);
        }
    }

    /// Forgets the per-signal endpoints that an earlier general endpoint of this layer set,
    /// so that a new general one replaces them; per-signal endpoints set as such stay.
    pub(super) fn forget_general_endpoints(&mut self) {
        for signal in Signal::ALL {
            let append = format!("otlp.{signal}.{APPEND_PATH}");
            if self.get(&append) == Some(&Value::from(true)) {
                for key in [
                    format!("otlp.{signal}.endpoint"),
                    format!("otlp.{signal}.endpoint_set"),
                    append,
                ] {
                    self.remove(&key);
                }
            }
        }
    }

    /// Replaces the general keys by per-signal (or per-model) keys; see the module doc.
    pub(super) fn normalize(&mut self) {
        let general_endpoint = self.remove_keeping_origin("otlp.endpoint");
        for signal in Signal::ALL {
            let key = format!("otlp.{signal}.endpoint");
            let append_key = format!("otlp.{signal}.{APPEND_PATH}");
            let from_general = if self.get(&key).is_some() {
                // Normalized before (a builder calls this after each endpoint it sets): a
                // per-signal endpoint that came from a general one keeps its path rule.
                self.get(&append_key).is_none().then_some(false)
            } else if let Some((value, var)) = &general_endpoint {
                self.set_value(&key, value.clone());
                if let Some(var) = var {
                    self.origins.insert(key.clone(), var.clone());
                }
                Some(true)
            } else {
                None
            };
            if let Some(append) = from_general {
                let set = format!("otlp.{signal}.endpoint_set");
                self.copy(&key, &set, Value::from(true));
                self.set_value(&format!("otlp.{signal}.{APPEND_PATH}"), Value::from(append));
            }
        }
        for field in OTLP_SHARED {
            self.spread(&format!("otlp.{field}"));
        }
        for (general, _) in LIMIT_FALLBACKS {
            self.spread(general);
        }
    }

    fn remove_keeping_origin(&mut self, key: &str) -> Option<(Value, Option<String>)> {
        let var = self.origins.get(key).cloned();
        self.remove(key).map(|v| (v, var))
    }

    /// Moves a general key's value to each specific key this layer does not set itself.
    fn spread(&mut self, general: &str) {
        let Some((value, var)) = self.remove_keeping_origin(general) else {
            return;
        };
        for key in expand_key(general) {
            if self.get(&key).is_none() {
                self.set_value(&key, value.clone());
                if let Some(var) = &var {
                    self.origins.insert(key, var.clone());
                }
            }
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name())
    }

    fn data(&self) -> Result<Map<figment::Profile, Dict>, Error> {
        Ok(figment::Profile::Default.collect(self.dict.clone()))
    }
}

fn insert(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

pub(super) fn get<'a>(dict: &'a Dict, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        None => dict.get(key),
        Some((head, rest)) => match dict.get(head)? {
            Value::Dict(_, inner) => get(inner, rest),
            _ => None,
        },
    }
}

fn remove(dict: &mut Dict, key: &str) -> Option<Value> {
    match key.split_once('.') {
        None => dict.remove(key),
        Some((head, rest)) => match dict.get_mut(head)? {
            Value::Dict(_, inner) => {
                let v = remove(inner, rest);
                if inner.is_empty() {
                    dict.remove(head);
                }
                v
            }
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn general_keys_fill_only_what_the_layer_leaves_open() {
        let mut l = Layer::new(Source::Env(String::new()));
        l.set_from(
            "otlp.endpoint",
            Value::from("http://c:4318"),
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        );
        l.set_from(
            "otlp.traces.endpoint",
            Value::from("http://t/v1/traces"),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        );
        l.set_from(
            "otlp.timeout",
            Value::from(5u64),
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        );
        l.set_from(
            "limits.attribute_count",
            Value::from(7u32),
            "OTEL_ATTRIBUTE_COUNT_LIMIT",
        );
        l.normalize();

        assert!(l.get("otlp.endpoint").is_none());
        assert!(l.get("otlp.timeout").is_none());
        assert_eq!(
            l.get("otlp.traces.endpoint").and_then(Value::as_str),
            Some("http://t/v1/traces")
        );
        assert_eq!(
            l.get("otlp.traces.append_path").and_then(Value::to_bool),
            Some(false)
        );
        assert_eq!(
            l.get("otlp.logs.append_path").and_then(Value::to_bool),
            Some(true)
        );
        assert_eq!(
            l.get("otlp.metrics.endpoint_set").and_then(Value::to_bool),
            Some(true)
        );
        assert_eq!(
            l.source_of("otlp.logs.endpoint"),
            Source::Env("OTEL_EXPORTER_OTLP_ENDPOINT".into())
        );
        assert_eq!(
            l.source_of("otlp.metrics.timeout"),
            Source::Env("OTEL_EXPORTER_OTLP_TIMEOUT".into())
        );
        assert!(l.get("limits.span_attribute_count").is_some());
        assert!(l.get("limits.log_attribute_count").is_some());
        assert!(l.get("limits.event_attribute_count").is_none());
    }

    #[test]
    fn expand_key_lists_the_specific_keys() {
        assert_eq!(expand_key("otlp.headers").len(), 3);
        assert_eq!(expand_key("limits.attribute_value_length").len(), 2);
        assert_eq!(expand_key("sampler.kind"), ["sampler.kind"]);
    }
}
