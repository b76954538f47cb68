//! [`install`]: build and install the providers a resolved [`Settings`] describes.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::global;
use opentelemetry_sdk::logs::LogProcessor;
use opentelemetry_sdk::trace::SpanProcessor;

use super::boxed::{BoxedLogProcessor, BoxedSpanProcessor};
use super::config::{ExemplarFilter, ExporterKind, Settings};
use super::exporters::{self, BuildContext, MemoryExporters};
use super::guard::{Providers, TelemetryGuard};
use super::propagation;
use super::resource::build_resource;
use super::runtime::TelemetryRuntime;
use super::{TelemetryError, logs, metrics, subscriber, traces};
use crate::RunId;
use crate::otel::exemplars::Exemplars;
use crate::processors::RunIdLogProcessor;

/// How [`install`] installs: globally or not, extra processors, the run id, the shutdown
/// deadline, the parent environment.
pub struct InstallOptions {
    install_global: bool,
    subscriber: bool,
    run_ids: bool,
    span_processors: Vec<Box<dyn SpanProcessor>>,
    log_processors: Vec<Box<dyn LogProcessor>>,
    run_id: Option<RunId>,
    shutdown_timeout: Duration,
    parent_env: Option<Vec<(String, String)>>,
}

impl Default for InstallOptions {
    fn default() -> Self {
        // Every span and log record of a run carries its run id, whatever else is added.
        Self {
            install_global: true,
            subscriber: true,
            run_ids: true,
            span_processors: Vec::new(),
            log_processors: Vec::new(),
            run_id: None,
            shutdown_timeout: Duration::from_secs(5),
            parent_env: None,
        }
    }
}

impl fmt::Debug for InstallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstallOptions")
            .field("install_global", &self.install_global)
            .field("subscriber", &self.subscriber)
            .field("span_processors", &self.span_processors.len())
            .field("log_processors", &self.log_processors.len())
            .field("run_id", &self.run_id)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

impl InstallOptions {
    /// The defaults: install globally, [`RunIdLogProcessor`] before any log processor added
    /// here, the run id of spans stamped by the exporting processor
    /// ([`RunIdSpanProcessor::wrap`](crate::processors::RunIdSpanProcessor::wrap), after the
    /// processors added with [`span_processor`](Self::span_processor)), a fresh directory id,
    /// 5 s to shut down, the parent context from this process's environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the providers without installing anything globally (no global providers,
    /// propagator or `tracing` subscriber): for tests and for programs that wire their own.
    pub fn local(mut self) -> Self {
        self.install_global = false;
        self
    }

    /// Installs the global providers and propagator but not the `tracing` subscriber: for a
    /// program that sets its own subscriber after this install, with
    /// [`subscriber::layers`](super::subscriber::layers) for this guard's providers in it.
    pub fn without_subscriber(mut self) -> Self {
        self.subscriber = false;
        self
    }

    /// Leaves out the run-id processors (for a program that stamps spans and records
    /// otherwise).
    pub fn without_run_ids(mut self) -> Self {
        self.run_ids = false;
        self
    }

    /// Adds a span processor that runs before the exporting processors. Processors run in the
    /// order added. (The run id is stamped by the exporting processor itself, see
    /// [`RunIdSpanProcessor::wrap`](crate::processors::RunIdSpanProcessor::wrap), so an added processor costs a copy of every span.)
    pub fn span_processor(mut self, processor: impl SpanProcessor + 'static) -> Self {
        self.span_processors.push(Box::new(processor));
        self
    }

    /// [`span_processor`](Self::span_processor) for a processor that is already boxed.
    pub fn span_processor_boxed(mut self, processor: Box<dyn SpanProcessor>) -> Self {
        self.span_processors.push(processor);
        self
    }

    /// Adds a log processor that runs before the exporting processors. Processors run in the
    /// order added, and later ones see the attributes earlier ones add.
    pub fn log_processor(mut self, processor: impl LogProcessor + 'static) -> Self {
        self.log_processors.push(Box::new(processor));
        self
    }

    /// [`log_processor`](Self::log_processor) for a processor that is already boxed.
    pub fn log_processor_boxed(mut self, processor: Box<dyn LogProcessor>) -> Self {
        self.log_processors.push(processor);
        self
    }

