//! Telemetry configuration: the resolved [`Settings`] and how they are layered.

mod settings;

pub use settings::*;
