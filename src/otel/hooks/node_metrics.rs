//! Node and task metrics: per attempt from `after_node`, or, for a run whose hooks skipped
//! the node events (a sampled-out run), from the run record when the run ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{TraceContextExt as _, TraceId};
use opentelemetry::{KeyValue, StringValue};

use super::deferred::{Batch, BatchExemplars};
use super::scopes::LAYER_TAG;
use super::{OtelHooks, RunState, TaskSpans, Timed, dag_attr, dag_value};
use crate::RunRecord;
use crate::execution::Tally;
use crate::graph::NodeMeta;
use crate::hooks::NodeEnd;
use crate::otel::conventions as conv;
use crate::otel::exemplars::{ExemplarFilter, Origin, unix_nanos};
use crate::otel::metrics::status;
use crate::outcome::{NodeOutcome, Outcome};

impl OtelHooks {
    /// Records an attempt that `after_node` reports, unless it is a first-try success of a
    /// run from dagtel's executor: those are recorded from the run record when the run ends.
    pub(super) fn record_node_end(&self, run: &RunState, node: &NodeEnd<'_>, origin: Origin) {
        let from_record = run.metrics.is_some();
        if from_record && node.attempt == 1 && *node.outcome == NodeOutcome::Succeeded {
            return;
        }
        let attempt = Attempt {
            outcome: node.outcome,
            duration: node.duration,
            will_retry: node.will_retry,
            origin,
        };
        self.record_attempt(run, node.node, attempt);
    }

    /// Records one attempt: its duration (unless skipped, and offered as an exemplar) and
    /// the error, retry and skip counters.
    pub(super) fn record_attempt(&self, run: &RunState, node: &NodeMeta, attempt: Attempt<'_>) {
        let Attempt {
            outcome,
            duration,
            will_retry,
            origin,
        } = attempt;
        let seconds = duration.as_secs_f64();
        let dag = run.dag.as_ref();
        let bound = match outcome {
            NodeOutcome::Succeeded => run.metrics.as_ref().and_then(|m| m.duration_slot(node)),
            _ => None,
        };
        if let Some(slot) = bound {
            // A success records its duration and nothing else.
            let handle = slot.get_or_init(|| {
                let (attrs, len) = node_metric_attrs(dag, node, outcome, self.node_series);
                self.instruments.node_duration.bind(&attrs[..len])
            });
            handle.record(seconds);
            if self.exemplars.is_some() {
                let (attrs, len) = node_metric_attrs(dag, node, outcome, self.node_series);
                self.offer_node_duration(node, &attrs[..len], seconds, origin);
            }
            return;
        }
        let (attrs, len) = node_metric_attrs(dag, node, outcome, self.node_series);
        let counted = &attrs[..len - 1];
        match outcome {
            NodeOutcome::Skipped(_) => self.instruments.node_skipped.add(1, counted),
            outcome if outcome.is_failure() => self.instruments.node_errors.add(1, counted),
            _ => {}
        }
        if will_retry {
            self.instruments.node_retries.add(1, counted);
        }
        if !matches!(outcome, NodeOutcome::Skipped(_)) {
            self.instruments
                .node_duration
                .record(seconds, &attrs[..len]);
            self.offer_node_duration(node, &attrs[..len], seconds, origin);
        }
    }

    /// Offers a node duration recorded in the series `attrs` as an exemplar.
    fn offer_node_duration(&self, node: &NodeMeta, attrs: &[KeyValue], seconds: f64, at: Origin) {
        let filtered = self.exemplar_node(node);
        self.offer(conv::METRIC_NODE_DURATION, attrs, seconds, at, filtered);
    }

