//! Runs whose hooks skip node events: `Hooks::node_events` gates the task and node calls,
//! `around_work` wraps every thread's work, and `OtelHooks` uses both for sampled-out runs
//! (no per-node work, yet user spans stay in the dropped trace, logs name run and node, and
//! the metrics match those of a sampled run).

use std::sync::atomic::Ordering;

mod common;

use common::sampled_out::off_provider;

use common::counting::counting;
use common::metric_graph::staged_and_failing;

use dagtel::hooks::{HookPhase, HookResult, Hooks};
use dagtel::otel::conventions as conv;
use dagtel::otel::testing::{LogRecordExt, TestTelemetry};
use dagtel::otel::{OtelHooks, carry};
use dagtel::processors::RunIdSpanProcessor;
use dagtel::*;
use opentelemetry::trace::{Link, SpanKind, TraceId, TraceState, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SamplingDecision, SamplingResult, SdkTracerProvider,
    ShouldSample, SimpleSpanProcessor,
};

fn telemetry() -> &'static TestTelemetry {
    TestTelemetry::global().expect("no other global subscriber in this test binary")
}

/// A fresh executor of each kind (an executor keeps the hooks it is given).
type MakeExecutor = fn() -> Executor;

fn executors() -> [(&'static str, MakeExecutor); 2] {
    [
        ("sequential", Executor::sequential),
        ("parallel", || Executor::parallel().threads(2)),
    ]
}

/// A 3-layer graph of 30 nodes, 2 parents each past the first layer.
fn layered(name: &str) -> (Plan, Handle<u64>) {
    let mut g = DagBuilder::new(name);
    let x = g.input::<u64>("x");
    let mut layer: Vec<Handle<u64>> = (0..10)
        .map(|i| g.node(format!("l0_{i}")).run(x, move |_, x| Ok(x + i)))
        .collect();
    for l in 1..3 {
        layer = (0..10)
            .map(|i| {
                let parents = vec![layer[i], layer[(i + 3) % 10]];
                g.node(format!("l{l}_{i}"))
                    .run(parents, |_, p| Ok(p.iter().copied().sum::<u64>()))
            })
            .collect();
    }
    let sink = g
        .node("sink")
        .run(layer, |_, p| Ok(p.iter().copied().sum::<u64>()));
    let dag = g.build().unwrap();
    (dag.plan(&Request::new().output(sink)).unwrap(), x)
}

#[test]
fn a_run_no_hook_wants_node_events_of_skips_them_but_wraps_every_threads_work() {
    let (plan, x) = layered("gate");
    for (mode, executor) in executors() {
        let quiet = counting(false);
        let run = executor()
            .hook(quiet)
            .run(&plan, Inputs::new().set(x, 1))
            .unwrap();
        assert_eq!(
            quiet.nodes.load(Ordering::Relaxed),
            0,
            "{mode}: no node event"
        );
        assert!(
            quiet.work.load(Ordering::Relaxed) >= 1,
            "{mode}: work wrapped"
        );
        assert_eq!(
            *quiet.ends.lock().unwrap(),
            [(false, run.record().len())],
            "{mode}: after_run says so and has every node's record"
        );

        // One hook that wants them is enough: every hook gets them.
        let (quiet, loud) = (counting(false), counting(true));
        executor()
            .hook(quiet)
            .hook(loud)
            .run(&plan, Inputs::new().set(x, 1))
            .unwrap();
        for hook in [quiet, loud] {
            assert_eq!(hook.nodes.load(Ordering::Relaxed), plan.len(), "{mode}");
            assert!(hook.ends.lock().unwrap()[0].0, "{mode}: after_run says so");
        }
    }
}

/// Drops the run's root span and samples every other span that has no parent: a span that
/// lost its parent would be exported as a trace of its own.
#[derive(Clone, Debug)]
struct DropRuns;

impl ShouldSample for DropRuns {
    fn should_sample(
        &self,
        _: Option<&Context>,
        _: TraceId,
        name: &str,
        _: &SpanKind,
        _: &[KeyValue],
        _: &[Link],
    ) -> SamplingResult {
        SamplingResult {
            decision: if name.starts_with("run ") {
                SamplingDecision::Drop
            } else {
                SamplingDecision::RecordAndSample
            },
            attributes: Vec::new(),
            trace_state: TraceState::default(),
        }
    }
}

fn dropping_provider() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(DropRuns)))
        .with_span_processor(RunIdSpanProcessor::wrap(SimpleSpanProcessor::new(
            exporter.clone(),
        )))
        .build();
    (provider, exporter)
}

