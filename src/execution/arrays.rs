//! Per-run arrays kept with their plan and reused by later runs.
//!
//! A run needs one value slot per graph node, one dependency counter per task, one failure
//! marker and one record per plan node. For a graph of 100k nodes that is about 10 MB, and
//! allocating it fresh for every run costs a clearing pass over all of it (zeroed memory from
//! the allocator) plus page faults, on the caller's thread before any node starts. So a plan
//! keeps a few sets of arrays: a run checks one set out (or allocates one if every set is in
//! use, as when several runs of the plan execute at once) and gives it back when it ends,
//! emptied. Records go back when the [`RunRecord`](super::RunRecord) holding them is dropped.

use std::ops::Deref;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use super::record::RawRecord;
use crate::value::{Value, WordCell, empty_words};
use crate::write_once::{WriteOnce, empty_cells, zeroed_atomics};

/// How many idle sets a plan keeps; more concurrent runs allocate their own.
const KEPT: usize = 2;

/// The arrays one run writes while its nodes execute.
pub(crate) struct RunArrays {
    /// One per graph node (inputs and overrides included), indexed by graph index.
    pub(crate) slots: Box<[WriteOnce<Value>]>,
    /// One per graph node, for word-sized values (see `Value::Word`).
    pub(crate) words: Box<[WordCell]>,
    /// One per task, holding the task's in-degree + 1 when checked out.
    pub(crate) counters: Box<[AtomicU32]>,
    /// One per plan node, zero when checked out.
    pub(crate) poison: Box<[AtomicU32]>,
    /// One per plan node, empty when checked out.
    pub(crate) records: RecordCells,
}

/// The idle arrays of one plan.
pub(crate) struct ArrayPool {
    slot_count: usize,
    indegrees: Box<[u32]>,
    node_count: usize,
    idle: Mutex<Vec<Idle>>,
    records: Mutex<Vec<Box<[WriteOnce<RawRecord>]>>>,
}

/// A returned set without its records (those come back separately, with the run record).
struct Idle {
    slots: Box<[WriteOnce<Value>]>,
    words: Box<[WordCell]>,
    counters: Box<[AtomicU32]>,
    poison: Box<[AtomicU32]>,
}

impl ArrayPool {
    /// A pool for a plan over a graph of `slot_count` nodes, with `node_count` planned nodes
    /// and tasks of the given in-degrees.
    pub(crate) fn new(slot_count: usize, node_count: usize, indegrees: Vec<u32>) -> Arc<Self> {
        Arc::new(Self {
            slot_count,
            indegrees: indegrees.into_boxed_slice(),
            node_count,
            idle: Mutex::new(Vec::new()),
            records: Mutex::new(Vec::new()),
        })
    }

    /// A set ready for a run: empty slots and records, zero markers, counters at in-degree + 1.
    pub(crate) fn check_out(self: &Arc<Self>) -> RunArrays {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let (slots, words, mut counters, poison) = match idle {
            Some(set) => (set.slots, set.words, set.counters, set.poison),
            None => (
                empty_cells(self.slot_count),
                empty_words(self.slot_count),
                zeroed_atomics(self.indegrees.len()),
                zeroed_atomics(self.node_count),
            ),
        };
        // Plain writes through `&mut`: no other thread can see this set yet. One count above
        // the in-degree: the parallel executor's sweep takes it (see `sweep`).
        for (counter, &indegree) in counters.iter_mut().zip(self.indegrees.iter()) {
            *counter.get_mut() = indegree + 1;
        }
        let cells = self.records.lock().ok().and_then(|mut idle| idle.pop());
        let records = RecordCells {
            cells: Some(cells.unwrap_or_else(|| empty_cells(self.node_count))),
            pool: Arc::clone(self),
        };
        RunArrays {
            slots,
            words,
            counters,
            poison,
            records,
        }
    }

    /// Takes back a run's slots, word cells, counters and markers. Every slot must be empty
    /// already; word cells are emptied here, and failure markers too when `marked` says any
    /// was set.
    pub(crate) fn give_back(
        &self,
        slots: Box<[WriteOnce<Value>]>,
        mut words: Box<[WordCell]>,
        counters: Box<[AtomicU32]>,
        mut poison: Box<[AtomicU32]>,
        marked: bool,
    ) {
        debug_assert!(slots.iter().all(|s| s.get().is_none()), "slots not emptied");
        for word in words.iter_mut() {
            word.clear();
        }
        if marked {
            for marker in poison.iter_mut() {
                *marker.get_mut() = 0;
            }
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEPT
        {
            idle.push(Idle {
                slots,
                words,
                counters,
                poison,
            });
        }
    }
}

/// A run's node records. Dropping it (with its run record) empties the cells and gives them
/// back to the plan's pool.
pub(crate) struct RecordCells {
    /// Always `Some` until dropped.
    cells: Option<Box<[WriteOnce<RawRecord>]>>,
    pool: Arc<ArrayPool>,
}

impl Deref for RecordCells {
    type Target = [WriteOnce<RawRecord>];

    fn deref(&self) -> &Self::Target {
        self.cells.as_deref().unwrap_or_default()
    }
}

impl Clone for RecordCells {
    fn clone(&self) -> Self {
        Self {
            cells: Some(self.iter().cloned().collect()),
            pool: Arc::clone(&self.pool),
        }
    }
}

impl Drop for RecordCells {
    fn drop(&mut self) {
        let Some(mut cells) = self.cells.take() else {
            return;
        };
        if cells.len() != self.pool.node_count {
            return;
        }
        for cell in cells.iter_mut() {
            drop(cell.take());
        }
        if let Ok(mut idle) = self.pool.records.lock()
            && idle.len() < KEPT
        {
            idle.push(cells);
        }
    }
}
