//! Installing telemetry from resolved settings: the embedded file exporter's OTLP/JSON, the
//! disabled SDK, bounded shutdown against a dead collector, resource precedence, sampling,
//! attribute value limits, caller processors.

#[path = "support/telemetry.rs"]
mod support;

use std::collections::HashMap;
use std::time::Duration;

use dagtel::RunId;
use dagtel::telemetry::config::{
    ExemplarFilter, ExporterKind, HistogramAggregation, Protocol, SamplerKind, Settings,
};
use dagtel::telemetry::{
    InstallOptions, ShutdownOutcome, Signal, TelemetryGuard, build_resource, install,
};
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, Key, KeyValue, Value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use support::{attr, settings};

fn local() -> InstallOptions {
    InstallOptions::new()
        .local()
        .parent_env(Vec::<(String, String)>::new())
}

/// The spans the in-memory trace exporter has received so far.
fn memory_spans(guard: &TelemetryGuard) -> Vec<SpanData> {
    guard
        .memory()
        .spans
        .as_ref()
        .expect("traces go to memory")
        .get_finished_spans()
        .unwrap()
}

#[test]
fn file_exporter_writes_otlp_json_lines_that_decode_back() {
    let mut s = settings("file", &[ExporterKind::File]);
    s.service.name = Some("file-test".into());
    let guard = install(&s, "unused", local().run_id(RunId::from("run-7"))).unwrap();
    let dir = guard.telemetry_dir().unwrap().to_owned();
    assert_eq!(dir, s.telemetry_dir.join("run-7"));

    let tracer = guard.tracer_provider().unwrap().tracer("test");
    let root = tracer.start("pipeline");
    let root_cx = Context::current_with_span(root);
    let mut child = tracer.start_with_context("node", &root_cx);
    child.set_attribute(KeyValue::new("dag.node.name", "clean"));
    child.add_event("retry", vec![KeyValue::new("attempt", 2_i64)]);
    child.end();
    root_cx.span().end();

    let logger = guard.logger_provider().unwrap().logger("test");
    let mut record = logger.create_log_record();
    record.set_severity_number(Severity::Warn);
    record.set_body("node slow".into());
    record.add_attribute("dag.node.name", "clean");
    logger.emit(record);

    let meter = guard.meter_provider().unwrap().meter("test");
    let counter = meter.u64_counter("dag.node.runs").build();
    counter.add(3, &[KeyValue::new("dag.node.name", "clean")]);

    let report = guard.shutdown();
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.signal(Signal::Traces).unwrap().exported(), 2);
    assert_eq!(report.signal(Signal::Logs).unwrap().exported(), 1);

    // Traces: one request per line, hex ids, the parent link, attributes, the resource.
    let raw = std::fs::read_to_string(dir.join("traces.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    let json_span = &first["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    let trace_id = json_span["traceId"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    assert!(
        trace_id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    let requests = support::traces(&dir);
    let spans: Vec<_> = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect();
    assert_eq!(spans.len(), 2);
    let node = spans.iter().find(|s| s.name == "node").unwrap();
    let pipeline = spans.iter().find(|s| s.name == "pipeline").unwrap();
    assert_eq!(node.trace_id, pipeline.trace_id);
    assert_eq!(node.parent_span_id, pipeline.span_id);
    assert_eq!(attr(&node.attributes, "dag.node.name"), Some("clean"));
    assert_eq!(node.events[0].name, "retry");
    let resource = requests[0].resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attr(&resource.attributes, "service.name"),
        Some("file-test")
    );
    assert_eq!(
        attr(&resource.attributes, "telemetry.sdk.language"),
        Some("rust")
    );

    // Logs.
    let logs = support::logs(&dir);
    let log = &logs[0].resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(log.severity_number, Severity::Warn as i32);
    assert_eq!(attr(&log.attributes, "dag.node.name"), Some("clean"));
    let body = log.body.as_ref().and_then(|b| b.value.as_ref());
    assert!(
        matches!(body, Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) if s == "node slow"),
        "{body:?}"
    );

    // Metrics: the counter's sum at shutdown.
    let metrics = support::metrics(&dir);
    let sum = metrics
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .filter(|m| m.name == "dag.node.runs")
        .filter_map(|m| match &m.data {
            Some(Data::Sum(sum)) => sum.data_points.last().cloned(),
            _ => None,
        })
        .next_back()
        .expect("the counter was exported");
    assert_eq!(sum.value, Some(number_data_point::Value::AsInt(3)));
}

#[test]
fn disabled_sdk_installs_and_writes_nothing() {
    let mut s = settings("disabled", &[ExporterKind::File, ExporterKind::Memory]);
    s.disabled = true;
    let guard = install(&s, "svc", local()).unwrap();
    assert!(guard.tracer_provider().is_none());
    assert!(guard.logger_provider().is_none());
    assert!(guard.meter_provider().is_none());
    assert!(guard.telemetry_dir().is_none());
    assert!(guard.memory().spans.is_none());
    let report = guard.shutdown();
    assert!(report.signals.is_empty(), "{report}");
    assert_eq!(std::fs::read_dir(&s.telemetry_dir).unwrap().count(), 0);
}

#[test]
fn a_failed_install_leaves_no_directory_behind() {
    // Traces open their file first; the logs exporter then fails on a header no HTTP request
    // may carry.
    let mut s = settings("failed-install", &[ExporterKind::File]);
    s.telemetry_dir = s.telemetry_dir.join("created/by/install");
    s.exporters.logs = vec![ExporterKind::Otlp];
    s.otlp.logs.headers = vec![("bad header".into(), "x".into())];
    let error = install(&s, "svc", local().run_id(RunId::from("run-1"))).unwrap_err();
    assert!(error.to_string().contains("bad header"), "{error}");
    let scratch = s.telemetry_dir.ancestors().nth(3).unwrap();
    assert!(scratch.exists(), "what existed before stays");
    assert!(!scratch.join("created").exists(), "{error}");

    // A directory that existed before the install is left alone, with what is in it.
    let kept = settings("failed-install-kept", &[ExporterKind::File]);
    let dir = kept.telemetry_dir.join("run-2");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("earlier.txt"), "kept").unwrap();
    let mut s = kept.clone();
    s.exporters.logs = vec![ExporterKind::Otlp];
    s.otlp.logs.headers = vec![("bad header".into(), "x".into())];
    install(&s, "svc", local().run_id(RunId::from("run-2"))).unwrap_err();
    assert!(dir.join("earlier.txt").exists());
}

