//! A cell written at most once, by one thread, and read after a synchronising event.
//!
//! The executor's per-node value slots and records are each written by the single thread that
//! runs (or skips) that node. A value is written before the node counts its consumers'
//! dependency counters down with release ordering; a consumer reads it after its counter
//! reached zero, with acquire, on whichever thread took it there. The caller reads records
//! after the run's latch. `OnceLock` would also work, but its `set` goes through the general
//! once-initialisation machinery and showed up at ~8% of a no-op run.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) struct WriteOnce<T> {
    written: AtomicBool,
    /// Debug builds check the single-writer contract: a second writer, even a racing one,
    /// fails to claim the cell and panics instead of writing.
    #[cfg(debug_assertions)]
    claimed: AtomicBool,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once, before `written` is set with release ordering, and only
// read after `written` is observed with acquire ordering; `set` refuses a second write. A
// shared `&WriteOnce<T>` hands out `&T` to several threads, hence `T: Sync`; the value moves
// between threads, hence `T: Send`.
unsafe impl<T: Send + Sync> Sync for WriteOnce<T> {}

impl<T> WriteOnce<T> {
    pub(crate) const fn new() -> Self {
        Self {
            written: AtomicBool::new(false),
            #[cfg(debug_assertions)]
            claimed: AtomicBool::new(false),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores `value` unless the cell was written already (then `value` is handed back).
    ///
    /// # Safety
    ///
    /// No other thread may call `set` on this cell concurrently: each cell has one writer (the
    /// thread that runs, skips or abandons its node, or `prepare` for inputs), or later writers
    /// are ordered after the first by the run's synchronisation.
    #[inline]
    pub(crate) unsafe fn set(&self, value: T) -> Result<(), T> {
        if self.written.load(Ordering::Relaxed) {
            return Err(value);
        }
        #[cfg(debug_assertions)]
        assert!(
            self.claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
            "WriteOnce written by two threads at once"
        );
        // SAFETY: not written yet, and by the caller's contract no other thread writes it now;
        // readers wait for the release store below.
        unsafe { (*self.value.get()).write(value) };
        self.written.store(true, Ordering::Release);
        Ok(())
    }

    /// Stores `value` in a cell that is empty, without reading the cell first: a store that
    /// misses the cache then waits in the store buffer instead of stalling the thread, as the
    /// load of the flag in [`set`](Self::set) does.
    ///
    /// # Safety
    ///
    /// The cell is empty (never written, or emptied by [`take`](Self::take) since), and no
    /// other thread reads or writes it until it observes the release store of the flag here.
    /// Debug builds check both with the claim flag (a cell stays claimed until taken).
    #[inline]
    pub(crate) unsafe fn set_empty(&self, value: T) {
        #[cfg(debug_assertions)]
        assert!(
            self.claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
            "WriteOnce::set_empty on a written or contended cell"
        );
        // SAFETY: empty and not accessed by another thread (the caller's contract), so no
        // reference to the value exists; readers wait for the release store below.
        unsafe { (*self.value.get()).write(value) };
        self.written.store(true, Ordering::Release);
    }

    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        if self.written.load(Ordering::Acquire) {
            // SAFETY: written before the release store we just observed, never written again.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// Moves the value out, leaving the cell empty (and writable again: runs reuse cells).
    pub(crate) fn take(&mut self) -> Option<T> {
        #[cfg(debug_assertions)]
        {
            *self.claimed.get_mut() = false;
        }
        if std::mem::replace(self.written.get_mut(), false) {
            // SAFETY: it was written, and clearing the flag first means it is read out once.
            Some(unsafe { self.value.get_mut().assume_init_read() })
        } else {
            None
        }
    }
}

/// `n` empty cells, without writing them: an empty cell is all zero bytes (a `false` flag and
/// an uninitialised value), and a large zeroed allocation is fresh zero pages from the OS. So
/// a run of 100k nodes starts without an O(n) initialisation on the caller's thread, and the
/// pages are touched first by the workers that write them.
pub(crate) fn empty_cells<T>(n: usize) -> Box<[WriteOnce<T>]> {
    // SAFETY: all-zero bytes are a valid `WriteOnce<T>`: each `AtomicBool` zero is `false`,
    // and `MaybeUninit<T>` accepts any bytes. `WriteOnce` has no other field.
    unsafe { Box::<[WriteOnce<T>]>::new_zeroed_slice(n).assume_init() }
}

/// `n` atomics holding zero, allocated as zeroed memory (see [`empty_cells`]).
pub(crate) fn zeroed_atomics(n: usize) -> Box<[std::sync::atomic::AtomicU32]> {
    // SAFETY: an `AtomicU32` of all-zero bytes holds 0.
    unsafe { Box::<[std::sync::atomic::AtomicU32]>::new_zeroed_slice(n).assume_init() }
}

impl<T> Default for WriteOnce<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for WriteOnce<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl<T: Clone> Clone for WriteOnce<T> {
    fn clone(&self) -> Self {
        let copy = Self::new();
        if let Some(value) = self.get() {
            // SAFETY: `copy` is new and not shared yet.
            let _ = unsafe { copy.set(value.clone()) };
        }
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::WriteOnce;
    use std::sync::Arc;

    #[test]
    fn written_once_read_many_dropped_once() {
        let counted = Arc::new(());
        let mut cell = WriteOnce::new();
        assert!(cell.get().is_none());
        // SAFETY (both): one thread.
        assert!(unsafe { cell.set(Arc::clone(&counted)) }.is_ok());
        assert!(
            unsafe { cell.set(Arc::clone(&counted)) }.is_err(),
            "second write refused"
        );
        assert_eq!(
            Arc::strong_count(&counted),
            2,
            "the refused value was dropped"
        );
        assert!(cell.get().is_some());
        let copy = cell.clone();
        assert_eq!(Arc::strong_count(&counted), 3);
        drop(copy);
        assert!(cell.take().is_some());
        assert!(cell.get().is_none());
        // SAFETY: one thread; a taken cell can be written again.
        assert!(unsafe { cell.set(Arc::clone(&counted)) }.is_ok());
        assert!(cell.take().is_some());
        drop(cell);
        assert_eq!(
            Arc::strong_count(&counted),
            1,
            "taken value not dropped twice"
        );
    }

    #[test]
    fn zeroed_cells_are_empty() {
        let cells = super::empty_cells::<String>(1000);
        assert!(cells.iter().all(|c| c.get().is_none()));
        assert!(unsafe { cells[999].set("last".to_string()) }.is_ok());
        assert_eq!(cells[999].get().map(String::as_str), Some("last"));
        let atomics = super::zeroed_atomics(10);
        assert!(
            atomics
                .iter()
                .all(|a| a.load(std::sync::atomic::Ordering::Relaxed) == 0)
        );
    }

    #[test]
    fn visible_to_other_threads_after_release() {
        let cell = Arc::new(WriteOnce::new());
        let writer = Arc::clone(&cell);
        std::thread::spawn(move || unsafe { writer.set(vec![1u8, 2, 3]) }.unwrap())
            .join()
            .unwrap();
        assert_eq!(cell.get().map(Vec::len), Some(3));
    }
}
