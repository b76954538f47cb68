//! The three signals, and access to a [`PerSignal`] value by signal.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::PerSignal;

/// One of the three OpenTelemetry signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Spans.
    Traces,
    /// Log records.
    Logs,
    /// Metrics.
    Metrics,
}

impl Signal {
    /// All signals, in the order the settings list them.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

    /// The lowercase name used in keys, variables (`OTEL_<NAME>_EXPORTER`) and OTLP paths
    /// (`/v1/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<T> PerSignal<T> {
    /// The same value for every signal.
    pub fn splat(value: T) -> Self
    where
        T: Clone,
    {
        Self {
            traces: value.clone(),
            logs: value.clone(),
            metrics: value,
        }
    }

    /// The value for `signal`.
    pub fn get(&self, signal: Signal) -> &T {
        match signal {
            Signal::Traces => &self.traces,
            Signal::Logs => &self.logs,
            Signal::Metrics => &self.metrics,
        }
    }

    /// The value for `signal`, mutably.
    pub fn get_mut(&mut self, signal: Signal) -> &mut T {
        match signal {
            Signal::Traces => &mut self.traces,
            Signal::Logs => &mut self.logs,
            Signal::Metrics => &mut self.metrics,
        }
    }

    /// Each signal with its value.
    pub fn iter(&self) -> impl Iterator<Item = (Signal, &T)> {
        Signal::ALL.into_iter().map(move |s| (s, self.get(s)))
    }
}
