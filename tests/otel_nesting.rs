//! Which node, run and span the code running in a node belongs to, when runs nest, work is
//! carried between threads, hooks are shared, or a run takes the path without node events:
//! the executor's running node, a hook's active node scope and a scope carried in a context
//! must never be mixed up.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::sampled_out::off_provider;

use common::counting::counting;

use dagtel::hooks::{HookResult, Hooks, Lifecycle, RunInfo, StageStart};
use dagtel::otel::conventions as conv;
use dagtel::otel::testing::{LogRecordExt, SpanDataExt, TestTelemetry};
use dagtel::otel::{NodeScope, OtelHooks, carry};
use dagtel::*;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

/// Emits a log record straight through the OpenTelemetry logger (no `tracing` subscriber
/// needed): `RunIdLogProcessor` stamps it on the emitting thread.
/// The plan that computes `out` from the graph `g` declares.
fn plan_of<T>(g: DagBuilder, out: Handle<T>) -> Plan {
    g.build()
        .unwrap()
        .plan(&Request::new().output(out))
        .unwrap()
}

fn emit(logger: &SdkLogger, body: &'static str) {
    let mut record = logger.create_log_record();
    record.set_body(body.into());
    logger.emit(record);
}

fn log<'a>(logs: &'a [SdkLogRecord], body: &str) -> &'a SdkLogRecord {
    logs.iter()
        .find(|l| l.body_str() == Some(body))
        .unwrap_or_else(|| panic!("no log record {body:?}"))
}

// ---------------------------------------------------------------------------------------------
// A shared hook (`Arc<T>`, the documented way to read a hook after the run) forwards
// `node_events` and `around_work` too: `Arc<OtelHooks>` takes the hook-free path for
// sampled-out runs and attaches the run context in `around_work`.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_shared_hook_answers_node_events_and_wraps_work() {
    let mut g = DagBuilder::new("shared");
    let a = g.node("a").run((), |_, ()| Ok(1u8));
    let b = g.node("b").run(a, |_, a| Ok(*a + 1));
    let plan = plan_of(g, b);
    let quiet = Arc::new(counting(false));
    Executor::sequential()
        .hook(Arc::clone(&quiet))
        .run(&plan, Inputs::new())
        .unwrap();
    assert_eq!(
        (
            quiet.work.load(Ordering::Relaxed),
            quiet.nodes.load(Ordering::Relaxed)
        ),
        (1, 0),
        "(around_work calls, before_node calls) of a shared hook that wants no node events"
    );
}

// ---------------------------------------------------------------------------------------------
// A sync node's `NodeScope` is the thread's active node, not a context value: the log
// processor finds it there, also for nodes driven by `Lifecycle` (no executor node).
// ---------------------------------------------------------------------------------------------

#[test]
fn logs_of_lifecycle_driven_node_bodies_name_the_node() {
    let telemetry = TestTelemetry::new();
    let logger = telemetry.logger_provider().logger("review");
    let lifecycle = Lifecycle::new().hook(telemetry.hooks());
    let run = lifecycle.start_run(RunInfo::new("external").node_count(1));
    let meta = NodeMeta::new("load");
    let task = TaskMeta::single(&meta);
    let mut node = run.node(None, &meta, &task);
    node.run(|| emit(&logger, "inside load"));
    node.finish(NodeOutcome::Succeeded);
    run.finish();
    let logs = telemetry.logs();
    let record = log(&logs, "inside load");
    assert!(record.run_id().is_some(), "the run id is there");
    assert_eq!(record.attribute_str(conv::NODE_NAME), Some("load"));
}

// ---------------------------------------------------------------------------------------------
// `NodeScope::current()` returns the node's own scope, not a copy, so an entity declared
// through it (the way to declare one without a `NodeCtx`, e.g. in a `Lifecycle` body) reaches
// the node's logs, span and children's links.
// ---------------------------------------------------------------------------------------------

#[test]
fn an_entity_set_through_node_scope_current_reaches_the_node() {
    let telemetry = TestTelemetry::new();
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let mut g = DagBuilder::new("entity");
    let out = {
        let seen = Arc::clone(&seen);
        g.node("n").run((), move |_, ()| {
            let scope = NodeScope::current().expect("a node is running");
            scope.set_entity("cust-1");
            *seen.lock().unwrap() =
                NodeScope::current().and_then(|s| s.entity().map(|e| e.to_string()));
            Ok(1u8)
        })
    };
    let plan = plan_of(g, out);
    Executor::sequential()
        .hook(telemetry.hooks())
        .run(&plan, Inputs::new())
        .unwrap();
    assert_eq!(seen.lock().unwrap().as_deref(), Some("cust-1"));
}

