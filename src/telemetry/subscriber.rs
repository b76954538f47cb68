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

/// `RUST_LOG` as a filter: `None` when unset or blank (as for dagtel's own variables, an
/// empty value counts as unset: an empty filter would enable nothing at all), else the parsed
/// filter or why it does not parse.
fn rust_log() -> Option<Result<EnvFilter, String>> {
    let value = std::env::var_os("RUST_LOG")?;
    let Some(value) = value.to_str() else {
        return Some(Err(format!(
            "dagtel: telemetry configuration: ignored RUST_LOG={value:?}: not UTF-8; using the \
             default filters"
        )));
    };
    if value.trim().is_empty() {
        return None;
    }
    Some(EnvFilter::try_new(value.trim()).map_err(|e| {
        format!("dagtel: telemetry configuration: ignored RUST_LOG={value:?}: {e}; using the default filters")
    }))
}

/// The console filter: `RUST_LOG` when set, else the program's events at `info`, and the SDK's
/// own diagnostics at `sdk_level` (`OTEL_LOG_LEVEL`).
fn console_filter(sdk_level: LogLevel) -> EnvFilter {
    if let Some(Ok(filter)) = rust_log() {
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
/// Debug and trace events of libraries stay local unless asked for. Node reports
/// (`ctx.event`, `ctx.artifact`) are data, not diagnostics: a `RUST_LOG` that does not name
/// their target still exports them.
fn export_filter() -> EnvFilter {
    match rust_log() {
        Some(Ok(filter)) if mentions_node_reports() => filter,
        Some(Ok(filter)) => filter.add_directive(node_reports()),
        _ => EnvFilter::new("info"),
    }
}

/// The directive that exports node reports.
fn node_reports() -> tracing_subscriber::filter::Directive {
    format!("{}=info", crate::otel::node_events::EVENT_TARGET)
        .parse()
        .expect("a valid directive")
}

/// Whether `RUST_LOG` says something about node reports' target itself (then it decides).
fn mentions_node_reports() -> bool {
    std::env::var("RUST_LOG").is_ok_and(|v| v.contains(crate::otel::node_events::EVENT_TARGET))
}

/// Installs a global subscriber with [`layers`] (filtered by `RUST_LOG`, `info` by default)
/// and a console layer whose lines name the run and the node
/// ([`RunAwareFormat`](crate::otel::logs::RunAwareFormat)), and the bridge from the `log`
/// crate. `Err`, changing nothing, when a global subscriber is already set; else warnings: a
/// `RUST_LOG` that did not parse, a `log` logger already set.
pub(crate) fn try_install(
    tracer: Option<&SdkTracerProvider>,
    logger: Option<&SdkLoggerProvider>,
    sdk_level: LogLevel,
) -> Result<Vec<String>, ()> {
    if tracing::dispatcher::has_been_set() {
        return Err(());
    }
    let mut warnings: Vec<String> = rust_log().and_then(Result::err).into_iter().collect();
    let installed = tracing_subscriber::registry()
        .with(layers(tracer, logger).with_filter(export_filter()))
        .with(console_layer().with_filter(console_filter(sdk_level)))
        .try_init();
    // `try_init` sets the subscriber, then the `log` bridge: failing with the subscriber set
    // (no other install raced this one in between) means a `log` logger was set already.
    if installed.is_err() {
        warnings.push(
            "dagtel: telemetry: a `log` logger was already set, so records of the `log` crate \
             are not exported by this telemetry (`tracing` events are)"
                .to_string(),
        );
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child_with(value: &str, expect: &str) {
        crate::child_test::run_in_child(
            "telemetry::subscriber::tests::rust_log_in_child",
            &[("RUST_LOG", value), ("DAGTEL_TEST_RUST_LOG_EXPECT", expect)],
        );
    }

    #[test]
    fn a_blank_rust_log_counts_as_unset_and_a_bad_one_is_reported() {
        child_with("", "unset");
        child_with("  ", "unset");
        child_with("info,my_app=debug", "filter");
        child_with("my_app=notalevel", "warning");
    }

    #[test]
    fn rust_log_in_child() {
        let Ok(expect) = std::env::var("DAGTEL_TEST_RUST_LOG_EXPECT") else {
            return;
        };
        match (expect.as_str(), rust_log()) {
            ("unset", None) | ("filter", Some(Ok(_))) => {}
            ("warning", Some(Err(warning))) => {
                assert!(
                    warning.contains("RUST_LOG=\"my_app=notalevel\""),
                    "{warning}"
                );
            }
            (expect, got) => panic!("expected {expect}, got {got:?}"),
        }
    }
}
