//! The operational profiles, and the environment overriding them.

use std::time::Duration;

use dagtel::telemetry::config::{
    Detector, ExporterKind, Profile, Protocol, SamplerKind, Settings, Signal, Source,
};

use super::resolve;

#[test]
fn no_profile_is_the_specification_defaults_with_files() {
    let r = resolve(&[]);
    assert_eq!(r.settings, Settings::default());
    assert!(r.warnings.is_empty());
    assert!(
        r.explain()
            .rows()
            .iter()
            .all(|row| row.source == Source::Default)
    );
}

#[test]
fn dev_samples_everything_and_exports_quickly_to_console_and_files() {
    let s = resolve(&[("DAGTEL_PROFILE", "dev")]).settings;
    assert_eq!(s.profile, Profile::Dev);
    assert_eq!(s.sampler.kind, SamplerKind::AlwaysOn);
    assert_eq!(s.span_batch.schedule_delay, Duration::from_secs(1));
    assert_eq!(s.metrics.export_interval, Duration::from_secs(10));
    for (_, kinds) in s.exporters.iter() {
        assert_eq!(kinds, &[ExporterKind::Console, ExporterKind::File]);
    }
}

#[test]
fn ci_keeps_every_signal_in_memory() {
    let r = resolve(&[("DAGTEL_PROFILE", "CI")]);
    for (signal, kinds) in r.settings.exporters.iter() {
        assert_eq!(kinds, &[ExporterKind::Memory]);
        assert_eq!(
            r.source(&format!("exporters.{signal}")),
            Some(&Source::Profile(Profile::Ci))
        );
    }
    // Nothing else differs from the defaults.
    let mut s = r.settings.clone();
    s.exporters = Settings::default().exporters;
    s.profile = Profile::Default;
    assert_eq!(s, Settings::default());
}

#[test]
fn prod_samples_one_percent_with_big_batches_over_grpc() {
    let s = resolve(&[("DAGTEL_PROFILE", "prod")]).settings;
    assert_eq!(s.sampler.kind, SamplerKind::ParentBasedTraceIdRatio);
    assert_eq!(s.sampler.ratio, 0.01);
    assert_eq!(
        (
            s.span_batch.max_queue_size,
            s.span_batch.max_export_batch_size
        ),
        (4096, 1024)
    );
    for signal in Signal::ALL {
        assert_eq!(s.exporters.get(signal), &[ExporterKind::Otlp]);
        assert_eq!(s.otlp.get(signal).protocol, Protocol::Grpc);
        assert_eq!(s.otlp.get(signal).endpoint, "http://localhost:4317");
    }
    assert_eq!(s.detectors.len(), 5);
    assert!(s.detectors.contains(&Detector::K8s));
}

#[test]
fn the_environment_overrides_the_profile() {
    let r = resolve(&[
        ("DAGTEL_PROFILE", "prod"),
        ("OTEL_TRACES_SAMPLER", "always_on"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "256"),
        ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf"),
        ("OTEL_METRICS_EXPORTER", "console"),
        ("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "host"),
    ]);
    let s = &r.settings;
    assert_eq!(s.sampler.kind, SamplerKind::AlwaysOn);
    assert_eq!(s.sampler.ratio, 0.01, "not overridden: still the profile's");
    assert_eq!(s.span_batch.max_export_batch_size, 256);
    assert_eq!(s.span_batch.max_queue_size, 4096);
    assert_eq!(s.otlp.logs.protocol, Protocol::HttpProtobuf);
    assert_eq!(s.otlp.logs.endpoint, "http://localhost:4318/v1/logs");
    assert_eq!(s.exporters.metrics, [ExporterKind::Console]);
    assert_eq!(s.detectors, [Detector::Host]);
    assert_eq!(
        r.source("sampler.ratio"),
        Some(&Source::Profile(Profile::Prod))
    );
    assert_eq!(
        r.source("sampler.kind"),
        Some(&Source::Env("OTEL_TRACES_SAMPLER".into()))
    );
}

#[test]
fn an_unknown_profile_is_ignored_with_a_warning() {
    let r = resolve(&[("DAGTEL_PROFILE", "staging")]);
    assert_eq!(r.settings, Settings::default());
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0].problem.contains("dev, ci, prod"),
        "{}",
        r.warnings[0].problem
    );
}
