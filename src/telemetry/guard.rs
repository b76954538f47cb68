//! The [`TelemetryGuard`]: owns the installed providers, flushes and shuts them down within a
//! bounded time, and reports what could not be delivered.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::Signal;
use super::config::{Explanation, Resolved, Settings};
use super::exporters::{MemoryExporters, Tallies};
use super::propagation::ParentContext;
use super::report::{ExporterReport, ShutdownOutcome, ShutdownReport, SignalReport};
use super::runtime::TelemetryRuntime;
use crate::otel::exemplars::Exemplars;
use crate::otel::{OtelHooks, OtelHooksBuilder, SharedMetrics};

/// Keeps telemetry running; flushes and shuts it down on [`shutdown`](Self::shutdown) or drop.
///
/// Shutdown never hangs, even with the collector gone: each provider shuts down on a helper
/// thread, and the guard stops waiting at the deadline (5 s by default, see
/// [`InstallOptions::shutdown_timeout`](super::InstallOptions::shutdown_timeout)). What could
/// not be delivered by then is counted in the [`ShutdownReport`].
#[derive(Debug)]
#[must_use = "dropping the guard shuts telemetry down at once"]
pub struct TelemetryGuard {
    pub(crate) providers: Providers,
    pub(crate) runtime: TelemetryRuntime,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) memory: MemoryExporters,
    pub(crate) parent: ParentContext,
    pub(crate) subscriber_installed: bool,
    /// See [`subscriber_warnings`](Self::subscriber_warnings).
    pub(crate) subscriber_warnings: Vec<String>,
    pub(crate) shut_down: bool,
    pub(crate) settings: Settings,
    pub(crate) resolved: Option<Resolved>,
    /// What every hook built from this guard shares (one collection callback, not one per
    /// `hooks()` call).
    pub(crate) hook_metrics: OnceLock<SharedMetrics>,
    /// The exemplar reservoir the metric exporters attach, unless exemplars are off.
    pub(crate) exemplars: Option<Arc<Exemplars>>,
}

/// The providers of the signals that export somewhere.
#[derive(Debug, Default)]
pub(crate) struct Providers {
    pub(crate) tracer: Option<(SdkTracerProvider, Tallies)>,
    pub(crate) logger: Option<(SdkLoggerProvider, Tallies)>,
    pub(crate) meter: Option<(SdkMeterProvider, Tallies)>,
}

type Job = Box<dyn FnOnce() -> OTelSdkResult + Send>;

/// The longest shutdown (and flush) the guard waits for.
const MAX_SHUTDOWN: Duration = Duration::from_secs(24 * 60 * 60);

impl TelemetryGuard {
    /// The settings the providers were built from.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The resolved configuration (settings, warnings, sources), when the guard comes from
    /// [`init`](super::init) or [`TelemetryBuilder`](super::TelemetryBuilder).
    pub fn resolved(&self) -> Option<&Resolved> {
        self.resolved.as_ref()
    }

    /// Each resolved setting with its value and the layer it came from (secrets masked), when
    /// the guard comes from [`init`](super::init) or [`TelemetryBuilder`](super::TelemetryBuilder).
    pub fn explain(&self) -> Option<&Explanation> {
        self.resolved.as_ref().map(Resolved::explain)
    }

    /// Hooks that trace, log and measure runs with these providers: the link limit is the
    /// configured span link limit, node metrics go to the configured series
    /// (`DAGTEL_NODE_METRICS`), and runs join the parent process's trace when one was
    /// passed in the environment. With tracing off (disabled, or no trace exporter) runs are
    /// sampled out: no spans, and metrics (if exported) from each run's record. Same as
    /// `hooks_builder().build()`.
    pub fn hooks(&self) -> OtelHooks {
        self.hooks_builder().build()
    }

