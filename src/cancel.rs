//! Cooperative cancellation of a run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A handle that stops a run from scheduling more work.
///
/// Cancelling lets nodes that are already running finish; every node not yet started is
/// recorded as skipped with [`SkipReason::Cancelled`](crate::SkipReason::Cancelled). A node
/// waiting out a retry backoff stops waiting and keeps its last failure. Long nodes can poll
/// [`NodeCtx::is_cancelled`](crate::NodeCtx::is_cancelled) to stop early. Clones share the
/// same flag, so one clone can be handed to a signal handler or another thread.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    /// Wakes threads waiting in [`CancelToken::wait`].
    lock: Mutex<()>,
    woken: Condvar,
    /// Wakes tasks waiting in [`CancelToken::wait_async`].
    notify: Notify,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop scheduling new nodes.
    pub fn cancel(&self) {
        let inner = &self.0;
        {
            // Set under the lock: a waiter checks the flag under it before it sleeps.
            let _guard = crate::sync::lock(&inner.lock);
            inner.cancelled.store(true, Ordering::Release);
        }
        inner.woken.notify_all();
        inner.notify.notify_waiters();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// Blocks until cancelled; returns `true`.
    fn wait_until_cancelled(&self) -> bool {
        let inner = &self.0;
        let mut guard = crate::sync::lock(&inner.lock);
        while !self.is_cancelled() {
            guard = match inner.woken.wait(guard) {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
        true
    }

    /// Sleeps for `duration` on this thread, or until the token is cancelled; returns whether
    /// it was.
    pub(crate) fn wait(&self, duration: Duration) -> bool {
        let inner = &self.0;
        // A wait too long for the clock (`Duration::MAX`) lasts until cancelled.
        let Some(deadline) = Instant::now().checked_add(duration) else {
            return self.wait_until_cancelled();
        };
        let mut guard = crate::sync::lock(&inner.lock);
        loop {
            if self.is_cancelled() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = match inner.woken.wait_timeout(guard, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// [`wait`](Self::wait) for async code: sleeps on the runtime's timer.
    pub(crate) async fn wait_async(&self, duration: Duration) -> bool {
        let notified = self.0.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read: a cancel in between still wakes it.
        notified.as_mut().enable();
        if self.is_cancelled() {
            return true;
        }
        tokio::select! {
            () = notified => true,
            () = tokio::time::sleep(duration) => self.is_cancelled(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_ends_at_its_deadline_or_when_cancelled() {
        let token = CancelToken::new();
        assert!(!token.wait(Duration::from_millis(1)), "not cancelled");
        let other = token.clone();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.cancel();
        });
        // Far longer than any scheduling delay: only the cancel can end it in time for the
        // test to finish.
        assert!(token.wait(Duration::from_secs(600)));
        canceller.join().unwrap();
        assert!(token.wait(Duration::from_secs(600)), "already cancelled");
    }

    #[tokio::test]
    async fn an_async_wait_ends_when_cancelled() {
        let token = CancelToken::new();
        assert!(!token.wait_async(Duration::from_millis(1)).await);
        let other = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            other.cancel();
        });
        assert!(token.wait_async(Duration::from_secs(600)).await);
    }
}