// ---------------------------------------------------------------------------------------------
// A run started from work carried out of a node (whose context holds that node's scope) is not
// that node's: its own nodes' logs and entities are theirs, not the outer node's.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_run_started_in_carried_work_reports_as_its_own_nodes() {
    let telemetry = Arc::new(TestTelemetry::new());
    let logger = telemetry.logger_provider().logger("review");
    let mut inner_g = DagBuilder::new("inner-dag");
    let inner_out = inner_g.node("inner").run((), move |ctx, ()| {
        ctx.entity("inner-entity");
        emit(&logger, "from inner");
        Ok(2u8)
    });
    let inner_plan = plan_of(inner_g, inner_out);
    let inner = Arc::new(Executor::sequential().hook(telemetry.hooks()));
    let mut g = DagBuilder::new("outer-dag");
    let out = g.node("outer").run((), move |_, ()| {
        let (inner, plan) = (Arc::clone(&inner), inner_plan.clone());
        let job = carry::carry(move || inner.run(&plan, Inputs::new()).is_ok());
        assert!(std::thread::spawn(job).join().unwrap());
        Ok(1u8)
    });
    let plan = plan_of(g, out);
    Executor::sequential()
        .hook(telemetry.hooks())
        .run(&plan, Inputs::new())
        .unwrap();
    let logs = telemetry.logs();
    let outer = telemetry.span("outer").unwrap();
    let inner = telemetry.span("inner").unwrap();
    let seen = (
        log(&logs, "from inner")
            .attribute_str(conv::NODE_NAME)
            .map(str::to_owned),
        outer.attribute_str(conv::ENTITY_ID).map(|e| e.into_owned()),
        inner.attribute_str(conv::ENTITY_ID).map(|e| e.into_owned()),
    );
    assert_eq!(
        seen,
        (
            Some("inner".to_owned()),
            None,
            Some("inner-entity".to_owned())
        ),
        "(inner log's node, outer span's entity, inner span's entity)"
    );
}

// ---------------------------------------------------------------------------------------------
// A sampled-out run nested in a sampled node's body (same thread) activates no node scope of
// its own; its nodes' entities and events must still not land on the outer node's span.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_sampled_out_nested_run_leaves_the_outer_node_span_alone() {
    let telemetry = TestTelemetry::new();
    let off = off_provider();
    let mut inner_g = DagBuilder::new("quiet-inner");
    let inner_out = inner_g.node("inner").run((), |ctx, ()| {
        ctx.entity("inner-entity");
        ctx.event("inner-event", serde_json::json!({"k": 1}));
        Ok(2u8)
    });
    let inner_plan = plan_of(inner_g, inner_out);
    let inner = Executor::sequential().hook(OtelHooks::new(&off, telemetry.meter_provider()));
    let mut g = DagBuilder::new("loud-outer");
    let out = g.node("outer").run((), move |_, ()| {
        inner.run(&inner_plan, Inputs::new()).unwrap();
        Ok(1u8)
    });
    let plan = plan_of(g, out);
    Executor::sequential()
        .hook(telemetry.hooks())
        .run(&plan, Inputs::new())
        .unwrap();
    let outer = telemetry.span("outer").unwrap();
    let events: Vec<String> = outer
        .events
        .events
        .iter()
        .map(|e| e.name.to_string())
        .collect();
    assert_eq!(
        (
            events,
            outer.attribute_str(conv::ENTITY_ID).map(|e| e.into_owned())
        ),
        (Vec::<String>::new(), None),
        "(outer span's events, outer span's entity): the sampled-out inner node's are not there"
    );
}

// ---------------------------------------------------------------------------------------------
// In a run without node events, a task of the same run that a thread runs while a node body
// waits inside carried work logs as itself, not as the waiting node (one worker thread makes
// it deterministic).
// ---------------------------------------------------------------------------------------------

