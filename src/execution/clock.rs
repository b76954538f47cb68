//! Timestamps for the run record.
//!
//! A run reads the clock once or twice per node, so a reading must be cheap. Raw readings are
//! stored and turned into wall-clock times once, when the record is built.
//!
//! - On x86-64 Linux, when the kernel's own monotonic clock is the TSC, a reading is one
//!   `rdtsc` (about 12 ns on a virtual machine, where the OS clock costs about 30). The kernel
//!   chooses the TSC only after checking that it is invariant and in step across CPUs, which
//!   is the guarantee this clock needs ([`tsc`]).
//! - Elsewhere the `quanta` clock: the TSC where the CPU advertises `rdtscp`, else the OS
//!   monotonic clock. It is made once per process: making one checks the CPU's features with
//!   `cpuid`, which a virtual machine traps (about 25 µs).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The process's clock source, chosen once; runs take a copy.
static SOURCE: OnceLock<Source> = OnceLock::new();

#[derive(Clone)]
enum Source {
    /// Raw readings are TSC ticks, converted at `ns_per_tick`.
    #[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
    Tsc {
        ns_per_tick: f64,
    },
    Quanta(quanta::Clock),
}

impl Source {
    fn detect() -> Self {
        #[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
        if tsc::kernel_uses_tsc() {
            return Source::Tsc {
                ns_per_tick: tsc::ns_per_tick(),
            };
        }
        Source::Quanta(quanta::Clock::new())
    }

    /// This source with its conversion brought up to date (see [`tsc::ns_per_tick`]).
    fn refreshed(&self) -> Self {
        match self {
            #[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
            Source::Tsc { .. } => Source::Tsc {
                ns_per_tick: tsc::ns_per_tick(),
            },
            Source::Quanta(clock) => Source::Quanta(clock.clone()),
        }
    }
}

/// One run's clock: the process's source, and a reading taken with the wall-clock time at the
/// run's start, from which every later reading gets its wall-clock time.
#[derive(Clone)]
pub(crate) struct Clock {
    source: Source,
    anchor_raw: u64,
    anchor_wall: SystemTime,
}

impl Clock {
    pub(crate) fn start() -> Self {
        let source = SOURCE.get_or_init(Source::detect).refreshed();
        let mut clock = Self {
            source,
            anchor_raw: 0,
            anchor_wall: SystemTime::UNIX_EPOCH,
        };
        // The anchor reading is taken around the wall-clock time, not after it, so that wall
        // times derived from readings are not early by the time between the two.
        let before = clock.raw();
        clock.anchor_wall = SystemTime::now();
        let after = clock.raw();
        clock.anchor_raw = before + after.saturating_sub(before) / 2;
        clock
    }

    /// This clock with the process's latest conversion rate (see [`tsc::ns_per_tick`]), for
    /// converting a finished run's readings: a rate measured over a longer life of the process
    /// keeps a long run's wall times from drifting away from the system clock.
    pub(crate) fn refreshed(&self) -> Self {
        Self {
            source: self.source.refreshed(),
            ..self.clone()
        }
    }

    #[inline]
    pub(crate) fn raw(&self) -> u64 {
        match &self.source {
            #[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
            Source::Tsc { .. } => tsc::read(),
            Source::Quanta(clock) => clock.raw(),
        }
    }

    /// Nanoseconds from `start` to `end` (zero if `end` is not later).
    #[inline]
    fn nanos_between(&self, start: u64, end: u64) -> u64 {
        if end <= start {
            return 0;
        }
        match &self.source {
            #[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
            Source::Tsc { ns_per_tick } => ((end - start) as f64 * ns_per_tick) as u64,
            Source::Quanta(clock) => clock.delta_as_nanos(start, end),
        }
    }

    pub(crate) fn between(&self, start: u64, end: u64) -> Duration {
        Duration::from_nanos(self.nanos_between(start, end))
    }

