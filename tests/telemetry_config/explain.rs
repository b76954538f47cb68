//! explain(): every setting, its value, its layer, secrets masked.

use dagtel::telemetry::config::{ConfigBuilder, Profile, Source, variables};

#[test]
fn every_setting_has_a_row_with_its_layer() {
    let r = ConfigBuilder::new()
        .env([
            ("DAGTEL_PROFILE", "prod"),
            ("OTEL_BSP_SCHEDULE_DELAY", "1500"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ])
        .telemetry_dir("/code")
        .resolve()
        .unwrap();
    let e = r.explain();
    let source = |key: &str| {
        e.get(key)
            .unwrap_or_else(|| panic!("no row {key}"))
            .source
            .clone()
    };
    assert_eq!(source("disabled"), Source::Default);
    assert_eq!(
        source("span_batch.max_queue_size"),
        Source::Profile(Profile::Prod)
    );
    assert_eq!(
        source("span_batch.schedule_delay"),
        Source::Env("OTEL_BSP_SCHEDULE_DELAY".into())
    );
    assert_eq!(
        source("otlp.metrics.endpoint"),
        Source::Env("OTEL_EXPORTER_OTLP_ENDPOINT".into())
    );
    assert_eq!(source("telemetry_dir"), Source::Builder);
    assert_eq!(e.get("span_batch.schedule_delay").unwrap().value, "1500 ms");

    // Every row names a variable unless no variable sets it; every variable but the file's
    // appears as some row's variable.
    let listed: Vec<&str> = e
        .rows()
        .iter()
        .filter_map(|r| r.variable.as_deref())
        .collect();
    for row in e.rows() {
        let internal = row.setting.ends_with(".endpoint_set");
        assert_eq!(row.variable.is_some(), !internal, "{}", row.setting);
    }
    assert!(listed.contains(&"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"));
    assert!(variables().len() > listed.len() / 2);
}

#[test]
fn secrets_are_masked_in_the_table() {
    let r = ConfigBuilder::new()
        .env([
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Bearer%20tok-123,x-tenant=acme-9",
            ),
            ("OTEL_RESOURCE_ATTRIBUTES", "api_key=k-456,team=data"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://user:pw-789@collector/v1/traces",
            ),
        ])
        .resolve()
        .unwrap();
    let table = r.explain().to_string();
    for secret in ["tok-123", "acme-9", "k-456", "pw-789"] {
        assert!(!table.contains(secret), "{secret} shown:\n{table}");
    }
    let e = r.explain();
    assert_eq!(
        e.get("otlp.logs.headers").unwrap().value,
        "Authorization=***, x-tenant=***"
    );
    assert_eq!(
        e.get("resource_attributes").unwrap().value,
        "api_key=***, team=data"
    );
    assert_eq!(
        e.get("otlp.traces.endpoint").unwrap().value,
        "https://***@collector/v1/traces"
    );
    // The settings themselves keep the real values for the exporters.
    assert_eq!(r.settings.otlp.logs.headers[0].1, "Bearer tok-123");
}

#[test]
fn the_table_has_a_header_and_one_line_per_setting() {
    let r = ConfigBuilder::new()
        .env([("DAGTEL_PROFILE", "dev")])
        .resolve()
        .unwrap();
    let table = r.explain().to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), r.explain().rows().len() + 1);
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(head, ["SETTING", "VARIABLE", "VALUE", "SOURCE"]);
    let sampler = lines
        .iter()
        .find(|l| l.starts_with("sampler.kind "))
        .unwrap();
    let cells: Vec<&str> = sampler.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "sampler.kind",
            "OTEL_TRACES_SAMPLER",
            "always_on",
            "profile:dev"
        ]
    );
}

#[test]
fn warnings_say_what_was_used_instead() {
    let r = ConfigBuilder::new()
        .env([
            ("DAGTEL_PROFILE", "dev"),
            ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
        ])
        .resolve()
        .unwrap();
    assert_eq!(
        r.warnings[0].to_string(),
        "ignored OTEL_BSP_SCHEDULE_DELAY=\"soon\": not a non-negative integer; \
         using 1000 ms (profile:dev)"
    );
}

/// Warnings about ignored values hide what `explain()` hides: URL credentials and query
/// strings, and values of credential-named entries.
#[test]
fn warnings_hide_secrets_too() {
    let r = ConfigBuilder::new()
        .env([
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://user:pa^ss@collector:4318",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "htp:/x?token=s3cr3t"),
            ("OTEL_RESOURCE_ATTRIBUTES", "api.token=s3cr3t%,team=%zz"),
        ])
        .resolve()
        .unwrap();
    let text: Vec<String> = r.warnings.iter().map(ToString::to_string).collect();
    assert!(text.len() >= 3, "each bad value is warned about: {text:?}");
    for line in &text {
        assert!(
            !line.contains("pa^ss") && !line.contains("s3cr3t"),
            "a secret in {line}"
        );
    }
    assert!(
        text.iter().any(|l| l.contains("team=%zz")),
        "other values are shown as they were: {text:?}"
    );
}
