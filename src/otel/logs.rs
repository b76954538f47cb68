//! The `tracing` layers that turn events into OpenTelemetry log records, `tracing` spans into
//! OpenTelemetry spans, and events into console lines that name the run and the node.
//!
//! ```
//! use dagtel::otel::logs;
//! use dagtel::processors::{RunIdLogProcessor, RunIdSpanProcessor};
//! use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//! use tracing_subscriber::prelude::*;
//!
//! let tracer_provider = SdkTracerProvider::builder()
//!     .with_span_processor(RunIdSpanProcessor::new())
//!     .with_simple_exporter(InMemorySpanExporter::default())
//!     .build();
//! let logger_provider = SdkLoggerProvider::builder()
//!     .with_log_processor(RunIdLogProcessor::new())
//!     .with_simple_exporter(InMemoryLogExporter::default())
//!     .build();
//! let subscriber = tracing_subscriber::registry()
//!     .with(logs::span_layer(&tracer_provider))
//!     .with(logs::bridge_layer(&logger_provider))
//!     .with(logs::console_layer());
//! // In a program: `subscriber.init()` (global, so rayon and tokio threads see it).
//! tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
//! ```
//!
//! # Records from the `log` crate
//!
//! Crates that log through the `log` facade reach these layers once a `tracing_log::LogTracer`
//! is installed as the `log` logger. tracing-subscriber's `tracing-log` feature is enabled, so
//! `SubscriberInitExt::init`, `try_init` and `set_default` install it. Such records carry the
//! target `log` in their metadata and the real one in the field `log.target`; the filter and
//! the console format here read the real one.
//!
//! # Telemetry about telemetry
//!
//! The SDK and the exporters' transports log through `tracing` themselves. Fed back into the
//! bridge they would become log records about exporting log records (and may deadlock, see
//! tracing-opentelemetry#250), so [`bridge_layer`] and [`span_layer`] drop every event and span
//! whose target belongs to [`TelemetryNoise`]. The console layer keeps them: that is where an
//! operator sees an exporter failing.

use std::fmt;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context as LayerContext, Filter};
use tracing_subscriber::registry::LookupSpan;

use crate::otel::context::stamp;

/// The instrumentation scope name of spans made from `tracing` spans.
pub const TRACING_SCOPE: &str = "dagtel.tracing";

/// Crates whose own diagnostics must not be exported as telemetry: the transports under the
/// OTLP exporters (exporting their events would make every export produce more records to
/// export). Every target starting with `opentelemetry` is excluded as well.
const NOISY_CRATES: [&str; 10] = [
    "hyper",
    "hyper_util",
    "tonic",
    "h2",
    "reqwest",
    "tower",
    "tower_http",
    "rustls",
    "want",
    "mio",
];

/// Whether events and spans with this target are the telemetry pipeline's own diagnostics.
///
/// ```
/// use dagtel::otel::logs::is_telemetry_noise;
///
/// assert!(is_telemetry_noise("opentelemetry_sdk"));
/// assert!(is_telemetry_noise("hyper_util::client::legacy"));
/// assert!(!is_telemetry_noise("h2o::pipeline"));
/// assert!(!is_telemetry_noise("my_app"));
/// ```
pub fn is_telemetry_noise(target: &str) -> bool {
    if target.starts_with("opentelemetry") {
        return true;
    }
    let krate = target.split("::").next().unwrap_or(target);
    NOISY_CRATES.contains(&krate)
}

/// A per-layer filter that drops the telemetry pipeline's own diagnostics
/// ([`is_telemetry_noise`]), including those that arrive as `log` records.
#[derive(Debug, Default, Clone, Copy)]
pub struct TelemetryNoise {
    _private: (),
}

impl TelemetryNoise {
    /// The filter.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Filter<S> for TelemetryNoise {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &LayerContext<'_, S>) -> bool {
        !is_telemetry_noise(meta.target())
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_telemetry_noise(meta.target()) {
            Interest::never()
        } else if is_log_record(meta) {
            // One callsite serves every `log` record of a level: decide per record.
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &LayerContext<'_, S>) -> bool {
        !is_log_record(event.metadata())
            || log_target(event).is_none_or(|target| !is_telemetry_noise(&target))
    }
}

