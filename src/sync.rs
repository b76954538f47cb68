//! Locking that survives a poisoned mutex: a panic in user code or in a hook while a lock was
//! held must not turn every later telemetry call into a panic too.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, taking the data of a poisoned one as it is.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
