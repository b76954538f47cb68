//! The TOML file layer: between the profile and the environment.

use std::path::PathBuf;

use crate::TempToml;
use dagtel::telemetry::config::{
    ConfigBuilder, ConfigError, ExporterKind, Profile, Protocol, SamplerKind, Source,
};

const FILE: &str = r#"
profile = "prod"
telemetry_dir = "/srv/telemetry"

[service]
name = "etl-from-file"

[sampler]
ratio = 0.2

[span_batch]
max_queue_size = 8192
schedule_delay = 2000

[otlp]
endpoint = "http://collector:4317"
timeout = 3000
headers = { x-tenant = "acme" }

[otlp.metrics]
timeout = 9000

[limits]
attribute_count = 64

[resource_attributes]
team = "data"
"#;

#[test]
fn the_file_sits_between_the_profile_and_the_environment() {
    let f = TempToml::new(FILE);
    let (k, v) = f.var();
    let r = ConfigBuilder::new()
        .env([(k, v.as_str()), ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "500")])
        .resolve()
        .unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.config_file.as_deref(), Some(f.path()));
    let s = &r.settings;
    let file = Source::File(f.path().to_owned());

    // The file chose the profile; the profile fills what the file leaves open.
    assert_eq!(s.profile, Profile::Prod);
    assert_eq!(s.sampler.kind, SamplerKind::ParentBasedTraceIdRatio);
    assert_eq!(
        r.source("sampler.kind"),
        Some(&Source::Profile(Profile::Prod))
    );
    assert_eq!(s.sampler.ratio, 0.2);
    assert_eq!(r.source("sampler.ratio"), Some(&file));
    assert_eq!(s.span_batch.max_queue_size, 8192);
    assert_eq!(s.span_batch.max_export_batch_size, 1024);
    assert_eq!(s.span_batch.schedule_delay.as_millis(), 2000);

    // General OTLP keys reach every signal; per-signal keys and the environment beat them.
    assert_eq!(s.otlp.traces.endpoint, "http://collector:4317");
    assert_eq!(s.otlp.traces.protocol, Protocol::Grpc);
    assert_eq!(s.otlp.traces.timeout.as_millis(), 3000);
    assert_eq!(s.otlp.metrics.timeout.as_millis(), 9000);
    assert_eq!(s.otlp.logs.timeout.as_millis(), 500);
    assert_eq!(
        r.source("otlp.logs.timeout"),
        Some(&Source::Env("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT".into()))
    );
    assert_eq!(
        s.otlp.logs.headers,
        [("x-tenant".to_owned(), "acme".to_owned())]
    );
    assert_eq!(
        (s.limits.span_attribute_count, s.limits.log_attribute_count),
        (64, 64)
    );
    assert_eq!(
        s.resource_attributes,
        [("team".to_owned(), "data".to_owned())]
    );
    assert_eq!(s.service.name.as_deref(), Some("etl-from-file"));
    assert_eq!(s.exporters.logs, [ExporterKind::Otlp]);
}

