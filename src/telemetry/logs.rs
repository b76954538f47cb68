//! The logger provider: caller processors first, then one batch log processor per exporter,
//! behind the log record attribute limits (`OTEL_LOGRECORD_ATTRIBUTE_*`).

use std::sync::Arc;

use opentelemetry_sdk::logs::{
    BatchConfigBuilder, BatchLogProcessor, InMemoryLogExporter, LogExporter, LoggerProviderBuilder,
    SdkLoggerProvider,
};

use super::TelemetryError;
use super::boxed::BoxedLogProcessor;
use super::config::{ExporterKind, Settings};
use super::exporters::file::FileLogExporter;
use super::exporters::{BuildContext, Retained, Tallies, kinds, otlp};
use super::log_limits::LogRecordLimits;
use super::tally::{Counted, Submitted, Tally};

/// The logger provider for the settings' log exporters, or `None` when logs go nowhere.
pub(crate) fn build(
    cx: &mut BuildContext<'_>,
    extra: Vec<BoxedLogProcessor>,
) -> Result<(Option<SdkLoggerProvider>, Tallies), TelemetryError> {
    let settings = cx.settings;
    let kinds = kinds(&settings.exporters.logs);
    if kinds.is_empty() {
        return Ok((None, Vec::new()));
    }
    let mut builder = SdkLoggerProvider::builder().with_resource(cx.resource.clone());
    // Caller processors first: later processors see the attributes they add.
    for processor in extra {
        builder = builder.with_log_processor(processor);
    }
    let mut tallies = Vec::with_capacity(kinds.len());
    for kind in kinds {
        let tally = Arc::new(Tally::default());
        builder = match kind {
            ExporterKind::Otlp => {
                let exporter = otlp::log_exporter(
                    &otlp::effective(&settings.otlp.logs, settings.log_batch.export_timeout),
                    cx.runtime,
                )?;
                exporting(builder, exporter, &tally, settings)
            }
            ExporterKind::Console => exporting(
                builder,
                opentelemetry_stdout::LogExporter::default(),
                &tally,
                settings,
            ),
            ExporterKind::File => {
                let exporter = FileLogExporter::open(cx.file_dir()?)?;
                exporting(builder, exporter, &tally, settings)
            }
            ExporterKind::Memory => {
                let exporter = InMemoryLogExporter::default();
                cx.memory.logs = Some(exporter.clone());
                exporting(builder, Retained(exporter), &tally, settings)
            }
            ExporterKind::None => continue,
        };
        tallies.push((kind, tally));
    }
    Ok((Some(builder.build()), tallies))
}

fn exporting<E: LogExporter + 'static>(
    builder: LoggerProviderBuilder,
    exporter: E,
    tally: &Arc<Tally>,
    settings: &Settings,
) -> LoggerProviderBuilder {
    let batch = &settings.log_batch;
    // Every value set explicitly: the SDK's builder would otherwise read `OTEL_BLRP_*` itself.
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(batch.max_queue_size.max(1))
        .with_max_export_batch_size(batch.max_export_batch_size.max(1))
        .with_scheduled_delay(batch.schedule_delay)
        .build();
    let processor = BatchLogProcessor::builder(Counted::new(exporter, tally.clone()))
        .with_batch_config(config)
        .build();
    let limits = &settings.limits;
    builder.with_log_processor(LogRecordLimits::new(
        Submitted::new(processor, tally.clone()),
        limits.log_attribute_count as usize,
        limits.log_attribute_value_length.map(|n| n as usize),
    ))
}