    /// Records what the run record holds when the run ends.
    ///
    /// Every node that succeeded at its first attempt (the common case) has its duration
    /// left for the next metric collection (see [`deferred`](super::deferred)); `after_node`
    /// skips those. For a run without node events, the rest is recorded here too: what
    /// `after_node` and `after_task` would have. The counters come out the same (a node's
    /// attempts before its last all failed, so each counts one error and one retry);
    /// durations differ in one way: a retried node records one duration (all its attempts,
    /// with its final status) instead of one per attempt, since the record keeps no
    /// per-attempt times.
    pub(super) fn record_from(&self, run: &RunState, record: &RunRecord, node_events: bool) {
        let plan = &record.plan;
        // Without node events, group tasks are timed here from their nodes' records.
        let timed_tasks =
            !node_events && (self.task_spans == TaskSpans::All || plan.inner.has_groups);
        // In plan order: the record's first items are the planned nodes, in that order.
        let planned = plan.inner.nodes.len();
        let mut durations = self.deferred.buffer(planned);
        let run_origin = Origin::of(run.cx.span().span_context());
        let mut exemplars = self.batch_exemplars(run, planned);
        // One tight pass for the common case: a run from which every node's duration is
        // deferred, and nothing else read, when node events told the rest.
        record.first_try_seconds(&mut durations);
        if let Some(exemplars) = &mut exemplars {
            for (i, seconds) in durations.iter().enumerate() {
                let span = match plan.inner.nodes.get(i) {
                    Some(&index) if !seconds.is_nan() => run.registry.span_id(index),
                    _ => 0,
                };
                let end = record.ended_at(i).map_or(0, unix_nanos);
                exemplars.nodes.push((span, end));
            }
        }
        let mut tasks: HashMap<&str, TaskTally<'_>> = HashMap::new();
        // With node events, `after_node` and `after_task` recorded the rest; a run of
        // first-try successes only, with no task to time, has no rest (and its 100,000
        // records need no second pass).
        let unrecorded = if node_events || (record.first_tries_only && !timed_tasks) {
            0
        } else {
            record.len()
        };
        for i in 0..unrecorded {
            let first_try = durations.get(i).is_some_and(|d| !d.is_nan());
            if first_try && !timed_tasks {
                continue;
            }
            let node = record.view(i);
            let Some(outcome) = node.outcome.as_ref() else {
                continue; // overridden: it did not run
            };
            if !first_try {
                let earlier = node.attempts.saturating_sub(1);
                if earlier > 0 {
                    let failed = NodeOutcome::Failed {
                        message: String::new(),
                    };
                    let (attrs, len) =
                        node_metric_attrs(run.dag.as_ref(), node.node, &failed, self.node_series);
                    let counted = &attrs[..len - 1];
                    self.instruments.node_errors.add(earlier as u64, counted);
                    self.instruments.node_retries.add(earlier as u64, counted);
                }
                let attempt = Attempt {
                    outcome,
                    duration: node.duration,
                    will_retry: false,
                    origin: run_origin,
                };
                self.record_attempt(run, node.node, attempt);
            }
            if node.node.task_group().is_some() || self.task_spans == TaskSpans::All {
                tasks
                    .entry(node.node.task_id())
                    .or_insert_with(|| TaskTally::new(node.node.stage()))
                    .add(outcome, node.started_at, node.ended_at());
            }
        }
        if let Some(metrics) = &run.metrics {
            self.deferred.push(Batch {
                nodes: Arc::clone(&plan.inner.nodes),
                dag: run.dag.clone(),
                metrics: Arc::clone(metrics),
                series: self.node_series,
                durations,
                exemplars,
            });
        }
        for tally in tasks.into_values() {
            let mut attrs = vec![dag_attr(run), status(tally.outcome().as_str())];
            if let Some(stage) = tally.stage {
                attrs.push(KeyValue::new(conv::STAGE_NAME, stage.to_string()));
            }
            let seconds = tally.duration().as_secs_f64();
            self.record_duration(Timed::Task, &attrs, seconds, run_origin);
        }
    }
}

impl OtelHooks {
    /// Where a run's first-try successes keep what their exemplars need, when they are
    /// kept: the trace, and each node's span and end.
    fn batch_exemplars(&self, run: &RunState, planned: usize) -> Option<BatchExemplars> {
        let reservoir = self.exemplars.as_ref()?;
        if !run.sampled && reservoir.filter() != ExemplarFilter::AlwaysOn {
            return None;
        }
        let root = run.cx.span().span_context().clone();
        Some(BatchExemplars {
            reservoir: Arc::clone(reservoir),
            trace_id: if run.sampled {
                root.trace_id()
            } else {
                TraceId::INVALID
            },
            nodes: Vec::with_capacity(planned),
        })
    }
}

/// One attempt to record.
pub(super) struct Attempt<'a> {
    pub(super) outcome: &'a NodeOutcome,
    pub(super) duration: Duration,
    pub(super) will_retry: bool,
    /// The span it ran in, for its duration's exemplar.
    pub(super) origin: Origin,
}

