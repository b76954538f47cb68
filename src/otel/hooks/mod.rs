//! [`OtelHooks`]: the lifecycle hooks that turn every run into OpenTelemetry traces, logs and
//! metrics (what they emit is described on the type).

mod bound;
mod deferred;
mod labels;
mod links;
mod node_metrics;
mod scopes;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use opentelemetry::context::FutureExt as _;
use opentelemetry::metrics::MeterProvider;
use opentelemetry::trace::{Link, Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

pub use node_metrics::NodeSeries;
pub use scopes::{LAYER_TAG, default_scope_for_layer};

use self::bound::{BoundCache, GraphMetrics};
use self::deferred::Deferred;
use self::labels::{GraphLabels, NodeLabels};
use self::links::Registry;
use self::scopes::Scopes;
use super::context::{NodeScope, RunScope};
use super::conventions as conv;
use super::exemplars::{ExemplarFilter, Exemplars, Origin};
use super::metrics::{Instruments, status};
use crate::graph::NodeKind;
use crate::hooks::{
    HookResult, Hooks, NodeEnd, NodeStart, Parents, RunEnd, RunStart, StageEnd, StageStart,
    TaskEnd, TaskStart,
};
use crate::ids::RunId;
use crate::outcome::{NodeOutcome, Outcome, SkipReason};

/// The OpenTelemetry limit on links per span, which fan-in links respect by default.
pub const DEFAULT_MAX_LINKS: usize = 128;

/// Which tasks get a span of their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskSpans {
    /// Explicit task groups only; a one-node task is represented by its node's span alone
    /// (its task id is the node's name, so the span carries no `dag.task.id`). Halves the span
    /// count of typical graphs.
    #[default]
    Groups,
    /// Every task, including one-node tasks.
    All,
}

/// Hooks that trace, log and measure runs.
///
/// - One root span per run, a span per declared stage, a span per task group (one-node tasks
///   are their node's span, unless [`OtelHooksBuilder::task_spans`] asks for all), and a span
///   per node attempt named after the node. Parents are carried explicitly in each hook's
///   state, never read from the thread, so parenting is right on any rayon or tokio thread.
/// - While a node body runs its context is current (and, for async nodes, attached to every
///   poll): spans and logs that user code creates nest under the node span, and carry the run
///   id through [`RunIdSpanProcessor`](crate::processors::RunIdSpanProcessor) and
///   [`RunIdLogProcessor`](crate::processors::RunIdLogProcessor).
/// - A fan-in node links to the spans of its upstream nodes, with the parent's name and
///   entity id on each link.
/// - Failures set status Error on the node span and on the task, stage and run spans above it.
///
/// `docs/semantic-conventions.md` lists every span, attribute, event and metric.
#[derive(Debug)]
pub struct OtelHooks {
    scopes: Scopes,
    instruments: Arc<Instruments>,
    root_span_name: Option<String>,
    every_edge: bool,
    max_links: usize,
    task_spans: TaskSpans,
    node_series: NodeSeries,
    parent: Option<Context>,
    parent_run: Option<RunId>,
    bound: BoundCache,
    deferred: Arc<Deferred>,
    exemplars: Option<Arc<Exemplars>>,
}

/// Options for [`OtelHooks`].
#[derive(Debug)]
pub struct OtelHooksBuilder {
    tracer_provider: SdkTracerProvider,
    metrics: SharedMetrics,
    root_span_name: Option<String>,
    every_edge: bool,
    max_links: usize,
    task_spans: TaskSpans,
    node_series: NodeSeries,
    layers: HashMap<String, String>,
    parent: Option<Context>,
    parent_run: Option<RunId>,
    exemplars: Option<Arc<Exemplars>>,
}

impl OtelHooks {
    /// Hooks that create spans with `tracer_provider` and record metrics with
    /// `meter_provider`, with the default options.
    ///
    /// Both are the SDK's providers: node durations are recorded through bound instruments,
    /// which another meter provider might silently not implement.
    ///
    /// Build the hooks once per pair of providers and share them (an `Arc<OtelHooks>` is a
    /// hook too): each instance registers a collection callback with the meter provider, and
    /// the SDK keeps it, doing nothing once the hooks are dropped, until the provider goes.
    /// (Hooks from [`TelemetryGuard::hooks`](crate::telemetry::TelemetryGuard::hooks) and
    /// [`TestTelemetry::hooks`](crate::otel::testing::TestTelemetry::hooks) share one.)
    pub fn new(tracer_provider: &SdkTracerProvider, meter_provider: &SdkMeterProvider) -> Self {
        Self::builder(tracer_provider, meter_provider).build()
    }