#[test]
fn the_environment_and_the_builder_beat_the_file() {
    let f = TempToml::new(FILE);
    let (k, v) = f.var();
    let r = ConfigBuilder::new()
        .env([
            (k, v.as_str()),
            ("DAGTEL_PROFILE", "dev"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.3"),
            ("OTEL_SERVICE_NAME", "etl-from-env"),
        ])
        .telemetry_dir("/from/code")
        .resolve()
        .unwrap();
    let s = &r.settings;
    assert_eq!(s.profile, Profile::Dev);
    assert_eq!(
        s.sampler.kind,
        SamplerKind::AlwaysOn,
        "dev's sampler, not prod's"
    );
    assert_eq!(s.sampler.ratio, 0.3);
    assert_eq!(s.service.name.as_deref(), Some("etl-from-env"));
    assert_eq!(s.telemetry_dir, PathBuf::from("/from/code"));
    // The file's endpoint is an endpoint choice, but dev chose the exporters.
    assert_eq!(
        s.exporters.traces,
        [ExporterKind::Console, ExporterKind::File]
    );
}

#[test]
fn the_builder_can_name_the_file() {
    // Enum values are spelled as in the variables.
    let f = TempToml::new(
        "[sampler]\nkind = \"parentbased_traceidratio\"\nratio = 0\n[otlp.logs]\nendpoint_set = true\n",
    );
    let r = ConfigBuilder::new()
        .env([(
            "DAGTEL_CONFIG",
            "/does/not/matter/when/the/builder/names/one.toml",
        )])
        .config_file(f.path())
        .resolve()
        .unwrap();
    assert_eq!(
        r.settings.sampler.kind,
        SamplerKind::ParentBasedTraceIdRatio
    );
    assert_eq!(
        r.settings.sampler.ratio, 0.0,
        "a TOML integer is a ratio too"
    );
    // Internal fields are not settable from the file.
    assert!(!r.settings.otlp.logs.endpoint_set);
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0]
            .variable
            .starts_with("otlp.logs.endpoint_set in file:")
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let missing = std::env::temp_dir().join("dagtel-config-does-not-exist.toml");
    let err = ConfigBuilder::new()
        .env([("DAGTEL_CONFIG", missing.display().to_string())])
        .resolve()
        .unwrap_err();
    assert!(matches!(err, ConfigError::FileRead { .. }), "{err}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_malformed_file_is_an_error_naming_it() {
    let f = TempToml::new("[sampler\nkind = ");
    let (k, v) = f.var();
    let err = ConfigBuilder::new().env([(k, v)]).resolve().unwrap_err();
    assert!(matches!(err, ConfigError::FileSyntax { .. }), "{err}");
    assert!(
        err.to_string().contains(&f.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn a_value_of_the_wrong_kind_is_an_error_naming_key_and_file() {
    for (text, key) in [
        ("[sampler]\nkind = \"sometimes\"\n", "sampler.kind"),
        (
            "[span_batch]\nmax_queue_size = -1\n",
            "span_batch.max_queue_size",
        ),
        ("disabled = \"yes\"\n", "disabled"),
    ] {
        let f = TempToml::new(text);
        let (k, v) = f.var();
        let err = ConfigBuilder::new().env([(k, v)]).resolve().unwrap_err();
        let ConfigError::Value {
            key: got, layer, ..
        } = &err
        else {
            panic!("{text}: {err}");
        };
        assert_eq!(got, key);
        assert!(layer.contains(&f.path().display().to_string()), "{err}");
    }
}

#[test]
fn unknown_keys_and_invalid_values_in_the_file_are_warnings() {
    let f = TempToml::new(
        "[sampeler]\nkind = \"always_on\"\n[sampler]\nratio = 7.0\n[span_batch]\nmax_export_batch_size = 0\n",
    );
    let (k, v) = f.var();
    let r = ConfigBuilder::new()
        .env([(k, v.as_str())])
        .resolve()
        .unwrap();
    let file = format!("file:{}", f.path().display());
    let vars: Vec<String> = r.warnings.iter().map(|w| w.variable.clone()).collect();
    assert_eq!(
        vars,
        [
            format!("sampeler in {file}"),
            format!("sampler.ratio in {file}"),
            format!("span_batch.max_export_batch_size in {file}"),
        ]
    );
    assert_eq!(r.settings.sampler.ratio, 1.0);
    assert_eq!(r.settings.span_batch.max_export_batch_size, 512);

    let err = ConfigBuilder::new()
        .env([(k, v.as_str()), ("DAGTEL_STRICT_CONFIG", "true")])
        .resolve()
        .unwrap_err();
    assert!(err.to_string().contains("sampeler"), "{err}");
}

/// `service.name` (and the other service keys) among a file's `resource_attributes` names the
/// service with the file's rank: above the name a program passes to `init`, below the
/// environment's.
#[test]
fn service_keys_among_a_files_resource_attributes_rank_with_the_file() {
    let f = TempToml::new(
        "[resource_attributes]\n\"service.name\" = \"from-file\"\n\"service.version\" = \"2.1\"\nteam = \"data\"\n",
    );
    let (k, v) = f.var();
    let r = ConfigBuilder::new()
        .env([(k, v.as_str())])
        .default_service_name("etl")
        .resolve()
        .unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let s = &r.settings;
    assert_eq!(s.service.name.as_deref(), Some("from-file"));
    assert_eq!(s.service.version.as_deref(), Some("2.1"));
    assert_eq!(
        s.resource_attributes,
        [("team".to_owned(), "data".to_owned())]
    );
    let r = ConfigBuilder::new()
        .env([(k, v.as_str()), ("OTEL_SERVICE_NAME", "from-env")])
        .default_service_name("etl")
        .resolve()
        .unwrap();
    assert_eq!(r.settings.service.name.as_deref(), Some("from-env"));
}
