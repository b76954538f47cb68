//! OpenTelemetry for runs: context scopes, processors that stamp the run id, and the hooks
//! that turn every run into traces, logs and metrics.

pub mod carry;
pub mod context;
pub mod conventions;
pub mod exemplars;
mod hooks;
pub mod logs;
pub mod metrics;
pub(crate) mod node_events;
mod payload_fields;
pub mod report;
pub mod testing;

pub use context::{NodeScope, RunScope};
pub(crate) use hooks::SharedMetrics;
pub use hooks::{
    DEFAULT_MAX_LINKS, LAYER_TAG, NodeSeries, NodeState, OtelHooks, OtelHooksBuilder, RunState,
    StageState, TaskSpans, TaskState, default_scope_for_layer, root_span_link,
};
pub use node_events::flatten;