    /// Hooks with options.
    pub fn builder(
        tracer_provider: &SdkTracerProvider,
        meter_provider: &SdkMeterProvider,
    ) -> OtelHooksBuilder {
        Self::builder_sharing(tracer_provider, &SharedMetrics::new(meter_provider))
    }

    /// [`builder`](Self::builder) for hooks that share `metrics` with others built from the
    /// same meter provider.
    pub(crate) fn builder_sharing(
        tracer_provider: &SdkTracerProvider,
        metrics: &SharedMetrics,
    ) -> OtelHooksBuilder {
        OtelHooksBuilder {
            tracer_provider: tracer_provider.clone(),
            metrics: metrics.clone(),
            root_span_name: None,
            every_edge: false,
            max_links: DEFAULT_MAX_LINKS,
            task_spans: TaskSpans::default(),
            node_series: NodeSeries::default(),
            layers: HashMap::new(),
            parent: None,
            parent_run: None,
            exemplars: metrics.exemplars.clone(),
        }
    }

    /// Offers a duration to the exemplar reservoir, if there is one.
    fn offer(
        &self,
        metric: &str,
        attrs: &[KeyValue],
        seconds: f64,
        origin: Origin,
        node: Option<StringValue>,
    ) {
        if let Some(exemplars) = &self.exemplars {
            exemplars.offer(metric, attrs, seconds, origin, node);
        }
    }

    /// Records a run, stage or task duration and offers it as an exemplar.
    fn record_duration(&self, timed: Timed, attrs: &[KeyValue], seconds: f64, origin: Origin) {
        let (histogram, metric) = match timed {
            Timed::Run => (&self.instruments.run_duration, conv::METRIC_RUN_DURATION),
            Timed::Stage => (
                &self.instruments.stage_duration,
                conv::METRIC_STAGE_DURATION,
            ),
            Timed::Task => (&self.instruments.task_duration, conv::METRIC_TASK_DURATION),
        };
        histogram.record(seconds, attrs);
        self.offer(metric, attrs, seconds, origin, None);
    }

    /// The node name an exemplar of `node` carries: only when its series does not.
    fn exemplar_node(&self, node: &crate::graph::NodeMeta) -> Option<StringValue> {
        (self.node_series != NodeSeries::Node).then(|| StringValue::from(node.shared_name()))
    }

    fn root_name(&self, dag: &str) -> String {
        match &self.root_span_name {
            Some(name) => name.clone(),
            None => format!("run {dag}"),
        }
    }

    fn node_tracer<'r>(
        &'r self,
        graph: Option<&'r GraphLabels>,
        labels: &NodeLabels,
    ) -> TracerRef<'r> {
        let Some(layer) = &labels.layer else {
            return TracerRef::Borrowed(&self.scopes.default);
        };
        match graph.and_then(|g| g.tracer(labels)) {
            Some(tracer) => TracerRef::Borrowed(tracer),
            None => TracerRef::Owned(self.scopes.cached_tracer(layer.as_str())),
        }
    }
}

impl OtelHooksBuilder {
    /// The root span's name; `run <dag name>` by default.
    pub fn root_span_name(mut self, name: impl Into<String>) -> Self {
        self.root_span_name = Some(name.into());
        self
    }

    /// Link every node to each upstream span, not only fan-in nodes (two or more parents).
    pub fn link_every_edge(mut self, yes: bool) -> Self {
        self.every_edge = yes;
        self
    }

    /// At most this many parent links per node span (the span link limit, 128 by default).
    /// Wider fan-ins keep the first `max` parents in dependency order and record
    /// `dag.node.parent_count`, `dag.links.truncated` and `dag.links.dropped`.
    pub fn max_links(mut self, max: usize) -> Self {
        self.max_links = max;
        self
    }

    /// Which tasks get a span of their own.
    pub fn task_spans(mut self, which: TaskSpans) -> Self {
        self.task_spans = which;
        self
    }

