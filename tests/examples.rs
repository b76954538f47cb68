//! The examples, run as programs: the main example takes its telemetry configuration from
//! the environment (an invalid value warns and the run goes on), and the `nested_pipeline`
//! example's two processes form one trace (cross-process propagation, read back from both
//! processes' OTLP/JSON files).

use std::path::{Path, PathBuf};
use std::process::Command;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;

fn example_binary(name: &str) -> PathBuf {
    // Test binaries live in target/<profile>/deps; `cargo test` builds examples beside them.
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let example = profile_dir.join("examples").join(name);
    assert!(
        example.exists(),
        "{} is missing: run `cargo test` (which builds the examples; `--test examples` alone does not)",
        example.display()
    );
    example
}

fn spans_in(dir: &Path) -> Vec<(String, Span)> {
    let mut spans = Vec::new();
    for run_dir in std::fs::read_dir(dir).unwrap() {
        let file = run_dir.unwrap().path().join("traces.jsonl");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines() {
            let request: ExportTraceServiceRequest = serde_json::from_str(line).unwrap();
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .map(|v| format!("{:?}", v.value))
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        spans.push((service.clone(), span));
                    }
                }
            }
        }
    }
    spans
}

#[test]
fn a_child_pipeline_process_joins_its_parent_nodes_trace() {
    let dir = std::env::temp_dir().join(format!("dagtel-nested-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let output = Command::new(example_binary("nested_pipeline"))
        .env("DAGTEL_TELEMETRY_DIR", &dir)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("DAGTEL_PROFILE")
        .env_remove("TRACEPARENT")
        .output()
        .expect("the example runs");
    assert!(
        output.status.success(),
        "example failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let spans = spans_in(&dir);
    let named = |name: &str| {
        spans
            .iter()
            .find(|(_, s)| s.name == name)
            .map(|(service, s)| (service.clone(), s.clone()))
            .unwrap_or_else(|| panic!("no span {name} in {}", dir.display()))
    };
    let (parent_service, node) = named("run_child_pipeline");
    let (child_service, child_root) = named("run nested_child");
    assert!(parent_service.contains("nested_parent"), "{parent_service}");
    assert!(child_service.contains("nested_child"), "{child_service}");
    assert_eq!(
        child_root.trace_id, node.trace_id,
        "one trace across both processes"
    );
    assert_eq!(
        child_root.parent_span_id, node.span_id,
        "the child run hangs under the node"
    );
    let (_, parent_root) = named("run nested_parent");
    let attr = |span: &Span, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .map(|v| format!("{:?}", v.value))
    };
    assert_eq!(
        attr(&child_root, "dag.parent_run.id"),
        attr(&parent_root, "dag.run.id"),
        "the child run names the run that started it"
    );
    assert!(
        parent_root.parent_span_id.is_empty(),
        "the parent run is the trace's root"
    );
    // Every span of both processes is in that one trace.
    assert!(spans.iter().all(|(_, s)| s.trace_id == node.trace_id));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_main_example_is_driven_by_the_environment_and_survives_bad_values() {
    let dir = std::env::temp_dir().join(format!("dagtel-frb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let output = Command::new(example_binary("frb_pipeline"))
        .args(["--beams", "6", "--blocks", "4", "--explain"])
        .env("DAGTEL_TELEMETRY_DIR", &dir)
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "lots")
        .env("OTEL_TRACES_SAMPLER", "sometimes")
        .env("OTEL_SERVICE_NAME", "frb-under-test")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("DAGTEL_PROFILE")
        .env_remove("DAGTEL_STRICT_CONFIG")
        .env_remove("TRACEPARENT")
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "example failed: {stderr}");
    for (variable, value) in [
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(variable) && l.contains(value)),
            "a warning names {variable}={value}: {stderr}"
        );
    }
    assert!(
        stdout.contains("env:OTEL_SERVICE_NAME"),
        "explain() names the layer: {stdout}"
    );
    assert!(stdout.contains("classification: FRB"), "{stdout}");
    // The service name from the environment reached the exported resource.
    let spans = spans_in(&dir);
    assert!(!spans.is_empty());
    assert!(
        spans
            .iter()
            .all(|(service, _)| service.contains("frb-under-test"))
    );
    assert!(
        spans
            .iter()
            .any(|(_, s)| s.name == "cluster_candidates" && s.links.len() == 6)
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Strict mode turns the same garbage into an error that names it.
    let output = Command::new(example_binary("frb_pipeline"))
        .args(["--beams", "6", "--blocks", "4"])
        .env("DAGTEL_TELEMETRY_DIR", &dir)
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "lots")
        .env("DAGTEL_STRICT_CONFIG", "true")
        .output()
        .expect("the example runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OTEL_BSP_MAX_QUEUE_SIZE"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
