//! Rules that involve more than one variable: endpoint paths, the embedded default exporter,
//! service identity, batch clamping, OTEL_SDK_DISABLED, builder options.

use std::time::Duration;

use dagtel::telemetry::config::{
    ConfigBuilder, ConfigError, ExporterKind, Profile, Protocol, SamplerKind, Signal, Source,
};

use super::{resolve, strict_error};

#[test]
fn general_http_endpoints_get_the_signal_path_and_specific_ones_stay_verbatim() {
    let r = resolve(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://collector:4318/otlp/",
        ),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            "https://logs:9999/ingest",
        ),
    ]);
    let o = &r.settings.otlp;
    assert_eq!(o.traces.endpoint, "https://collector:4318/otlp/v1/traces");
    assert_eq!(o.metrics.endpoint, "https://collector:4318/otlp/v1/metrics");
    assert_eq!(o.logs.endpoint, "https://logs:9999/ingest");
}

#[test]
fn grpc_endpoints_are_verbatim_and_defaults_follow_the_protocol() {
    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317"),
    ]);
    let o = &r.settings.otlp;
    assert_eq!(o.traces.endpoint, "collector:4317");
    assert_eq!(o.logs.endpoint, "http://localhost:4317");
    assert_eq!(o.metrics.endpoint, "http://localhost:4318/v1/metrics");
    assert!(!o.logs.endpoint_set);

    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
    ]);
    assert_eq!(r.settings.otlp.logs.endpoint, "http://collector:4317");
}

#[test]
fn the_embedded_default_is_files_until_an_endpoint_is_set() {
    let r = resolve(&[]);
    for (_, kinds) in r.settings.exporters.iter() {
        assert_eq!(kinds, &[ExporterKind::File]);
    }
    assert_eq!(r.source("exporters.logs"), Some(&Source::Default));

    let r = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
    for (_, kinds) in r.settings.exporters.iter() {
        assert_eq!(kinds, &[ExporterKind::Otlp]);
    }

    // Per signal: only traces has an endpoint; logs chose their exporter explicitly.
    let r = resolve(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://collector:4318/v1/traces",
        ),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            "http://collector:4318/v1/logs",
        ),
        ("OTEL_LOGS_EXPORTER", "console"),
    ]);
    let e = &r.settings.exporters;
    assert_eq!(e.traces, [ExporterKind::Otlp]);
    assert_eq!(e.logs, [ExporterKind::Console]);
    assert_eq!(e.metrics, [ExporterKind::File]);

    // A profile that chooses exporters is not overruled by the embedded default.
    let r = resolve(&[
        ("DAGTEL_PROFILE", "dev"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
    ]);
    assert_eq!(
        r.settings.exporters.metrics,
        [ExporterKind::Console, ExporterKind::File]
    );
}

#[test]
fn exporter_lists_dedupe_and_none_switches_a_signal_off() {
    let r = resolve(&[
        ("OTEL_TRACES_EXPORTER", "otlp, console,OTLP"),
        ("OTEL_LOGS_EXPORTER", "none"),
        ("OTEL_METRICS_EXPORTER", "memory,none"),
    ]);
    let e = &r.settings.exporters;
    assert_eq!(e.traces, [ExporterKind::Otlp, ExporterKind::Console]);
    assert_eq!(e.logs, [ExporterKind::None]);
    assert_eq!(e.metrics, [ExporterKind::Memory]);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert_eq!(r.warnings[0].variable, "OTEL_METRICS_EXPORTER");
    assert_eq!(r.warnings[0].value, "none");
}

#[test]
fn otel_service_name_beats_service_name_in_resource_attributes() {
    let attrs = "service.name=from-attrs,service.version=9,team=data";
    let r = resolve(&[
        ("OTEL_RESOURCE_ATTRIBUTES", attrs),
        ("OTEL_SERVICE_NAME", "etl"),
    ]);
    assert_eq!(r.settings.service.name.as_deref(), Some("etl"));
    assert_eq!(r.settings.service.version.as_deref(), Some("9"));
    // Each attribute has one place: the service keys left the list.
    assert_eq!(
        r.settings.resource_attributes,
        [("team".to_owned(), "data".to_owned())]
    );

    let r = resolve(&[("OTEL_RESOURCE_ATTRIBUTES", attrs)]);
    assert_eq!(r.settings.service.name.as_deref(), Some("from-attrs"));
    assert_eq!(
        r.source("service.name"),
        Some(&Source::Env("OTEL_RESOURCE_ATTRIBUTES".into()))
    );
}

