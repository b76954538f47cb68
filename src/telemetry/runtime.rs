//! The small tokio runtime that gRPC exporters live on. tonic spawns its connection task onto
//! the runtime current when the exporter is built and fails every export once that runtime is
//! gone, and a blocked single-threaded runtime cannot drive the export it waits for. So the
//! guard owns a dedicated two-worker runtime for its whole life, started only when some signal
//! exports over gRPC, and shut down from a plain thread after the providers.

use std::sync::OnceLock;

use tokio::runtime::{EnterGuard, Handle, Runtime};

use super::TelemetryError;

/// A lazily started multi-thread runtime for telemetry only.
#[derive(Debug, Default)]
pub(crate) struct TelemetryRuntime {
    runtime: OnceLock<Runtime>,
}

impl TelemetryRuntime {
    /// Enters the runtime (starting it on first use), so that exporters built while the guard
    /// lives attach their background tasks to it.
    pub(crate) fn enter(&self) -> Result<EnterGuard<'_>, TelemetryError> {
        Ok(self.runtime()?.enter())
    }

    /// A handle to the runtime (starting it on first use), for exporters that run their
    /// exports on it.
    pub(crate) fn handle(&self) -> Result<Handle, TelemetryError> {
        Ok(self.runtime()?.handle().clone())
    }

    fn runtime(&self) -> Result<&Runtime, TelemetryError> {
        let runtime = match self.runtime.get() {
            Some(runtime) => runtime,
            None => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("dagtel-telemetry")
                    .enable_all()
                    .build()
                    .map_err(TelemetryError::Runtime)?;
                self.runtime.get_or_init(|| runtime)
            }
        };
        Ok(runtime)
    }

    /// Stops the runtime without waiting for its tasks; safe from any thread, including one
    /// inside another runtime.
    pub(crate) fn shutdown(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