    /// Names the file exporter's directory after `run_id` instead of a fresh UUIDv7.
    pub fn run_id(mut self, run_id: RunId) -> Self {
        self.run_id = Some(run_id);
        self
    }

    /// The longest [`TelemetryGuard::shutdown`] (and drop) waits for all providers together.
    ///
    /// Metrics get at most 5 s of it whatever it is: the SDK's periodic reader (0.33) waits a
    /// fixed 5 s for its final export, and reports a timeout after that even if the export
    /// completes later.
    /// (At most a day: a longer timeout waits a day.)
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Reads the parent context from `env` instead of this process's environment.
    pub fn parent_env<I, K, V>(mut self, env: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.parent_env = Some(env.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }
}

/// Builds the tracer, logger and meter providers `settings` describe and, unless
/// [`InstallOptions::local`], installs them globally with the propagators and a `tracing`
/// subscriber (when none is set yet). `service_name` names the service when the settings do
/// not.
///
/// With `settings.disabled` (`OTEL_SDK_DISABLED=true`) nothing is built or installed: the
/// global providers stay no-ops, and the returned guard has no providers.
///
/// ```no_run
/// use dagtel::telemetry::{install, InstallOptions, config::Settings};
///
/// let guard = install(&Settings::default(), "etl", InstallOptions::new())?;
/// // ... run pipelines ...
/// println!("{}", guard.shutdown());
/// # Ok::<(), dagtel::telemetry::TelemetryError>(())
/// ```
pub fn install(
    settings: &Settings,
    service_name: &str,
    options: InstallOptions,
) -> Result<TelemetryGuard, TelemetryError> {
    let propagator = propagation::propagator(&settings.propagators);
    let parent = match options.parent_env {
        Some(env) => propagation::extract_parent_with(&propagator, env),
        None => propagation::extract_parent_with(
            &propagator,
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        ),
    };
    let mut guard = TelemetryGuard {
        providers: Providers::default(),
        runtime: TelemetryRuntime::default(),
        shutdown_timeout: options.shutdown_timeout,
        dir: None,
        memory: MemoryExporters::default(),
        parent,
        subscriber_installed: false,
        subscriber_warnings: Vec::new(),
        shut_down: false,
        settings: settings.clone(),
        resolved: None,
        hook_metrics: std::sync::OnceLock::new(),
        exemplars: None,
    };
    if settings.disabled {
        // Disabling the SDK does not silence the program: its console lines stay.
        if options.install_global && options.subscriber {
            install_subscriber(&mut guard, settings);
        }
        return Ok(guard);
    }
    // Only the OTLP and file exporters attach exemplars: without them a reservoir is work
    // for nothing.
    let filter = settings.metrics.exemplar_filter;
    let attached = exporters::kinds(&settings.exporters.metrics)
        .iter()
        .any(|kind| matches!(kind, ExporterKind::Otlp | ExporterKind::File));
    if filter != ExemplarFilter::AlwaysOff && attached {
        guard.exemplars = Some(Arc::new(Exemplars::new(filter)));
    }

    let dir_id = options
        .run_id
        .map(|id| id.to_string())
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let dir = settings.telemetry_dir.join(dir_name(&dir_id));
    let resource = build_resource(settings, service_name);
    let mut cx = BuildContext {
        settings,
        resource: &resource,
        dir: &dir,
        runtime: &guard.runtime,
        memory: &mut guard.memory,
        exemplars: guard.exemplars.clone(),
    };
    let span_processors = options
        .span_processors
        .into_iter()
        .map(BoxedSpanProcessor)
        .collect();
    // The run id first, so every later processor and exporter sees it.
    let run_id_logs = options
        .run_ids
        .then(|| Box::new(RunIdLogProcessor::new()) as Box<dyn LogProcessor>);
    let log_processors = run_id_logs
        .into_iter()
        .chain(options.log_processors)
        .map(BoxedLogProcessor)
        .collect();
    // A failure part-way leaves the already-built providers to their drop, which shuts them
    // down; nothing was installed globally yet, and the directories this call created go too.
    let created = DirsCreated::before(&dir);
    let built = (|| -> Result<_, TelemetryError> {
        let traces = traces::build(&mut cx, span_processors, options.run_ids)?;
        let logs = logs::build(&mut cx, log_processors)?;
        let metrics = metrics::build(&mut cx)?;
        Ok((traces, logs, metrics))
    })();
    let ((tracer, trace_tallies), (logger, log_tallies), (meter, metric_tallies)) =
        built.inspect_err(|_| created.remove())?;
    guard.providers = Providers {
        tracer: tracer.map(|p| (p, trace_tallies)),
        logger: logger.map(|p| (p, log_tallies)),
        meter: meter.map(|p| (p, metric_tallies)),
    };
    let writes_files = [
        &settings.exporters.traces,
        &settings.exporters.logs,
        &settings.exporters.metrics,
    ]
    .iter()
    .any(|kinds| kinds.contains(&ExporterKind::File));
    if writes_files {
        guard.dir = Some(dir);
    }

    if options.install_global {
        global::set_text_map_propagator(propagator);
        if let Some(tp) = guard.tracer_provider() {
            global::set_tracer_provider(tp.clone());
        }
        if let Some(mp) = guard.meter_provider() {
            global::set_meter_provider(mp.clone());
        }
        if options.subscriber {
            install_subscriber(&mut guard, settings);
        }
    }
    Ok(guard)
}

/// Installs the global `tracing` subscriber for the guard's providers (none when disabled:
/// console lines only) and notes on the guard what did not work.
fn install_subscriber(guard: &mut TelemetryGuard, settings: &Settings) {
    let installed = subscriber::try_install(
        guard.tracer_provider(),
        guard.logger_provider(),
        settings.sdk_log_level,
    );
    guard.subscriber_installed = installed.is_ok();
    match installed {
        Ok(warnings) => guard.subscriber_warnings.extend(warnings),
        Err(()) if guard.logger_provider().is_some() || guard.tracer_provider().is_some() => {
            guard.subscriber_warnings.push(
                "dagtel: telemetry: a global `tracing` subscriber was already set, so `tracing` \
                 spans and events are not exported by this telemetry; to export them, install \
                 with `InstallOptions::without_subscriber()` before setting that subscriber and \
                 add `dagtel::telemetry::subscriber::layers(..)` to it"
                    .to_string(),
            )
        }
        Err(()) => {}
    }
}

/// The directories on the way to a telemetry directory that did not exist before
/// [`install`], so that a failed install removes what it created and nothing else.
struct DirsCreated<'a> {
    dir: &'a Path,
    /// The outermost missing ancestor (or `dir` itself); `None` when `dir` existed.
    outermost: Option<&'a Path>,
}