#[test]
fn dedicated_service_variables_have_a_fixed_precedence() {
    let r = resolve(&[
        ("DAGTEL_SERVICE_INSTANCE_ID", "dagtel"),
        ("OTEL_SERVICE_INSTANCE_ID", "otel"),
        ("DEPLOYMENT_ENVIRONMENT", "generic"),
        ("DAGTEL_ENVIRONMENT", "dagtel"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.instance.id=attr,deployment.environment.name=attr",
        ),
    ]);
    assert_eq!(r.settings.service.instance_id.as_deref(), Some("otel"));
    assert_eq!(r.settings.service.environment.as_deref(), Some("dagtel"));
    assert!(r.settings.resource_attributes.is_empty());
    assert_eq!(resolve(&[]).settings.service.instance_id, None);
}

#[test]
fn the_service_name_given_in_code_is_only_a_default() {
    let b = ConfigBuilder::new().default_service_name("from-code");
    let r = b.clone().env([("X", "y")]).resolve().unwrap();
    assert_eq!(r.settings.service.name.as_deref(), Some("from-code"));
    let r = b
        .clone()
        .env([("OTEL_SERVICE_NAME", "from-env")])
        .resolve()
        .unwrap();
    assert_eq!(r.settings.service.name.as_deref(), Some("from-env"));
    let r = b
        .service_name("forced")
        .env([("OTEL_SERVICE_NAME", "from-env")])
        .resolve()
        .unwrap();
    assert_eq!(r.settings.service.name.as_deref(), Some("forced"));
    assert_eq!(r.source("service.name"), Some(&Source::Builder));
}

