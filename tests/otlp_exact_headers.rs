//! The OTLP exporters send the configured headers and their own, and no others, although the
//! OTLP library merges the process's `OTEL_EXPORTER_OTLP_HEADERS` into its requests by itself:
//! over HTTP and over gRPC, a header the process variable adds is not sent (an escaped name
//! included), the configured value of a header wins over the variable's, and the variable
//! cannot replace the request's content type or dagtel's user agent.
//!
//! One test in its own binary: it sets a variable of the process environment.

#[path = "support/otlp_receiver.rs"]
mod otlp_receiver;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use dagtel::telemetry::config::ConfigBuilder;
use dagtel::telemetry::{InstallOptions, install};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

/// Installs traces-only OTLP telemetry over `protocol` to `endpoint`, with the configured
/// header `x-tenant=configured`, and sends one span.
fn send_one_span(protocol: &str, endpoint: String) {
    let env: Vec<(String, String)> = vec![
        ("OTEL_TRACES_EXPORTER".into(), "otlp".into()),
        ("OTEL_LOGS_EXPORTER".into(), "none".into()),
        ("OTEL_METRICS_EXPORTER".into(), "none".into()),
        ("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS".into(), "none".into()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), protocol.into()),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".into(), endpoint),
        (
            "OTEL_EXPORTER_OTLP_HEADERS".into(),
            "x-tenant=configured".into(),
        ),
    ];
    let resolved = ConfigBuilder::new().env(env).resolve().unwrap();
    let guard = install(
        &resolved.settings,
        "exact-headers",
        InstallOptions::new()
            .local()
            .parent_env(Vec::<(String, String)>::new()),
    )
    .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("t");
    tracer.start("one").end();
    let _ = guard.force_flush();
}

/// The request head of the first HTTP request to a one-shot server.
fn http_request_head() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = Vec::new();
        let mut chunk = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        let _ = tx.send(String::from_utf8_lossy(&head).to_ascii_lowercase());
    });
    send_one_span(
        "http/protobuf",
        format!("http://127.0.0.1:{port}/v1/traces"),
    );
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the exporter sent a request")
}

#[test]
fn only_the_configured_headers_are_sent() {
    // SAFETY: this binary's only test, before it starts any thread of its own.
    unsafe {
        std::env::set_var(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-leaked=from-process,x-tenant=from-process,x%2Dsecret=from-process,\
             content-type=text/plain,user-agent=from-process",
        );
    }

    let head = http_request_head();
    assert_eq!(
        (
            head.contains("x-tenant: configured"),
            head.contains("content-type: application/x-protobuf"),
            head.contains("user-agent: otel-otlp-exporter-rust-dagtel/"),
            head.contains("from-process"),
            head.contains("text/plain"),
        ),
        (true, true, true, false, false),
        "HTTP request head:\n{head}"
    );

    let receiver = otlp_receiver::Receiver::start();
    send_one_span("grpc", format!("http://{}", receiver.addr));
    let received = receiver.wait_for(|r| !r.trace_headers.is_empty());
    let headers = received.trace_headers.first().cloned().unwrap_or_default();
    let value_of = |name: &str| {
        headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let agent = value_of("user-agent").concat();
    assert_eq!(
        (
            value_of("x-tenant"),
            value_of("x-leaked"),
            agent.starts_with("OTel-OTLP-Exporter-Rust-dagtel/"),
            headers.iter().any(|(_, v)| v == "from-process"),
        ),
        (vec!["configured"], vec![], true, false),
        "gRPC metadata: {headers:?}"
    );
}
