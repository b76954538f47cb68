//! Names of every attribute, span, event and metric dagtel emits; `docs/semantic-conventions.md`
//! describes each. Everything lives under `dag.*` so it never collides with OpenTelemetry's own
//! namespaces.

/// The run id (string), on every span and log record emitted while a run is active.
pub const RUN_ID: &str = "dag.run.id";
/// The DAG's name.
pub const DAG_NAME: &str = "dag.name";
/// The node's name.
pub const NODE_NAME: &str = "dag.node.name";
/// The entity a node produced (declared by the node).
pub const ENTITY_ID: &str = "dag.entity.id";