/// The `tracing-opentelemetry` layer for `tracer_provider`: `tracing` spans become
/// OpenTelemetry spans (scope [`TRACING_SCOPE`]) whose parent is the current OpenTelemetry
/// context, so they nest under a run's node spans and are stamped by
/// [`RunIdSpanProcessor`](crate::processors::RunIdSpanProcessor). Entering one makes its
/// context current, which correlates log records emitted inside it. [`TelemetryNoise`] applies.
pub fn span_layer<S>(tracer_provider: &SdkTracerProvider) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(
            tracer_provider.tracer_with_scope(
                opentelemetry::InstrumentationScope::builder(TRACING_SCOPE)
                    .with_version(env!("CARGO_PKG_VERSION"))
                    .build(),
            ),
        )
        .with_filter(TelemetryNoise::new())
}

/// The appender bridge for `logger_provider`: `tracing` events (and `log` records, see the
/// module docs) become OpenTelemetry log records, correlated with the current span and stamped
/// by [`RunIdLogProcessor`](crate::processors::RunIdLogProcessor). [`TelemetryNoise`] applies.
pub fn bridge_layer<S>(logger_provider: &SdkLoggerProvider) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    OpenTelemetryTracingBridge::new(logger_provider).with_filter(TelemetryNoise::new())
}

/// A console layer writing [`RunAwareFormat`] lines to standard error, in colour only when it
/// is a terminal or `CLICOLOR_FORCE` is set (not `0`), and `NO_COLOR` is unset or empty.
///
/// Compose your own writer or filter with
/// `tracing_subscriber::fmt::layer().event_format(RunAwareFormat::new()).with_writer(..)`.
pub fn console_layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(|| MaskedStderr)
        .with_ansi(stderr_wants_colour())
        .event_format(RunAwareFormat::new())
}

/// Colour only for a terminal (colour codes in a batch job's file are noise) or when
/// `CLICOLOR_FORCE` is set to anything but `0` (CI logs that render them), and never when
/// `NO_COLOR` is set to anything but an empty value (<https://no-color.org>).
fn stderr_wants_colour() -> bool {
    use std::io::IsTerminal;
    let set = |name: &str, off: &str| std::env::var_os(name).is_some_and(|v| v != off);
    !set("NO_COLOR", "") && (set("CLICOLOR_FORCE", "0") || std::io::stderr().is_terminal())
}

/// Standard error with the credentials of URLs masked: the SDK's own diagnostics (at
/// `OTEL_LOG_LEVEL=debug`, an export's network error) quote the endpoint as given, password
/// included. Each event arrives as one formatted line.
struct MaskedStderr;

