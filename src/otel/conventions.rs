//! Names of the attributes, spans, span events and metrics of dagtel's hooks;
//! `docs/semantic-conventions.md` describes each, and the few names kept next to their only
//! use (the node-report record `dag.event`, the internal gauge
//! `dag.internal.deferred_durations`, the scope `dagtel.tracing`, the specification's
//! `exception` event). Everything lives under `dag.*` so it never collides with
//! OpenTelemetry's own namespaces.

// Attributes on spans, log records and metrics.

/// The run id (string), on every span and log record emitted while a run is active.
pub const RUN_ID: &str = "dag.run.id";
/// The run id of the run that started this one in another process (from `DAGTEL_RUN_ID`).
pub const PARENT_RUN_ID: &str = "dag.parent_run.id";
/// The DAG's name.
pub const DAG_NAME: &str = "dag.name";
/// How the run executes: `sequential`, `parallel` or `external`.
pub const EXECUTION_MODE: &str = "dag.execution.mode";
/// Worker threads of a parallel run.
pub const THREADS: &str = "dag.execution.threads";
/// The requested outputs (string array, at most [`MAX_LISTED_NAMES`] of them).
pub const OUTPUTS: &str = "dag.run.outputs";
/// How many outputs were requested (int): [`OUTPUTS`] may list only the first ones.
pub const OUTPUT_COUNT: &str = "dag.run.output_count";
/// The inputs supplied (string array, at most [`MAX_LISTED_NAMES`] of them).
pub const INPUTS: &str = "dag.run.inputs";
/// How many inputs were supplied (int), when any.
pub const INPUT_COUNT: &str = "dag.run.input_count";
/// The overridden nodes (string array, at most [`MAX_LISTED_NAMES`] of them).
pub const OVERRIDES: &str = "dag.run.overrides";
/// How many nodes were overridden (int), when any.
pub const OVERRIDE_COUNT: &str = "dag.run.override_count";
/// The most names a string-array attribute of node names ([`OUTPUTS`], [`INPUTS`],
/// [`OVERRIDES`], [`TASK_NODES`]) lists, and a run span's error status names; the count
/// attribute beside each gives the total. Listing every sink of a wide graph would cost
/// every run (sampled or not) an allocation per name, and backends cap attribute sizes.
pub const MAX_LISTED_NAMES: usize = 64;
/// How many nodes the run executes.
pub const NODE_COUNT: &str = "dag.run.node_count";
/// Nodes that succeeded / failed / were skipped, on the run span at its end.
pub const SUCCEEDED_COUNT: &str = "dag.run.succeeded";
/// See [`SUCCEEDED_COUNT`].
pub const FAILED_COUNT: &str = "dag.run.failed";
/// See [`SUCCEEDED_COUNT`].
pub const SKIPPED_COUNT: &str = "dag.run.skipped";
/// The stage's name.
pub const STAGE_NAME: &str = "dag.stage.name";
/// Tasks of the run in a stage.
pub const STAGE_TASK_COUNT: &str = "dag.stage.task_count";
/// The task's id (its group name, or the node's name).
pub const TASK_ID: &str = "dag.task.id";
/// The nodes of a task group (string array, at most [`MAX_LISTED_NAMES`] of them).
pub const TASK_NODES: &str = "dag.task.nodes";
/// How many nodes a task group has (int).
pub const TASK_NODE_COUNT: &str = "dag.task.node_count";
/// The node's name.
pub const NODE_NAME: &str = "dag.node.name";
/// The node's `layer` tag, which also chose its instrumentation scope.
pub const NODE_LAYER: &str = "dag.node.layer";
/// The attempt number (1 for the first; 0 for a skipped node).
pub const NODE_ATTEMPT: &str = "dag.node.attempt";
/// Whether another attempt follows this one.
pub const NODE_WILL_RETRY: &str = "dag.node.will_retry";
/// The node's declared code version.
pub const NODE_VERSION: &str = "dag.node.version";
/// Upstream nodes with a span in this run (fan-in width).
pub const NODE_PARENT_COUNT: &str = "dag.node.parent_count";
/// Set (true) when the fan-in was wider than the link limit.
pub const LINKS_TRUNCATED: &str = "dag.links.truncated";
/// How many parent links the limit dropped.
pub const LINKS_DROPPED: &str = "dag.links.dropped";
/// Why a node was skipped: `upstream_failed`, `fail_fast` or `cancelled`.
pub const SKIP_REASON: &str = "dag.skip.reason";
/// The failed node that caused a skip.
pub const SKIP_CAUSE: &str = "dag.skip.cause";
/// The entity a node produced (declared by the node).
pub const ENTITY_ID: &str = "dag.entity.id";
/// How a node, task, stage or run ended: `ok`, `error`, `panic`, `timeout`, `skipped`,
/// `cancelled`.
pub const STATUS: &str = "dag.status";
/// On a link: the parent node's name.
pub const LINK_PARENT: &str = "dag.link.parent";
/// On a link: the parent's entity id, when it declared one.
pub const LINK_PARENT_ENTITY: &str = "dag.link.parent_entity.id";
/// On an artifact event: the artifact's name.
pub const ARTIFACT_NAME: &str = "dag.artifact.name";

// Span event names.

/// A node's `artifact(..)` call.
pub const EVENT_ARTIFACT: &str = "dag.artifact";
/// A node's dataset report.
pub const EVENT_DATASET: &str = "dag.dataset";
/// Rows in a dataset report.
pub const DATASET_ROWS: &str = "dag.dataset.rows";
/// Columns in a dataset report.
pub const DATASET_COLUMNS: &str = "dag.dataset.columns";
/// The name of the reported dataset.
pub const DATASET_NAME: &str = "dag.dataset.name";

// Metrics.

/// Histogram (s): run wall time.
pub const METRIC_RUN_DURATION: &str = "dag.run.duration";
/// Histogram (s): stage wall time.
pub const METRIC_STAGE_DURATION: &str = "dag.stage.duration";
/// Histogram (s): task wall time.
pub const METRIC_TASK_DURATION: &str = "dag.task.duration";
/// Histogram (s): node attempt wall time.
pub const METRIC_NODE_DURATION: &str = "dag.node.duration";
/// Counter: failed node attempts.
pub const METRIC_NODE_ERRORS: &str = "dag.node.errors";
/// Counter: retried node attempts.
pub const METRIC_NODE_RETRIES: &str = "dag.node.retries";
/// Counter: skipped nodes.
pub const METRIC_NODE_SKIPPED: &str = "dag.node.skipped";
/// Counter: artifacts reported.
pub const METRIC_ARTIFACTS: &str = "dag.artifacts";
/// Gauge: rows of a node's dataset.
pub const METRIC_DATASET_ROWS: &str = "dag.dataset.rows";
/// Gauge: columns of a node's dataset.
pub const METRIC_DATASET_COLUMNS: &str = "dag.dataset.columns";

// Instrumentation scopes.

/// The scope of run, stage and task spans, and of nodes without a `layer` tag.
pub const SCOPE: &str = "dagtel";
