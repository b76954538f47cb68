//! Timestamps for the run record.
//!
//! Reading the OS monotonic clock costs about 30 ns on virtual machines, more than the rest of
//! the per-node bookkeeping; the TSC-based `quanta` clock costs about 11 ns. Raw readings are
//! stored and turned into wall-clock times once, when the record is built.
//!
//! The `quanta` clock is made once per process: making one checks the CPU's features with
//! `cpuid`, which a virtual machine traps, and that cost about 25 µs per run on a VM (more than
//! the whole run of a small DAG).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The process's clock; runs take a copy.
static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

#[derive(Clone)]
pub(crate) struct Clock {
    clock: quanta::Clock,
    anchor_raw: u64,
    anchor_wall: SystemTime,
}

impl Clock {
    pub(crate) fn start() -> Self {
        let clock = CLOCK.get_or_init(quanta::Clock::new).clone();
        let anchor_raw = clock.raw();
        Self {
            clock,
            anchor_raw,
            anchor_wall: SystemTime::now(),
        }
    }

    #[inline]
    pub(crate) fn raw(&self) -> u64 {
        self.clock.raw()
    }

    pub(crate) fn between(&self, start: u64, end: u64) -> Duration {
        if end <= start {
            Duration::ZERO
        } else {
            self.clock.delta(start, end)
        }
    }

    /// [`between`](Self::between) in seconds, without going through a `Duration`.
    #[inline]
    pub(crate) fn seconds_between(&self, start: u64, end: u64) -> f64 {
        self.clock.delta_as_nanos(start, end) as f64 / 1e9
    }

    pub(crate) fn wall(&self, raw: u64) -> SystemTime {
        self.anchor_wall + self.between(self.anchor_raw, raw)
    }

    pub(crate) fn started_at(&self) -> SystemTime {
        self.anchor_wall
    }

    pub(crate) fn anchor(&self) -> u64 {
        self.anchor_raw
    }
}

/// Miri (the interpreter that checks the crate's `unsafe` code) cannot run `cpuid` or read
/// the TSC: there the clock is the OS monotonic clock, with the same interface.
#[cfg(miri)]
mod quanta {
    use std::time::{Duration, Instant};

    #[derive(Clone)]
    pub(super) struct Clock(Instant);

    impl Clock {
        pub(super) fn new() -> Self {
            Self(Instant::now())
        }

        pub(super) fn raw(&self) -> u64 {
            self.0.elapsed().as_nanos() as u64
        }

        pub(super) fn delta(&self, start: u64, end: u64) -> Duration {
            Duration::from_nanos(end.saturating_sub(start))
        }

        pub(super) fn delta_as_nanos(&self, start: u64, end: u64) -> u64 {
            end.saturating_sub(start)
        }
    }
}
