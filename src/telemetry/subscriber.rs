//! The `tracing` wiring: `tracing` spans become OpenTelemetry spans, `tracing` events become
//! OpenTelemetry log records, and the SDK's own diagnostics are printed to stderr at the
//! configured level. Installed as the global default subscriber only when none is set yet;
//! programs with their own subscriber add [`layers`] to it instead.

use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use super::config::LogLevel;
use crate::otel::logs::{bridge_layer, console_layer, span_layer};

/// The OpenTelemetry layers for an existing subscriber: `tracing` spans to `tracer`, events
/// (minus the SDK's and network stacks' own) to `logger`; see [`crate::otel::logs`].
pub fn layers<S>(
    tracer: Option<&SdkTracerProvider>,
    logger: Option<&SdkLoggerProvider>,
) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    Layer::and_then(tracer.map(span_layer), logger.map(bridge_layer))
}

/// The console filter: `RUST_LOG` when set, else the program's events at `info`, and the SDK's
/// own diagnostics at `sdk_level` (`OTEL_LOG_LEVEL`).
fn console_filter(sdk_level: LogLevel) -> EnvFilter {
    if let Ok(filter) = EnvFilter::try_from_default_env() {
        return filter;
    }
    let level = match sdk_level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    EnvFilter::new(format!(
        "info,opentelemetry={level},opentelemetry_sdk={level},opentelemetry_otlp={level}"
    ))
}

/// What is exported as spans and log records: `RUST_LOG` when set, else `info` and above.
/// Debug and trace events of libraries stay local unless asked for.
fn export_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs a global subscriber with [`layers`] (filtered by `RUST_LOG`, `info` by default)
/// and a console layer whose lines name the run and the node
/// ([`RunAwareFormat`](crate::otel::logs::RunAwareFormat)). Returns false, changing nothing,
/// when a global subscriber is already set.
pub(crate) fn try_install(
    tracer: Option<&SdkTracerProvider>,
    logger: Option<&SdkLoggerProvider>,
    sdk_level: LogLevel,
) -> bool {
    tracing_subscriber::registry()
        .with(layers(tracer, logger).with_filter(export_filter()))
        .with(console_layer().with_filter(console_filter(sdk_level)))
        .try_init()
        .is_ok()
}