    /// The builder behind [`hooks`](Self::hooks), already wired to these providers, the
    /// configured link limit and node series, and the parent process's trace, for hooks with
    /// more options:
    ///
    /// ```no_run
    /// use dagtel::otel::TaskSpans;
    /// let telemetry = dagtel::telemetry::init("etl")?;
    /// let hooks = telemetry
    ///     .hooks_builder()
    ///     .link_every_edge(true)
    ///     .task_spans(TaskSpans::All)
    ///     .scope_for_layer("io", "etl.io")
    ///     .build();
    /// # Ok::<(), dagtel::telemetry::TelemetryError>(())
    /// ```
    pub fn hooks_builder(&self) -> OtelHooksBuilder {
        use opentelemetry_sdk::trace::Sampler;
        let tracer = match &self.providers.tracer {
            Some((tracer, _)) => tracer.clone(),
            None => SdkTracerProvider::builder()
                .with_sampler(Sampler::AlwaysOff)
                .build(),
        };
        let mut hooks = match &self.providers.meter {
            Some((meter, _)) => {
                let shared = self.hook_metrics.get_or_init(|| {
                    SharedMetrics::new(meter).with_exemplars(self.exemplars.clone())
                });
                OtelHooks::builder_sharing(&tracer, shared)
            }
            None => OtelHooks::builder(&tracer, &SdkMeterProvider::builder().build()),
        };
        hooks = hooks
            .max_links(self.settings.limits.span_link_count as usize)
            .node_series(self.settings.metrics.node_series);
        if self.parent.carries_anything() {
            hooks = hooks.parent(self.parent.context.clone());
        }
        if let Some(run_id) = &self.parent.run_id {
            hooks = hooks.parent_run(run_id.clone());
        }
        hooks
    }

    /// The exemplar reservoir that the OTLP and file metric exporters attach to dagtel's
    /// duration histograms, and that hooks from this guard feed; `None` when exemplars are
    /// off (`OTEL_METRICS_EXEMPLAR_FILTER=always_off`) or metrics go nowhere. See
    /// [`exemplars`](crate::otel::exemplars).
    pub fn exemplars(&self) -> Option<&Arc<Exemplars>> {
        self.exemplars.as_ref()
    }

