//! What a node reports (events, artifacts, dataset sizes) and how `TestTelemetry` reads it,
//! in cases that used to go wrong: reports from carried work, a node body under a detached
//! context, payloads serde_json cannot hold whole, and concurrent metric queries.

mod common;

/// Reports from work carried out of a node keep the node and entity on their log records.
mod carried {
    use dagtel::otel::carry;
    use dagtel::otel::conventions as conv;
    use dagtel::otel::testing::{LogRecordExt, TestTelemetry};
    use dagtel::*;

    fn telemetry() -> &'static TestTelemetry {
        TestTelemetry::global().expect("no other global subscriber in this test binary")
    }

    #[test]
    fn reports_from_carried_work_keep_node_and_entity_on_their_log_records() {
        for (mode, executor) in [
            ("sequential", Executor::sequential()),
            ("parallel", Executor::parallel().threads(2)),
        ] {
            let mut g = DagBuilder::new("zz-carried-reports");
            let n = g.input::<u32>("n");
            let node = g.node("scatter").run(n, |ctx, n| {
                ctx.entity("blk-1");
                carry::join(
                    || ctx.event("zz.left", serde_json::json!({"k": 1})),
                    || ctx.artifact("zz.right", serde_json::json!({"k": 2})),
                );
                Ok(*n)
            });
            let plan = g
                .build()
                .unwrap()
                .plan(&Request::new().output(node))
                .unwrap();
            let run = executor
                .hook(telemetry().hooks())
                .run(&plan, Inputs::new().set(n, 1))
                .unwrap();
            let logs = telemetry().logs_of_run(run.record().run_id.as_str());
            for body in ["zz.left", conv::EVENT_ARTIFACT] {
                let log = logs
                    .iter()
                    .find(|l| l.body_str() == Some(body))
                    .unwrap_or_else(|| panic!("{mode}: record {body} with the run id"));
                assert_eq!(
                    (
                        log.attribute_str(conv::NODE_NAME),
                        log.attribute_str(conv::ENTITY_ID)
                    ),
                    (Some("scatter"), Some("blk-1")),
                    "{mode}: {body}"
                );
            }
        }
    }
}

/// Artifacts, datasets and logs of a node under a detached context, and dataset sizes past i64.
mod reports {
    use dagtel::otel::carry;
    use dagtel::otel::conventions as conv;
    use dagtel::otel::testing::{LogRecordExt, TestTelemetry};
    use dagtel::*;
    use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    use opentelemetry::{Context, KeyValue};