#[test]
fn user_spans_and_logs_of_a_sampled_out_run_stay_in_its_dropped_trace_on_every_thread() {
    let (provider, exporter) = dropping_provider();
    let tracer = provider.tracer("user-code");
    let mut g = DagBuilder::new("dropped");
    let x = g.input::<u64>("x");
    let spread = g.node("spread").run(x, move |ctx, x| {
        ctx.entity("batch-7");
        let tracer = &tracer;
        let (a, b) = carry::join(
            || {
                tracer.in_span("left half", |_| tracing::info!("left half log"));
                1
            },
            || {
                tracer.in_span("right half", |_| tracing::info!("right half log"));
                2
            },
        );
        tracer.in_span("in the body", |_| tracing::info!("body log"));
        ctx.artifact("table", serde_json::json!({"rows": 3}));
        Ok(x + a + b)
    });
    let leaves: Vec<Handle<u64>> = (0..8)
        .map(|i| {
            g.node(format!("leaf{i}"))
                .run(spread, move |_, s| Ok(s + i))
        })
        .collect();
    let sink = g
        .node("sink")
        .run(leaves, |_, p| Ok(p.iter().copied().sum::<u64>()));
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(sink))
        .unwrap();
    let artifacts = || {
        telemetry()
            .counter(
                conv::METRIC_ARTIFACTS,
                &[KeyValue::new(conv::NODE_NAME, "spread")],
            )
            .unwrap_or(0.0)
    };
    for (mode, executor) in executors() {
        let before = artifacts();
        let hooks = OtelHooks::new(&provider, telemetry().meter_provider());
        let run = executor()
            .hook(hooks)
            .run(&plan, Inputs::new().set(x, 1))
            .unwrap();
        assert!(
            exporter.get_finished_spans().unwrap().is_empty(),
            "{mode}: every user span followed the dropped run: {:?}",
            exporter
                .get_finished_spans()
                .unwrap()
                .iter()
                .map(|s| s.name.to_string())
                .collect::<Vec<_>>()
        );
        let logs = telemetry().logs_of_run(run.record().run_id.as_str());
        for body in ["left half log", "right half log", "body log"] {
            let log = logs
                .iter()
                .find(|l| l.body_str() == Some(body))
                .unwrap_or_else(|| panic!("{mode}: {body:?} carries the run id"));
            assert_eq!(log.attribute_str(conv::NODE_NAME), Some("spread"), "{mode}");
            assert_eq!(
                log.attribute_str(conv::ENTITY_ID),
                Some("batch-7"),
                "{mode}"
            );
            let span = log.trace_context().map(|t| t.span_id);
            assert!(
                span.is_some(),
                "{mode}: {body:?} is correlated with its (unsampled) span"
            );
        }
        let artifact_log = logs
            .iter()
            .find(|l| l.body_str() == Some(conv::EVENT_ARTIFACT))
            .unwrap_or_else(|| panic!("{mode}: the artifact's log record"));
        assert_eq!(
            artifact_log.attribute_str(conv::NODE_NAME),
            Some("spread"),
            "{mode}"
        );
        assert_eq!(artifacts() - before, 1.0, "{mode}: metrics are not sampled");
    }
}

/// [`staged_and_failing`], plus `flaky`, which fails its first attempt, and a task group
/// `g1`, `g2`.
/// A node `flaky`, retried up to 3 attempts, whose first attempt fails when `fails(x)`.
fn flaky(g: &mut DagBuilder, x: Handle<u32>, fails: fn(u32) -> bool) -> Handle<u32> {
    g.node("flaky")
        .retry(RetryPolicy::attempts(3))
        .run(x, move |ctx, x| {
            if ctx.attempt() == 1 && fails(*x) {
                Err(NodeError::msg("first attempt fails"))
            } else {
                Ok(*x)
            }
        })
}

