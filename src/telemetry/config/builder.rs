//! Explicit options given in code: the highest layer.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Signal;
use super::env::{EnvSource, variables};
use super::layer::Layer;
use super::settings::{ExporterKind, Profile, Protocol, SamplerKind};
use super::source::Source;

/// Resolves the telemetry [`Settings`](super::Settings): defaults < profile < TOML file <
/// environment < the options set here.
///
/// Without [`env`](Self::env) the process environment is read; tests pass a map instead, so
/// they never touch (or race on) the real environment.
#[derive(Clone)]
#[must_use]
pub struct ConfigBuilder {
    pub(super) env: Option<BTreeMap<String, String>>,
    pub(super) config_file: Option<PathBuf>,
    pub(super) default_service_name: Option<String>,
    pub(super) profile: Option<Profile>,
    pub(super) overrides: Layer,
}

/// Shows the variables' names only: their values may hold credentials.
impl std::fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Option<Vec<&str>> = self
            .env
            .as_ref()
            .map(|env| env.keys().map(String::as_str).collect());
        f.debug_struct("ConfigBuilder")
            .field("env", &env)
            .field("config_file", &self.config_file)
            .field("default_service_name", &self.default_service_name)
            .field("profile", &self.profile)
            .field("overrides", &self.overrides.dict.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigBuilder {
    /// No explicit options; the process environment.
    pub fn new() -> Self {
        Self {
            env: None,
            config_file: None,
            default_service_name: None,
            profile: None,
            overrides: Layer::new(Source::Builder),
        }
    }

    /// Reads these variables instead of the process environment (every variable not listed is
    /// unset).
    pub fn env<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.env = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Reads the variables from `source` (a closure `|name| -> Option<String>`, a map, or
    /// [`ProcessEnv`](super::ProcessEnv)), once, now.
    pub fn env_from(mut self, source: &dyn EnvSource) -> Self {
        self.env = Some(
            variables()
                .into_iter()
                .filter_map(|name| source.var(&name).map(|v| (name, v)))
                .collect(),
        );
        self
    }

    /// Reads this TOML file (instead of the one `DAGTEL_CONFIG` names).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// The service name when no layer sets one: the lowest precedence, so `OTEL_SERVICE_NAME`
    /// still wins (this is what `init(service_name)` passes).
    pub fn default_service_name(mut self, name: impl Into<String>) -> Self {
        self.default_service_name = Some(name.into());
        self
    }

    /// The service name, over every other layer.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.overrides.set("service.name", name.into());
        self
    }

    /// The operational profile, over `DAGTEL_PROFILE` and the file.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self.overrides.set("profile", profile);
        self
    }

    /// Strict mode: any invalid value is an error instead of a warning.
    pub fn strict(mut self, strict: bool) -> Self {
        self.overrides.set("strict", strict);
        self
    }

    /// Disables the SDK (no providers are installed), like `OTEL_SDK_DISABLED=true`.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.overrides.set("disabled", disabled);
        self
    }

    /// The sampler.
    pub fn sampler(mut self, kind: SamplerKind) -> Self {
        self.overrides.set("sampler.kind", kind);
        self
    }

    /// The ratio of the ratio-based samplers, in `[0, 1]` (anything else is reported as an
    /// invalid value).
    pub fn sampler_ratio(mut self, ratio: f64) -> Self {
        self.overrides.set("sampler.ratio", ratio);
        self
    }

    /// The exporters of one signal; an empty list switches the signal off.
    pub fn exporter(
        mut self,
        signal: Signal,
        kinds: impl IntoIterator<Item = ExporterKind>,
    ) -> Self {
        let mut list: Vec<ExporterKind> = Vec::new();
        for k in kinds {
            if !list.contains(&k) {
                list.push(k);
            }
        }
        if list.len() > 1 {
            list.retain(|k| *k != ExporterKind::None);
        }
        if list.is_empty() {
            list.push(ExporterKind::None);
        }
        self.overrides.set(&format!("exporters.{signal}"), list);
        self
    }

    /// The same exporters for every signal.
    pub fn exporters(mut self, kinds: impl IntoIterator<Item = ExporterKind>) -> Self {
        let kinds: Vec<ExporterKind> = kinds.into_iter().collect();
        for signal in Signal::ALL {
            self = self.exporter(signal, kinds.iter().copied());
        }
        self
    }

    /// The OTLP endpoint of every signal, like `OTEL_EXPORTER_OTLP_ENDPOINT`: HTTP protocols
    /// get `/v1/<signal>` appended.
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.overrides.forget_general_endpoints();
        self.overrides.set("otlp.endpoint", url.into());
        self.overrides.normalize();
        self
    }

    /// The OTLP endpoint of one signal, used verbatim, like
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    pub fn otlp_signal_endpoint(mut self, signal: Signal, url: impl Into<String>) -> Self {
        self.overrides
            .set(&format!("otlp.{signal}.endpoint"), url.into());
        // Verbatim, even where an earlier general endpoint had filled this signal in.
        self.overrides.set(
            &format!("otlp.{signal}.{}", super::layer::APPEND_PATH),
            false,
        );
        self.overrides
            .set(&format!("otlp.{signal}.endpoint_set"), true);
        self.overrides.normalize();
        self
    }

    /// The OTLP protocol of every signal.
    pub fn otlp_protocol(mut self, protocol: Protocol) -> Self {
        for signal in Signal::ALL {
            self.overrides
                .set(&format!("otlp.{signal}.protocol"), protocol);
        }
        self
    }

    /// Where the embedded file exporter writes.
    pub fn telemetry_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.overrides.set("telemetry_dir", dir.into());
        self
    }
}