    fn telemetry() -> &'static TestTelemetry {
        TestTelemetry::global().expect("no other global subscriber in this test binary")
    }

    fn plan_of(g: DagBuilder, out: Handle<u32>) -> Plan {
        g.build()
            .unwrap()
            .plan(&Request::new().output(out))
            .unwrap()
    }

    /// Runs `plan` sequentially with the shared telemetry's hooks and `n` = 1.
    fn run_seq(plan: &Plan, n: Handle<u32>) -> Run {
        Executor::sequential()
            .hook(telemetry().hooks())
            .run(plan, Inputs::new().set(n, 1))
            .unwrap()
    }

    /// A node that does some detached work (a new trace, as the docs suggest with
    /// `root_span_link`) and reports an artifact while in it: the span event and the log record
    /// are there, the `dag.artifacts` counter is not incremented.
    #[test]
    fn the_artifact_counter_counts_under_a_detached_context() {
        let mut g = DagBuilder::new("zz-detached-artifact");
        let n = g.input::<u32>("n");
        let node = g.node("publish").run(n, |ctx, n| {
            let tracer = telemetry().tracer_provider().tracer("background");
            let span = tracer
                .span_builder("background.job")
                .with_links(dagtel::otel::root_span_link().into_iter().collect())
                .start_with_context(&tracer, &Context::new());
            let _detached = Context::new().with_span(span).attach();
            ctx.artifact("report", serde_json::json!({"bytes": 1}));
            ctx.dataset("table", 10, 2);
            Ok(*n)
        });
        let plan = plan_of(g, node);
        let run = run_seq(&plan, n);
        let logs = telemetry().logs_of_run(run.record().run_id.as_str());
        assert!(
            logs.iter()
                .any(|l| l.body_str() == Some(conv::EVENT_ARTIFACT)),
            "the artifact's log record is there"
        );
        let counted = telemetry().counter(
            conv::METRIC_ARTIFACTS,
            &[KeyValue::new(conv::DAG_NAME, "zz-detached-artifact")],
        );
        assert_eq!(counted, Some(1.0), "dag.artifacts was not incremented");
    }

    /// A log record emitted in a node body while another context is attached names the node
    /// (`dag.node.name`) but has no `dag.run.id` in a sampled run (a sampled-out run stamps both).
    #[test]
    fn a_log_in_a_node_under_a_detached_context_has_its_run_id() {
        let mut g = DagBuilder::new("zz-detached-log");
        let n = g.input::<u32>("n");
        let node = g.node("body").run(n, |_, n| {
            let _detached = Context::new().attach();
            tracing::info!("zz detached log");
            Ok(*n)
        });
        let plan = plan_of(g, node);
        run_seq(&plan, n);
        let log = telemetry()
            .logs()
            .into_iter()
            .find(|l| l.body_str() == Some("zz detached log"))
            .expect("the record");
        assert_eq!(log.attribute_str(conv::NODE_NAME), Some("body"));
        assert!(
            log.run_id().is_some(),
            "a record stamped dag.node.name=body has no dag.run.id"
        );
    }

    /// Same scenario in a sampled run: passes (control).
    #[test]
    fn control_sampled_carried_work_sees_entity_declared_after_capture() {
        let mut g = DagBuilder::new("zz-entity-late-sampled");
        let n = g.input::<u32>("n");
        let node = g.node("late2").run(n, |ctx, n| {
            let job = carry::carry(|| tracing::info!("zz carried job log 2"));
            ctx.entity("e-10");
            std::thread::spawn(job).join().unwrap();
            Ok(*n)
        });
        let plan = plan_of(g, node);
        let run = run_seq(&plan, n);
        let logs = telemetry().logs_of_run(run.record().run_id.as_str());
        let log = logs
            .iter()
            .find(|l| l.body_str() == Some("zz carried job log 2"))
            .expect("record");
        assert_eq!(log.attribute_str(conv::ENTITY_ID), Some("e-10"));
    }

    /// Hooks whose runs are all sampled out, recording into the shared telemetry's metrics.
    fn sampled_out_hooks() -> dagtel::otel::OtelHooks {
        let off = crate::common::sampled_out::off_provider();
        dagtel::otel::OtelHooks::new(&off, telemetry().meter_provider())
    }

    /// In a sampled-out run (no node spans, no hook scopes), work carried out of a node shares
    /// the node's entity: one declared after the work was captured reaches it, and one declared
    /// inside carried work reaches the node's later records.
    #[test]
    fn sampled_out_carried_work_shares_the_nodes_entity() {
        let mut g = DagBuilder::new("zz-entity-off");
        let n = g.input::<u32>("n");
        let late = g.node("late_off").run(n, |ctx, n| {
            let job = carry::carry(|| tracing::info!("zz off carried job log"));
            ctx.entity("e-11");
            std::thread::spawn(job).join().unwrap();
            Ok(*n)
        });
        let inner = g.node("inner_off").run(n, |ctx, n| {
            std::thread::scope(|s| {
                s.spawn(carry::carry(|| ctx.entity("e-12")));
            });
            tracing::info!("zz off after carried entity");
            Ok(*n)
        });
        let plan = g
            .build()
            .unwrap()
            .plan(&Request::new().output(late).output(inner))
            .unwrap();
        let run = Executor::sequential()
            .hook(sampled_out_hooks())
            .run(&plan, Inputs::new().set(n, 1))
            .unwrap();
        let logs = telemetry().logs_of_run(run.record().run_id.as_str());
        let entity_of = |body: &str| {
            logs.iter()
                .find(|l| l.body_str() == Some(body))
                .unwrap_or_else(|| panic!("no record {body:?}"))
                .attribute_str(conv::ENTITY_ID)
                .map(str::to_owned)
        };
        assert_eq!(entity_of("zz off carried job log").as_deref(), Some("e-11"));
        assert_eq!(
            entity_of("zz off after carried entity").as_deref(),
            Some("e-12")
        );
    }

    /// `ctx.dataset(name, rows, columns)` takes u64 but the span event stores `rows as i64`.
    #[test]
    fn dataset_sizes_past_i64_never_wrap_negative() {
        let mut g = DagBuilder::new("zz-dataset-big");
        let n = g.input::<u32>("n");
        let node = g.node("huge").run(n, |ctx, n| {
            ctx.dataset("stream", u64::MAX, 3);
            Ok(*n)
        });
        let plan = plan_of(g, node);
        let run = run_seq(&plan, n);
        let span = telemetry()
            .spans_of_run(run.record().run_id.as_str())
            .into_iter()
            .find(|s| s.name == "huge")
            .unwrap();
        let event = span
            .events
            .iter()
            .find(|e| e.name == conv::EVENT_DATASET)
            .unwrap();
        let rows = event
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == conv::DATASET_ROWS)
            .unwrap();
        assert_ne!(
            rows.value,
            opentelemetry::Value::I64(-1),
            "u64::MAX rows became -1"
        );
    }

    /// Control for the artifact test: without the detached context the counter is incremented.
    #[test]
    fn control_artifact_counter_without_detached_context() {
        let mut g = DagBuilder::new("zz-plain-artifact");
        let n = g.input::<u32>("n");
        let node = g.node("publish").run(n, |ctx, n| {
            ctx.artifact("report", serde_json::json!({"bytes": 1}));
            Ok(*n)
        });
        let plan = plan_of(g, node);
        run_seq(&plan, n);
        let counted = telemetry().counter(
            conv::METRIC_ARTIFACTS,
            &[KeyValue::new(conv::DAG_NAME, "zz-plain-artifact")],
        );
        assert_eq!(counted, Some(1.0));
    }
}