#[test]
fn shutdown_with_a_dead_collector_returns_and_counts_the_losses() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let mut s = settings("dead", &[ExporterKind::Otlp]);
        for otlp in [&mut s.otlp.traces, &mut s.otlp.logs, &mut s.otlp.metrics] {
            otlp.protocol = protocol;
            otlp.endpoint = match protocol {
                Protocol::Grpc => "http://127.0.0.1:9".into(),
                _ => "http://127.0.0.1:9/v1/traces".into(),
            };
            otlp.timeout = Duration::from_millis(300);
        }
        s.span_batch.max_queue_size = 64;
        s.span_batch.max_export_batch_size = 16;
        let guard = install(&s, "svc", local().shutdown_timeout(Duration::from_secs(1))).unwrap();
        let tracer = guard.tracer_provider().unwrap().tracer("test");
        for i in 0..200 {
            tracer.in_span(format!("span-{i}"), |_| {});
        }
        let report = guard.shutdown();
        let traces = report.signal(Signal::Traces).unwrap();
        let otlp = traces.exporters[0];
        assert_eq!(otlp.submitted, 200, "{protocol:?}: {report}");
        assert_eq!(otlp.exported, 0, "{protocol:?}: {report}");
        assert_eq!(otlp.failed + otlp.dropped, 200, "{protocol:?}: {report}");
        assert!(
            otlp.dropped > 0,
            "a 64-span queue cannot hold 200: {report}"
        );
        assert!(!report.is_complete());
    }
}