    /// Which series node durations, errors, retries and skips are recorded in: one per node
    /// (the default), or one per layer or stage for graphs with more nodes than a metrics
    /// backend should keep series for (a graph with a node per input block, say).
    pub fn node_series(mut self, series: NodeSeries) -> Self {
        self.node_series = series;
        self
    }

    /// Uses instrumentation scope `scope` for nodes whose `layer` tag is `layer` (instead of
    /// `dagtel.<layer>`).
    pub fn scope_for_layer(mut self, layer: impl Into<String>, scope: impl Into<String>) -> Self {
        self.layers.insert(layer.into(), scope.into());
        self
    }

    /// Starts runs' root spans under `parent` (e.g. a context extracted from a parent
    /// process) when the caller's current context has no span and no run; a run started
    /// inside a node or inside the caller's own span stays under it.
    pub fn parent(mut self, parent: Context) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Records `run_id` as the run that started these runs (`dag.parent_run.id` on root
    /// spans), e.g. the run id a parent process passed.
    pub fn parent_run(mut self, run_id: RunId) -> Self {
        self.parent_run = Some(run_id);
        self
    }

    /// Offers every duration these hooks record, with the span it was measured in, to
    /// `reservoir`, for exporters to attach as exemplars (see [`exemplars`](crate::otel::exemplars)).
    /// Hooks from [`TelemetryGuard`](crate::telemetry::TelemetryGuard) and
    /// [`TestTelemetry`](crate::otel::testing::TestTelemetry) come with theirs.
    pub fn exemplars(mut self, reservoir: Arc<Exemplars>) -> Self {
        self.exemplars = Some(reservoir);
        self
    }

    /// Records no exemplars.
    pub fn without_exemplars(mut self) -> Self {
        self.exemplars = None;
        self
    }

    /// The hooks.
    pub fn build(self) -> OtelHooks {
        OtelHooks {
            scopes: Scopes::new(self.tracer_provider, self.layers),
            instruments: self.metrics.instruments,
            root_span_name: self.root_span_name,
            every_edge: self.every_edge,
            max_links: self.max_links,
            task_spans: self.task_spans,
            node_series: self.node_series,
            parent: self.parent,
            parent_run: self.parent_run,
            bound: BoundCache::default(),
            deferred: self.metrics.deferred,
            exemplars: self
                .exemplars
                .filter(|e| e.filter() != ExemplarFilter::AlwaysOff),
        }
    }
}

/// What hooks built from one meter provider can share: the instruments, and the node
/// durations waiting to be recorded with the collection callback that records them. The
/// SDK keeps every callback registered until the provider goes, so hooks built again and
/// again (one executor per request, say) must not register one each.
#[derive(Clone, Debug)]
pub(crate) struct SharedMetrics {
    instruments: Arc<Instruments>,
    deferred: Arc<Deferred>,
    /// The exemplar reservoir of the exporters these providers feed, if they attach any.
    exemplars: Option<Arc<Exemplars>>,
}

impl SharedMetrics {
    /// Creates the instruments on `meter_provider` and registers the collection callback.
    pub(crate) fn new(meter_provider: &SdkMeterProvider) -> Self {
        let scope = InstrumentationScope::builder(conv::SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = meter_provider.meter_with_scope(scope);
        let instruments = Arc::new(Instruments::new(&meter));
        let deferred = Arc::new(Deferred::new(&meter, Arc::clone(&instruments)));
        Self {
            instruments,
            deferred,
            exemplars: None,
        }
    }

    /// The same, offering durations to `exemplars`.
    pub(crate) fn with_exemplars(mut self, exemplars: Option<Arc<Exemplars>>) -> Self {
        self.exemplars = exemplars;
        self
    }
}

enum TracerRef<'a> {
    Borrowed(&'a SdkTracer),
    Owned(SdkTracer),
}

impl std::ops::Deref for TracerRef<'_> {
    type Target = SdkTracer;
    fn deref(&self) -> &SdkTracer {
        match self {
            Self::Borrowed(t) => t,
            Self::Owned(t) => t,
        }
    }
}

/// What a duration recorded by [`OtelHooks::record_duration`] timed.
#[derive(Clone, Copy)]
enum Timed {
    Run,
    Stage,
    Task,
}

/// Kept for the whole run.
#[derive(Debug, Default)]
pub struct RunState {
    cx: Context,
    /// Whether the root span records (sampled, or kept for the program's processors only).
    /// Every other span of the run follows it, so a run is kept or dropped whole, and a
    /// dropped run builds no spans, links or attributes.
    sampled: bool,
    dag: Option<Arc<str>>,
    registry: Registry,
    metrics: Option<Arc<GraphMetrics>>,
}

/// Kept while a stage runs.
#[derive(Debug, Default)]
pub struct StageState {
    cx: Context,
    name: Option<StringValue>,
    owns_span: bool,
}

/// Kept while a task runs.
#[derive(Debug, Default)]
pub struct TaskState {
    /// The task span's context; `None` for a task without span or timing, whose nodes start
    /// under the stage's or run's context (no clone of it per task: on a parallel run every
    /// clone and drop is an atomic on a line all workers share).
    cx: Option<Context>,
    owns_span: bool,
    /// Task groups (or every task, with `TaskSpans::All`) are timed in `dag.task.duration`.
    timed: bool,
}

/// Kept while a node attempt runs.
#[derive(Debug, Default)]
pub struct NodeState {
    cx: Context,
    scope: Option<Scope>,
    sampled: bool,
}

/// Where a node's scope lives while its body runs.
#[derive(Debug)]
enum Scope {
    /// A sync node's: the thread's active node while the body runs (no context value).
    Active(Arc<NodeScope>),
    /// An async node's: a value of its context, which moves with the future.
    InContext(Arc<NodeScope>),
}

impl std::ops::Deref for Scope {
    type Target = NodeScope;
    fn deref(&self) -> &NodeScope {
        match self {
            Self::Active(scope) | Self::InContext(scope) => scope,
        }
    }
}

impl Drop for NodeState {
    fn drop(&mut self) {
        // The attempt is over: work carried from the node and still running reports to its
        // own current span from now on. For a scope in the context, which the node context
        // holds, this also breaks the cycle.
        if let Some(scope) = &self.scope {
            scope.set_node_context(None);
        }
    }
}

/// The parent process's context with the caller's own baggage on top (the caller's entries
/// win): the parent stands in for the caller's missing trace, not for what the caller attached.
fn with_callers_baggage(parent: &Context, caller: &Context) -> Context {
    use opentelemetry::baggage::{Baggage, BaggageExt};
    let own = caller.baggage();
    if own.is_empty() {
        return parent.clone();
    }
    let merged: Baggage = parent
        .baggage()
        .iter()
        .chain(own.iter())
        .map(|(key, (value, metadata))| (key.clone(), (value.clone(), metadata.clone())))
        .collect();
    parent.with_baggage(merged)
}

impl Hooks for OtelHooks {
    type Run = RunState;
    type Stage = StageState;
    type Task = TaskState;
    type Node = NodeState;