#[test]
fn a_batch_larger_than_the_queue_is_clamped_with_a_warning() {
    let r = resolve(&[("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "4096")]);
    assert_eq!(r.settings.log_batch.max_export_batch_size, 2048);
    assert_eq!(r.warnings.len(), 1);
    let w = &r.warnings[0];
    assert_eq!(
        (w.variable.as_str(), w.value.as_str()),
        ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "4096")
    );
    assert!(w.problem.contains("2048 (default)"), "{}", w.problem);

    // The profile's batch (1024) against a smaller queue from the environment: nobody chose
    // that batch size, so it follows the queue without a warning.
    let r = resolve(&[
        ("DAGTEL_PROFILE", "prod"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "512"),
    ]);
    assert_eq!(r.settings.span_batch.max_export_batch_size, 512);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    let err = strict_error(&[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096")]);
    assert!(
        err.to_string()
            .contains("OTEL_BSP_MAX_EXPORT_BATCH_SIZE=\"4096\""),
        "{err}"
    );
}

#[test]
fn sdk_disabled_still_resolves_everything_else() {
    let r = resolve(&[
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_TRACES_SAMPLER", "always_off"),
    ]);
    assert!(r.settings.disabled);
    assert_eq!(r.settings.sampler.kind, SamplerKind::AlwaysOff);
    assert!(!resolve(&[("OTEL_SDK_DISABLED", "FALSE")]).settings.disabled);
    let r = resolve(&[("OTEL_SDK_DISABLED", "1")]);
    assert!(!r.settings.disabled, "only `true` disables");
    assert_eq!(r.warnings.len(), 1);
    let r = ConfigBuilder::new()
        .env([("OTEL_SDK_DISABLED", "true")])
        .disabled(false)
        .resolve()
        .unwrap();
    assert!(!r.settings.disabled);
}

#[test]
fn builder_options_beat_the_environment() {
    let r = ConfigBuilder::new()
        .env([
            ("DAGTEL_PROFILE", "ci"),
            ("OTEL_TRACES_SAMPLER", "always_off"),
            ("OTEL_TRACES_EXPORTER", "console"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
            ("DAGTEL_TELEMETRY_DIR", "/env"),
        ])
        .profile(Profile::Prod)
        .sampler(SamplerKind::TraceIdRatio)
        .sampler_ratio(0.5)
        .exporter(Signal::Traces, [ExporterKind::Otlp, ExporterKind::File])
        .exporter(Signal::Logs, [])
        .otlp_endpoint("http://code:4318")
        .otlp_protocol(Protocol::HttpProtobuf)
        .telemetry_dir("/code")
        .resolve()
        .unwrap();
    let s = &r.settings;
    assert_eq!(s.profile, Profile::Prod);
    assert_eq!(
        s.span_batch.max_queue_size, 4096,
        "the builder's profile is the one applied"
    );
    assert_eq!(
        (s.sampler.kind, s.sampler.ratio),
        (SamplerKind::TraceIdRatio, 0.5)
    );
    assert_eq!(s.exporters.traces, [ExporterKind::Otlp, ExporterKind::File]);
    assert_eq!(s.exporters.logs, [ExporterKind::None]);
    assert_eq!(s.exporters.metrics, [ExporterKind::Otlp], "prod, not ci");
    assert_eq!(s.otlp.traces.endpoint, "http://code:4318/v1/traces");
    assert_eq!(s.telemetry_dir, std::path::PathBuf::from("/code"));
    for key in [
        "profile",
        "sampler.kind",
        "otlp.metrics.endpoint",
        "otlp.logs.protocol",
    ] {
        assert_eq!(r.source(key), Some(&Source::Builder), "{key}");
    }
}

#[test]
fn builder_values_are_checked_like_environment_values() {
    let r = ConfigBuilder::new()
        .env([("X", "y")])
        .sampler_ratio(2.0)
        .otlp_signal_endpoint(Signal::Metrics, "gopher://x")
        .resolve()
        .unwrap();
    assert_eq!(r.settings.sampler.ratio, 1.0);
    assert_eq!(
        r.settings.otlp.metrics.endpoint,
        "http://localhost:4318/v1/metrics"
    );
    assert_eq!(r.settings.exporters.metrics, [ExporterKind::File]);
    let vars: Vec<&str> = r.warnings.iter().map(|w| w.variable.as_str()).collect();
    assert_eq!(
        vars,
        [
            "sampler.ratio in builder",
            "otlp.metrics.endpoint in builder"
        ]
    );

    let err = ConfigBuilder::new()
        .env([("X", "y")])
        .strict(true)
        .sampler_ratio(-1.0)
        .resolve()
        .unwrap_err();
    assert!(matches!(err, ConfigError::Strict { .. }), "{err}");
}

#[test]
fn zero_timeouts_mean_no_limit() {
    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "0"),
    ]);
    assert_eq!(r.settings.otlp.logs.timeout, Duration::ZERO);
    assert_eq!(r.settings.metrics.export_timeout, Duration::ZERO);
    assert_eq!(
        r.explain().get("otlp.logs.timeout").unwrap().value,
        "0 ms (no limit)"
    );
}

#[test]
fn any_env_source_can_stand_in_for_the_process_environment() {
    let lookup = |name: &str| (name == "OTEL_TRACES_SAMPLER").then(|| "always_off".to_owned());
    let r = ConfigBuilder::new().env_from(&lookup).resolve().unwrap();
    assert_eq!(r.settings.sampler.kind, SamplerKind::AlwaysOff);
    assert_eq!(
        r.source("sampler.kind"),
        Some(&Source::Env("OTEL_TRACES_SAMPLER".into()))
    );
}

/// A later general endpoint replaces an earlier one (configuration composed in steps), with
/// its `/v1/<signal>` path; an endpoint set for one signal still beats the general one,
/// whichever came first, as with the variables.
#[test]
fn a_later_general_endpoint_replaces_an_earlier_one() {
    let r = ConfigBuilder::new()
        .env(Vec::<(String, String)>::new())
        .otlp_signal_endpoint(Signal::Metrics, "http://metrics:4318/m")
        .otlp_endpoint("http://first:4318")
        .otlp_endpoint("http://second:4318")
        .otlp_protocol(Protocol::HttpProtobuf)
        .resolve()
        .unwrap();
    let otlp = &r.settings.otlp;
    assert_eq!(otlp.traces.endpoint, "http://second:4318/v1/traces");
    assert_eq!(otlp.logs.endpoint, "http://second:4318/v1/logs");
    assert_eq!(otlp.metrics.endpoint, "http://metrics:4318/m");
}

#[test]
fn a_smaller_queue_takes_the_default_batch_size_along_without_a_warning() {
    let r = resolve(&[("OTEL_BSP_MAX_QUEUE_SIZE", "256")]);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.settings.span_batch.max_queue_size, 256);
    assert_eq!(r.settings.span_batch.max_export_batch_size, 256);
    // Strict mode accepts it too: nothing invalid was given.
    let strict = dagtel::telemetry::config::ConfigBuilder::new()
        .env([("OTEL_BSP_MAX_QUEUE_SIZE", "256")])
        .strict(true)
        .resolve();
    assert!(strict.is_ok());
    // A batch size someone chose is still warned about.
    let r = resolve(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "256"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1024"),
    ]);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
}
