//! Where each signal goes: one exporter per [`ExporterKind`] in
//! the signal's list, each behind its own batch processor or periodic reader.
//!
//! - `otlp`: to a collector over gRPC or HTTP;
//! - `console`: human-readable on stdout (opentelemetry-stdout);
//! - `file`: OTLP/JSON lines under the telemetry directory, the embedded default;
//! - `memory`: kept in the process for tests ([`MemoryExporters`]);
//! - `none`: nothing.

mod exact_headers;
pub(crate) mod file;
mod memory;
pub(crate) mod otlp;
pub(crate) mod otlp_metrics;
mod retry;

pub use file::file_name;
pub use memory::MemoryExporters;
pub(crate) use memory::Retained;

use std::path::Path;
use std::sync::Arc;

use opentelemetry_sdk::Resource;

use super::TelemetryError;
use super::config::{ExporterKind, Settings};
use super::runtime::TelemetryRuntime;
use super::tally::Tally;
use crate::otel::exemplars::Exemplars;

/// The kinds to build for one signal: `none` dropped, each kind once, in the listed order,
/// except that OTLP comes last. The SDK flushes and shuts exporters down one after another,
/// so a collector that does not answer would otherwise spend the whole shutdown deadline
/// before the local file (the sink to read when the collector is down) gets its last batch.
pub(crate) fn kinds(list: &[ExporterKind]) -> Vec<ExporterKind> {
    let mut kinds = Vec::with_capacity(list.len());
    for kind in list {
        if *kind != ExporterKind::None && !kinds.contains(kind) {
            kinds.push(*kind);
        }
    }
    kinds.sort_by_key(|kind| *kind == ExporterKind::Otlp);
    kinds
}

/// What every signal's pipeline builder needs.
pub(crate) struct BuildContext<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) resource: &'a Resource,
    /// The run's telemetry directory; created by the first file exporter.
    pub(crate) dir: &'a Path,
    pub(crate) runtime: &'a TelemetryRuntime,
    pub(crate) memory: &'a mut MemoryExporters,
    /// The reservoir metric exporters attach exemplars from, when exemplars are kept.
    pub(crate) exemplars: Option<Arc<Exemplars>>,
}

/// The delivery counts of each exporter of one signal.
pub(crate) type Tallies = Vec<(ExporterKind, Arc<Tally>)>;

impl<'a> BuildContext<'a> {
    /// The telemetry directory, created if needed.
    pub(crate) fn file_dir(&self) -> Result<&'a Path, TelemetryError> {
        std::fs::create_dir_all(self.dir).map_err(|source| TelemetryError::TelemetryDir {
            path: self.dir.to_owned(),
            source,
        })?;
        Ok(self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_drop_none_and_repeats() {
        use ExporterKind::*;
        assert_eq!(kinds(&[File, None, Otlp, File]), vec![File, Otlp]);
        assert_eq!(
            kinds(&[Otlp, Console, File]),
            vec![Console, File, Otlp],
            "local sinks first"
        );
        assert!(kinds(&[None]).is_empty());
    }
}