    fn before_run(&self, run: &RunStart<'_>) -> HookResult<RunState> {
        // The given parent (a parent process's span) stands in for the caller's context only
        // when that has no span and no run: a run started inside a node, or in the caller's
        // own span, stays under it.
        let current = Context::current();
        let base = match &self.parent {
            Some(parent) if !current.has_active_span() && current.get::<RunScope>().is_none() => {
                with_callers_baggage(parent, &current)
            }
            _ => current,
        };
        let base = super::context::for_new_run(base);
        let scope = RunScope::new(run.run_id.clone(), run.dag)
            .with_instruments(Arc::clone(&self.instruments))
            .launched_here();
        // The root carries the run id itself, so it has one even without the processor.
        let mut attributes = vec![
            KeyValue::new(conv::RUN_ID, scope.run_id_value()),
            KeyValue::new(conv::DAG_NAME, run.dag.to_string()),
            KeyValue::new(conv::EXECUTION_MODE, run.mode.as_str()),
            KeyValue::new(conv::NODE_COUNT, run.node_count as i64),
            KeyValue::new(conv::OUTPUTS, names(&run.outputs)),
            KeyValue::new(conv::OUTPUT_COUNT, run.outputs.len() as i64),
        ];
        if let crate::hooks::ExecutionMode::Parallel { threads } = run.mode {
            attributes.push(KeyValue::new(conv::THREADS, threads as i64));
        }
        if !run.inputs.is_empty() {
            attributes.push(KeyValue::new(conv::INPUTS, names(&run.inputs)));
            attributes.push(KeyValue::new(conv::INPUT_COUNT, run.inputs.len() as i64));
        }
        if !run.overrides.is_empty() {
            attributes.push(KeyValue::new(conv::OVERRIDES, names(&run.overrides)));
            attributes.push(KeyValue::new(
                conv::OVERRIDE_COUNT,
                run.overrides.len() as i64,
            ));
        }
        if let Some(parent_run) = &self.parent_run {
            attributes.push(KeyValue::new(
                conv::PARENT_RUN_ID,
                StringValue::from(parent_run.shared()),
            ));
        }
        let tracer = &self.scopes.default;
        let span = tracer
            .span_builder(self.root_name(run.dag))
            .with_kind(SpanKind::Internal)
            .with_start_time(run.started_at)
            .with_attributes(attributes)
            .start_with_context(tracer, &base.with_value(scope.for_root()));
        let root = span.span_context().clone();
        // Recording, sampled or not: a root the sampler records only (a service's own tail
        // sampling decides in its processor) gets its stage, task and node spans too.
        let sampled = span.is_recording();
        let cx = base
            .with_value(scope.with_root(root.clone()))
            .with_span(span);
        let (registry, metrics) = match run.plan {
            // A sampled-out run starts no node spans: no links to register, no labels.
            Some(plan) if !sampled => (Registry::default(), Some(self.bound.for_dag(plan.dag()))),
            Some(plan) => {
                let metrics = self.bound.for_dag(plan.dag());
                metrics
                    .labels
                    .get_or_init(|| GraphLabels::new(plan.dag(), &self.scopes));
                let registry = Registry::for_graph(Arc::clone(&metrics), plan.dag(), root);
                (registry, Some(metrics))
            }
            None => (Registry::default(), None),
        };
        Ok(RunState {
            cx,
            sampled,
            dag: Some(Arc::from(run.dag)),
            registry,
            metrics,
        })
    }