fn mixed(name: &str) -> (Plan, Handle<u32>) {
    let mut g = DagBuilder::new(name);
    let x = g.input::<u32>("x");
    let (b, after) = staged_and_failing(&mut g, x);
    let flaky = flaky(&mut g, x, |_| true);
    let g1 = g.node("g1").task("grp").run(flaky, |_, v| Ok(v + 1));
    let g2 = g.node("g2").task("grp").run(g1, |_, v| Ok(v + 1));
    let dag = g.build().unwrap();
    let request = Request::new().output(b).output(after).output(g2);
    (dag.plan(&request).unwrap(), x)
}

#[test]
fn a_sampled_out_run_records_the_counters_and_durations_a_sampled_run_does() {
    let telemetry = TestTelemetry::new();
    let (off_provider, off_spans) = {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .with_simple_exporter(exporter.clone())
            .build();
        (provider, exporter)
    };
    let (sampled, sx) = mixed("sampled");
    let (dropped, dx) = mixed("dropped");
    for (_, executor) in executors() {
        let on = executor()
            .failure_policy(FailurePolicy::Continue)
            .hook(telemetry.hooks());
        let off = executor()
            .failure_policy(FailurePolicy::Continue)
            .hook(OtelHooks::new(&off_provider, telemetry.meter_provider()));
        for _ in 0..2 {
            assert!(on.run(&sampled, Inputs::new().set(sx, 1)).is_err());
            assert!(off.run(&dropped, Inputs::new().set(dx, 1)).is_err());
        }
    }
    assert!(off_spans.get_finished_spans().unwrap().is_empty());
    let dag = |name: &'static str| KeyValue::new(conv::DAG_NAME, name);
    let node = |name: &'static str| KeyValue::new(conv::NODE_NAME, name);
    let ok = KeyValue::new(conv::STATUS, "ok");
    let count = |metric: &str, attrs: &[KeyValue]| telemetry.counter(metric, attrs);
    let durations = |attrs: &[KeyValue]| telemetry.histogram(conv::METRIC_NODE_DURATION, attrs);
    for (metric, name) in [
        (conv::METRIC_NODE_ERRORS, "bad"),
        (conv::METRIC_NODE_ERRORS, "flaky"),
        (conv::METRIC_NODE_RETRIES, "bad"),
        (conv::METRIC_NODE_RETRIES, "flaky"),
        (conv::METRIC_NODE_SKIPPED, "after"),
    ] {
        let on = count(metric, &[dag("sampled"), node(name)]);
        assert!(on.is_some_and(|n| n > 0.0), "{metric} {name}: {on:?}");
        assert_eq!(
            count(metric, &[dag("dropped"), node(name)]),
            on,
            "{metric} of {name}"
        );
    }
    // 4 runs each; every success records one duration with the ok status, and the stage
    // is kept.
    for name in ["a", "b", "g1", "g2"] {
        let on = durations(&[dag("sampled"), node(name), ok.clone()]).map(|h| h.count);
        assert_eq!(on, Some(4), "{name}");
        let off = durations(&[dag("dropped"), node(name), ok.clone()]).map(|h| h.count);
        assert_eq!(off, on, "{name}");
    }
    let staged = [
        dag("dropped"),
        node("a"),
        KeyValue::new(conv::STAGE_NAME, "s"),
    ];
    assert_eq!(durations(&staged).map(|h| h.count), Some(4));
    // A failed node: one duration per attempt when sampled, one per node (all attempts)
    // when sampled out (documented).
    let error = KeyValue::new(conv::STATUS, "error");
    let failed = |d| durations(&[dag(d), node("bad"), error.clone()]).map(|h| h.count);
    assert_eq!(failed("sampled"), Some(8));
    assert_eq!(failed("dropped"), Some(4));
    // The group task is timed in both.
    let group = |d| {
        telemetry
            .histogram(conv::METRIC_TASK_DURATION, &[dag(d), ok.clone()])
            .map(|h| h.count)
    };
    assert_eq!(group("sampled"), Some(4));
    assert_eq!(group("dropped"), group("sampled"));
}

