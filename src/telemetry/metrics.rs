//! The meter provider: one periodic reader per exporter, the temporality preference on every
//! exporter, and base-2 exponential histograms through a view when asked for.
//!
//! Exemplars (unless `OTEL_METRICS_EXEMPLAR_FILTER` is `always_off`) come from dagtel's own
//! reservoir, which the OTLP and file exporters attach (see [`crate::otel::exemplars`]); the
//! OTLP exporter is then dagtel's own ([`OtlpMetricExporter`]). The SDK's thread-based reader has no export timeout of its own, so
//! `OTEL_METRIC_EXPORT_TIMEOUT` bounds the OTLP exporter's timeout instead (the smaller of the
//! two applies to each export).

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{
    Aggregation, InMemoryMetricExporterBuilder, Instrument, InstrumentKind, MeterProviderBuilder,
    PeriodicReader, SdkMeterProvider, Stream, Temporality,
};

use super::TelemetryError;
use super::config::{ExporterKind, HistogramAggregation, TemporalityPreference};
use super::exporters::file::FileMetricExporter;
use super::exporters::otlp_metrics::OtlpMetricExporter;
use super::exporters::{BuildContext, Retained, Tallies, kinds, otlp};
use super::tally::{Counted, Tally};

/// The meter provider for the settings' metric exporters, or `None` when metrics go nowhere.
pub(crate) fn build(
    cx: &mut BuildContext<'_>,
) -> Result<(Option<SdkMeterProvider>, Tallies), TelemetryError> {
    let settings = cx.settings;
    let kinds = kinds(&settings.exporters.metrics);
    if kinds.is_empty() {
        return Ok((None, Vec::new()));
    }
    let temporality = temporality(settings.metrics.temporality);
    // Zero would make the reader spin; a millisecond is already far below any useful interval.
    let interval = settings
        .metrics
        .export_interval
        .max(Duration::from_millis(1));
    let exponential = settings.metrics.histogram_aggregation
        == HistogramAggregation::Base2ExponentialBucketHistogram;
    // One view for every instrument: a second matching view would add a second stream.
    let mut builder = SdkMeterProvider::builder()
        .with_resource(cx.resource.clone())
        .with_view(move |instrument: &Instrument| {
            let histograms = exponential.then(exponential_aggregation);
            crate::otel::metrics::bounded_view(instrument, histograms.clone()).or_else(|| {
                let aggregation =
                    histograms.filter(|_| instrument.kind() == InstrumentKind::Histogram)?;
                Stream::builder().with_aggregation(aggregation).build().ok()
            })
        });
    let mut tallies = Vec::with_capacity(kinds.len());
    for kind in kinds {
        let tally = Arc::new(Tally::default());
        builder = match kind {
            ExporterKind::Otlp => {
                let otlp_settings =
                    otlp::effective(&settings.otlp.metrics, settings.metrics.export_timeout);
                match &cx.exemplars {
                    Some(exemplars) => {
                        let exporter = OtlpMetricExporter::new(
                            &otlp_settings,
                            temporality,
                            cx.runtime,
                            Arc::clone(exemplars),
                        )?;
                        reading(builder, exporter, &tally, interval)
                    }
                    None => {
                        let exporter =
                            otlp::metric_exporter(&otlp_settings, temporality, cx.runtime)?;
                        reading(builder, exporter, &tally, interval)
                    }
                }
            }
            ExporterKind::Console => {
                let exporter = opentelemetry_stdout::MetricExporter::builder()
                    .with_temporality(temporality)
                    .build();
                reading(builder, exporter, &tally, interval)
            }
            ExporterKind::File => {
                let exporter =
                    FileMetricExporter::open(cx.file_dir()?, temporality, cx.exemplars.clone())?;
                reading(builder, exporter, &tally, interval)
            }
            ExporterKind::Memory => {
                let exporter = InMemoryMetricExporterBuilder::new()
                    .with_temporality(temporality)
                    .build();
                cx.memory.metrics = Some(exporter.clone());
                reading(builder, Retained(exporter), &tally, interval)
            }
            ExporterKind::None => continue,
        };
        tallies.push((kind, tally));
    }
    Ok((Some(builder.build()), tallies))
}

fn reading<E: PushMetricExporter>(
    builder: MeterProviderBuilder,
    exporter: E,
    tally: &Arc<Tally>,
    interval: Duration,
) -> MeterProviderBuilder {
    let reader = PeriodicReader::builder(Counted::new(exporter, tally.clone()))
        .with_interval(interval)
        .build();
    builder.with_reader(reader)
}

fn temporality(preference: TemporalityPreference) -> Temporality {
    match preference {
        TemporalityPreference::Cumulative => Temporality::Cumulative,
        TemporalityPreference::Delta => Temporality::Delta,
        TemporalityPreference::LowMemory => Temporality::LowMemory,
    }
}

/// Every histogram as a base-2 exponential histogram with the spec's default size and scale.
fn exponential_aggregation() -> Aggregation {
    Aggregation::Base2ExponentialHistogram {
        max_size: 160,
        max_scale: 20,
        record_min_max: true,
    }
}
