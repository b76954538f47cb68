//! `explain()`: every resolved setting with its value and the layer it came from, secrets
//! masked, printable as a table.

use std::fmt;

use serde_json::Value as Json;

use super::settings::Settings;
use super::source::Source;

/// One resolved setting.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExplainRow {
    /// The dotted key (also the TOML file key), e.g. `span_batch.max_queue_size`.
    pub setting: String,
    /// The most specific environment variable that sets it, if any.
    pub variable: Option<String>,
    /// The value as text: durations in ms, lists comma-separated, secrets as `***`.
    pub value: String,
    /// The layer the value came from.
    pub source: Source,
}

/// Every resolved setting, in key order. `Display` prints a table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Explanation {
    rows: Vec<ExplainRow>,
}

impl Explanation {
    pub(super) fn build(
        settings: &Settings,
        source_of: impl Fn(&str) -> Source,
        variable_of: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let rows = leaf_values(settings)
            .into_iter()
            .map(|(key, value)| ExplainRow {
                value: format_value(&key, &value),
                source: source_of(&key),
                variable: variable_of(&key),
                setting: key,
            })
            .collect();
        Self { rows }
    }

    /// All rows.
    pub fn rows(&self) -> &[ExplainRow] {
        &self.rows
    }

    /// The row of one setting.
    pub fn get(&self, setting: &str) -> Option<&ExplainRow> {
        self.rows.iter().find(|r| r.setting == setting)
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEAD: [&str; 4] = ["SETTING", "VARIABLE", "VALUE", "SOURCE"];
        // A very long value (many resource attributes) should not widen every line.
        const MAX_VALUE_WIDTH: usize = 48;
        let cells: Vec<[String; 4]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.setting.clone(),
                    r.variable.clone().unwrap_or_else(|| "-".to_owned()),
                    r.value.clone(),
                    r.source.to_string(),
                ]
            })
            .collect();
        let mut width = HEAD.map(|h| h.chars().count());
        for row in &cells {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        width[2] = width[2].min(MAX_VALUE_WIDTH);
        let line = |f: &mut fmt::Formatter<'_>, row: [&str; 4]| {
            writeln!(
                f,
                "{:<w0$}  {:<w1$}  {:<w2$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
            )
        };
        line(f, HEAD)?;
        for row in &cells {
            line(f, [&row[0], &row[1], &row[2], &row[3]])?;
        }
        Ok(())
    }
}

/// Every leaf of the settings tree with its serialized value; lists are leaves.
pub(super) fn leaf_values(settings: &Settings) -> Vec<(String, Json)> {
    let mut out = Vec::new();
    if let Ok(tree) = serde_json::to_value(settings) {
        flatten("", tree, &mut out);
    }
    out
}

/// Every leaf key of the settings tree.
pub(super) fn leaf_keys(settings: &Settings) -> Vec<String> {
    leaf_values(settings).into_iter().map(|(k, _)| k).collect()
}

fn flatten(prefix: &str, value: Json, out: &mut Vec<(String, Json)>) {
    match value {
        Json::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        leaf => out.push((prefix.to_owned(), leaf)),
    }
}

fn is_duration(key: &str) -> bool {
    [
        ".timeout",
        ".schedule_delay",
        ".export_timeout",
        ".export_interval",
    ]
    .iter()
    .any(|s| key.ends_with(s))
}

pub(super) fn format_value(key: &str, value: &Json) -> String {
    match value {
        Json::Null if key == "service.instance_id" => "(unset: new UUIDv7 per install)".to_owned(),
        Json::Null if key.starts_with("limits.") => "(no limit)".to_owned(),
        Json::Null => "(unset)".to_owned(),
        Json::String(s) if key.ends_with(".endpoint") => mask_url(s),
        Json::String(s) => s.clone(),
        Json::Number(n) if is_duration(key) => {
            if n.as_u64() == Some(0) && key.ends_with("timeout") {
                "0 ms (no limit)".to_owned()
            } else {
                format!("{n} ms")
            }
        }
        Json::Array(items) if items.is_empty() => "(none)".to_owned(),
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::Array(pair) if pair.len() == 2 => {
                    let k = plain(&pair[0]);
                    let secret = key.ends_with(".headers") || is_secret_name(&k);
                    let v = if secret {
                        "***".to_owned()
                    } else {
                        plain(&pair[1])
                    };
                    format!("{k}={v}")
                }
                other => plain(other),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn plain(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether an attribute or header name suggests its value is a credential.
pub(super) fn is_secret_name(name: &str) -> bool {
    const WORDS: [&str; 10] = [
        "token",
        "key",
        "secret",
        "password",
        "passwd",
        "auth",
        "credential",
        "cookie",
        "session",
        "signature",
    ];
    let lower = name.to_ascii_lowercase();
    WORDS.iter().any(|w| lower.contains(w))
}

/// Hides the user-info part of a URL (`https://user:pass@host` becomes `https://***@host`)
/// and the query string (it often carries tokens).
pub(crate) fn mask_url(url: &str) -> String {
    let url = match url.split_once('?') {
        Some((base, _)) => return format!("{}?***", mask_url(base)),
        None => url,
    };
    // With or without a scheme (a gRPC endpoint may have none), the authority runs to the
    // first `/`; user info ends at its last `@` (a password may hold `#` or `@`).
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => match scheme {
            Some(scheme) => format!("{scheme}://***{}", &rest[at..]),
            None => format!("***{}", &rest[at..]),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_only() {
        assert_eq!(
            mask_url("https://u:p@host:4318/v1/traces"),
            "https://***@host:4318/v1/traces"
        );
        assert_eq!(mask_url("http://host/a@b"), "http://host/a@b");
        assert_eq!(mask_url("host:4317"), "host:4317");
        assert_eq!(
            mask_url("https://u:p@host/v1/traces?token=s3cr3t"),
            "https://***@host/v1/traces?***"
        );
    }

    #[test]
    fn values_are_formatted_for_people() {
        assert_eq!(
            format_value("otlp.traces.timeout", &Json::from(0)),
            "0 ms (no limit)"
        );
        assert_eq!(
            format_value("span_batch.schedule_delay", &Json::from(0)),
            "0 ms"
        );
        assert_eq!(
            format_value("limits.span_attribute_value_length", &Json::Null),
            "(no limit)"
        );
        let attrs = serde_json::json!([["team", "data"], ["api_key", "s3cr3t"]]);
        assert_eq!(
            format_value("resource_attributes", &attrs),
            "team=data, api_key=***"
        );
        let headers = serde_json::json!([["x-tenant", "acme"]]);
        assert_eq!(format_value("otlp.logs.headers", &headers), "x-tenant=***");
    }
}
