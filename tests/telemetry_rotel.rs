//! End to end through a real collector: dagtel exports OTLP over gRPC and over HTTP/protobuf to
//! rotel, which forwards everything over OTLP/gRPC to a receiver inside the test. Asserts that
//! spans, log records and metrics arrive with their attributes and resource.
//!
//! rotel is installed from PyPI on first use (see `support/rotel.rs` and DEVELOPERS.md).

#[path = "support/otlp_receiver.rs"]
mod otlp_receiver;
#[path = "support/rotel.rs"]
mod rotel;
#[path = "support/telemetry.rs"]
mod support;

use std::time::Duration;

use dagtel::telemetry::config::{ExporterKind, Protocol};
use dagtel::telemetry::{InstallOptions, install};
use opentelemetry::KeyValue;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{Exemplar, metric::Data, number_data_point};
use otlp_receiver::{Received, Receiver};
use rotel::Rotel;
use support::attr;

fn round_trip(protocol: Protocol) {
    let name = match protocol {
        Protocol::Grpc => "grpc",
        Protocol::HttpProtobuf => "http-protobuf",
        Protocol::HttpJson => "http-json",
    };
    let receiver = Receiver::start();
    let work = support::scratch_dir(&format!("rotel-{name}"));
    let rotel = Rotel::start(receiver.addr, &work);

    let mut s = support::settings(&format!("rotel-{name}"), &[ExporterKind::Otlp]);
    s.service.name = Some(format!("e2e-{name}"));
    s.resource_attributes = vec![("deployment.region".into(), "eu west".into())];
    for (otlp, path) in [
        (&mut s.otlp.traces, "traces"),
        (&mut s.otlp.logs, "logs"),
        (&mut s.otlp.metrics, "metrics"),
    ] {
        otlp.protocol = protocol;
        otlp.endpoint = match protocol {
            Protocol::Grpc => format!("http://{}", rotel.grpc),
            _ => format!("http://{}/v1/{path}", rotel.http),
        };
        otlp.headers = vec![("x-dagtel-test".into(), name.into())];
    }
    let options = InstallOptions::new()
        .local()
        .parent_env(Vec::<(String, String)>::new())
        .shutdown_timeout(Duration::from_secs(30));
    let guard = install(&s, "unused", options).unwrap();

    let tracer = guard.tracer_provider().unwrap().tracer("e2e");
    let mut span = tracer.start("e2e-run");
    span.set_attribute(KeyValue::new("dag.run.id", "run-1"));
    span.end();
    let logger = guard.logger_provider().unwrap().logger("e2e");
    let mut record = logger.create_log_record();
    record.set_severity_number(Severity::Info);
    record.set_body("e2e log".into());
    record.add_attribute("dag.node.name", "load");
    logger.emit(record);
    let counter = guard
        .meter_provider()
        .unwrap()
        .meter("e2e")
        .u64_counter("e2e.count")
        .build();
    counter.add(5, &[KeyValue::new("dag.node.name", "load")]);
    // A run through the guard's hooks: its node duration carries an exemplar of its span.
    support::run_one_node(&guard);

    let report = guard.shutdown();
    assert!(
        report.is_complete(),
        "{name}: {report}\nrotel: {}",
        rotel.output()
    );

    let received = receiver.wait_for(|r| {
        !r.traces.is_empty()
            && !r.logs.is_empty()
            && metric_value(r).is_some()
            && node_exemplar(r).is_some()
    });
    let context = || format!("{name}: received {received:?}\nrotel: {}", rotel.output());

    let resource_spans = received.traces.iter().flat_map(|r| &r.resource_spans);
    let (resource, span) = resource_spans
        .flat_map(|rs| {
            rs.scope_spans
                .iter()
                .flat_map(|ss| &ss.spans)
                .map(move |s| (rs.resource.as_ref(), s))
        })
        .find(|(_, s)| s.name == "e2e-run")
        .unwrap_or_else(|| panic!("no span arrived: {}", context()));
    assert_eq!(attr(&span.attributes, "dag.run.id"), Some("run-1"));
    let resource = &resource.unwrap().attributes;
    assert_eq!(
        attr(resource, "service.name"),
        Some(format!("e2e-{name}").as_str())
    );
    assert_eq!(attr(resource, "deployment.region"), Some("eu west"));

    let log = received
        .logs
        .iter()
        .flat_map(|r| &r.resource_logs)
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
        .find(|l| {
            matches!(
                l.body.as_ref().and_then(|b| b.value.as_ref()),
                Some(any_value::Value::StringValue(s)) if s == "e2e log"
            )
        })
        .unwrap_or_else(|| panic!("no log record arrived: {}", context()));
    assert_eq!(attr(&log.attributes, "dag.node.name"), Some("load"));
    assert_eq!(log.severity_number, Severity::Info as i32);
    // Emitted without an event time: the installed log processor gives it the observed time.
    assert!(log.observed_time_unix_nano > 0, "{}", context());
    assert_eq!(log.time_unix_nano, log.observed_time_unix_nano);

    assert_eq!(metric_value(&received), Some(5), "{}", context());

    let step_span = support::all_spans(&received.traces)
        .find(|s| s.name == "step")
        .unwrap_or_else(|| panic!("no node span arrived: {}", context()));
    let exemplar = node_exemplar(&received).unwrap();
    assert_eq!(exemplar.span_id, step_span.span_id, "{}", context());
    assert_eq!(exemplar.trace_id, step_span.trace_id, "{}", context());
}

/// The exemplar of node `step`'s duration, when one arrived.
fn node_exemplar(received: &Received) -> Option<Exemplar> {
    support::all_metrics(&received.metrics)
        .filter(|m| m.name == "dag.node.duration")
        .filter_map(|m| match &m.data {
            Some(Data::Histogram(h)) => Some(&h.data_points),
            _ => None,
        })
        .flatten()
        .filter(|p| attr(&p.attributes, "dag.node.name") == Some("step"))
        .flat_map(|p| p.exemplars.clone())
        .last()
}

/// The last value of the `e2e.count` counter received, with its attribute checked.
fn metric_value(received: &Received) -> Option<i64> {
    support::all_metrics(&received.metrics)
        .filter(|m| m.name == "e2e.count")
        .filter_map(|m| match &m.data {
            Some(Data::Sum(sum)) => sum.data_points.last(),
            _ => None,
        })
        .filter(|p| attr(&p.attributes, "dag.node.name") == Some("load"))
        .filter_map(|p| match p.value {
            Some(number_data_point::Value::AsInt(v)) => Some(v),
            _ => None,
        })
        .last()
}

#[test]
fn otlp_grpc_through_rotel() {
    round_trip(Protocol::Grpc);
}

#[test]
fn otlp_http_protobuf_through_rotel() {
    round_trip(Protocol::HttpProtobuf);
}
