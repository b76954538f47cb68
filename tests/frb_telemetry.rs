//! The main example's pipeline, traced: every node under its stage, the clustering node
//! linked to each beam it merged (with the beams' entity ids), search nodes linked to every
//! block, the retried replication visible as two attempts, the run id on every span and log
//! record, metrics that agree with the run record, and the clustering node's duration
//! exemplar pointing at its span. Sequential and parallel.

#[path = "../examples/support/frb.rs"]
mod frb;

use std::collections::HashMap;

use dagtel::otel::conventions as conv;
use dagtel::otel::testing::{LogRecordExt, SpanDataExt, TestTelemetry};
use dagtel::*;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanId, Status};
use opentelemetry_sdk::trace::SpanData;

const CFG: frb::Config = frb::Config {
    beams: 8,
    blocks: 4,
    channels: 64,
    samples: 256,
};

fn link_attr(span: &SpanData, i: usize, key: &str) -> Option<String> {
    span.links.links[i]
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

#[test]
fn the_frb_trace_has_the_pipelines_shape_and_provenance() {
    let telemetry = TestTelemetry::global().expect("the only global subscriber here");
    for executor in [Executor::sequential(), Executor::parallel().threads(3)] {
        let pipeline = frb::build(&CFG).unwrap();
        let plan = pipeline.dag.plan(&pipeline.request()).unwrap();
        let run = executor
            .failure_policy(FailurePolicy::Continue)
            .hook(telemetry.hooks())
            .run(&plan, Inputs::new().set(pipeline.config, CFG))
            .unwrap();
        let record = run.record();
        let run_id = record.run_id.to_string();
        let spans = telemetry.spans_of_run(&run_id);
        let root = spans
            .iter()
            .find(|s| s.parent_span_id == SpanId::INVALID)
            .unwrap();
        let trace = root.span_context.trace_id();
        let whole_trace = telemetry
            .spans()
            .into_iter()
            .filter(|s| s.span_context.trace_id() == trace)
            .count();
        assert_eq!(
            whole_trace,
            spans.len(),
            "the run id is on every span of the trace"
        );

        let mut by_name: HashMap<&str, Vec<&SpanData>> = HashMap::new();
        for span in &spans {
            by_name.entry(&span.name).or_default().push(span);
        }
        let one = |name: &str| {
            let found = &by_name[name];
            assert_eq!(found.len(), 1, "{name}");
            found[0]
        };

        // Every node under its stage, every stage under the root.
        for node in record.nodes() {
            let stage = one(&format!("stage {}", node.stage().unwrap()));
            assert!(stage.is_child_of(root));
            for attempt in &by_name[node.name] {
                assert!(attempt.is_child_of(stage), "{} under its stage", node.name);
            }
        }

        // Blocks and candidate sets declare entities; search nodes link to every block.
        for b in 0..CFG.blocks {
            let ingest = one(&format!("ingest_block_{b:03}"));
            assert_eq!(
                ingest.attribute_str(conv::ENTITY_ID).as_deref(),
                Some(format!("block-{b:03}").as_str())
            );
        }
        for beam in 0..CFG.beams {
            let search = one(&format!("search_beam_{beam:02}"));
            assert_eq!(search.links.len(), CFG.blocks);
            for b in 0..CFG.blocks {
                assert!(search.links_to(one(&format!("ingest_block_{b:03}"))));
                assert_eq!(
                    link_attr(search, b, conv::LINK_PARENT_ENTITY),
                    Some(format!("block-{b:03}"))
                );
            }
        }

        // The N-to-1 fan-in: the event links to every beam; the links to the beams it merged
        // (those that produced candidates) carry their candidate entity ids.
        let cluster = one("cluster_candidates");
        assert_eq!(cluster.links.len(), CFG.beams);
        assert_eq!(
            cluster.attribute_str(conv::NODE_PARENT_COUNT).as_deref(),
            Some("8")
        );
        let merged = &run.outputs().get(pipeline.event).unwrap().beams;
        for beam in 0..CFG.beams {
            let search = one(&format!("search_beam_{beam:02}"));
            assert!(cluster.links_to(search));
            assert_eq!(
                link_attr(cluster, beam, conv::LINK_PARENT),
                Some(format!("search_beam_{beam:02}"))
            );
            let expected = merged
                .contains(&beam)
                .then(|| format!("candidates-beam-{beam:02}"));
            assert_eq!(
                link_attr(cluster, beam, conv::LINK_PARENT_ENTITY),
                expected,
                "beam {beam}"
            );
        }
        assert_eq!(merged, &[3, 4, 5]);
        let event_id = run.outputs().get(pipeline.event).unwrap().id.clone();
        assert_eq!(
            cluster.attribute_str(conv::ENTITY_ID).as_deref(),
            Some(event_id.as_str())
        );
        // Archive and register read the event and its classification: fan-in of two.
        for node in ["archive_event", "register_event"] {
            let span = one(node);
            assert!(
                span.links_to(cluster) && span.links_to(one("classify_event")),
                "{node}"
            );
        }

        // The replication failed once and was retried.
        let attempts = &by_name["replicate_event"];
        assert_eq!(attempts.len(), 2);
        let failed = attempts
            .iter()
            .find(|s| s.attribute_str(conv::NODE_ATTEMPT).as_deref() == Some("1"))
            .unwrap();
        assert!(matches!(failed.status, Status::Error { .. }));
        assert_eq!(
            failed.attribute_str(conv::NODE_WILL_RETRY).as_deref(),
            Some("true")
        );

        // Logs carry the run, the node and its entity; the retry warning too.
        // The clustering node's duration has an exemplar pointing at its span.
        telemetry.metrics();
        let mut series = vec![
            KeyValue::new(
                conv::DAG_NAME,
                root.attribute_str(conv::DAG_NAME).unwrap().to_string(),
            ),
            KeyValue::new(conv::NODE_NAME, "cluster_candidates"),
            KeyValue::new(conv::STATUS, "ok"),
        ];
        if let Some(stage) = cluster.attribute_str(conv::STAGE_NAME) {
            series.push(KeyValue::new(conv::STAGE_NAME, stage.to_string()));
        }
        let exemplars = telemetry.exemplars(conv::METRIC_NODE_DURATION, &series);
        assert!(
            exemplars
                .iter()
                .any(|e| e.span_id == Some(cluster.span_context.span_id())
                    && e.trace_id == Some(trace)),
            "{exemplars:?}"
        );
        let logs = telemetry.logs_of_run(&run_id);
        let clustered = logs
            .iter()
            .find(|l| l.body_str() == Some("clustered candidates into one event"))
            .expect("the clustering log");
        assert_eq!(
            clustered.attribute_str(conv::NODE_NAME),
            Some("cluster_candidates")
        );
        assert_eq!(
            clustered.attribute_str(conv::ENTITY_ID),
            Some(event_id.as_str())
        );
        assert_eq!(
            clustered.trace_context().unwrap().span_id,
            cluster.span_context.span_id()
        );
        assert!(
            logs.iter()
                .any(|l| l.body_str() == Some("remote site busy, will retry")
                    && l.attribute_str(conv::NODE_NAME) == Some("replicate_event"))
        );
        assert_eq!(
            logs.iter()
                .filter(|l| l.body_str() == Some("candidates.found"))
                .count(),
            CFG.beams
        );
    }
}
