//! The tracer provider: sampler, span limits, caller processors first, then one batch span
//! processor per exporter.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;

use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, InMemorySpanExporter, Sampler, SdkTracerProvider, Span,
    SpanData, SpanExporter, SpanLimits, SpanProcessor,
};

use super::TelemetryError;
use super::boxed::BoxedSpanProcessor;
use super::config::{BatchSettings, ExporterKind, LimitSettings, SamplerKind, SamplerSettings};
use super::exporters::file::FileSpanExporter;
use super::exporters::{BuildContext, Retained, Tallies, kinds, otlp};
use super::tally::{Counted, Submitted, Tally};
use super::truncate::ValueLengthLimit;
use crate::processors::RunIdSpanProcessor;

/// The tracer provider for the settings' trace exporters, or `None` when traces go nowhere.
pub(crate) fn build(
    cx: &mut BuildContext<'_>,
    extra: Vec<BoxedSpanProcessor>,
    run_ids: bool,
) -> Result<(Option<SdkTracerProvider>, Tallies), TelemetryError> {
    let settings = cx.settings;
    let kinds = kinds(&settings.exporters.traces);
    if kinds.is_empty() {
        return Ok((None, Vec::new()));
    }
    let mut builder = SdkTracerProvider::builder()
        .with_resource(cx.resource.clone())
        .with_sampler(sampler(&settings.sampler))
        .with_span_limits(span_limits(&settings.limits));
    // Caller processors first: they stamp attributes in `on_start`, and must see every span
    // before an exporting processor queues it.
    for processor in extra {
        builder = builder.with_span_processor(processor);
    }
    let mut tallies = Vec::with_capacity(kinds.len());
    let mut exporting_set = Vec::with_capacity(kinds.len());
    for kind in kinds {
        let tally = Arc::new(Tally::default());
        let processor = match kind {
            ExporterKind::Otlp => {
                let exporter = otlp::span_exporter(
                    &otlp::effective(&settings.otlp.traces, settings.span_batch.export_timeout),
                    cx.runtime,
                )?;
                exporting(exporter, &tally, cx)
            }
            ExporterKind::Console => {
                exporting(opentelemetry_stdout::SpanExporter::default(), &tally, cx)
            }
            ExporterKind::File => {
                let exporter = FileSpanExporter::open(cx.file_dir()?)?;
                exporting(exporter, &tally, cx)
            }
            ExporterKind::Memory => {
                let exporter = InMemorySpanExporter::default();
                cx.memory.spans = Some(exporter.clone());
                exporting(Retained(exporter), &tally, cx)
            }
            ExporterKind::None => continue,
        };
        exporting_set.push(processor);
        tallies.push((kind, tally));
    }
    // One processor for all exporters, with the run-id stamp in front: the SDK copies every
    // ended span once per processor beyond the first.
    let exporters = FanOut(exporting_set);
    builder = if run_ids {
        builder.with_span_processor(RunIdSpanProcessor::wrap(exporters))
    } else {
        builder.with_span_processor(exporters)
    };
    Ok((Some(builder.build()), tallies))
}

/// Several processors as one: each sees every span; a copy of an ended span is made only for
/// the second and later ones.
#[derive(Debug)]
struct FanOut(Vec<BoxedSpanProcessor>);

impl SpanProcessor for FanOut {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        for p in &self.0 {
            p.on_start(span, cx);
        }
    }

    fn on_end(&self, span: SpanData) {
        if let Some((last, rest)) = self.0.split_last() {
            for p in rest {
                p.on_end(span.clone());
            }
            last.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0
            .iter()
            .map(SpanProcessor::force_flush)
            .fold(Ok(()), Result::and)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0
            .iter()
            .map(|p| p.shutdown_with_timeout(timeout))
            .fold(Ok(()), Result::and)
    }

    fn set_resource(&mut self, resource: &Resource) {
        for p in &mut self.0 {
            p.set_resource(resource);
        }
    }
}

/// `exporter` behind a counted batch processor, behind the value-length limit.
fn exporting<E: SpanExporter + 'static>(
    exporter: E,
    tally: &Arc<Tally>,
    cx: &BuildContext<'_>,
) -> BoxedSpanProcessor {
    let batch = BatchSpanProcessor::builder(Counted::new(exporter, tally.clone()))
        .with_batch_config(batch_config(&cx.settings.span_batch))
        .build();
    let counted = Submitted::new(batch, tally.clone());
    BoxedSpanProcessor(match cx.settings.limits.span_attribute_value_length {
        Some(max) => Box::new(ValueLengthLimit::new(counted, max as usize)),
        None => Box::new(counted),
    })
}

/// Every value set explicitly: the SDK's builder would otherwise read `OTEL_BSP_*` itself.
/// The export timeout is not a batch setting of the SDK's thread-based processor; each
/// export is bounded by the exporter's own timeout instead.
fn batch_config(batch: &BatchSettings) -> opentelemetry_sdk::trace::BatchConfig {
    BatchConfigBuilder::default()
        // A zero-sized queue would drop every span; one is the smallest that works.
        .with_max_queue_size(batch.max_queue_size.max(1))
        .with_max_export_batch_size(batch.max_export_batch_size.max(1))
        .with_scheduled_delay(batch.schedule_delay)
        .build()
}

/// The sampler. The parent-based samplers follow the parent's decision and the ratio sampler
/// decides from the trace id alone, so every span of one run (one trace) is kept or dropped
/// together.
pub(crate) fn sampler(settings: &SamplerSettings) -> Sampler {
    let ratio = if settings.ratio.is_nan() {
        1.0
    } else {
        settings.ratio.clamp(0.0, 1.0)
    };
    match settings.kind {
        SamplerKind::AlwaysOn => Sampler::AlwaysOn,
        SamplerKind::AlwaysOff => Sampler::AlwaysOff,
        SamplerKind::TraceIdRatio => Sampler::TraceIdRatioBased(ratio),
        SamplerKind::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerKind::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerKind::ParentBasedTraceIdRatio => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
        }
    }
}

fn span_limits(limits: &LimitSettings) -> SpanLimits {
    SpanLimits {
        max_events_per_span: limits.span_event_count,
        max_attributes_per_span: limits.span_attribute_count,
        max_links_per_span: limits.span_link_count,
        max_attributes_per_event: limits.event_attribute_count,
        max_attributes_per_link: limits.link_attribute_count,
    }
}
