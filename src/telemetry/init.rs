//! [`init`] and [`TelemetryBuilder`]: resolve the configuration, print what was ignored, and
//! install the providers, in one call at program start.

use super::config::{ConfigBuilder, Resolved, Settings};
use super::{InstallOptions, TelemetryError, TelemetryGuard, install};
use crate::RunId;

/// Configures traces, logs and metrics from the environment (`OTEL_*`, `DAGTEL_*`), the
/// profile and the optional TOML file, and installs them globally.
///
/// Invalid values are ignored with one warning each on stderr (an error in strict mode), as
/// the OpenTelemetry specification asks. With no exporter chosen and no OTLP endpoint set,
/// everything goes to OTLP/JSON files under `./telemetry/<id>/`.
///
/// # Errors
///
/// Strict-mode violations, an unreadable configuration file, or exporters that cannot be
/// built (e.g. a TLS setting without the `tls` feature).
pub fn init(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    TelemetryBuilder::new(service_name).init()
}

/// A guard with nothing installed, whose [`hooks`](TelemetryGuard::hooks) record nothing: what
/// a program can run with when [`init`] failed and the pipeline must go on regardless.
pub fn disabled() -> TelemetryGuard {
    let settings = Settings {
        disabled: true,
        ..Settings::default()
    };
    let options = InstallOptions::new()
        .local()
        .parent_env(Vec::<(String, String)>::new());
    install(&settings, "disabled", options).expect("installing nothing cannot fail")
}

/// [`init`] with options: configuration set in code (the highest layer) and install options.
///
/// ```no_run
/// use dagtel::RunId;
/// use dagtel::telemetry::TelemetryBuilder;
/// use dagtel::telemetry::config::Profile;
///
/// let run_id = RunId::generate();
/// let telemetry = TelemetryBuilder::new("etl")
///     .config(|c| c.profile(Profile::Dev))
///     .run_id(run_id.clone()) // names the telemetry directory
///     .init()?;
/// println!("{}", telemetry.explain().unwrap());
/// let hooks = telemetry.hooks(); // give these to the executor
/// # Ok::<(), dagtel::telemetry::TelemetryError>(())
/// ```
#[derive(Debug)]
pub struct TelemetryBuilder {
    service_name: String,
    config: ConfigBuilder,
    options: InstallOptions,
    quiet: bool,
}

impl TelemetryBuilder {
    /// A builder for a program called `service_name` (`OTEL_SERVICE_NAME` still wins).
    pub fn new(service_name: impl Into<String>) -> Self {
        let service_name = service_name.into();
        Self {
            config: ConfigBuilder::new().default_service_name(service_name.clone()),
            service_name,
            options: InstallOptions::new(),
            quiet: false,
        }
    }

    /// Adjusts the configuration (values set here beat every other layer).
    pub fn config(mut self, f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Self {
        self.config = f(self.config);
        self
    }

    /// Adjusts how the providers are installed.
    pub fn options(mut self, f: impl FnOnce(InstallOptions) -> InstallOptions) -> Self {
        self.options = f(self.options);
        self
    }

    /// Names the telemetry directory after this run id (pass the same id to the run).
    pub fn run_id(mut self, run_id: RunId) -> Self {
        self.options = self.options.run_id(run_id);
        self
    }

    /// Does not print configuration warnings (they stay readable from the guard's
    /// [`resolved`](TelemetryGuard::resolved) configuration).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Resolves, warns, installs.
    ///
    /// # Errors
    ///
    /// See [`init`].
    pub fn init(self) -> Result<TelemetryGuard, TelemetryError> {
        let resolved = self.config.resolve()?;
        if !self.quiet {
            resolved.print_warnings();
        }
        self.install(resolved)
    }

    fn install(self, resolved: Resolved) -> Result<TelemetryGuard, TelemetryError> {
        let mut guard = install(&resolved.settings, &self.service_name, self.options)?;
        guard.resolved = Some(resolved);
        if !self.quiet {
            for warning in guard.subscriber_warnings() {
                eprintln!("{warning}");
            }
        }
        Ok(guard)
    }
}