impl std::io::Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(mask_url_credentials(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `text` with the user info of every `scheme://user:password@host` URL in it replaced by
/// `***`.
pub(crate) fn mask_url_credentials(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at a path, a query, a quote or white space; user info at its
        // last `@` (a password may hold `#` or `@`).
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '"' | '\'' | '`') || c.is_whitespace())
            .unwrap_or(after.len());
        match after[..end].rfind('@') {
            Some(user_end) => {
                out.push_str("***");
                rest = &after[user_end..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// A console line format that names the run and the node an event belongs to:
///
/// ```text
/// 2026-11-21T10:00:00.123456Z  INFO run=0193a4f2-… node=clean load:parse: my_app::io: read rows=42
/// ```
///
/// The run and node come from the current OpenTelemetry context's
/// [`RunScope`](crate::otel::RunScope)/[`NodeScope`](crate::otel::NodeScope), so they are right on every thread where the context was
/// attached or [carried](crate::otel::carry); outside a run the line has neither. The
/// `tracing` span names in scope follow, then the target (the real one for `log` records) and
/// the fields.
///
/// ```
/// use dagtel::RunId;
/// use dagtel::otel::{RunScope, logs::RunAwareFormat};
/// use std::sync::{Arc, Mutex};
///
/// let out = Arc::new(Mutex::new(Vec::new()));
/// let writer = out.clone();
/// let subscriber = tracing_subscriber::fmt()
///     .with_ansi(false)
///     .event_format(RunAwareFormat::new().without_time())
///     .with_writer(move || Buf(writer.clone()))
///     .finish();
///
/// let run = opentelemetry::Context::new().with_value(RunScope::new(RunId::from("r-1"), "etl"));
/// tracing::subscriber::with_default(subscriber, || {
///     let _attached = run.attach();
///     tracing::info!(target: "app", rows = 3, "loaded");
/// });
/// let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
/// assert_eq!(text, " INFO run=r-1 app: loaded rows=3\n");
///
/// struct Buf(Arc<Mutex<Vec<u8>>>);
/// impl std::io::Write for Buf {
///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RunAwareFormat {
    time: bool,
}

impl Default for RunAwareFormat {
    fn default() -> Self {
        Self::new()
    }
}

impl RunAwareFormat {
    /// The format, with a UTC timestamp first.
    pub fn new() -> Self {
        Self { time: true }
    }

    /// The format without the timestamp (for tests and for sinks that add their own).
    pub fn without_time(self) -> Self {
        Self { time: false }
    }
}

impl<S, N> FormatEvent<S, N> for RunAwareFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if self.time {
            SystemTime.format_time(&mut writer)?;
            writer.write_char(' ')?;
        }
        write!(writer, "{:>5} ", meta.level())?;

        let stamp = stamp();
        if let Some(run) = stamp.run_id {
            write!(writer, "run={run} ")?;
        }
        if let Some(node) = stamp.node {
            write!(writer, "node={node} ")?;
        }

        if let Some(scope) = ctx.event_scope() {
            let mut any = false;
            for span in scope.from_root() {
                write!(writer, "{}:", span.name())?;
                any = true;
            }
            if any {
                writer.write_char(' ')?;
            }
        }

        match is_log_record(meta).then(|| log_target(event)).flatten() {
            Some(target) => write!(writer, "{target}: ")?,
            None => write!(writer, "{}: ", meta.target())?,
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Whether the event is a `log` record converted by `tracing_log::LogTracer`.
fn is_log_record(meta: &Metadata<'_>) -> bool {
    meta.target() == "log" && meta.fields().field("log.target").is_some()
}

/// The original target of a `log` record (its `log.target` field).
fn log_target(event: &Event<'_>) -> Option<String> {
    struct TargetVisitor(Option<String>);
    impl Visit for TargetVisitor {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "log.target" {
                self.0 = Some(value.to_owned());
            }
        }
        fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
    }
    let mut visitor = TargetVisitor(None);
    event.record(&mut visitor);
    visitor.0
}

#[cfg(test)]
mod tests {
    use super::{mask_url_credentials, stderr_wants_colour};

    /// Runs `colour_in_child` with the given variables (its stderr is a pipe, not a terminal).
    #[test]
    fn colour_follows_no_color_and_clicolor_force() {
        for (no_color, force, expect) in
            [("", "0", "false"), ("", "1", "true"), ("1", "1", "false")]
        {
            crate::child_test::run_in_child(
                "otel::logs::tests::colour_in_child",
                &[
                    ("NO_COLOR", no_color),
                    ("CLICOLOR_FORCE", force),
                    ("DAGTEL_TEST_COLOUR", expect),
                ],
            );
        }
    }

    #[test]
    fn colour_in_child() {
        if let Ok(expect) = std::env::var("DAGTEL_TEST_COLOUR") {
            assert_eq!(stderr_wants_colour().to_string(), expect);
        }
    }

    #[test]
    fn url_credentials_in_console_lines_are_masked() {
        let line = "DEBUG opentelemetry-otlp HttpClient.NetworkError \
                    url=\"http://user:s3cr3t#x@127.0.0.1:9/v1/traces\" and https://plain.host/x";
        let masked = mask_url_credentials(line);
        assert!(!masked.contains("s3cr3t"), "{masked}");
        assert!(
            masked.contains("url=\"http://***@127.0.0.1:9/v1/traces\""),
            "{masked}"
        );
        assert!(masked.contains("https://plain.host/x"), "{masked}");
        assert_eq!(mask_url_credentials("no urls, a@b"), "no urls, a@b");
    }
}
