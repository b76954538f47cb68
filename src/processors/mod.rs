//! Processors that stamp the run's identity on every span and log record.
//!
//! A run puts a [`RunScope`](crate::otel::RunScope) into its root OpenTelemetry
//! [`Context`](opentelemetry::Context), and a node body runs with a
//! [`NodeScope`](crate::otel::NodeScope) next to it. These processors read the scopes when a
//! span starts or a record is emitted, so everything produced while a run is active carries
//! `dag.run.id` — including spans and logs from user code and third-party crates that know
//! nothing about dagtel — and several runs can share one provider.
//!
//! Add each processor **first**, before the processor that exports:
//!
//! ```
//! use dagtel::processors::{RunIdLogProcessor, RunIdSpanProcessor};
//! use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//!
//! let tracer_provider = SdkTracerProvider::builder()
//!     .with_span_processor(RunIdSpanProcessor::new())
//!     .with_simple_exporter(InMemorySpanExporter::default()) // the batch exporter in production
//!     .build();
//! let logger_provider = SdkLoggerProvider::builder()
//!     .with_log_processor(RunIdLogProcessor::new())
//!     .with_simple_exporter(InMemoryLogExporter::default())
//!     .build();
//! # let _ = (tracer_provider, logger_provider);
//! ```

mod log;
mod span;

pub use log::RunIdLogProcessor;
pub use span::{RunIdSpanProcessor, WithRunId};
