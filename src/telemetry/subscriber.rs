//! The `tracing` wiring: `tracing` spans become OpenTelemetry spans, `tracing` events become
//! OpenTelemetry log records, and the SDK's own diagnostics are printed to stderr at the
//! configured level. Installed as the global default subscriber only when none is set yet;
//! programs with their own subscriber add [`layers`] to it instead.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use super::config::LogLevel;

/// The instrumentation scope of spans created through `tracing`.
const TRACER_NAME: &str = "dagtel";

/// Targets whose events must not become log records: the SDK's and exporters' own diagnostics
/// (exporting them would feed telemetry about telemetry back into the pipeline, and can
/// deadlock the tracing bridge) and the HTTP/gRPC stacks they run on.
const INTERNAL_TARGETS: [&str; 5] = ["opentelemetry", "hyper", "tonic", "h2", "reqwest"];

fn is_internal(target: &str) -> bool {
    INTERNAL_TARGETS.iter().any(|t| target.starts_with(t))
}

/// The OpenTelemetry layers for an existing subscriber: spans to `tracer`, events (minus the
/// SDK's and network stacks' own) to `logger`.
pub fn layers<S>(
    tracer: Option<&SdkTracerProvider>,
    logger: Option<&SdkLoggerProvider>,
) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let spans = tracer.map(|tp| tracing_opentelemetry::layer().with_tracer(tp.tracer(TRACER_NAME)));
    let logs = logger.map(|lp| {
        OpenTelemetryTracingBridge::new(lp).with_filter(filter_fn(|m| !is_internal(m.target())))
    });
    Layer::and_then(spans, logs)
}

/// Installs a global subscriber with [`layers`] and a stderr `fmt` layer that shows warnings,
/// plus the SDK's diagnostics at `sdk_level` (`OTEL_LOG_LEVEL`). Returns false, changing
/// nothing, when a global subscriber is already set.
pub(crate) fn try_install(
    tracer: Option<&SdkTracerProvider>,
    logger: Option<&SdkLoggerProvider>,
    sdk_level: LogLevel,
) -> bool {
    let level = match sdk_level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let directives =
        format!("warn,opentelemetry={level},opentelemetry_sdk={level},opentelemetry_otlp={level}");
    let console = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(EnvFilter::new(directives));
    tracing_subscriber::registry()
        .with(layers(tracer, logger))
        .with(console)
        .try_init()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_targets_are_recognised() {
        assert!(is_internal("opentelemetry_sdk::trace"));
        assert!(is_internal("hyper_util::client"));
        assert!(is_internal("tonic::transport"));
        assert!(!is_internal("dagtel::execution"));
        assert!(!is_internal("my_app"));
    }
}
