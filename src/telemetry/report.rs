//! What shutdown could and could not deliver.

use std::fmt;
use std::time::Duration;

use super::Signal;
use super::config::ExporterKind;

/// The outcome of [`TelemetryGuard::shutdown`](super::TelemetryGuard::shutdown): per signal and
/// exporter, how many records were exported, failed to export, or were dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// One entry per signal that had a provider, in the order traces, logs, metrics.
    pub signals: Vec<SignalReport>,
    /// How long shutdown took (at most the configured shutdown timeout, plus thread start-up).
    pub elapsed: Duration,
}

/// One signal's part of a [`ShutdownReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalReport {
    /// The signal.
    pub signal: Signal,
    /// How the provider's shutdown ended.
    pub outcome: ShutdownOutcome,
    /// One entry per exporter.
    pub exporters: Vec<ExporterReport>,
}

/// How one provider's shutdown ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Shut down within the deadline.
    Completed,
    /// Shut down within the deadline, but the provider reported an error.
    Failed(String),
    /// Still flushing at the deadline; it was left to finish in the background, and what it
    /// still held is counted as dropped.
    TimedOut,
}

/// Delivery counts for one exporter. Spans and log records are counted one by one; metrics
/// are counted in metric streams (one instrument's data in one export).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExporterReport {
    /// The exporter.
    pub kind: ExporterKind,
    /// Records handed to the exporter's processor.
    pub submitted: u64,
    /// Records the exporter accepted.
    pub exported: u64,
    /// Records in exports that failed (collector unreachable, write error, ...).
    pub failed: u64,
    /// Records never handed to the exporter: dropped because the queue was full, or still
    /// queued when shutdown gave up.
    pub dropped: u64,
}

impl SignalReport {
    /// Exported records over all exporters.
    pub fn exported(&self) -> u64 {
        self.exporters.iter().map(|e| e.exported).sum()
    }

    /// Failed records over all exporters.
    pub fn failed(&self) -> u64 {
        self.exporters.iter().map(|e| e.failed).sum()
    }

    /// Dropped records over all exporters.
    pub fn dropped(&self) -> u64 {
        self.exporters.iter().map(|e| e.dropped).sum()
    }
}

impl ShutdownReport {
    /// The report for `signal`, if it had a provider.
    pub fn signal(&self, signal: Signal) -> Option<&SignalReport> {
        self.signals.iter().find(|s| s.signal == signal)
    }

    /// True when every provider shut down in time and nothing failed or was dropped.
    pub fn is_complete(&self) -> bool {
        self.signals
            .iter()
            .all(|s| s.outcome == ShutdownOutcome::Completed && s.failed() == 0 && s.dropped() == 0)
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "telemetry shutdown in {:.0?}", self.elapsed)?;
        if self.signals.is_empty() {
            return f.write_str(": nothing installed");
        }
        for signal in &self.signals {
            write!(
                f,
                "\n  {}: {} exported, {} failed, {} dropped",
                signal.signal,
                signal.exported(),
                signal.failed(),
                signal.dropped()
            )?;
            match &signal.outcome {
                ShutdownOutcome::Completed => {}
                ShutdownOutcome::Failed(error) => write!(f, " (shutdown error: {error})")?,
                ShutdownOutcome::TimedOut => f.write_str(" (timed out)")?,
            }
            if signal.exporters.len() > 1 {
                for e in &signal.exporters {
                    write!(
                        f,
                        "\n    {:?}: {} exported, {} failed, {} dropped",
                        e.kind, e.exported, e.failed, e.dropped
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_each_signal_and_its_losses() {
        let report = ShutdownReport {
            signals: vec![SignalReport {
                signal: Signal::Traces,
                outcome: ShutdownOutcome::TimedOut,
                exporters: vec![
                    ExporterReport {
                        kind: ExporterKind::Otlp,
                        submitted: 10,
                        exported: 0,
                        failed: 4,
                        dropped: 6,
                    },
                    ExporterReport {
                        kind: ExporterKind::File,
                        submitted: 10,
                        exported: 10,
                        failed: 0,
                        dropped: 0,
                    },
                ],
            }],
            elapsed: Duration::from_millis(12),
        };
        let text = report.to_string();
        assert!(
            text.contains("traces: 10 exported, 4 failed, 6 dropped (timed out)"),
            "{text}"
        );
        assert!(
            text.contains("Otlp: 0 exported, 4 failed, 6 dropped"),
            "{text}"
        );
        assert!(!report.is_complete());
    }
}
