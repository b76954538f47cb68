//! The env-driven telemetry bootstrap: one call at program start configures traces, logs and
//! metrics from the standard `OTEL_*` variables, a profile and an optional TOML file.
//!
//! [`config`] resolves everything into one [`Settings`](config::Settings) value; [`install`]
//! builds the providers it describes and returns the [`TelemetryGuard`] that owns them:
//!
//! ```no_run
//! use dagtel::telemetry::{install, InstallOptions, config::Settings};
//!
//! let guard = install(&Settings::default(), "etl", InstallOptions::new())?;
//! if let Some(dir) = guard.telemetry_dir() {
//!     println!("telemetry goes to {}", dir.display());
//! }
//! // ... run pipelines ...
//! let report = guard.shutdown(); // bounded: never hangs on a dead collector
//! println!("{report}");
//! # Ok::<(), dagtel::telemetry::TelemetryError>(())
//! ```
//!
//! - [`exporters`]: where each signal goes (OTLP, console, OTLP/JSON files, memory);
//! - [`propagation`]: trace context to and from child processes;
//! - [`subscriber`]: the `tracing` layers.

mod boxed;
pub mod config;
mod error;
pub mod exporters;
mod guard;
mod init;
mod install;
mod log_limits;
mod logs;
mod metrics;
pub mod propagation;
mod report;
mod resource;
mod runtime;

pub mod subscriber;
mod tally;
mod traces;
mod truncate;

pub use config::Signal;
pub use error::TelemetryError;
pub use exporters::MemoryExporters;
pub use guard::TelemetryGuard;
pub use init::{TelemetryBuilder, disabled, init};
pub use install::{InstallOptions, install};
pub use report::{ExporterReport, ShutdownOutcome, ShutdownReport, SignalReport};
pub use resource::build_resource;
