//! What a node body sees: its context, its arguments, and the error type it returns.

mod args;
mod ctx;
mod error;

pub use args::{Args, OwnedArgs};
pub use ctx::{AsyncNodeCtx, NodeCtx};
pub use error::{NodeError, NodeResult};