impl<'a> DirsCreated<'a> {
    fn before(dir: &'a Path) -> Self {
        let outermost = dir.ancestors().take_while(|d| !d.exists()).last();
        Self { dir, outermost }
    }

    /// Removes the run's directory with the files the exporters opened (nothing was recorded
    /// yet), then each created ancestor left empty.
    fn remove(&self) {
        let Some(outermost) = self.outermost else {
            return;
        };
        let _ = std::fs::remove_dir_all(self.dir);
        for ancestor in self.dir.ancestors().skip(1) {
            if !ancestor.starts_with(outermost) || std::fs::remove_dir(ancestor).is_err() {
                break;
            }
        }
    }
}

/// A run id as one directory name under the telemetry directory: characters other than
/// letters, digits, `.`, `_` and `-` become `_`, so an id from outside (a job id, a parent
/// process's run id) can never name a path elsewhere (`../x`, `/etc`).
fn dir_name(run_id: &str) -> String {
    let name: String = run_id
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect();
    if name.is_empty() || name.chars().all(|c| c == '.') {
        format!("run_{}", name.len())
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::dir_name;

    #[test]
    fn run_ids_name_one_directory_under_the_telemetry_directory() {
        assert_eq!(
            dir_name("01a23510-82db-733e-b5fa-a13251e83fd7"),
            "01a23510-82db-733e-b5fa-a13251e83fd7"
        );
        assert_eq!(dir_name("job 7/part"), "job_7_part");
        assert_eq!(dir_name("../x"), ".._x");
        assert_eq!(dir_name("/etc"), "_etc");
        assert_eq!(dir_name(".."), "run_2");
        assert_eq!(dir_name(""), "run_0");
        assert_eq!(dir_name("C:\\tmp"), "C__tmp");
    }
}