#[test]
fn durations_of_sampled_out_runs_reach_the_next_collection_or_are_recorded_when_the_hooks_go() {
    let telemetry = TestTelemetry::new();
    let off = off_provider();
    let (plan, x) = layered("deferred");
    let count = |name: &'static str| {
        telemetry
            .histogram(
                conv::METRIC_NODE_DURATION,
                &[
                    KeyValue::new(conv::DAG_NAME, "deferred"),
                    KeyValue::new(conv::NODE_NAME, name),
                    KeyValue::new(conv::STATUS, "ok"),
                ],
            )
            .map(|h| h.count)
    };
    let mut expected = 0;
    for (mode, executor) in executors() {
        let executor = executor().hook(OtelHooks::new(&off, telemetry.meter_provider()));
        for _ in 0..3 {
            executor.run(&plan, Inputs::new().set(x, 1)).unwrap();
        }
        expected += 3;
        // Collected while the hooks are alive: the collection records what is pending.
        for name in ["l0_0", "l1_5", "l2_9", "sink"] {
            assert_eq!(count(name), Some(expected), "{mode}: {name}");
        }
        executor.run(&plan, Inputs::new().set(x, 1)).unwrap();
        expected += 1;
        // Dropped before the next collection: the hooks record what is pending as they go.
        drop(executor);
        assert_eq!(count("sink"), Some(expected), "{mode}");
        assert_eq!(count("l1_5"), Some(expected), "{mode}");
    }
}

/// Panics in `node_events`, and never calls the work it wraps.
struct Broken;

impl Hooks for Broken {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();

    fn node_events(&self, _: &()) -> bool {
        panic!("cannot decide")
    }

    fn around_work(&self, _: &(), _: &mut dyn FnMut()) -> HookResult {
        Ok(())
    }
}

#[test]
fn a_broken_gate_or_work_wrapper_is_recorded_and_the_run_goes_on() {
    let (plan, x) = layered("broken");
    for (mode, executor) in executors() {
        let seen = counting(false);
        let run = executor()
            .hook(Broken)
            .hook(seen)
            .run(&plan, Inputs::new().set(x, 1))
            .unwrap();
        assert_eq!(
            run.record().count(NodeStatus::Succeeded),
            plan.len(),
            "{mode}"
        );
        let phases: Vec<_> = run.record().hook_failures.iter().map(|f| f.phase).collect();
        assert!(
            phases.contains(&HookPhase::NodeEvents),
            "{mode}: {phases:?}"
        );
        assert!(
            phases.contains(&HookPhase::AroundWork),
            "{mode}: {phases:?}"
        );
        assert_eq!(
            seen.nodes.load(Ordering::Relaxed),
            plan.len(),
            "{mode}: a gate that cannot answer counts as wanting the events"
        );
    }
}

#[test]
fn a_sampled_out_run_without_groups_keeps_its_retries_whether_or_not_all_went_first_time() {
    let telemetry = TestTelemetry::new();
    let off = off_provider();
    let mut g = DagBuilder::new("plain");
    let x = g.input::<u32>("x");
    let flaky = flaky(&mut g, x, |x| x == 1);
    let next = g.node("next").run(flaky, |_, v| Ok(v + 1));
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(next))
        .unwrap();
    for (_, executor) in executors() {
        let executor = executor().hook(OtelHooks::new(&off, telemetry.meter_provider()));
        // x = 1: `flaky` succeeds at its second attempt; x = 2: every node at its first.
        for x_value in [1, 2] {
            executor.run(&plan, Inputs::new().set(x, x_value)).unwrap();
        }
    }
    let attrs = [
        KeyValue::new(conv::DAG_NAME, "plain"),
        KeyValue::new(conv::NODE_NAME, "flaky"),
    ];
    for metric in [conv::METRIC_NODE_RETRIES, conv::METRIC_NODE_ERRORS] {
        assert_eq!(telemetry.counter(metric, &attrs), Some(2.0), "{metric}");
    }
    let ok = KeyValue::new(conv::STATUS, "ok");
    for node in ["flaky", "next"] {
        let attrs = [
            KeyValue::new(conv::DAG_NAME, "plain"),
            KeyValue::new(conv::NODE_NAME, node),
            ok.clone(),
        ];
        let count = telemetry
            .histogram(conv::METRIC_NODE_DURATION, &attrs)
            .map(|h| h.count);
        assert_eq!(count, Some(4), "{node}: one success per run");
    }
}