    fn after_run(&self, state: RunState, run: &RunEnd<'_>) -> HookResult {
        let span = state.cx.span();
        span.set_attributes([
            KeyValue::new(conv::STATUS, run.outcome.as_str()),
            KeyValue::new(conv::SUCCEEDED_COUNT, run.succeeded as i64),
            KeyValue::new(conv::FAILED_COUNT, run.failed.len() as i64),
            KeyValue::new(conv::SKIPPED_COUNT, run.skipped as i64),
        ]);
        if run.outcome == Outcome::Failed {
            span.set_status(Status::error(if run.failed.is_empty() {
                // No node failed: the program driving the run ended it unfinished.
                "the run ended unfinished: its driver returned early or panicked".to_string()
            } else {
                format!(
                    "{} node(s) failed: {}",
                    run.failed.len(),
                    listed(&run.failed)
                )
            }));
        }
        span.end();
        if let Some(record) = run.record {
            self.record_from(&state, record, run.node_events);
        }
        let attrs = [dag_attr(&state), status(run.outcome.as_str())];
        let seconds = run.duration.as_secs_f64();
        self.record_duration(Timed::Run, &attrs, seconds, origin(&state.cx));
        Ok(())
    }

    fn before_stage(&self, run: &RunState, stage: &StageStart<'_>) -> HookResult<StageState> {
        if !run.sampled {
            return Ok(StageState {
                cx: run.cx.clone(),
                name: Some(StringValue::from(stage.stage.to_string())),
                owns_span: false,
            });
        }
        let tracer = &self.scopes.default;
        let span = tracer
            .span_builder(format!("stage {}", stage.stage))
            .with_attributes([
                KeyValue::new(conv::STAGE_NAME, stage.stage.to_string()),
                KeyValue::new(conv::STAGE_TASK_COUNT, stage.task_count as i64),
            ])
            .start_with_context(tracer, &run.cx);
        Ok(StageState {
            cx: run.cx.with_span(span),
            name: Some(StringValue::from(stage.stage.to_string())),
            owns_span: true,
        })
    }

    fn after_stage(&self, run: &RunState, state: &StageState, stage: &StageEnd<'_>) -> HookResult {
        if state.owns_span {
            end_with_outcome(&state.cx, stage.outcome, "a node of this stage failed");
        }
        let mut attrs = vec![dag_attr(run), status(stage.outcome.as_str())];
        if let Some(name) = &state.name {
            attrs.push(KeyValue::new(conv::STAGE_NAME, name.clone()));
        }
        let seconds = stage.duration.as_secs_f64();
        self.record_duration(Timed::Stage, &attrs, seconds, origin(&state.cx));
        Ok(())
    }

