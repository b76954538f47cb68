//! The resource holds what the configuration resolved from `OTEL_RESOURCE_ATTRIBUTES`, and
//! nothing the SDK would read from the process itself: pairs the configuration warned about
//! and ignored stay out, encoded keys appear once (decoded), and a configuration resolved from
//! given variables is not reached by the process's. Its own binary: it sets a process
//! variable, which no other test here reads.

use dagtel::telemetry::build_resource;
use dagtel::telemetry::config::ConfigBuilder;
use opentelemetry::{Key, Value};

#[test]
fn the_resource_holds_only_what_the_configuration_resolved() {
    let raw = "bad=%zz,my%20key=v,team=data";
    // SAFETY: this binary's only test, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("OTEL_RESOURCE_ATTRIBUTES", raw) };
    let get =
        |r: &opentelemetry_sdk::Resource, key: &'static str| r.get(&Key::from_static_str(key));

    let from_process = ConfigBuilder::new().resolve().unwrap();
    assert!(
        from_process
            .warnings
            .iter()
            .any(|w| w.to_string().contains("bad=%zz")),
        "the broken pair is warned about: {:?}",
        from_process.warnings
    );
    let r = build_resource(&from_process.settings, "svc");
    assert_eq!(get(&r, "team"), Some(Value::from("data")));
    assert_eq!(get(&r, "my key"), Some(Value::from("v")), "decoded");
    assert_eq!(get(&r, "my%20key"), None, "not also raw");
    assert_eq!(get(&r, "bad"), None, "ignored as the warning says");
    assert_eq!(get(&r, "service.name"), Some(Value::from("svc")));
    assert!(
        get(&r, "telemetry.sdk.name").is_some(),
        "the SDK's own attributes stay"
    );

    let isolated = ConfigBuilder::new()
        .env(Vec::<(String, String)>::new())
        .resolve()
        .unwrap();
    let r = build_resource(&isolated.settings, "svc");
    assert_eq!(get(&r, "team"), None, "given variables only");
    unsafe { std::env::remove_var("OTEL_RESOURCE_ATTRIBUTES") };
}
