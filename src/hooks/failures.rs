//! Containment: a hook that errors or panics is recorded here and the run goes on.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The error a hook returns to report that it could not do its work.
pub struct HookError(String);

/// What hook methods return.
pub type HookResult<T = ()> = Result<T, HookError>;

impl HookError {
    /// An error with a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl<E: std::error::Error> From<E> for HookError {
    fn from(error: E) -> Self {
        Self(error.to_string())
    }
}

impl fmt::Debug for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HookError({:?})", self.0)
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which hook method failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum HookPhase {
    BeforeRun,
    AfterRun,
    BeforeStage,
    AfterStage,
    BeforeTask,
    AfterTask,
    BeforeNode,
    AfterNode,
    AroundNode,
    AroundAsync,
    NodeEvents,
    AroundWork,
    /// Not a hook's failure: the program driving a [`Lifecycle`](super::Lifecycle) asked
    /// for something it cannot honour (a stage of another run, say); the message says what
    /// was done instead.
    Driver,
}

/// One contained hook failure.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HookFailure {
    /// The hook's type name.
    pub hook: &'static str,
    /// The method that failed.
    pub phase: HookPhase,
    /// Its error message or panic payload.
    pub message: String,
}

/// Counts every hook failure of a run and keeps the first few for the report.
#[derive(Default, Debug)]
pub struct HookFailures {
    count: AtomicU64,
    kept: Mutex<Vec<HookFailure>>,
    /// Where failures are also recorded: a [`Lifecycle`](super::Lifecycle)'s, over all its
    /// runs, for the failures of one of them.
    also: Option<std::sync::Arc<HookFailures>>,
}

/// Failures beyond this many are counted but not kept, so a hook failing on every node of a
/// huge run costs no memory.
const KEEP: usize = 64;

impl HookFailures {
    /// How many hook calls failed.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The first failures (at most 64).
    pub fn kept(&self) -> Vec<HookFailure> {
        self.kept.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Failures of one part (a run) that are also recorded in `all`.
    pub(crate) fn part_of(all: std::sync::Arc<HookFailures>) -> Self {
        Self {
            also: Some(all),
            ..Self::default()
        }
    }

    pub(crate) fn record(&self, hook: &'static str, phase: HookPhase, message: String) {
        if let Some(all) = &self.also {
            all.record(hook, phase, message.clone());
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut kept) = self.kept.lock()
            && kept.len() < KEEP
        {
            kept.push(HookFailure {
                hook,
                phase,
                message,
            });
        }
    }

    /// Runs one hook call; an error or a panic is recorded and turned into `None`.
    pub(crate) fn guard<T>(
        &self,
        hook: &'static str,
        phase: HookPhase,
        call: impl FnOnce() -> HookResult<T>,
    ) -> Option<T> {
        match catch_unwind(AssertUnwindSafe(call)) {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                self.record(hook, phase, error.0);
                None
            }
            Err(payload) => {
                self.record(hook, phase, format!("panicked: {}", panic_message(payload)));
                None
            }
        }
    }
}

/// The text of a panic payload (`&str` and `String` payloads; others are described), taking
/// the payload. A payload whose own drop panics is forgotten instead: that second panic would
/// otherwise unwind out of the code that caught the first (and out of the node it ran).
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let payload = match payload.downcast::<String>() {
        Ok(text) => return *text,
        Err(other) => other,
    };
    let message = panic_text(&*payload);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
    if let Err(again) = dropped {
        std::mem::forget(again);
    }
    message
}

/// The text of a panic payload the caller keeps (to resume the panic with it).
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
