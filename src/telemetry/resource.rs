//! The resource every signal carries: who is emitting.
//!
//! Built in layers, each overriding the one before:
//!
//! 1. `Resource::builder_empty()` with the SDK's `TelemetryResourceDetector`
//!    (`telemetry.sdk.*`). Not `Resource::builder()`, whose detectors would read
//!    `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` raw from the process, past the
//!    configuration's decoding, warnings and `ConfigBuilder::env` isolation.
//! 2. The detectors listed in the settings (process, os, host, container, k8s). The process
//!    detector's `process.command_args` is removed: command lines often carry secrets.
//! 3. The parsed, percent-decoded resource attributes from the settings.
//! 4. The service identity, set last so it always wins: `service.name` is the configured name
//!    (`OTEL_SERVICE_NAME`), else `service.name` from the resource attributes, else the name
//!    given to install; `service.instance.id` is the configured id, else the attribute, else a
//!    fresh UUIDv7; `service.version`, `service.namespace` and `deployment.environment.name`
//!    are set when configured.

use std::path::Path;

use opentelemetry::{Key, KeyValue};
use opentelemetry_resource_detectors::{
    ContainerResourceDetector, HostResourceDetector, K8sResourceDetector, OsResourceDetector,
    ProcessResourceDetector,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::ResourceDetector;

use super::config::{Detector, Settings};

/// `service.name`.
const SERVICE_NAME: &str = "service.name";
/// `service.instance.id`.
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
/// `service.version`.
const SERVICE_VERSION: &str = "service.version";
/// `service.namespace`.
const SERVICE_NAMESPACE: &str = "service.namespace";
/// `deployment.environment.name`.
const DEPLOYMENT_ENVIRONMENT: &str = "deployment.environment.name";
/// Dropped from the process detector's output (P15).
const PROCESS_COMMAND_ARGS: &str = "process.command_args";

/// The resource for `settings`; `service_name` names the service when nothing configured does.
pub fn build_resource(settings: &Settings, service_name: &str) -> Resource {
    // Not `Resource::builder()`: its detectors read `OTEL_SERVICE_NAME` and
    // `OTEL_RESOURCE_ATTRIBUTES` from the process raw, past the configuration's decoding,
    // warnings and `ConfigBuilder::env` isolation. Only the SDK's own attributes are kept.
    let mut builder = Resource::builder_empty().with_detector(Box::new(
        opentelemetry_sdk::resource::TelemetryResourceDetector,
    ));
    for detector in &settings.detectors {
        builder = builder.with_attributes(detect(*detector));
    }
    // A blank value names nothing (as a blank variable is unset): a blank service attribute
    // is left out, and the next source applies (the name given here, a fresh id).
    let text = |v: &String| !v.trim().is_empty();
    let service_keys = [
        SERVICE_NAME,
        SERVICE_INSTANCE_ID,
        SERVICE_VERSION,
        SERVICE_NAMESPACE,
        DEPLOYMENT_ENVIRONMENT,
    ];
    builder = builder.with_attributes(
        settings
            .resource_attributes
            .iter()
            .filter(|(k, v)| text(v) || !service_keys.contains(&k.as_str()))
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    );
    let attribute = |key: &str| {
        settings
            .resource_attributes
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(text)
    };
    let service = &settings.service;
    let name = service
        .name
        .clone()
        .filter(text)
        .or_else(|| attribute(SERVICE_NAME))
        .unwrap_or_else(|| service_name.to_owned());
    let name = if text(&name) { name } else { unknown_service() };
    builder = builder.with_service_name(name);
    let instance_id = service
        .instance_id
        .clone()
        .filter(text)
        .or_else(|| attribute(SERVICE_INSTANCE_ID))
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    builder = builder.with_attribute(KeyValue::new(SERVICE_INSTANCE_ID, instance_id));
    for (key, value) in [
        (SERVICE_VERSION, &service.version),
        (SERVICE_NAMESPACE, &service.namespace),
        (DEPLOYMENT_ENVIRONMENT, &service.environment),
    ] {
        if let Some(value) = value.as_ref().filter(|v| text(v)) {
            builder = builder.with_attribute(KeyValue::new(key, value.clone()));
        }
    }
    builder.build()
}

/// The specification's name for a service nobody named: `unknown_service:<executable>`.
fn unknown_service() -> String {
    let exe = std::env::current_exe().ok();
    match exe
        .as_deref()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
    {
        Some(exe) => format!("unknown_service:{exe}"),
        None => "unknown_service".to_string(),
    }
}

/// Present in every Kubernetes pod (unless service-account mounting is turned off, when the
/// pod cannot be told from any other container).
const K8S_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// What one detector finds, as attributes.
fn detect(detector: Detector) -> Vec<KeyValue> {
    let found = match detector {
        Detector::Process => ProcessResourceDetector.detect(),
        Detector::Os => OsResourceDetector.detect(),
        Detector::Host => HostResourceDetector::default().detect(),
        Detector::Container => ContainerResourceDetector.detect(),
        // The detector reads `HOSTNAME`, which container runtimes set outside Kubernetes
        // too (to the container id): only a pod's service-account namespace file makes it
        // a pod.
        Detector::K8s if Path::new(K8S_NAMESPACE_FILE).exists() => K8sResourceDetector.detect(),
        Detector::K8s => return Vec::new(),
    };
    let command_args = Key::from_static_str(PROCESS_COMMAND_ARGS);
    found
        .iter()
        .filter(|(key, _)| **key != command_args)
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::Value;

    fn get(resource: &Resource, key: &'static str) -> Option<Value> {
        resource.get(&Key::from_static_str(key))
    }

    /// Outside a pod the detector would name one after `HOSTNAME`, which container runtimes
    /// set to the container id.
    /// Runs `k8s_detector_in_child` in a child process with `HOSTNAME` set.
    #[test]
    fn k8s_detector_finds_nothing_outside_a_pod() {
        if Path::new(K8S_NAMESPACE_FILE).exists() {
            return; // inside a pod, the detector is meant to run
        }
        crate::child_test::run_in_child(
            "telemetry::resource::tests::k8s_detector_in_child",
            &[("HOSTNAME", "3f4e5d6c7b8a"), ("DAGTEL_TEST_K8S_CHILD", "1")],
        );
    }

    #[test]
    fn k8s_detector_in_child() {
        if std::env::var_os("DAGTEL_TEST_K8S_CHILD").is_some() {
            assert_eq!(detect(Detector::K8s), Vec::new());
        }
    }

    #[test]
    fn process_detector_never_exports_the_command_line() {
        let attrs = detect(Detector::Process);
        assert!(attrs.iter().any(|kv| kv.key.as_str() == "process.pid"));
        assert!(
            attrs
                .iter()
                .all(|kv| kv.key.as_str() != PROCESS_COMMAND_ARGS)
        );
    }

    #[test]
    fn empty_service_attributes_name_nothing() {
        let mut settings = Settings {
            resource_attributes: vec![
                ("service.name".into(), String::new()),
                ("service.instance.id".into(), " ".into()),
                ("service.version".into(), String::new()),
                ("team".into(), String::new()),
            ],
            ..Settings::default()
        };
        let resource = build_resource(&settings, "svc");
        assert_eq!(get(&resource, "service.name"), Some(Value::from("svc")));
        let id = get(&resource, "service.instance.id").unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id:?}");
        assert_eq!(get(&resource, "service.version"), None);
        // Other keys keep an empty value: it is what the user wrote.
        assert_eq!(get(&resource, "team"), Some(Value::from("")));

        // A blank name given in code or in a setting names nothing either.
        let resource = build_resource(&settings, " ");
        let name = get(&resource, "service.name").unwrap().to_string();
        assert!(name.starts_with("unknown_service"), "{name}");
        settings.service.instance_id = Some(" ".into());
        settings.resource_attributes[1].1 = "from-attributes".into();
        let resource = build_resource(&settings, "svc");
        assert_eq!(
            get(&resource, "service.instance.id"),
            Some(Value::from("from-attributes"))
        );
    }

    #[test]
    fn telemetry_sdk_attributes_are_kept() {
        let resource = build_resource(&Settings::default(), "svc");
        assert_eq!(
            get(&resource, "telemetry.sdk.language"),
            Some(Value::from("rust"))
        );
        assert!(get(&resource, "process.command_args").is_none());
    }
}