    fn before_task(
        &self,
        parents: Parents<'_, Self>,
        task: &TaskStart<'_>,
    ) -> HookResult<TaskState> {
        let parent = parent_cx(parents);
        let wanted = task.task.is_group() || self.task_spans == TaskSpans::All;
        if !wanted || !parents.run.sampled {
            return Ok(TaskState {
                cx: wanted.then(|| parent.clone()),
                owns_span: false,
                timed: wanted,
            });
        }
        let tracer = &self.scopes.default;
        let mut attributes = vec![KeyValue::new(conv::TASK_ID, task.task.id().to_string())];
        if let Some(stage) = task.task.stage() {
            attributes.push(KeyValue::new(conv::STAGE_NAME, stage.to_string()));
        }
        if task.task.is_group() {
            let nodes = task.task.nodes();
            attributes.push(KeyValue::new(conv::TASK_NODES, names(nodes)));
            attributes.push(KeyValue::new(conv::TASK_NODE_COUNT, nodes.len() as i64));
        }
        let span = tracer
            .span_builder(format!("task {}", task.task.id()))
            .with_attributes(attributes)
            .start_with_context(tracer, parent);
        Ok(TaskState {
            cx: Some(parent.with_span(span)),
            owns_span: true,
            timed: true,
        })
    }

    fn after_task(
        &self,
        parents: Parents<'_, Self>,
        state: TaskState,
        task: &TaskEnd<'_>,
    ) -> HookResult {
        let (true, Some(cx)) = (state.timed, &state.cx) else {
            // A one-node task is its node: the node's span and duration already tell it.
            return Ok(());
        };
        if state.owns_span {
            end_with_outcome(cx, task.outcome, "a node of this task failed");
        }
        let mut attrs = vec![dag_attr(parents.run), status(task.outcome.as_str())];
        if let Some(stage) = task.task.stage() {
            attrs.push(KeyValue::new(conv::STAGE_NAME, stage.to_string()));
        }
        let seconds = task.duration.as_secs_f64();
        self.record_duration(Timed::Task, &attrs, seconds, origin(cx));
        Ok(())
    }

    fn before_node(
        &self,
        parents: Parents<'_, Self>,
        node: &NodeStart<'_>,
    ) -> HookResult<NodeState> {
        let meta = node.node;
        let run = parents.run;
        let parent = match parents.task.and_then(|task| task.cx.as_ref()) {
            Some(cx) => cx,
            None => parent_cx(parents),
        };
        let is_async = meta.kind() == NodeKind::Async;
        if !run.sampled {
            // The run was sampled out (and another hook wants node events): no span. Logs
            // name the node from the executor's running node, or, across an async node's
            // polls, from a scope in its context.
            let (cx, scope) = if is_async {
                let scope = Arc::new(NodeScope::for_node(meta, None));
                (
                    parent.with_value(Arc::clone(&scope)),
                    Some(Scope::InContext(scope)),
                )
            } else {
                (parent.clone(), None)
            };
            return Ok(NodeState {
                cx,
                scope,
                sampled: false,
            });
        }
        let graph = run.metrics.as_deref().and_then(|m| m.labels.get());
        let fresh;
        let labels = match (graph, meta.position()) {
            (Some(graph), Some(p)) => graph.node(p.index).unwrap_or(&NodeLabels::NONE),
            _ => {
                fresh = NodeLabels::of(meta);
                &fresh
            }
        };
        let tracer = self.node_tracer(graph, labels);
        let links = run
            .registry
            .links_for(meta, self.every_edge, self.max_links);
        let mut attributes = Vec::with_capacity(8);
        attributes.push(KeyValue::new(
            conv::NODE_NAME,
            StringValue::from(meta.shared_name()),
        ));
        attributes.push(KeyValue::new(conv::NODE_ATTEMPT, node.attempt as i64));
        if node.task.is_group() {
            let id = match &labels.task_group {
                Some(group) if group.as_str() == node.task.id() => group.clone(),
                _ => StringValue::from(node.task.id().to_string()),
            };
            attributes.push(KeyValue::new(conv::TASK_ID, id));
        }
        let labelled = [
            (conv::STAGE_NAME, &labels.stage),
            (conv::NODE_LAYER, &labels.layer),
            (conv::NODE_VERSION, &labels.version),
        ];
        for (key, value) in labelled {
            if let Some(value) = value {
                attributes.push(KeyValue::new(key, value.clone()));
            }
        }
        if links.parents >= 2 || (self.every_edge && links.parents >= 1) {
            attributes.push(KeyValue::new(conv::NODE_PARENT_COUNT, links.parents as i64));
            if links.parents > links.links.len() {
                attributes.push(KeyValue::new(conv::LINKS_TRUNCATED, true));
                attributes.push(KeyValue::new(
                    conv::LINKS_DROPPED,
                    (links.parents - links.links.len()) as i64,
                ));
            }
        }
        let span = tracer
            .span_builder(meta.name().to_string())
            .with_attributes(attributes)
            .with_links(links.links)
            .start_with_context(&*tracer, parent);
        let (cx, scope) = if is_async {
            let scope = Arc::new(NodeScope::for_node(meta, None));
            let cx = parent.with_value(Arc::clone(&scope)).with_span(span);
            scope.set_node_context(Some(cx.clone()));
            (cx, Scope::InContext(scope))
        } else {
            let cx = parent.with_span(span);
            let scope = NodeScope::for_node(meta, Some(cx.clone()));
            (cx, Scope::Active(Arc::new(scope)))
        };
        Ok(NodeState {
            cx,
            scope: Some(scope),
            sampled: true,
        })
    }