/// Payload flattening: typed scalar arrays, integers past i64, one unrepresentable field.
mod flattening {
    use dagtel::otel::flatten;
    use opentelemetry::{Array, Value};

    fn get(attrs: &[opentelemetry::KeyValue], key: &str) -> Option<Value> {
        attrs
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    }

    /// A u64 above i64::MAX (hashes, ids, byte counts) must not be silently rounded to an f64.
    #[test]
    fn u64_above_i64_max_is_not_rounded() {
        let attrs = flatten(&serde_json::json!({ "hash": u64::MAX }), None);
        let v = get(&attrs, "hash").expect("attribute");
        assert_eq!(v.as_str(), "18446744073709551615", "got {v:?}");
    }

    #[derive(serde::Serialize)]
    struct Report {
        name: &'static str,
        rows: u64,
        id: u128,
    }

    /// One field serde_json cannot represent (u128 > u64::MAX) must not wipe out every other field
    /// of the payload.
    #[test]
    fn one_unrepresentable_field_does_not_lose_the_whole_payload() {
        let attrs = flatten(
            &Report {
                name: "blocks",
                rows: 42,
                id: u128::MAX,
            },
            Some("payload"),
        );
        let keys: Vec<_> = attrs.iter().map(|kv| kv.key.as_str().to_string()).collect();
        assert!(
            get(&attrs, "payload.name").is_some() && get(&attrs, "payload.rows").is_some(),
            "the payload's other fields are lost: {attrs:?} (keys {keys:?})"
        );
    }

    /// `flatten`'s own contract: "nested objects and arrays of non-scalars become JSON strings", so
    /// an array of scalars (ints, floats, bools) keeps its type like an array of strings does.
    #[test]
    fn arrays_of_scalars_keep_their_type() {
        let attrs = flatten(
            &serde_json::json!({ "beams": [1, 2, 3], "ok": [true, false] }),
            None,
        );
        assert_eq!(
            get(&attrs, "beams"),
            Some(Value::Array(Array::I64(vec![1, 2, 3]))),
            "{attrs:?}"
        );
        assert_eq!(
            get(&attrs, "ok"),
            Some(Value::Array(Array::Bool(vec![true, false]))),
            "{attrs:?}"
        );
    }
}

/// TestTelemetry's metric queries from tests running at once.
mod queries {
    use dagtel::otel::testing::TestTelemetry;
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider as _;

    #[test]
    fn concurrent_counter_queries_return_the_counter_value() {
        let telemetry = TestTelemetry::new();
        let c = telemetry
            .meter_provider()
            .meter("zz")
            .u64_counter("zz.count")
            .build();
        c.add(5, &[KeyValue::new("k", "v")]);
        let wrong = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let got = telemetry.counter("zz.count", &[]);
                        if got != Some(5.0) {
                            wrong.lock().unwrap().push(got);
                        }
                    }
                });
            }
        });
        let wrong = wrong.into_inner().unwrap();
        assert!(
            wrong.is_empty(),
            "{} of 800 concurrent queries were wrong, e.g. {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
    }
}