    /// The tracer provider, when traces are exported somewhere.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.providers.tracer.as_ref().map(|(p, _)| p)
    }

    /// The logger provider, when logs are exported somewhere.
    pub fn logger_provider(&self) -> Option<&SdkLoggerProvider> {
        self.providers.logger.as_ref().map(|(p, _)| p)
    }

    /// The meter provider, when metrics are exported somewhere.
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.providers.meter.as_ref().map(|(p, _)| p)
    }

    /// The directory the file exporter writes to (`<telemetry dir>/<run id>/`), when some
    /// signal is exported to files.
    pub fn telemetry_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The in-memory exporters, for signals exported to memory.
    pub fn memory(&self) -> &MemoryExporters {
        &self.memory
    }

    /// The trace context and run id inherited from the parent process (see
    /// [`propagation`](super::propagation)); an empty context when there is none.
    pub fn parent(&self) -> &ParentContext {
        &self.parent
    }

    /// Whether the global `tracing` subscriber was installed (false when one was already set,
    /// or when not installing globally).
    pub fn subscriber_installed(&self) -> bool {
        self.subscriber_installed
    }

    /// What the global `tracing` subscriber's install left wrong, one line each, printed on
    /// stderr by [`init`](super::init):
    /// - another `tracing` subscriber was already set (the program's own, or one an earlier
    ///   install in this process set, which still sends to that install's providers) while
    ///   this guard exports traces or logs: `tracing` spans and events are not exported here;
    /// - `RUST_LOG` did not parse, so the default filters apply.
    pub fn subscriber_warnings(&self) -> &[String] {
        &self.subscriber_warnings
    }

    /// Exports everything queued so far, waiting at most the shutdown timeout. Returns the
    /// signals whose flush failed or did not finish in time.
    pub fn force_flush(&self) -> Vec<(Signal, ShutdownOutcome)> {
        let mut jobs: Vec<(Signal, Job)> = Vec::new();
        if let Some((p, _)) = &self.providers.tracer {
            let p = p.clone();
            jobs.push((Signal::Traces, Box::new(move || p.force_flush())));
        }
        if let Some((p, _)) = &self.providers.logger {
            let p = p.clone();
            jobs.push((Signal::Logs, Box::new(move || p.force_flush())));
        }
        if let Some((p, _)) = &self.providers.meter {
            let p = p.clone();
            jobs.push((Signal::Metrics, Box::new(move || p.force_flush())));
        }
        run_bounded(jobs, Instant::now() + self.bounded_timeout())
            .into_iter()
            .filter(|(_, outcome)| *outcome != ShutdownOutcome::Completed)
            .collect()
    }

    /// Flushes and shuts down every provider, within the shutdown timeout, and reports what
    /// was exported, failed and dropped. Safe to call from any thread, including a tokio
    /// worker: the blocking work happens on helper threads.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.shutdown_now()
    }

    /// The shutdown timeout, at most a day: a deadline past that (`Duration::MAX`, say) would
    /// overflow the clock, here and in the SDK's own deadlines.
    fn bounded_timeout(&self) -> Duration {
        self.shutdown_timeout.min(MAX_SHUTDOWN)
    }

    fn shutdown_now(&mut self) -> ShutdownReport {
        if self.shut_down {
            return ShutdownReport::default();
        }
        self.shut_down = true;
        let started = Instant::now();
        let timeout = self.bounded_timeout();
        let deadline = started + timeout;
        let mut jobs: Vec<(Signal, Job)> = Vec::new();
        if let Some((p, _)) = &self.providers.tracer {
            let p = p.clone();
            jobs.push((
                Signal::Traces,
                Box::new(move || p.shutdown_with_timeout(timeout)),
            ));
        }
        if let Some((p, _)) = &self.providers.logger {
            let p = p.clone();
            jobs.push((
                Signal::Logs,
                Box::new(move || p.shutdown_with_timeout(timeout)),
            ));
        }
        if let Some((p, _)) = &self.providers.meter {
            let p = p.clone();
            jobs.push((
                Signal::Metrics,
                Box::new(move || p.shutdown_with_timeout(timeout)),
            ));
        }
        let outcomes = run_bounded(jobs, deadline);
        // gRPC exports still running past the deadline fail fast once their runtime is gone,
        // which lets the helper threads finish.
        self.runtime.shutdown();

        let mut signals = Vec::new();
        let tallies = [
            (
                Signal::Traces,
                self.providers.tracer.as_ref().map(|(_, t)| t),
            ),
            (Signal::Logs, self.providers.logger.as_ref().map(|(_, t)| t)),
            (
                Signal::Metrics,
                self.providers.meter.as_ref().map(|(_, t)| t),
            ),
        ];
        for (signal, tallies) in tallies {
            let Some(tallies) = tallies else { continue };
            let outcome = outcomes
                .iter()
                .find(|(s, _)| *s == signal)
                .map(|(_, o)| o.clone())
                .unwrap_or(ShutdownOutcome::Completed);
            let exporters = tallies
                .iter()
                .map(|(kind, tally)| {
                    let (submitted, exported, failed) =
                        (tally.submitted(), tally.exported(), tally.failed());
                    ExporterReport {
                        kind: *kind,
                        submitted,
                        exported,
                        failed,
                        dropped: submitted.saturating_sub(exported + failed),
                    }
                })
                .collect();
            signals.push(SignalReport {
                signal,
                outcome,
                exporters,
            });
        }
        ShutdownReport {
            signals,
            elapsed: started.elapsed(),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let report = self.shutdown_now();
        if !report.is_complete() {
            tracing::warn!(target: "dagtel::telemetry", "{report}");
        }
    }
}

/// Runs each job on its own thread and waits for all of them until `deadline`; a job still
/// running then is reported as timed out and left to finish (or not) in the background.
fn run_bounded(jobs: Vec<(Signal, Job)>, deadline: Instant) -> Vec<(Signal, ShutdownOutcome)> {
    let (tx, rx) = mpsc::channel();
    let mut pending: Vec<Signal> = Vec::new();
    let mut outcomes = Vec::new();
    for (signal, job) in jobs {
        let tx = tx.clone();
        let spawned = thread::Builder::new()
            .name(format!("dagtel-telemetry-{signal}-shutdown"))
            .spawn(move || {
                let _ = tx.send((signal, job()));
            });
        match spawned {
            Ok(_) => pending.push(signal),
            Err(error) => outcomes.push((signal, ShutdownOutcome::Failed(error.to_string()))),
        }
    }
    drop(tx);
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((signal, result)) => {
                pending.retain(|s| *s != signal);
                let outcome = match result {
                    Ok(()) => ShutdownOutcome::Completed,
                    Err(error) => ShutdownOutcome::Failed(error.to_string()),
                };
                outcomes.push((signal, outcome));
            }
            Err(_) => break,
        }
    }
    outcomes.extend(pending.into_iter().map(|s| (s, ShutdownOutcome::TimedOut)));
    outcomes
}