    fn after_node(
        &self,
        parents: Parents<'_, Self>,
        state: NodeState,
        node: &NodeEnd<'_>,
    ) -> HookResult {
        if !state.sampled {
            self.record_node_end(parents.run, node, origin(&state.cx));
            return Ok(());
        }
        let span = state.cx.span();
        let meta = node.node;
        span.set_attribute(KeyValue::new(conv::STATUS, node.outcome.kind()));
        match node.outcome {
            NodeOutcome::Succeeded => {}
            NodeOutcome::Skipped(reason) => skipped(&span, reason),
            failure => {
                let (kind, message) = exception(failure);
                span.add_event(
                    "exception",
                    vec![
                        KeyValue::new("exception.type", kind),
                        KeyValue::new("exception.message", message.clone()),
                    ],
                );
                if node.will_retry {
                    span.set_attribute(KeyValue::new(conv::NODE_WILL_RETRY, true));
                }
                span.set_status(Status::error(message));
            }
        }
        if !node.will_retry {
            let entity = state.scope.as_ref().and_then(|s| s.entity());
            parents
                .run
                .registry
                .record(meta, span.span_context(), entity);
        }
        span.end();
        self.record_node_end(parents.run, node, Origin::of(span.span_context()));
        Ok(())
    }

    fn around_node(
        &self,
        state: &NodeState,
        _: &NodeStart<'_>,
        body: &mut dyn FnMut(),
    ) -> HookResult {
        let _attached = state.cx.clone().attach();
        match &state.scope {
            Some(Scope::Active(scope)) => scope.activate(body),
            _ => body(),
        }
        Ok(())
    }

    fn around_async(
        &self,
        state: &NodeState,
        _: &NodeStart<'_>,
        body: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, ()> {
        match &state.scope {
            // A node declared sync whose body a `Lifecycle` runs as a future: its scope is
            // the thread's active node in every poll, as it is around a sync body.
            Some(Scope::Active(scope)) => {
                let (scope, mut body) = (Arc::clone(scope), body);
                let polled =
                    std::future::poll_fn(move |cx| scope.activate(|| body.as_mut().poll(cx)));
                Box::pin(polled.with_context(state.cx.clone()))
            }
            _ => Box::pin(body.with_context(state.cx.clone())),
        }
    }

    /// A sampled-out run builds no spans, so it needs no node events: its nodes take the
    /// executor's hook-free path, logs name the node the executor is running, and node
    /// metrics come from the run record at the end.
    fn node_events(&self, run: &RunState) -> bool {
        run.sampled
    }

    /// The run's context is current wherever the run's work runs: user spans nest under the
    /// run (and are dropped with it when it is sampled out), logs carry the run id.
    fn around_work(&self, run: &RunState, work: &mut dyn FnMut()) -> HookResult {
        let _attached = run.cx.clone().attach();
        work();
        Ok(())
    }
}

fn parent_cx<'a>(parents: Parents<'a, OtelHooks>) -> &'a Context {
    match parents.stage {
        Some(stage) => &stage.cx,
        None => &parents.run.cx,
    }
}