    /// [`between`](Self::between) in seconds, without going through a `Duration`.
    #[inline]
    pub(crate) fn seconds_between(&self, start: u64, end: u64) -> f64 {
        self.nanos_between(start, end) as f64 / 1e9
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

/// The TSC as the run clock, where the kernel keeps its monotonic clock on it.
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
mod tsc {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    /// How long the first calibration measures. Later refinements measure over the process's
    /// whole life, so this bounds only the first runs' error (about 3e-4).
    const FIRST_CALIBRATION: Duration = Duration::from_micros(100);

    /// Where the kernel names the clocksource behind `CLOCK_MONOTONIC`.
    const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";

    /// The kernel keeps `CLOCK_MONOTONIC` on the TSC only if the TSC is invariant and
    /// synchronized across CPUs (it switches away when a check fails).
    pub(super) fn kernel_uses_tsc() -> bool {
        std::fs::read_to_string(CLOCKSOURCE).is_ok_and(|source| source.trim() == "tsc")
    }

    #[inline]
    pub(super) fn read() -> u64 {
        // SAFETY: `rdtsc` exists on every x86-64 CPU, reads no memory and cannot fault (user
        // mode may read the TSC unless the kernel disabled it, and the kernel's own
        // user-space clock reads it here).
        unsafe { std::arch::x86_64::_rdtsc() }
    }

    /// A TSC reading and the monotonic time taken between two TSC readings, with the ticks
    /// between those two; `None` if something (an interrupt) came between them.
    fn pair() -> Option<(u64, u64, Instant)> {
        let before = read();
        let now = Instant::now();
        let after = read();
        let span = after.wrapping_sub(before);
        (span < 10_000).then(|| (span, before + span / 2, now))
    }

    /// The tightest of several uninterrupted pairs: the TSC midpoint can be as far from the
    /// monotonic reading as half the pair's span, and a single wide pair in the short first
    /// calibration put run records' wall times up to a microsecond off the system clock.
    fn steady_pair() -> (u64, Instant) {
        let mut best: Option<(u64, u64, Instant)> = None;
        let mut found = 0;
        while found < 8 {
            if let Some(pair) = pair() {
                found += 1;
                if best.is_none_or(|tightest| pair.0 < tightest.0) {
                    best = Some(pair);
                }
            }
        }
        best.map_or_else(|| (read(), Instant::now()), |(_, tsc, now)| (tsc, now))
    }

    /// The current rate (an `f64`'s bits; zero until the first calibration).
    static RATE: AtomicU64 = AtomicU64::new(0);
    /// The TSC reading from which the rate is due to be measured again.
    static REFINE_AT: AtomicU64 = AtomicU64::new(0);
    /// The process's first pair, which every measurement starts from.
    static FIRST: Mutex<Option<(u64, Instant)>> = Mutex::new(None);

    /// Nanoseconds per TSC tick, measured against the monotonic clock from the process's
    /// first reading. Measured again once the process has lived twice as long as the last
    /// measurement, so the error shrinks as the process runs; in between, a call costs a TSC
    /// reading and two loads (each run's start calls it).
    pub(super) fn ns_per_tick() -> f64 {
        let rate = RATE.load(Ordering::Acquire);
        if rate != 0 && read() < REFINE_AT.load(Ordering::Relaxed) {
            return f64::from_bits(rate);
        }
        measure()
    }

    #[cold]
    fn measure() -> f64 {
        let mut first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
        let first = *first.get_or_insert_with(steady_pair);
        let now = loop {
            let now = steady_pair();
            if now.1.duration_since(first.1) >= FIRST_CALIBRATION {
                break now;
            }
        };
        let ticks = now.0.saturating_sub(first.0).max(1);
        let rate = now.1.duration_since(first.1).as_nanos() as f64 / ticks as f64;
        REFINE_AT.store(now.0.saturating_add(ticks), Ordering::Relaxed);
        RATE.store(rate.to_bits(), Ordering::Release);
        rate
    }
}

/// Miri (the interpreter that checks the crate's `unsafe` code) cannot run `cpuid` or read
/// the TSC: there the clock is the OS monotonic clock, with the same interface.
#[cfg(miri)]
mod quanta {
    use std::time::Instant;

    #[derive(Clone)]
    pub(super) struct Clock(Instant);

    impl Clock {
        pub(super) fn new() -> Self {
            Self(Instant::now())
        }

        pub(super) fn raw(&self) -> u64 {
            self.0.elapsed().as_nanos() as u64
        }

        pub(super) fn delta_as_nanos(&self, start: u64, end: u64) -> u64 {
            end.saturating_sub(start)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn readings_never_go_back() {
        let clock = Clock::start();
        let mut last = clock.raw();
        for _ in 0..10_000 {
            let now = clock.raw();
            assert!(now >= last, "reading {now} after {last}");
            last = now;
        }
    }

    /// The run clock's durations fall within the monotonic clock's view of the same span:
    /// no shorter than what was slept, no longer than the span around both readings. A wrong
    /// rate (ticks taken for nanoseconds, say) is off by a factor of two or more.
    #[test]
    fn durations_agree_with_the_monotonic_clock() {
        for nap in [Duration::from_millis(2), Duration::from_millis(20)] {
            let clock = Clock::start();
            let outer = Instant::now();
            let start = clock.raw();
            std::thread::sleep(nap);
            let end = clock.raw();
            let around = outer.elapsed();
            let measured = clock.between(start, end);
            let slack = Duration::from_micros(5) + nap / 1000;
            assert!(
                measured + slack >= nap,
                "measured {measured:?} for a sleep of {nap:?}"
            );
            assert!(
                measured <= around + slack,
                "measured {measured:?} inside a span of {around:?}"
            );
            let seconds = clock.seconds_between(start, end);
            assert!((seconds - measured.as_secs_f64()).abs() < 1e-6);
        }
    }

    /// A finished run's readings, converted with the refreshed rate, land where the system
    /// clock says they were taken: the wall-clock time of a run's end stays within a few
    /// microseconds of `SystemTime::now()` after tens of milliseconds.
    #[test]
    fn a_refreshed_clock_keeps_wall_times_on_the_system_clock() {
        let clock = Clock::start();
        std::thread::sleep(Duration::from_millis(30));
        let before = SystemTime::now();
        let raw = clock.raw();
        let after = SystemTime::now();
        let wall = clock.refreshed().wall(raw);
        let slack = Duration::from_micros(20);
        assert!(
            wall + slack >= before && wall <= after + slack,
            "{wall:?} outside {before:?}..{after:?}"
        );
    }

    #[test]
    fn wall_times_start_at_the_anchor_and_follow_the_readings() {
        let clock = Clock::start();
        assert_eq!(clock.wall(clock.anchor()), clock.started_at());
        let later = clock.raw();
        assert!(clock.wall(later) >= clock.started_at());
        // A reading before the anchor (another run's) maps to the anchor, never earlier.
        assert_eq!(clock.between(later, clock.anchor()), Duration::ZERO);
    }
}