/// A task's span of time and outcome, folded from its nodes' records.
struct TaskTally<'a> {
    stage: Option<&'a str>,
    start: Option<SystemTime>,
    end: Option<SystemTime>,
    outcomes: Tally,
}

impl<'a> TaskTally<'a> {
    fn new(stage: Option<&'a str>) -> Self {
        Self {
            stage,
            start: None,
            end: None,
            outcomes: Tally::default(),
        }
    }

    fn add(&mut self, outcome: &NodeOutcome, start: Option<SystemTime>, end: Option<SystemTime>) {
        self.outcomes.add(outcome);
        self.start = self.start.into_iter().chain(start).min();
        self.end = self.end.into_iter().chain(end).max();
    }

    fn outcome(&self) -> Outcome {
        self.outcomes.outcome()
    }

    fn duration(&self) -> Duration {
        match (self.start, self.end) {
            (Some(start), Some(end)) => end.duration_since(start).unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }
}

/// Which series node metrics are recorded in (see [`OtelHooksBuilder::node_series`]). The
/// bootstrap reads it from `DAGTEL_NODE_METRICS` (`node`, `layer`, `stage`).
///
/// A graph with a node per input block keeps one duration series per layer instead of one
/// per block:
///
/// ```
/// use dagtel::otel::testing::TestTelemetry;
/// use dagtel::otel::{NodeSeries, OtelHooks, conventions as conv};
/// use dagtel::{DagBuilder, Executor, Handle, Inputs, Request};
/// use opentelemetry::KeyValue;
///
/// let mut g = DagBuilder::new("blocks");
/// let blocks: Vec<Handle<u64>> = (0..100)
///     .map(|i| g.node(format!("block_{i}")).tag("layer", "ingest").run((), move |_, ()| Ok(i)))
///     .collect();
/// let total = g.node("total").run(blocks, |_, b| Ok(b.iter().copied().sum::<u64>()));
/// let plan = g.build()?.plan(&Request::new().output(total))?;
///
/// let telemetry = TestTelemetry::new();
/// let hooks = OtelHooks::builder(telemetry.tracer_provider(), telemetry.meter_provider())
///     .node_series(NodeSeries::Layer)
///     .build();
/// Executor::parallel().hook(hooks).run(&plan, Inputs::new())?;
///
/// let ingest = [KeyValue::new(conv::NODE_LAYER, "ingest")];
/// let series = telemetry.histogram(conv::METRIC_NODE_DURATION, &ingest).unwrap();
/// assert_eq!(series.count, 100); // one series, a point per block
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`OtelHooksBuilder::node_series`]: super::OtelHooksBuilder::node_series
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NodeSeries {
    /// One series per node: `dag.node.name` (and `dag.stage.name` for staged nodes).
    #[default]
    Node,
    /// One series per value of the nodes' `layer` tag: `dag.node.layer` instead of the node's
    /// name (and `dag.stage.name` for staged nodes); nodes without a layer share the series
    /// without it. For graphs with more nodes than a metrics backend should keep series for.
    Layer,
    /// One series per stage: `dag.stage.name`, no node name; nodes without a stage share the
    /// series without it.
    Stage,
}

/// A node metric's attributes in a fixed-size array (no allocation), and how many are used:
/// the status last; the node's name, layer and stage as `series` asks and the node has them.
pub(super) fn node_metric_attrs(
    dag: Option<&Arc<str>>,
    node: &NodeMeta,
    outcome: &NodeOutcome,
    series: NodeSeries,
) -> ([KeyValue; 4], usize) {
    let done = status(outcome.kind());
    let mut attrs: [KeyValue; 4] = std::array::from_fn(|_| done.clone());
    let mut len = 0;
    let mut push = |kv: KeyValue| {
        attrs[len] = kv;
        len += 1;
    };
    push(dag_value(dag));
    match series {
        NodeSeries::Node => push(KeyValue::new(
            conv::NODE_NAME,
            StringValue::from(node.shared_name()),
        )),
        NodeSeries::Layer => {
            if let Some(layer) = node.tag(LAYER_TAG) {
                push(KeyValue::new(conv::NODE_LAYER, layer.to_string()));
            }
        }
        NodeSeries::Stage => {}
    }
    if let Some(stage) = node.stage() {
        push(KeyValue::new(conv::STAGE_NAME, stage.to_string()));
    }
    push(done);
    (attrs, len)
}