#[test]
fn resource_precedence_service_name_and_decoded_values() {
    let mut s = Settings::default();
    s.detectors = Vec::new();
    s.resource_attributes = vec![
        ("service.name".into(), "from-attributes".into()),
        ("deployment.environment.name".into(), "prod eu".into()),
        ("team".into(), "data,eng".into()),
    ];
    let get = |r: &opentelemetry_sdk::Resource, k: &'static str| r.get(&Key::from_static_str(k));

    // OTEL_SERVICE_NAME beats service.name in the resource attributes.
    s.service.name = Some("from-service-name".into());
    let r = build_resource(&s, "from-code");
    assert_eq!(
        get(&r, "service.name"),
        Some(Value::from("from-service-name"))
    );
    assert_eq!(
        get(&r, "deployment.environment.name"),
        Some(Value::from("prod eu"))
    );
    assert_eq!(get(&r, "team"), Some(Value::from("data,eng")));

    // Without it, the attribute beats the name given in code.
    s.service.name = None;
    let r = build_resource(&s, "from-code");
    assert_eq!(
        get(&r, "service.name"),
        Some(Value::from("from-attributes"))
    );

    // And with neither, the name given in code is used.
    s.resource_attributes.retain(|(k, _)| k != "service.name");
    let r = build_resource(&s, "from-code");
    assert_eq!(get(&r, "service.name"), Some(Value::from("from-code")));

    // The configured environment is set last, over the attribute.
    s.service.environment = Some("staging".into());
    s.service.version = Some("1.2.3".into());
    let r = build_resource(&s, "from-code");
    assert_eq!(
        get(&r, "deployment.environment.name"),
        Some(Value::from("staging"))
    );
    assert_eq!(get(&r, "service.version"), Some(Value::from("1.2.3")));

    // A random instance id when none is configured, the configured one otherwise.
    let a = get(&build_resource(&s, "x"), "service.instance.id").unwrap();
    let b = get(&build_resource(&s, "x"), "service.instance.id").unwrap();
    assert_ne!(a, b);
    s.service.instance_id = Some("pod-1".into());
    let r = build_resource(&s, "x");
    assert_eq!(get(&r, "service.instance.id"), Some(Value::from("pod-1")));
}

#[test]
fn sampling_keeps_or_drops_each_trace_whole() {
    for kind in [
        SamplerKind::ParentBasedTraceIdRatio,
        SamplerKind::TraceIdRatio,
    ] {
        let mut s = settings("sampling", &[ExporterKind::Memory]);
        s.sampler.kind = kind;
        s.sampler.ratio = 0.5;
        let guard = install(&s, "svc", local()).unwrap();
        let tracer = guard.tracer_provider().unwrap().tracer("test");
        const TRACES: usize = 200;
        const SPANS_PER_TRACE: usize = 4;
        for _ in 0..TRACES {
            let root = Context::current_with_span(tracer.start("run"));
            for _ in 0..2 {
                let node = Context::current_with_span(tracer.start_with_context("node", &root));
                tracer.start_with_context("attempt", &node).end();
                node.span().end();
            }
            root.span().end();
        }
        assert!(guard.force_flush().is_empty());
        let spans = memory_spans(&guard);
        let mut per_trace: HashMap<_, usize> = HashMap::new();
        for span in &spans {
            *per_trace.entry(span.span_context.trace_id()).or_default() += 1;
        }
        for (trace, count) in &per_trace {
            assert_eq!(
                *count,
                1 + SPANS_PER_TRACE,
                "{kind:?}: trace {trace} was split"
            );
        }
        // With 200 traces at 50%, keeping none or all has probability 2^-199.
        assert!(
            !per_trace.is_empty() && per_trace.len() < TRACES,
            "{kind:?}"
        );
        drop(guard);
    }
}

