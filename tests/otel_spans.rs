//! OpenTelemetry hooks: span topology, fan-in links, failures, skips, retries, scopes and
//! metrics, under sequential and parallel execution.

use std::collections::HashMap;

use dagtel::otel::{OtelHooks, conventions as conv};
use dagtel::*;
use opentelemetry::trace::{SpanId, Status};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

struct Telemetry {
    spans: InMemorySpanExporter,
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
}

impl Telemetry {
    fn new() -> Self {
        let spans = InMemorySpanExporter::default();
        let tracer = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let meter = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(InMemoryMetricExporter::default()).build())
            .build();
        Self {
            spans,
            tracer,
            meter,
        }
    }
    fn hooks(&self) -> OtelHooks {
        OtelHooks::new(&self.tracer, &self.meter)
    }
    fn spans(&self) -> Vec<SpanData> {
        self.spans.get_finished_spans().unwrap()
    }
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::new(key.to_string()))
        .map(|kv| &kv.value)
}

fn by_name(spans: &[SpanData]) -> HashMap<String, Vec<&SpanData>> {
    let mut map: HashMap<String, Vec<&SpanData>> = HashMap::new();
    for s in spans {
        map.entry(s.name.to_string()).or_default().push(s);
    }
    map
}

fn executors() -> Vec<(&'static str, Executor)> {
    vec![
        ("sequential", Executor::sequential()),
        ("parallel", Executor::parallel().threads(4)),
    ]
}

#[test]
fn run_stage_task_and_node_spans_nest_and_fan_in_links_name_their_parents() {
    for (mode, executor) in executors() {
        let telemetry = Telemetry::new();
        let mut g = DagBuilder::new("frb");
        let n = g.input::<u32>("n");
        let beams: Vec<_> = (0..3)
            .map(|b| {
                g.node(format!("search_{b}"))
                    .stage("search")
                    .run(n, move |ctx, n| {
                        ctx.entity(format!("cand-{b}"));
                        Ok(n + b)
                    })
            })
            .collect();
        let cluster = g.node("cluster").stage("cluster").run(beams, |ctx, beams| {
            ctx.entity("event-1");
            Ok(beams.iter().copied().sum::<u32>())
        });
        let a = g.node("archive").task("store").run(cluster, |_, c| Ok(*c));
        let r = g.node("register").task("store").run(a, |_, c| Ok(*c + 1));
        let dag = g.build().unwrap();
        let plan = dag.plan(&Request::new().output(r)).unwrap();
        let run = executor
            .hook(telemetry.hooks())
            .run(&plan, Inputs::new().set(n, 1))
            .unwrap();
        let spans = telemetry.spans();
        let named = by_name(&spans);
        let one = |name: &str| -> &SpanData {
            let found = &named[name];
            assert_eq!(found.len(), 1, "{mode}: one span named {name}");
            found[0]
        };
        let root = one("run frb");
        assert_eq!(root.parent_span_id, SpanId::INVALID, "{mode}");
        assert_eq!(
            attr(root, conv::RUN_ID).map(|v| v.as_str().to_string()),
            Some(run.record().run_id.to_string())
        );
        let search = one("stage search");
        assert_eq!(search.parent_span_id, root.span_context.span_id(), "{mode}");
        for b in 0..3 {
            let beam = one(&format!("search_{b}"));
            assert_eq!(beam.parent_span_id, search.span_context.span_id(), "{mode}");
            assert_eq!(
                attr(beam, conv::ENTITY_ID).map(|v| v.as_str().to_string()),
                Some(format!("cand-{b}"))
            );
        }
        let cluster_stage = one("stage cluster");
        let cluster = one("cluster");
        assert_eq!(cluster.parent_span_id, cluster_stage.span_context.span_id());
        assert_eq!(cluster.links.len(), 3, "{mode}: one link per beam");
        for (b, link) in cluster.links.iter().enumerate() {
            let beam = one(&format!("search_{b}"));
            assert_eq!(link.span_context, beam.span_context, "{mode}");
            let get = |k: &str| {
                link.attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == k)
                    .map(|kv| kv.value.as_str().to_string())
            };
            assert_eq!(get(conv::LINK_PARENT), Some(format!("search_{b}")));
            assert_eq!(get(conv::LINK_PARENT_ENTITY), Some(format!("cand-{b}")));
        }
        let task = one("task store");
        assert_eq!(task.parent_span_id, root.span_context.span_id());
        for node in ["archive", "register"] {
            assert_eq!(
                one(node).parent_span_id,
                task.span_context.span_id(),
                "{mode}"
            );
            assert!(one(node).links.is_empty(), "{mode}: one parent, no link");
        }
        let trace = root.span_context.trace_id();
        assert!(spans.iter().all(|s| s.span_context.trace_id() == trace));
        assert_eq!(spans.len(), 1 + 2 + 3 + 1 + 1 + 2, "{mode}");
    }
}

#[test]
fn failures_mark_node_task_stage_and_run_spans_and_skips_are_visible() {
    let telemetry = Telemetry::new();
    let mut g = DagBuilder::new("fails");
    let n = g.input::<u32>("n");
    let bad = g
        .node("bad")
        .stage("s")
        .task("t")
        .run(n, |_, _| -> NodeResult<u32> {
            Err(NodeError::msg("disk full"))
        });
    let after = g.node("after").stage("s").task("t").run(bad, |_, b| Ok(*b));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(after)).unwrap();
    let err = Executor::sequential()
        .hook(telemetry.hooks())
        .run(&plan, Inputs::new().set(n, 1));
    assert!(err.is_err());
    let spans = telemetry.spans();
    let named = by_name(&spans);
    let bad = named["bad"][0];
    assert!(
        matches!(&bad.status, Status::Error { description } if description.contains("disk full"))
    );
    let exception = bad.events.iter().find(|e| e.name == "exception").unwrap();
    assert!(exception.attributes.iter().any(
        |kv| kv.key.as_str() == "exception.message" && kv.value.as_str().contains("disk full")
    ));
    let after = named["after"][0];
    assert_eq!(attr(after, conv::STATUS).unwrap().as_str(), "skipped");
    assert_eq!(attr(after, conv::SKIP_CAUSE).unwrap().as_str(), "bad");
    assert_eq!(after.status, Status::Unset);
    for name in ["task t", "stage s", "run fails"] {
        assert!(
            matches!(named[name][0].status, Status::Error { .. }),
            "{name} should be Error"
        );
    }
}
