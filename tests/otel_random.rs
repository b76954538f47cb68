//! Property test: on random DAGs with failing nodes, under sequential and parallel execution,
//! the trace has exactly the expected shape: one span per planned node under its stage (or
//! the root), fan-in links to exactly the distinct parents in dependency order, statuses that
//! match the run record, and the run id on every span.

use std::collections::{BTreeSet, HashMap};

use dagtel::otel::conventions as conv;
use dagtel::otel::testing::{SpanDataExt, TestTelemetry};
use dagtel::*;
use opentelemetry::trace::{SpanId, Status};
use opentelemetry_sdk::trace::SpanData;
use proptest::prelude::*;

mod common;
use common::random_graph::*;

fn executors() -> [Executor; 3] {
    [
        Executor::sequential().failure_policy(FailurePolicy::Continue),
        Executor::parallel()
            .threads(2)
            .failure_policy(FailurePolicy::Continue),
        Executor::parallel()
            .threads(4)
            .failure_policy(FailurePolicy::Continue),
    ]
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> Result<&'a SpanData, TestCaseError> {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    prop_assert_eq!(found.len(), 1, "one span named {}", name);
    Ok(found[0])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn traces_have_the_shape_of_the_graph(spec in spec(0.12)) {
        let (plan, seed, _) = plan(&spec);
        let planned: BTreeSet<usize> = plan.nodes().map(|n| index_of(n.name())).collect();
        for executor in executors() {
            let telemetry = TestTelemetry::new();
            let result = executor.hook(telemetry.hooks()).run(&plan, Inputs::new().set(seed, spec.seed));
            let record = match &result {
                Ok(run) => run.record().clone(),
                Err(err) => err.record().expect("runs record").clone(),
            };
            let spans = telemetry.spans();
            let run_id = record.run_id.to_string();
            prop_assert!(spans.iter().all(|s| s.run_id().as_deref() == Some(run_id.as_str())));

            let root = one(&spans, "run random")?;
            prop_assert_eq!(root.parent_span_id, SpanId::INVALID);
            let failed = record.count(NodeStatus::Failed) > 0;
            prop_assert_eq!(matches!(root.status, Status::Error { .. }), failed);

            let stages: BTreeSet<usize> = planned.iter().filter_map(|&i| spec.stages[i]).collect();
            let mut stage_spans = HashMap::new();
            for &s in &stages {
                let span = one(&spans, &format!("stage {}", STAGES[s]))?;
                prop_assert!(span.is_child_of(root));
                stage_spans.insert(s, span);
            }
            prop_assert_eq!(spans.len(), 1 + stages.len() + planned.len());

            for node in record.nodes() {
                let i = index_of(node.name);
                let span = one(&spans, node.name)?;
                let parent = match spec.stages[i] {
                    Some(s) => stage_spans[&s],
                    None => root,
                };
                prop_assert!(span.is_child_of(parent), "{} under its stage or the root", node.name);
                let status = span.attribute_str(conv::STATUS).map(|s| s.into_owned());
                let expected = match node.status {
                    NodeStatus::Succeeded => "ok",
                    NodeStatus::Failed => "error",
                    NodeStatus::Skipped => "skipped",
                    other => panic!("unexpected status {other}"),
                };
                prop_assert_eq!(status.as_deref(), Some(expected));
                prop_assert_eq!(matches!(span.status, Status::Error { .. }), expected == "error");

                let mut parents: Vec<usize> = Vec::new();
                for &p in &spec.parents[i] {
                    if !parents.contains(&p) {
                        parents.push(p);
                    }
                }
                if parents.len() >= 2 {
                    prop_assert_eq!(span.links.len(), parents.len());
                    for (link, &p) in span.links.iter().zip(&parents) {
                        let parent_span = one(&spans, &name(p))?;
                        prop_assert_eq!(&link.span_context, &parent_span.span_context);
                        let named = link.attributes.iter().find(|kv| kv.key.as_str() == conv::LINK_PARENT);
                        prop_assert_eq!(named.map(|kv| kv.value.as_str().into_owned()), Some(name(p)));
                    }
                } else {
                    prop_assert!(span.links.is_empty());
                }
            }
        }
    }
}