#[test]
fn a_task_run_while_another_waits_in_carried_work_logs_as_itself() {
    let telemetry = TestTelemetry::new();
    let off = off_provider();
    let logger = telemetry.logger_provider().logger("review");
    let mut g = DagBuilder::new("steal");
    let nodes: Vec<Handle<u8>> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let logger = logger.clone();
            g.node(name).run((), move |_, ()| {
                // Carried work that lets the worker run other pending jobs meanwhile.
                carry::carry(|| {
                    rayon::yield_now();
                })();
                emit(&logger, name);
                Ok(1u8)
            })
        })
        .collect();
    let mut request = Request::new();
    for n in &nodes {
        request = request.output(*n);
    }
    let plan = g.build().unwrap().plan(&request).unwrap();
    let run = Executor::parallel()
        .threads(1)
        .hook(OtelHooks::new(&off, telemetry.meter_provider()))
        .run(&plan, Inputs::new())
        .unwrap();
    let logs = telemetry.logs_of_run(run.record().run_id.as_str());
    for name in ["a", "b"] {
        assert_eq!(
            log(&logs, name).attribute_str(conv::NODE_NAME),
            Some(name),
            "the log of node {name} names it"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Runs without node events carry one clock reading from a node's end to the next node's start
// on a thread; a stage hook that runs in between must break that chain, or the next node's
// start (and duration) would include the hook's time.
// ---------------------------------------------------------------------------------------------

struct SlowStage;

impl Hooks for SlowStage {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();

    fn before_stage(&self, _: &(), _: &StageStart<'_>) -> HookResult {
        std::thread::sleep(Duration::from_millis(20));
        Ok(())
    }

    fn node_events(&self, _: &()) -> bool {
        false
    }
}

#[test]
fn a_stage_hook_between_two_nodes_is_not_counted_in_the_second() {
    let mut g = DagBuilder::new("stage-time");
    let first = g.node("first").run((), |_, ()| Ok(1u8));
    let staged = g.node("staged").stage("s").run(first, |_, v| Ok(*v));
    let plan = plan_of(g, staged);
    let run = Executor::sequential()
        .hook(SlowStage)
        .run(&plan, Inputs::new())
        .unwrap();
    let first_end = run.record().node("first").unwrap().ended_at().unwrap();
    let staged_start = run.record().node("staged").unwrap().started_at.unwrap();
    // The carried reading would make them equal; the stage hook ran in between.
    assert!(
        staged_start > first_end,
        "the staged node started at the first one's end ({first_end:?}), before its stage hook"
    );
}

/// Hooks given a parent process's context start a run under it only when the caller has no
/// span of its own: a run started inside a node stays under that node, and a run started
/// from nothing joins the parent process's trace.
#[test]
fn a_given_parent_is_used_only_outside_any_span() {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    let telemetry = TestTelemetry::new();
    let remote = SpanContext::new(
        TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
        SpanId::from_hex("b7ad6b7169203331").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let parent = opentelemetry::Context::new().with_remote_span_context(remote.clone());
    let hooks = Arc::new(
        OtelHooks::builder(telemetry.tracer_provider(), telemetry.meter_provider())
            .parent(parent)
            .build(),
    );
    let mut inner_g = DagBuilder::new("inner-dag");
    let inner_out = inner_g.node("inner").run((), |_, ()| Ok(2u8));
    let inner_plan = plan_of(inner_g, inner_out);
    let inner = Executor::sequential().hook(Arc::clone(&hooks));
    let mut g = DagBuilder::new("outer-dag");
    let out = g.node("outer").run((), move |_, ()| {
        inner.run(&inner_plan, Inputs::new()).unwrap();
        Ok(1u8)
    });
    let plan = plan_of(g, out);
    Executor::sequential()
        .hook(hooks)
        .run(&plan, Inputs::new())
        .unwrap();
    let outer_root = telemetry.span("run outer-dag").unwrap();
    assert_eq!(
        outer_root.parent_span_id,
        remote.span_id(),
        "joins the parent process"
    );
    assert_eq!(outer_root.span_context.trace_id(), remote.trace_id());
    let node = telemetry.span("outer").unwrap();
    let inner_root = telemetry.span("run inner-dag").unwrap();
    assert_eq!(
        inner_root.parent_span_id,
        node.span_context.span_id(),
        "the inner run stays under the node that started it"
    );
}

/// A hand-driven node, traced, inside a node's body of a sampled-out run: the entity the
/// inner node declares is the inner node's, and the outer node's later records do not carry it.
#[test]
fn an_inner_hand_driven_nodes_entity_stays_its_own() {
    let telemetry = Arc::new(TestTelemetry::new());
    let logger = telemetry.logger_provider().logger("entity");
    // The inner run samples on its own (not after its parent, which is sampled out).
    let spans = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let traced = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_simple_exporter(spans.clone())
        .build();
    let inner_hooks = OtelHooks::new(&traced, telemetry.meter_provider());
    let lifecycle = Arc::new(Lifecycle::new().hook(inner_hooks));
    let mut g = DagBuilder::new("outer-dag");
    let out = g.node("outer").run((), move |ctx, ()| {
        let run = lifecycle.start_run(RunInfo::new("inner-dag"));
        let meta = NodeMeta::new("inner");
        let task = TaskMeta::single(&meta);
        let mut node = run.node(None, &meta, &task);
        node.run(|| {
            ctx.entity("inner-entity");
            emit(&logger, "in the hand-driven node");
        });
        node.finish(NodeOutcome::Succeeded);
        run.finish();
        emit(&logger, "outer after inner");
        Ok(1u8)
    });
    let plan = plan_of(g, out);
    let off = off_provider();
    Executor::sequential()
        .hook(OtelHooks::new(&off, telemetry.meter_provider()))
        .run(&plan, Inputs::new())
        .unwrap();
    let finished = spans.get_finished_spans().unwrap();
    let inner = finished.iter().find(|s| s.name == "inner").expect("traced");
    assert_eq!(
        inner.attribute_str(conv::ENTITY_ID).as_deref(),
        Some("inner-entity")
    );
    let logs = telemetry.logs();
    let inside = log(&logs, "in the hand-driven node");
    assert_eq!(
        inside.attribute_str(conv::NODE_NAME),
        Some("inner"),
        "a record in the hand-driven node's body is that node's"
    );
    let record = log(&logs, "outer after inner");
    assert_eq!(record.attribute_str(conv::NODE_NAME), Some("outer"));
    assert_eq!(
        record.attribute_str(conv::ENTITY_ID),
        None,
        "not the inner node's"
    );
}

// ---------------------------------------------------------------------------------------------
// A run without hooks attaches only its caller's context. On its own, its spans and logs carry
// its run id; a new trace started in a node's body gets its run's id too. Inside a hooked node
// (the documented exception) its spans are in the outer node's trace and carry the outer run
// id, while its logs name the node the executor runs, with that node's run.
// ---------------------------------------------------------------------------------------------

/// A node that starts a span (through the raw API) and emits a log record, both named `label`.
fn traced_node(
    g: &mut DagBuilder,
    name: &str,
    telemetry: &TestTelemetry,
    label: &'static str,
) -> Handle<u8> {
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    let tracer = telemetry.tracer_provider().tracer("user");
    let logger = telemetry.logger_provider().logger("user");
    g.node(name).run((), move |_, ()| {
        tracer.start(label).end();
        emit(&logger, label);
        Ok(1u8)
    })
}

/// Runs `inner_plan` with `inner` (run id `inner-run`) in the body of node `outer` of a run
/// (`outer-run`) under `telemetry`'s hooks.
fn run_inside_outer_node<H: dagtel::hooks::HookSet>(
    telemetry: &TestTelemetry,
    inner: Executor<H>,
    inner_plan: Plan,
) {
    run_inside(
        Executor::sequential().hook(telemetry.hooks()),
        inner,
        inner_plan,
    );
}

/// Runs `inner_plan` with `inner` (run id `inner-run`) in the body of node `outer` of a run
/// (`outer-run`) of `outer`.
fn run_inside<O: dagtel::hooks::HookSet, H: dagtel::hooks::HookSet>(
    outer: Executor<O>,
    inner: Executor<H>,
    inner_plan: Plan,
) {
    let mut g = DagBuilder::new("hooked-outer");
    let out = g.node("outer").run((), move |_, ()| {
        inner
            .run_with(
                &inner_plan,
                Inputs::new(),
                RunOptions::new().run_id("inner-run"),
            )
            .unwrap();
        Ok(1u8)
    });
    let plan = plan_of(g, out);
    outer
        .run_with(&plan, Inputs::new(), RunOptions::new().run_id("outer-run"))
        .unwrap();
}

/// Asserts the `dag.run.id` of the span and of the log record named `label`, and the log's
/// node.
fn expect_run_ids(telemetry: &TestTelemetry, label: &str, expected: (&str, &str, &str)) {
    let (span_run, log_run, log_node) = expected;
    assert_eq!(
        run_ids_of(telemetry, label),
        (
            span_run.to_owned(),
            log_run.to_owned(),
            Some(log_node.to_owned())
        ),
        "(span's run, log's run, log's node) of {label:?}"
    );
}

/// The `dag.run.id` of the span and of the log record named `label`, and the log's node.
fn run_ids_of(telemetry: &TestTelemetry, label: &str) -> (String, String, Option<String>) {
    let span = telemetry
        .span(label)
        .unwrap_or_else(|| panic!("no span {label:?}"));
    let logs = telemetry.logs();
    let record = log(&logs, label);
    (
        span.attribute_str(conv::RUN_ID)
            .map(|r| r.into_owned())
            .unwrap_or_default(),
        record
            .attribute_str(conv::RUN_ID)
            .map(str::to_owned)
            .unwrap_or_default(),
        record.attribute_str(conv::NODE_NAME).map(str::to_owned),
    )
}

#[test]
fn a_run_without_hooks_inside_a_hooked_node_logs_as_its_own_node() {
    // The parallel run's node runs on a pool thread, where the run attaches its caller's
    // context (the outer node's): the same records as on the caller's thread.
    for inner in [Executor::sequential(), Executor::parallel().threads(2)] {
        let telemetry = Arc::new(TestTelemetry::new());
        let mut inner_g = DagBuilder::new("hookless-inner");
        let inner_out = traced_node(&mut inner_g, "inner", &telemetry, "in inner");
        let inner_plan = plan_of(inner_g, inner_out);
        run_inside_outer_node(&telemetry, inner, inner_plan);
        expect_run_ids(&telemetry, "in inner", ("outer-run", "inner-run", "inner"));
        let outer = telemetry.span("outer").expect("the outer node's span");
        assert_eq!(
            telemetry.span("in inner").unwrap().parent_span_id,
            outer.span_context.span_id(),
            "the inner node's span is a child of the outer node's"
        );
    }
}

/// An async node that starts a span (through the raw API) and emits a log record, both named
/// `label`, after an await.
fn traced_async_node(
    g: &mut DagBuilder,
    name: &str,
    telemetry: &TestTelemetry,
    label: &'static str,
) -> Handle<u8> {
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    let tracer = telemetry.tracer_provider().tracer("user");
    let logger = telemetry.logger_provider().logger("user");
    g.node(name).run_async((), move |_, ()| {
        let (tracer, logger) = (tracer.clone(), logger.clone());
        async move {
            tokio::task::yield_now().await;
            tracer.start(label).end();
            emit(&logger, label);
            Ok(1u8)
        }
    })
}

#[test]
fn an_async_node_of_a_run_without_hooks_inside_a_hooked_node_logs_as_its_own_node() {
    // As for a sync node: on tokio the run attaches its caller's context (the outer node's),
    // and each poll has the async node as the thread's running node.
    for inner in [Executor::sequential(), Executor::parallel().threads(2)] {
        let telemetry = Arc::new(TestTelemetry::new());
        let mut inner_g = DagBuilder::new("hookless-inner");
        let inner_out = traced_async_node(&mut inner_g, "inner-async", &telemetry, "in inner");
        let inner_plan = plan_of(inner_g, inner_out);
        run_inside_outer_node(&telemetry, inner, inner_plan);
        expect_run_ids(
            &telemetry,
            "in inner",
            ("outer-run", "inner-run", "inner-async"),
        );
    }
}

/// What the nodes of a run without hooks report through their context is not the hooked
/// outer run's: no artifact counted or dataset measured under the outer DAG's name, no span
/// event on the outer node's span (a run without hooks reports nothing, nested or not).
#[test]
fn reports_of_a_run_without_hooks_inside_a_hooked_node_are_not_the_outer_runs() {
    for inner in [Executor::sequential(), Executor::parallel().threads(2)] {
        let telemetry = Arc::new(TestTelemetry::new());
        let mut inner_g = DagBuilder::new("hookless-inner");
        let sync = inner_g.node("inner-sync").run((), |ctx, ()| {
            ctx.artifact("inner-file", serde_json::json!({"bytes": 1}));
            ctx.dataset("inner-table", 10, 2);
            Ok(1u8)
        });
        let asynchronous = inner_g
            .node("inner-async")
            .run_async((), |ctx, ()| async move {
                tokio::task::yield_now().await;
                ctx.artifact("inner-file", serde_json::json!({"bytes": 1}));
                ctx.dataset("inner-table", 10, 2);
                Ok(1u8)
            });
        let both = inner_g
            .node("inner-both")
            .run((sync, asynchronous), |_, (a, b)| Ok(*a + *b));
        let inner_plan = plan_of(inner_g, both);
        let mut g = DagBuilder::new("hooked-outer");
        let out = g.node("outer").run((), move |ctx, ()| {
            ctx.artifact("outer-file", serde_json::json!({"bytes": 1}));
            inner.run(&inner_plan, Inputs::new()).unwrap();
            Ok(1u8)
        });
        Executor::sequential()
            .hook(telemetry.hooks())
            .run(&plan_of(g, out), Inputs::new())
            .unwrap();
        assert_eq!(
            telemetry.counter(conv::METRIC_ARTIFACTS, &[]),
            Some(1.0),
            "only the outer node's artifact is counted"
        );
        assert_eq!(
            telemetry.counter(
                conv::METRIC_ARTIFACTS,
                &[opentelemetry::KeyValue::new(conv::NODE_NAME, "outer")]
            ),
            Some(1.0)
        );
        let measured = telemetry
            .metrics()
            .iter()
            .flat_map(|r| r.scope_metrics())
            .flat_map(|s| s.metrics())
            .any(|m| m.name() == conv::METRIC_DATASET_ROWS);
        assert!(!measured, "no dataset was measured");
        let outer = telemetry.span("outer").expect("the outer node's span");
        let events: Vec<_> = outer.events.iter().map(|e| e.name.to_string()).collect();
        assert_eq!(
            events,
            vec![conv::EVENT_ARTIFACT.to_string()],
            "the outer span's events"
        );
    }
}

/// Runs `out` of `g` without hooks on two threads, as run `plain`.
fn run_plain<T>(g: DagBuilder, out: Handle<T>) {
    Executor::parallel()
        .threads(2)
        .run_with(
            &plan_of(g, out),
            Inputs::new(),
            RunOptions::new().run_id("plain"),
        )
        .unwrap();
}

/// The run id and node name of the log record whose body is `body`.
fn stamp_of(logs: &[SdkLogRecord], body: &str) -> (Option<String>, Option<String>) {
    let record = log(logs, body);
    (
        record.attribute_str(conv::RUN_ID).map(str::to_owned),
        record.attribute_str(conv::NODE_NAME).map(str::to_owned),
    )
}

/// A node that logs `direct`, then logs `carried` from work it carries to another thread.
fn node_carrying_work(g: &mut DagBuilder, name: &str, telemetry: &TestTelemetry) -> Handle<u8> {
    let logger = telemetry.logger_provider().logger("user");
    g.node(name).run((), move |_, ()| {
        emit(&logger, "direct");
        let logger = logger.clone();
        let job = carry::carry(move || emit(&logger, "carried"));
        std::thread::spawn(job).join().unwrap();
        Ok(1u8)
    })
}

/// Work a node of a run without hooks carries elsewhere names the node and its run, as the
/// node's own records do: at the top level, and nested in a hooked node (whose run is in the
/// context the inner run carries).
#[test]
fn carried_work_of_a_run_without_hooks_names_its_node_and_run() {
    for inner in [Executor::sequential(), Executor::parallel().threads(2)] {
        let telemetry = Arc::new(TestTelemetry::new());
        let mut inner_g = DagBuilder::new("hookless-inner");
        let inner_out = node_carrying_work(&mut inner_g, "inner", &telemetry);
        run_inside_outer_node(&telemetry, inner, plan_of(inner_g, inner_out));
        let logs = telemetry.logs();
        let expected = (Some("inner-run".into()), Some("inner".into()));
        assert_eq!(stamp_of(&logs, "direct"), expected, "the node's own log");
        assert_eq!(stamp_of(&logs, "carried"), expected, "carried work's log");
    }
    let telemetry = TestTelemetry::new();
    let mut g = DagBuilder::new("hookless");
    let out = node_carrying_work(&mut g, "alone", &telemetry);
    run_plain(g, out);
    let logs = telemetry.logs();
    let expected = (Some("plain".into()), Some("alone".into()));
    assert_eq!(stamp_of(&logs, "direct"), expected, "the node's own log");
    assert_eq!(stamp_of(&logs, "carried"), expected, "carried work's log");
}

#[test]
fn an_async_node_of_a_run_without_hooks_keeps_its_entity_across_polls() {
    let telemetry = TestTelemetry::new();
    let logger = telemetry.logger_provider().logger("user");
    let mut g = DagBuilder::new("hookless-async");
    let out = g.node("fetch").run_async((), move |ctx, ()| {
        let logger = logger.clone();
        async move {
            ctx.entity("obs-9");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
            emit(&logger, "after the awaits");
            Ok(1u8)
        }
    });
    run_plain(g, out);
    let logs = telemetry.logs();
    let record = log(&logs, "after the awaits");
    assert_eq!(
        (
            record.attribute_str(conv::RUN_ID),
            record.attribute_str(conv::NODE_NAME),
            record.attribute_str(conv::ENTITY_ID)
        ),
        (Some("plain"), Some("fetch"), Some("obs-9")),
        "(run, node, entity) of the async node's log record"
    );
}

#[test]
fn a_run_without_hooks_started_from_carried_async_work_is_not_the_outer_nodes() {
    // From an async node, through `carry::spawn_blocking`: the context the inner run starts
    // from holds the outer node's scope, which must not name the inner run's records.
    let telemetry = Arc::new(TestTelemetry::new());
    let mut inner_g = DagBuilder::new("hookless-inner");
    let inner_out = traced_async_node(&mut inner_g, "inner-async", &telemetry, "in inner");
    let inner_plan = Arc::new(plan_of(inner_g, inner_out));
    let mut g = DagBuilder::new("hooked-outer");
    let out = g.node("outer-async").run_async((), move |_, ()| {
        let inner_plan = Arc::clone(&inner_plan);
        async move {
            carry::spawn_blocking(move || {
                Executor::parallel()
                    .threads(2)
                    .run_with(
                        &inner_plan,
                        Inputs::new(),
                        RunOptions::new().run_id("inner-run"),
                    )
                    .map(drop)
            })
            .await
            .unwrap()
            .unwrap();
            Ok(1u8)
        }
    });
    let plan = plan_of(g, out);
    Executor::sequential()
        .hook(telemetry.hooks())
        .run_with(&plan, Inputs::new(), RunOptions::new().run_id("outer-run"))
        .unwrap();
    expect_run_ids(
        &telemetry,
        "in inner",
        ("outer-run", "inner-run", "inner-async"),
    );
}

/// Logs `before task <id>` from `before_task`.
struct LogsBeforeTask(SdkLogger);

impl Hooks for LogsBeforeTask {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();

    fn before_task(
        &self,
        _: dagtel::hooks::Parents<'_, Self>,
        task: &dagtel::hooks::TaskStart<'_>,
    ) -> HookResult<()> {
        let label = if task.task.id() == "async" {
            "before the async task"
        } else {
            "before a sync task"
        };
        emit(&self.0, label);
        Ok(())
    }
}

#[test]
fn hook_records_between_async_nodes_of_a_nested_run_are_the_runs() {
    // On tokio as on pool threads, the hooks' `around_work` (the run's context) is around
    // what the run does between its nodes.
    let telemetry = Arc::new(TestTelemetry::new());
    let mut inner_g = DagBuilder::new("hooked-inner");
    let sync = inner_g.node("sync").run((), |_, ()| Ok(1u8));
    let asynchronous = inner_g
        .node("async")
        .run_async((), |_, ()| async { Ok(1u8) });
    let total = inner_g
        .node("total")
        .run((sync, asynchronous), |_, (a, b)| Ok(*a + *b));
    let inner_plan = plan_of(inner_g, total);
    let inner = Executor::parallel()
        .threads(2)
        .hook(telemetry.hooks())
        .hook(LogsBeforeTask(telemetry.logger_provider().logger("hook")));
    run_inside_outer_node(&telemetry, inner, inner_plan);
    let logs = telemetry.logs();
    for label in ["before the async task", "before a sync task"] {
        let record = log(&logs, label);
        assert_eq!(
            (
                record.attribute_str(conv::RUN_ID),
                record.attribute_str(conv::NODE_NAME)
            ),
            (Some("inner-run"), None),
            "(run, node) of the record {label:?}"
        );
    }
}

#[test]
fn spans_and_logs_of_a_run_without_hooks_carry_its_run_id() {
    let telemetry = TestTelemetry::new();
    let mut g = DagBuilder::new("hookless");
    let out = traced_node(&mut g, "alone", &telemetry, "in a hookless run");
    let plan = plan_of(g, out);
    Executor::sequential()
        .run_with(&plan, Inputs::new(), RunOptions::new().run_id("plain-run"))
        .unwrap();
    expect_run_ids(
        &telemetry,
        "in a hookless run",
        ("plain-run", "plain-run", "alone"),
    );
}

#[test]
fn a_new_trace_started_in_a_node_carries_the_run_id() {
    use opentelemetry::Context;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    let telemetry = TestTelemetry::new();
    let tracer = telemetry.tracer_provider().tracer("user");
    let mut g = DagBuilder::new("detached");
    let out = g.node("n").run((), move |_, ()| {
        tracer.start_with_context("detached", &Context::new()).end();
        Ok(1u8)
    });
    let plan = plan_of(g, out);
    Executor::parallel()
        .threads(2)
        .hook(telemetry.hooks())
        .run_with(
            &plan,
            Inputs::new(),
            RunOptions::new().run_id("detaching-run"),
        )
        .unwrap();
    let detached = telemetry.span("detached").unwrap();
    let node = telemetry.span("n").unwrap();
    assert_eq!(
        (
            detached.parent_span_id == opentelemetry::trace::SpanId::INVALID,
            detached.attribute_str(conv::RUN_ID).map(|r| r.into_owned())
        ),
        (true, Some("detaching-run".to_owned())),
        "(a root span of its own, its run id)"
    );
    assert_ne!(
        detached.span_context.trace_id(),
        node.span_context.trace_id()
    );
}

// ---------------------------------------------------------------------------------------------
// A hooked run started in a hooked node's body: what its hooks log between its nodes is the
// inner run's, not the outer node's.
// ---------------------------------------------------------------------------------------------

#[test]
fn run_level_records_of_a_run_nested_in_a_node_name_no_node() {
    /// Logs from `around_work`, where no node of its run is running, directly and from work
    /// carried to another thread.
    struct LogsAroundWork(SdkLogger);
    impl Hooks for LogsAroundWork {
        type Run = ();
        type Stage = ();
        type Task = ();
        type Node = ();
        fn before_run(&self, _: &dagtel::hooks::RunStart<'_>) -> HookResult<()> {
            Ok(())
        }
        fn around_work(&self, _: &(), work: &mut dyn FnMut()) -> HookResult {
            emit(&self.0, "run-level of inner");
            let logger = self.0.clone();
            let job = carry::carry(move || emit(&logger, "carried run-level of inner"));
            std::thread::spawn(job).join().unwrap();
            work();
            Ok(())
        }
    }
    // The outer run hooked and sampled, sampled out, or without hooks.
    for outer in ["hooked", "sampled-out", "hook-free"] {
        let telemetry = TestTelemetry::new();
        let logger = telemetry.logger_provider().logger("nesting");
        let mut inner_g = DagBuilder::new("inner-dag");
        let inner_out = inner_g.node("inner").run((), |_, ()| Ok(1u8));
        let inner_plan = plan_of(inner_g, inner_out);
        let inner = Executor::sequential()
            .hook(telemetry.hooks())
            .hook(LogsAroundWork(logger));
        match outer {
            "hooked" => run_inside_outer_node(&telemetry, inner, inner_plan),
            "sampled-out" => {
                let off = off_provider();
                let hooks = OtelHooks::new(&off, telemetry.meter_provider());
                run_inside(Executor::sequential().hook(hooks), inner, inner_plan);
            }
            _ => run_inside(Executor::sequential(), inner, inner_plan),
        }
        let logs = telemetry.logs();
        for body in ["run-level of inner", "carried run-level of inner"] {
            assert_eq!(
                stamp_of(&logs, body),
                (Some("inner-run".to_owned()), None),
                "(run, node) of {body:?}, a record the inner run's hooks make between its \
                 nodes, outer run {outer}"
            );
        }
    }
}

/// A span started in work carried from a node of a run without hooks: `RunIdSpanProcessor`
/// gives it the node's run at the top level (the carried silent scope's run), and the outer
/// run's id when the run is nested in a hooked node (the documented exception).
#[test]
fn spans_in_work_carried_from_a_run_without_hooks() {
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    fn node(g: &mut DagBuilder, telemetry: &TestTelemetry) -> Handle<u8> {
        let tracer = telemetry.tracer_provider().tracer("user");
        g.node("hookless").run((), move |_, ()| {
            let tracer = tracer.clone();
            let job = carry::carry(move || tracer.start("carried span").end());
            std::thread::spawn(job).join().unwrap();
            Ok(1u8)
        })
    }
    let span_run = |telemetry: &TestTelemetry| {
        telemetry
            .span("carried span")
            .expect("the carried span")
            .attribute_str(conv::RUN_ID)
            .map(|r| r.into_owned())
    };
    let telemetry = TestTelemetry::new();
    let mut g = DagBuilder::new("hookless");
    let out = node(&mut g, &telemetry);
    run_plain(g, out);
    assert_eq!(span_run(&telemetry).as_deref(), Some("plain"), "top level");

    let telemetry = Arc::new(TestTelemetry::new());
    let mut inner_g = DagBuilder::new("hookless-inner");
    let inner_out = node(&mut inner_g, &telemetry);
    run_inside_outer_node(
        &telemetry,
        Executor::sequential(),
        plan_of(inner_g, inner_out),
    );
    assert_eq!(
        span_run(&telemetry).as_deref(),
        Some("outer-run"),
        "nested in a hooked node: the span's parent context has the outer run"
    );
}

/// An entity declared in work carried from a node of a run without hooks nested in a hooked
/// node is the inner node's (its later records carry it) and is not set on the outer node's
/// span, whose context the carried work runs in.
#[test]
fn silent_carried_work_declares_its_entity_for_the_node_only() {
    let telemetry = Arc::new(TestTelemetry::new());
    let logger = telemetry.logger_provider().logger("user");
    let mut inner_g = DagBuilder::new("hookless-inner");
    let inner_out = inner_g.node("inner").run((), move |ctx, ()| {
        std::thread::scope(|s| {
            s.spawn(carry::carry(|| ctx.entity("e-carried")));
        });
        emit(&logger, "after the entity");
        Ok(1u8)
    });
    run_inside_outer_node(
        &telemetry,
        Executor::sequential(),
        plan_of(inner_g, inner_out),
    );
    let outer = telemetry.span("outer").expect("the outer node's span");
    assert_eq!(
        outer.attribute_str(conv::ENTITY_ID),
        None,
        "the outer node's span got the inner node's entity"
    );
    let logs = telemetry.logs();
    assert_eq!(
        log(&logs, "after the entity").attribute_str(conv::ENTITY_ID),
        Some("e-carried"),
        "the inner node's later record"
    );
}

/// A hooked run started inside work carried from a node of a run without hooks: its records
/// are its own (the carried silent scope is masked), and the carried work's own records are
/// the hookless node's.
#[test]
fn a_hooked_run_started_in_silent_carried_work_is_its_own() {
    let telemetry = Arc::new(TestTelemetry::new());
    let mut inner_g = DagBuilder::new("hooked-inner");
    let logger = telemetry.logger_provider().logger("user");
    let inner_out = inner_g.node("inner").run((), move |_, ()| {
        emit(&logger, "in the hooked inner node");
        Ok(1u8)
    });
    let inner_plan = plan_of(inner_g, inner_out);
    let hooks = Arc::new(telemetry.hooks());
    let logger = telemetry.logger_provider().logger("user");
    let mut g = DagBuilder::new("hookless-outer");
    let out = g.node("outer").run((), move |_, ()| {
        let (hooks, plan, logger) = (Arc::clone(&hooks), inner_plan.clone(), logger.clone());
        let job = carry::carry(move || {
            emit(&logger, "carried, before the inner run");
            Executor::sequential()
                .hook(hooks)
                .run_with(&plan, Inputs::new(), RunOptions::new().run_id("inner-run"))
                .unwrap();
            emit(&logger, "carried, after the inner run");
        });
        std::thread::spawn(job).join().unwrap();
        Ok(1u8)
    });
    Executor::sequential()
        .run_with(
            &plan_of(g, out),
            Inputs::new(),
            RunOptions::new().run_id("outer-run"),
        )
        .unwrap();
    let logs = telemetry.logs();
    let outer = (Some("outer-run".to_owned()), Some("outer".to_owned()));
    assert_eq!(stamp_of(&logs, "carried, before the inner run"), outer);
    assert_eq!(stamp_of(&logs, "carried, after the inner run"), outer);
    assert_eq!(
        stamp_of(&logs, "in the hooked inner node"),
        (Some("inner-run".to_owned()), Some("inner".to_owned()))
    );
    let inner_span = telemetry.span("inner").expect("the inner node's span");
    assert_eq!(
        inner_span.attribute_str(conv::RUN_ID).as_deref(),
        Some("inner-run")
    );
}

/// Work an async node of a run without hooks carries with `carry::spawn` names the node and
/// its run.
#[test]
fn work_spawned_from_an_async_node_of_a_run_without_hooks_names_it() {
    let telemetry = TestTelemetry::new();
    let logger = telemetry.logger_provider().logger("user");
    let mut g = DagBuilder::new("hookless-async");
    let out = g.node("fetch").run_async((), move |_, ()| {
        let logger = logger.clone();
        async move {
            carry::spawn(async move { emit(&logger, "spawned") })
                .await
                .unwrap();
            Ok(1u8)
        }
    });
    run_plain(g, out);
    assert_eq!(
        stamp_of(&telemetry.logs(), "spawned"),
        (Some("plain".to_owned()), Some("fetch".to_owned()))
    );
}

/// Reports made in work carried from a node of a run without hooks nested in a hooked node
/// go nowhere (silent scope): no event on the outer node's span, no artifact counted under
/// the outer run. Fails if `NodeScope::here` stops filtering silent scopes.
#[test]
fn reports_in_silent_carried_work_go_nowhere() {
    let telemetry = Arc::new(TestTelemetry::new());
    let mut inner_g = DagBuilder::new("hookless-inner");
    let inner_out = inner_g.node("inner").run((), |ctx, ()| {
        std::thread::scope(|s| {
            s.spawn(carry::carry(|| {
                ctx.event("carried-event", serde_json::json!({"n": 1}));
                ctx.artifact("carried-file", serde_json::json!({"bytes": 1}));
                ctx.dataset("carried-table", 10, 2);
            }));
        });
        Ok(1u8)
    });
    run_inside_outer_node(
        &telemetry,
        Executor::sequential(),
        plan_of(inner_g, inner_out),
    );
    assert_eq!(telemetry.counter(conv::METRIC_ARTIFACTS, &[]), None);
    let outer = telemetry.span("outer").expect("the outer node's span");
    assert!(outer.events.is_empty(), "{:?}", outer.events);
    assert!(
        !telemetry
            .logs()
            .iter()
            .any(|l| l.body_str() == Some("carried-event")),
        "no report record"
    );
}
