//! Retries of transient export failures, as the OTLP specification asks and as the
//! opentelemetry-otlp exporters do: up to three retries with exponential backoff and jitter,
//! all within the export's timeout, for the failures a collector that restarts, sheds load or
//! throttles answers with. Anything else fails at once.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Retries after the first attempt.
const MAX_RETRIES: u32 = 3;
/// The first delay; each retry doubles it, up to [`MAX_DELAY`].
const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
/// At most this much random delay is added to each, so that exporters restarted together do
/// not retry together.
const JITTER: Duration = Duration::from_millis(100);

/// The delays of one export's retries, bounded by its deadline.
pub(crate) struct Backoff {
    deadline: Instant,
    retries: u32,
    delay: Duration,
}

impl Backoff {
    /// Retries for an export that must end within `timeout` from now.
    pub(crate) fn within(timeout: Duration) -> Self {
        Self {
            deadline: Instant::now() + timeout,
            retries: 0,
            delay: INITIAL_DELAY,
        }
    }

    /// Time left before the deadline.
    pub(crate) fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// How long to wait before the next attempt, at least `hint` (the collector's
    /// `Retry-After`); `None` when the retries are spent or the wait would pass the deadline.
    pub(crate) fn next(&mut self, hint: Option<Duration>) -> Option<Duration> {
        if self.retries >= MAX_RETRIES {
            return None;
        }
        self.retries += 1;
        let wait = (self.delay + jitter()).max(hint.unwrap_or_default());
        self.delay = (self.delay * 2).min(MAX_DELAY);
        (wait < self.remaining()).then_some(wait)
    }
}

/// A pseudo-random part of [`JITTER`], from the clock (no random generator needed for this).
fn jitter() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_nanos(u64::from(nanos) % JITTER.as_nanos() as u64)
}

/// Whether an HTTP status is worth a retry: throttled, or the collector (or a proxy before
/// it) unavailable for now.
pub(crate) fn retryable_http(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// Whether a gRPC code is worth a retry (the OTLP specification's list; `RESOURCE_EXHAUSTED`
/// only comes with a retry delay the server sets, which is not read here, so it is final).
pub(crate) fn retryable_grpc(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Cancelled | DeadlineExceeded | Aborted | OutOfRange | Unavailable | DataLoss
    )
}

/// A `Retry-After` header in seconds (the HTTP-date form is not used by collectors).
pub(crate) fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_growing_retries_within_the_deadline() {
        let mut backoff = Backoff::within(Duration::from_secs(60));
        let waits: Vec<Duration> = std::iter::from_fn(|| backoff.next(None)).collect();
        assert_eq!(waits.len(), 3);
        for (wait, base) in waits.iter().zip([100, 200, 400]) {
            let base = Duration::from_millis(base);
            assert!(*wait >= base && *wait < base + JITTER, "{wait:?}");
        }
    }

    #[test]
    fn no_retry_that_would_pass_the_deadline_and_hints_are_honoured() {
        assert_eq!(Backoff::within(Duration::from_millis(50)).next(None), None);
        let mut backoff = Backoff::within(Duration::from_secs(60));
        assert!(backoff.next(Some(Duration::from_secs(2))).unwrap() >= Duration::from_secs(2));
        assert_eq!(
            Backoff::within(Duration::from_secs(5)).next(Some(Duration::from_secs(30))),
            None,
            "a Retry-After past the deadline ends the export"
        );
    }

    #[test]
    fn classification() {
        assert!(retryable_http(503) && retryable_http(429));
        assert!(!retryable_http(400) && !retryable_http(500));
        assert!(retryable_grpc(tonic::Code::Unavailable));
        assert!(!retryable_grpc(tonic::Code::InvalidArgument));
        assert_eq!(retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
    }
}
