//! The operational profiles (`DAGTEL_PROFILE`): named sets of settings between the defaults
//! and the TOML file, so the file and the environment override them.

use super::Signal;
use super::layer::Layer;
use super::settings::{Detector, ExporterKind, Profile, Protocol, SamplerKind};
use super::source::Source;

/// The settings `profile` changes, as a layer.
pub(super) fn layer(profile: Profile) -> Layer {
    let mut l = Layer::new(Source::Profile(profile));
    let exporters = |l: &mut Layer, kinds: &[ExporterKind]| {
        for s in Signal::ALL {
            l.set(&format!("exporters.{s}"), kinds);
        }
    };
    match profile {
        Profile::Default => {}
        // Local development: see everything, soon.
        Profile::Dev => {
            l.set("sampler.kind", SamplerKind::AlwaysOn);
            l.set("span_batch.schedule_delay", 1000u64);
            l.set("metrics.export_interval", 10_000u64);
            exporters(&mut l, &[ExporterKind::Console, ExporterKind::File]);
        }
        // Tests: everything stays in memory where assertions can read it; no network.
        Profile::Ci => exporters(&mut l, &[ExporterKind::Memory]),
        // Production: 1% of new traces at the SDK (the collector can tail-sample), bigger
        // batches for bursts of runs, OTLP over gRPC, full resource detection.
        Profile::Prod => {
            l.set("sampler.kind", SamplerKind::ParentBasedTraceIdRatio);
            l.set("sampler.ratio", 0.01f64);
            l.set("span_batch.max_queue_size", 4096usize);
            l.set("span_batch.max_export_batch_size", 1024usize);
            l.set("otlp.protocol", Protocol::Grpc);
            exporters(&mut l, &[ExporterKind::Otlp]);
            l.set(
                "detectors",
                [
                    Detector::Process,
                    Detector::Os,
                    Detector::Host,
                    Detector::Container,
                    Detector::K8s,
                ],
            );
        }
    }
    l.normalize();
    l
}