#[test]
fn attribute_values_are_cut_to_the_length_limit() {
    let mut s = settings("limits", &[ExporterKind::Memory]);
    s.limits.span_attribute_value_length = Some(4);
    s.limits.span_attribute_count = 2;
    let guard = install(&s, "svc", local()).unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("test");
    let mut span = tracer.start("s");
    span.set_attribute(KeyValue::new("long", "abcdefgh"));
    span.set_attribute(KeyValue::new("short", "ab"));
    span.set_attribute(KeyValue::new("third", "over the count limit"));
    span.add_event("e", vec![KeyValue::new("detail", "日本語テキスト")]);
    span.end();
    guard.force_flush();
    let spans = memory_spans(&guard);
    let span = &spans[0];
    let value = |k: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(value("long"), Some(Value::from("abcd")));
    assert_eq!(value("short"), Some(Value::from("ab")));
    assert_eq!(value("third"), None);
    assert_eq!(span.dropped_attributes_count, 1);
    assert_eq!(
        span.events.events[0].attributes[0].value,
        Value::from("日本語テ")
    );
}

#[derive(Debug)]
struct Stamp;

impl SpanProcessor for Stamp {
    fn on_start(&self, span: &mut Span, _cx: &Context) {
        span.set_attribute(KeyValue::new("stamped", true));
    }
    fn on_end(&self, _span: SpanData) {}
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

impl LogProcessor for Stamp {
    fn emit(&self, record: &mut SdkLogRecord, _scope: &opentelemetry::InstrumentationScope) {
        record.add_attribute("stamped", true);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[test]
fn caller_processors_run_before_the_exporters() {
    let s = settings("processors", &[ExporterKind::Memory, ExporterKind::File]);
    let options = local().span_processor(Stamp).log_processor(Stamp);
    let guard = install(&s, "svc", options).unwrap();
    let mut span = guard
        .tracer_provider()
        .unwrap()
        .tracer("t")
        .span_builder("s")
        .with_kind(SpanKind::Internal)
        .start(&guard.tracer_provider().unwrap().tracer("t"));
    span.end();
    let logger = guard.logger_provider().unwrap().logger("t");
    let mut record = logger.create_log_record();
    record.set_body("hello".into());
    logger.emit(record);
    guard.force_flush();
    let memory = guard.memory().clone();
    let dir = guard.telemetry_dir().unwrap().to_owned();
    let report = guard.shutdown();
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.signal(Signal::Traces).unwrap().exporters.len(), 2);

    let spans = memory.spans.unwrap().get_finished_spans().unwrap();
    assert!(
        spans[0]
            .attributes
            .contains(&KeyValue::new("stamped", true))
    );
    let logs = memory.logs.unwrap().get_emitted_logs().unwrap();
    assert!(logs[0].record.attributes_iter().any(
        |(k, v)| k.as_str() == "stamped" && *v == opentelemetry::logs::AnyValue::Boolean(true)
    ));
    // The file exporter got the same stamped span.
    let file_spans = support::traces(&dir);
    let span = &file_spans[0].resource_spans[0].scope_spans[0].spans[0];
    assert!(span.attributes.iter().any(|kv| kv.key == "stamped"));
}

#[test]
fn the_file_exporter_attaches_exemplars_of_node_spans_unless_they_are_off() {
    use ExemplarFilter::*;
    use HistogramAggregation::*;
    let cases = [
        (TraceBased, ExplicitBucketHistogram, true),
        (TraceBased, Base2ExponentialBucketHistogram, true),
        (AlwaysOff, ExplicitBucketHistogram, false),
    ];
    for (filter, aggregation, kept) in cases {
        let case = format!("{filter:?} {aggregation:?}");
        let mut s = settings(
            &format!("exemplars-{filter:?}-{aggregation:?}"),
            &[ExporterKind::File],
        );
        s.metrics.exemplar_filter = filter;
        s.metrics.histogram_aggregation = aggregation;
        let guard = install(&s, "svc", local()).unwrap();
        assert_eq!(guard.exemplars().is_some(), kept, "{case}");
        support::run_one_node(&guard);
        let dir = guard.telemetry_dir().unwrap().to_owned();
        let report = guard.shutdown();
        assert!(report.is_complete(), "{case}: {report}");

        let traces = support::traces(&dir);
        let span = support::all_spans(&traces)
            .find(|s| s.name == "step")
            .expect("the node span was written");
        let metrics = support::metrics(&dir);
        let metric = support::all_metrics(&metrics)
            .find(|m| m.name == "dag.node.duration")
            .expect("the node duration was written");
        let exemplars = match &metric.data {
            Some(Data::Histogram(h)) => h.data_points[0].exemplars.clone(),
            Some(Data::ExponentialHistogram(h)) => h.data_points[0].exemplars.clone(),
            other => panic!("{case}: {other:?}"),
        };
        if kept {
            assert_eq!(exemplars.len(), 1, "{case}");
            assert_eq!(exemplars[0].span_id, span.span_id, "{case}");
            assert_eq!(exemplars[0].trace_id, span.trace_id, "{case}");
        } else {
            assert!(exemplars.is_empty(), "{case}");
        }
    }
}

#[test]
fn exponential_histograms_when_asked() {
    let mut s = settings("histograms", &[ExporterKind::File]);
    s.metrics.histogram_aggregation = HistogramAggregation::Base2ExponentialBucketHistogram;
    let guard = install(&s, "svc", local()).unwrap();
    let meter = guard.meter_provider().unwrap().meter("test");
    let histogram = meter
        .f64_histogram("dag.node.duration")
        .with_unit("s")
        .build();
    for v in [0.5, 1.0, 2.0, 4.0] {
        histogram.record(v, &[]);
    }
    let dir = guard.telemetry_dir().unwrap().to_owned();
    let report = guard.shutdown();
    assert!(report.is_complete(), "{report}");
    let metrics = support::metrics(&dir);
    let metric = support::all_metrics(&metrics)
        .find(|m| m.name == "dag.node.duration")
        .expect("the histogram was exported");
    match &metric.data {
        Some(Data::ExponentialHistogram(h)) => assert_eq!(h.data_points[0].count, 4),
        other => panic!("expected an exponential histogram, got {other:?}"),
    }
}

#[test]
fn the_parent_context_comes_from_the_given_environment() {
    let s = settings("parent", &[ExporterKind::Memory]);
    let env = [
        (
            "TRACEPARENT",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("DAGTEL_RUN_ID", "parent-run"),
    ];
    let guard = install(&s, "svc", InstallOptions::new().local().parent_env(env)).unwrap();
    let parent = guard.parent();
    assert_eq!(parent.run_id, Some(RunId::from("parent-run")));
    let tracer = guard.tracer_provider().unwrap().tracer("t");
    tracer
        .start_with_context("child-root", &parent.context)
        .end();
    guard.force_flush();
    let spans = memory_spans(&guard);
    assert_eq!(
        spans[0].span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(spans[0].parent_span_id.to_string(), "b7ad6b7169203331");
    assert!(spans[0].parent_span_is_remote);
    let outcome = guard
        .shutdown()
        .signal(Signal::Traces)
        .unwrap()
        .outcome
        .clone();
    assert_eq!(outcome, ShutdownOutcome::Completed);
}

/// A parent process that passes baggage but no trace context (it ran outside any span, or
/// propagates baggage only) still hands its baggage to every run's nodes.
#[test]
fn baggage_from_a_parent_without_a_trace_context_reaches_the_nodes() {
    use opentelemetry::baggage::BaggageExt as _;
    let s = settings("baggage-only", &[ExporterKind::Memory]);
    let env = [("BAGGAGE", "tenant=acme,region=eu")];
    let guard = install(&s, "svc", local().parent_env(env)).unwrap();
    assert!(!guard.parent().is_remote());
    let mut g = dagtel::DagBuilder::new("baggage");
    let seen = g.node("seen").run((), |_, ()| {
        Ok(Context::current()
            .baggage()
            .get("tenant")
            .map(|v| v.to_string()))
    });
    let dag = g.build().unwrap();
    let plan = dag.plan(&dagtel::Request::new().output(seen)).unwrap();
    for executor in [
        dagtel::Executor::sequential(),
        dagtel::Executor::parallel().threads(2),
    ] {
        let run = executor
            .hook(guard.hooks())
            .run(&plan, dagtel::Inputs::new())
            .unwrap();
        assert_eq!(run.outputs().get(seen).unwrap().as_deref(), Some("acme"));
    }
    // Baggage the caller attached itself stays, on top of the parent's.
    let _attached = Context::current_with_baggage([
        KeyValue::new("tenant", "own"),
        KeyValue::new("team", "core"),
    ])
    .attach();
    let mut g = dagtel::DagBuilder::new("baggage-merged");
    let both = g.node("both").run((), |_, ()| {
        let cx = Context::current();
        let get = |k: &str| cx.baggage().get(k).map(|v| v.to_string());
        Ok((get("tenant"), get("team"), get("region")))
    });
    let dag = g.build().unwrap();
    let plan = dag.plan(&dagtel::Request::new().output(both)).unwrap();
    let run = dagtel::Executor::sequential()
        .hook(guard.hooks())
        .run(&plan, dagtel::Inputs::new())
        .unwrap();
    assert_eq!(
        run.outputs().get(both).unwrap(),
        &(
            Some("own".to_string()),
            Some("core".to_string()),
            Some("eu".to_string())
        )
    );
    guard.shutdown();
}

/// gRPC exporters live on the guard's own runtime: installing and shutting down from inside a
/// single-threaded runtime (where blocking would starve an exporter built on the caller's
/// runtime) neither panics nor loses the count.
#[tokio::test(flavor = "current_thread")]
async fn grpc_install_and_shutdown_inside_a_current_thread_runtime() {
    let mut s = settings("in-runtime", &[ExporterKind::Otlp]);
    for otlp in [&mut s.otlp.traces, &mut s.otlp.logs, &mut s.otlp.metrics] {
        otlp.protocol = Protocol::Grpc;
        otlp.endpoint = "http://127.0.0.1:9".into();
        otlp.timeout = Duration::from_millis(200);
    }
    let guard = install(&s, "svc", local().shutdown_timeout(Duration::from_secs(1))).unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("test");
    for _ in 0..10 {
        tracer.in_span("s", |_| {});
    }
    let report = guard.shutdown();
    let otlp = report.signal(Signal::Traces).unwrap().exporters[0];
    assert_eq!(otlp.submitted, 10, "{report}");
    assert_eq!(otlp.exported, 0, "{report}");
    assert_eq!(otlp.failed + otlp.dropped, 10, "{report}");
}

#[test]
fn log_record_attribute_limits_are_applied() {
    let mut s = settings("log-limits", &[ExporterKind::Memory]);
    s.limits.log_attribute_count = 3;
    s.limits.log_attribute_value_length = Some(4);
    let guard = install(&s, "svc", local()).unwrap();
    let logger = guard.logger_provider().unwrap().logger("test");
    let mut record = logger.create_log_record();
    record.set_body("a record with too much".into());
    record.set_severity_number(Severity::Info);
    record.add_attribute("first", "abcdefgh");
    record.add_attribute("second", "é€😀xyz");
    record.add_attribute("third", 42);
    record.add_attribute("fourth", "dropped");
    logger.emit(record);
    let mut small = logger.create_log_record();
    small.set_body("within".into());
    small.add_attribute("k", "v");
    logger.emit(small);
    let logs = guard.memory().logs.clone().unwrap();
    let report = guard.shutdown();
    assert!(report.is_complete(), "{report}");
    let records = logs.get_emitted_logs().unwrap();
    let text = |r: &opentelemetry_sdk::logs::in_memory_exporter::LogDataWithResource| {
        r.record
            .attributes_iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
    };
    let big = records
        .iter()
        .find(|r| format!("{:?}", r.record.body()).contains("too much"))
        .unwrap();
    assert_eq!(
        text(big),
        [
            "first=String(Owned(\"abcd\"))",
            "second=String(Owned(\"é€😀x\"))",
            "third=Int(42)"
        ]
    );
    assert_eq!(
        big.record.severity_number(),
        Some(Severity::Info),
        "the rest is kept"
    );
    let within = records
        .iter()
        .find(|r| format!("{:?}", r.record.body()).contains("within"))
        .unwrap();
    assert_eq!(text(within).len(), 1);
}

/// `hooks_builder` keeps what the guard wires into `hooks()` (the parent process's trace and
/// run, the configured link limit) and takes further options.
#[test]
fn the_hooks_builder_keeps_the_guards_wiring_and_takes_options() {
    use dagtel::otel::conventions as conv;
    use dagtel::{DagBuilder, Executor, Inputs, Request};

    let mut s = settings("hooks-builder", &[ExporterKind::Memory]);
    s.limits.span_link_count = 1;
    let env = [
        (
            "TRACEPARENT",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("DAGTEL_RUN_ID", "parent-run"),
    ];
    let guard = install(&s, "svc", InstallOptions::new().local().parent_env(env)).unwrap();
    let mut g = DagBuilder::new("wired");
    let a = g.node("a").run((), |_, ()| Ok(1u32));
    let b = g.node("b").run(a, |_, a| Ok(*a + 1));
    let c = g.node("c").run((a, b), |_, (a, b)| Ok(*a + *b));
    let plan = g.build().unwrap().plan(&Request::new().output(c)).unwrap();
    let hooks = guard.hooks_builder().link_every_edge(true).build();
    Executor::sequential()
        .hook(hooks)
        .run(&plan, Inputs::new())
        .unwrap();
    guard.force_flush();
    let spans = memory_spans(&guard);
    let span = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {spans:?}"))
    };
    let attribute = |s: &SpanData, key: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    let root = span("run wired");
    assert_eq!(
        root.span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c",
        "the run joins the parent process's trace"
    );
    assert_eq!(
        attribute(root, conv::PARENT_RUN_ID),
        Some(Value::from("parent-run"))
    );
    assert_eq!(
        span("b").links.len(),
        1,
        "link_every_edge: a one-parent node links to its parent"
    );
    let fan_in = span("c");
    assert_eq!(fan_in.links.len(), 1, "the configured link limit");
    assert_eq!(
        attribute(fan_in, conv::LINKS_TRUNCATED),
        Some(Value::from(true))
    );
    assert_eq!(
        attribute(fan_in, conv::NODE_PARENT_COUNT),
        Some(Value::from(2i64))
    );
}

/// A collector that accepts connections and never answers must not cost the local file its
/// last batch: local sinks flush and shut down before OTLP, whatever order they are listed in.
#[test]
fn a_hanging_collector_does_not_keep_the_file_from_its_last_batch() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream); // accepted, never answered
        }
    });
    let mut s = settings(
        "hanging-collector",
        &[ExporterKind::Otlp, ExporterKind::File],
    );
    for otlp in [&mut s.otlp.traces, &mut s.otlp.logs, &mut s.otlp.metrics] {
        otlp.protocol = Protocol::HttpProtobuf;
        otlp.endpoint = format!("http://127.0.0.1:{port}/v1/x");
        otlp.timeout = Duration::from_secs(30);
    }
    let guard = install(&s, "svc", local().shutdown_timeout(Duration::from_secs(2))).unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("test");
    tracer.start("kept locally").end();
    let dir = guard.telemetry_dir().unwrap().to_owned();
    let report = guard.shutdown();
    // Read at once: a program may exit right after `shutdown` returns.
    let spans: usize = support::traces(&dir)
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    assert_eq!(
        spans, 1,
        "the file has the span when shutdown returns: {report}"
    );
}

/// Under the log attribute count limit, a record keeps the attributes that tie it to its run
/// (added after its own by `RunIdLogProcessor`), and its own fill the rest.
#[test]
fn the_log_count_limit_keeps_the_run_id() {
    let mut s = settings("log-limit-run", &[ExporterKind::Memory]);
    s.limits.log_attribute_count = 2;
    let guard = install(&s, "svc", local()).unwrap();
    let logger = guard.logger_provider().unwrap().logger("test");
    let scope = dagtel::otel::RunScope::new(RunId::from("run-7"), "dag");
    let _in_run = Context::new().with_value(scope).attach();
    let mut record = logger.create_log_record();
    record.set_body("in a run".into());
    record.add_attribute("a", 1);
    record.add_attribute("b", 2);
    logger.emit(record);
    guard.force_flush();
    let logs = guard.memory().logs.clone().unwrap();
    let records = logs.get_emitted_logs().unwrap();
    let keys: Vec<String> = records[0]
        .record
        .attributes_iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(keys, ["dag.run.id", "a"]);
}
