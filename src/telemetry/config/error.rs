//! Ignored values ([`ConfigWarning`]) and configurations that cannot be used ([`ConfigError`]).

use std::fmt;
use std::path::PathBuf;

/// One value that was ignored, following the OpenTelemetry specification: the default (or the
/// value of a lower layer) is used instead. In strict mode each one becomes a
/// [`ConfigError::Strict`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigWarning {
    /// The environment variable, or the setting and its layer (`sampler.ratio in file:x.toml`).
    pub variable: String,
    /// The ignored value, or the ignored part of a list (hidden when it may be a secret).
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
    /// What was used instead and where it came from (`2048 (default)`); empty when nothing
    /// replaces it (an unknown file key).
    pub used: String,
    /// The settings whose final value is `used`.
    pub(super) keys: Vec<String>,
}

impl ConfigWarning {
    pub(super) fn new(
        variable: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
        keys: Vec<String>,
    ) -> Self {
        Self {
            variable: variable.into(),
            value: redact(&value.into()),
            problem: problem.into(),
            used: String::new(),
            keys,
        }
    }

    /// `VARIABLE="value": problem`, without what was used instead.
    pub fn problem_line(&self) -> String {
        format!("{}={:?}: {}", self.variable, self.value, self.problem)
    }
}

/// An ignored value as a warning may show it: no URL credentials or query string, and no
/// value of a credential-named `key=value` entry (what `explain()` hides too).
fn redact(value: &str) -> String {
    if value.contains("://") {
        return super::explain::mask_url(value);
    }
    match value.split_once('=') {
        Some((key, _)) if super::explain::is_secret_name(key) => format!("{}=<hidden>", key.trim()),
        _ => value.to_owned(),
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ignored {}", self.problem_line())?;
        if self.used.is_empty() {
            Ok(())
        } else {
            write!(f, "; using {}", self.used)
        }
    }
}

/// Why no configuration could be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Strict mode (`DAGTEL_STRICT_CONFIG=true`) and at least one invalid value.
    #[error("invalid telemetry configuration (strict mode): {}", lines(problems))]
    Strict {
        /// Every invalid value, each naming its variable and value.
        problems: Vec<ConfigWarning>,
    },
    /// The TOML file named by `DAGTEL_CONFIG` (or the builder) cannot be read.
    #[error("cannot read the telemetry config file {}: {source}", path.display())]
    FileRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML file is not valid TOML.
    #[error("the telemetry config file {} is not valid TOML: {message}", path.display())]
    FileSyntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and column).
        message: String,
    },
    /// A value in the TOML file (or given to the builder) has the wrong type or an unknown
    /// name.
    #[error("invalid telemetry setting `{key}` from {layer}: {message}")]
    Value {
        /// The dotted setting key.
        key: String,
        /// The layer it came from (`file:<path>`, `builder`).
        layer: String,
        /// What is wrong.
        message: String,
    },
}

fn lines(problems: &[ConfigWarning]) -> String {
    problems
        .iter()
        .map(ConfigWarning::problem_line)
        .collect::<Vec<_>>()
        .join("; ")
}
