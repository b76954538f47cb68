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

/// Whether a failed gRPC export is worth a retry (`Some`), with the delay the collector asked
/// for in the status's `google.rpc.RetryInfo`, if any. The OTLP specification's list of
/// transient codes is retried; `RESOURCE_EXHAUSTED` only when the collector set a delay (without
/// one, retrying a collector out of resources would only add to its load).
pub(crate) fn grpc_retry(status: &tonic::Status) -> Option<Option<Duration>> {
    use tonic::Code::*;
    match status.code() {
        Cancelled | DeadlineExceeded | Aborted | OutOfRange | Unavailable | DataLoss => {
            Some(retry_delay(status))
        }
        ResourceExhausted => retry_delay(status).map(Some),
        _ => None,
    }
}

/// The delay of the `google.rpc.RetryInfo` among a status's details. Decoded here rather than
/// with `tonic_types::StatusExt`, whose conversion overflows (a panic with overflow checks on)
/// on a delay of `i64::MIN` seconds; a negative delay is no wait.
fn retry_delay(status: &tonic::Status) -> Option<Duration> {
    use prost::Message as _;
    let details = tonic_types::pb::Status::decode(status.details()).ok()?;
    let info = details
        .details
        .iter()
        .find(|any| any.type_url.ends_with("/google.rpc.RetryInfo"))?;
    let delay = tonic_types::pb::RetryInfo::decode(&info.value[..])
        .ok()?
        .retry_delay?;
    let Ok(seconds) = u64::try_from(delay.seconds) else {
        return Some(Duration::ZERO);
    };
    let nanos = u32::try_from(delay.nanos.clamp(0, 999_999_999)).unwrap_or(0);
    Some(Duration::new(seconds, nanos))
}

/// A `Retry-After` header: delay-seconds, or an HTTP-date (one already past: retry at once). A
/// number of seconds too large to hold is a wait past any deadline.
pub(crate) fn retry_after(value: Option<&str>) -> Option<Duration> {
    let value = value?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
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
        assert_eq!(retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(Some("+5")), None, "not delay-seconds");
        assert_eq!(retry_after(None), None);
        assert_eq!(
            retry_after(Some("99999999999999999999999")),
            Some(Duration::MAX),
            "too long to hold: past any deadline, not ignored"
        );
    }

    #[test]
    fn an_http_date_retry_after_is_a_wait_until_then() {
        let past = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(
            retry_after(Some(past)),
            Some(Duration::ZERO),
            "retry at once"
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = retry_after(Some(&later)).unwrap();
        // The date has whole seconds (up to one less than asked), and this test may be slow.
        assert!(
            wait > Duration::from_secs(20) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }

    #[test]
    fn grpc_retries_follow_the_code_and_the_collectors_retry_info() {
        use tonic::Code;
        use tonic_types::{ErrorDetails, StatusExt as _};
        let asking = |code, secs| {
            let details = ErrorDetails::with_retry_info(Some(Duration::from_secs(secs)));
            tonic::Status::with_error_details(code, "busy", details)
        };
        assert_eq!(
            grpc_retry(&tonic::Status::unavailable("restarting")),
            Some(None)
        );
        assert_eq!(
            grpc_retry(&asking(Code::Unavailable, 2)),
            Some(Some(Duration::from_secs(2)))
        );
        assert_eq!(
            grpc_retry(&asking(Code::ResourceExhausted, 1)),
            Some(Some(Duration::from_secs(1)))
        );
        assert_eq!(
            grpc_retry(&tonic::Status::resource_exhausted("full")),
            None,
            "no delay: final"
        );
        assert_eq!(grpc_retry(&asking(Code::InvalidArgument, 1)), None);
        assert_eq!(grpc_retry(&tonic::Status::permission_denied("no")), None);
    }

    /// A status whose details carry a `RetryInfo` of `seconds` and `nanos`, as a collector
    /// may send whatever it likes.
    fn raw_retry_info(code: tonic::Code, seconds: i64, nanos: i32) -> tonic::Status {
        use prost::Message as _;
        let info = tonic_types::pb::RetryInfo {
            retry_delay: Some(prost_types::Duration { seconds, nanos }),
        };
        let details = tonic_types::pb::Status {
            code: code as i32,
            message: "busy".into(),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: info.encode_to_vec(),
            }],
        };
        tonic::Status::with_details(code, "busy", details.encode_to_vec().into())
    }

    #[test]
    fn hostile_retry_delays_neither_panic_nor_wrap() {
        use tonic::Code;
        for (seconds, nanos) in [(i64::MIN, 0), (-5, 0), (-1, 999_999_999), (0, -1)] {
            assert_eq!(
                grpc_retry(&raw_retry_info(Code::Unavailable, seconds, nanos)),
                Some(Some(Duration::ZERO)),
                "{seconds} s {nanos} ns"
            );
        }
        assert_eq!(
            grpc_retry(&raw_retry_info(Code::Unavailable, i64::MAX, i32::MAX)),
            Some(Some(Duration::new(i64::MAX as u64, 999_999_999))),
            "a delay past any deadline, which ends the export"
        );
        assert_eq!(
            grpc_retry(&raw_retry_info(Code::ResourceExhausted, 1, 500)),
            Some(Some(Duration::new(1, 500)))
        );
        let garbage = tonic::Status::with_details(Code::Unavailable, "x", vec![0xff; 7].into());
        assert_eq!(
            grpc_retry(&garbage),
            Some(None),
            "undecodable details: no hint"
        );
    }
}
