//! OpenTelemetry for runs: context scopes, processors that stamp the run id, and the hooks
//! that turn every run into traces, logs and metrics.

pub mod carry;
pub mod context;
pub mod conventions;
pub mod logs;
pub mod testing;

pub use context::{NodeScope, RunScope};