/// Where a measurement under `cx` was made: its span.
fn origin(cx: &Context) -> Origin {
    Origin::of(cx.span().span_context())
}

fn dag_attr(run: &RunState) -> KeyValue {
    dag_value(run.dag.as_ref())
}

fn dag_value(dag: Option<&Arc<str>>) -> KeyValue {
    let dag = dag.cloned().unwrap_or_else(|| Arc::from(""));
    KeyValue::new(conv::DAG_NAME, StringValue::from(dag))
}

/// The first [`conv::MAX_LISTED_NAMES`] of `items`, as a string array.
fn names<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(Array::String(
        items
            .iter()
            .take(conv::MAX_LISTED_NAMES)
            .map(|s| StringValue::from(s.as_ref().to_string()))
            .collect(),
    ))
}

/// The first [`conv::MAX_LISTED_NAMES`] of `items`, comma-separated, and how many more.
fn listed(items: &[&str]) -> String {
    let shown = items.len().min(conv::MAX_LISTED_NAMES);
    let mut list = items[..shown].join(", ");
    if shown < items.len() {
        list.push_str(&format!(" and {} more", items.len() - shown));
    }
    list
}

fn end_with_outcome(cx: &Context, outcome: Outcome, why: &'static str) {
    let span = cx.span();
    span.set_attribute(KeyValue::new(conv::STATUS, outcome.as_str()));
    if outcome == Outcome::Failed {
        span.set_status(Status::error(why));
    }
    span.end();
}

fn skipped(span: &opentelemetry::trace::SpanRef<'_>, reason: &SkipReason) {
    let (kind, cause) = match reason {
        SkipReason::UpstreamFailed { ancestor } => ("upstream_failed", Some(ancestor)),
        SkipReason::FailFast { failed } => ("fail_fast", Some(failed)),
        SkipReason::Cancelled => ("cancelled", None),
    };
    span.set_attribute(KeyValue::new(conv::SKIP_REASON, kind));
    if let Some(cause) = cause {
        span.set_attribute(KeyValue::new(conv::SKIP_CAUSE, cause.clone()));
    }
}

fn exception(outcome: &NodeOutcome) -> (&'static str, String) {
    match outcome {
        NodeOutcome::Failed { message } => ("dagtel::NodeError", message.clone()),
        NodeOutcome::Panicked { message } => ("panic", message.clone()),
        NodeOutcome::TimedOut { limit } => ("timeout", format!("timed out after {limit:?}")),
        other => ("error", other.to_string()),
    }
}

/// A link to the current run's root span, for work detached from the run's tree (a
/// background job started by a node, a follow-up run): `None` outside a run.
pub fn root_span_link() -> Option<Link> {
    RunScope::current()
        .and_then(|scope| scope.root().cloned())
        .map(|root| Link::new(root, vec![KeyValue::new(conv::LINK_PARENT, "run")], 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otel::testing::TestTelemetry;
    use crate::telemetry::config::{ExporterKind, PerSignal, Settings};
    use crate::telemetry::{InstallOptions, install};

    #[test]
    fn hooks_from_one_owner_of_the_providers_share_one_collection_callback() {
        let telemetry = TestTelemetry::new();
        let (a, b) = (telemetry.hooks(), telemetry.hooks());
        assert!(Arc::ptr_eq(&a.deferred, &b.deferred));
        let own = OtelHooks::new(telemetry.tracer_provider(), telemetry.meter_provider());
        assert!(
            !Arc::ptr_eq(&a.deferred, &own.deferred),
            "built apart: its own"
        );

        let settings = Settings {
            exporters: PerSignal {
                traces: vec![ExporterKind::Memory],
                logs: vec![ExporterKind::Memory],
                metrics: vec![ExporterKind::Memory],
            },
            detectors: Vec::new(),
            ..Settings::default()
        };
        let options = InstallOptions::new()
            .local()
            .parent_env(Vec::<(String, String)>::new());
        let guard = install(&settings, "svc", options).unwrap();
        assert!(
            guard.exemplars().is_none(),
            "memory exporters attach no exemplars"
        );
        let (c, d) = (
            guard.hooks(),
            guard.hooks_builder().link_every_edge(true).build(),
        );
        assert!(Arc::ptr_eq(&c.deferred, &d.deferred));
    }
}
