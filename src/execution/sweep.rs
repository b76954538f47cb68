//! The parallel executor's sweep: workers walk the plan's task order, each a chunk at a time.
//!
//! Every task's dependency counter starts one above its in-degree: that extra count is the
//! sweep's. A worker that reaches a task in the order takes the sweep's count off; whoever
//! takes the counter to zero runs the task. So a task whose inputs are all done when the
//! sweep reaches it runs there, in the plan's order, and one whose inputs are still running
//! is run by the thread that finishes the last of them, the moment it does. Walking the order
//! reads the per-task and per-node arrays front to back, where following dependencies jumps
//! through them at random; on graphs too big for the caches that is most of a node's cost.
//!
//! Workers take chunks of the order from a shared cursor, and positions inside a chunk one at
//! a time from the chunk's own cursor, which other workers can take from too once the shared
//! one is used up. So a slow node holds back nothing: the positions after it in its chunk go
//! to whichever worker runs out of work first.
//!
//! A chunk is shorter than the distance back to most tasks' latest upstream task, divided
//! by the number of workers (the plan measures that distance; see `upstream_lag` in the
//! plan's build). Then the chunks in flight, one per worker, hold few tasks whose inputs are
//! still running: the workers sweep side by side and run most tasks where they reach them.
//! With longer chunks a worker meets a run of such tasks, takes the sweep's count off each,
//! and is soon at the end of the order; from then on every task waits for its inputs to
//! release it, and is run wherever that happens, in no useful order.
//!
//! A worker that runs a node has left the sweep for as long as the node runs, and no other
//! worker may be sweeping: every other one may be busy, or the pool may have one thread, or
//! the node may wait on rayon itself (a `join` or `par_iter` inside it runs pool jobs while it
//! waits). So before a node runs, the sweep makes sure a helper is queued in the pool: one
//! more sweeper job, which sweeps with the chunk of the thread that runs it. One helper at a
//! time is queued; while every worker is busy sweeping it stays queued, and the first worker
//! to finish its part runs it, finds nothing left and ends it. A run starts with one sweeper:
//! the helpers bring in the other threads as they are needed.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

/// One pool thread's chunk: the next position to take (high half) and the chunk's end (low
/// half), in one word so that every taker, its owner or another thread, takes a position of
/// its own with one `fetch_add`. On a line of its own: its owner takes from it at every task.
#[repr(align(128))]
struct Chunk(AtomicU64);

/// A helper is queued and has not started yet.
const HELPER_QUEUED: u8 = 1;
/// No helper is queued any more: a sweeper took the last position of its chunk with the shared
/// cursor used up (what is left is in the chunks of threads that are sweeping, or that each
/// left a helper queued when they went into a node), or found every position taken.
const DONE: u8 = 2;

/// Read before every node, written a few times a run: on a line of its own.
#[repr(align(128))]
struct Flags(AtomicU8);

/// The shared cursor, and how many threads are between taking a chunk from it and storing
/// the chunk where others can take from it. Written at every new chunk: a line of its own.
#[repr(align(128))]
struct Cursor {
    /// Start of the next chunk nobody has taken yet.
    next_chunk: AtomicU32,
    refilling: AtomicU32,
}

/// Where the workers of one parallel run are in the plan's task order.
pub(crate) struct Sweep {
    flags: Flags,
    cursor: Cursor,
    /// Positions in the order.
    len: u32,
    chunk_len: u32,
    chunks: Box<[Chunk]>,
}

/// A chunk holds at most this many positions. Shorter chunks mean more trips to the shared
/// cursor; longer ones, more positions behind a slow node before other workers come for them.
const MAX_CHUNK: u32 = 64;
/// Chunks sized by the plan's upstream lag are at least this long: on a plan of chains the
/// lag is one, and chunks that short cost a trip to the shared cursor every few tasks (on
/// the no-op fan, 8 positions a chunk took 10% more time per node than 64, and 16 took 5%).
const MIN_LAG_CHUNK: u32 = 16;

impl Sweep {
    /// A sweep of `len` positions by `workers` workers, on a plan whose tasks' latest
    /// upstream task is typically `upstream_lag` positions back (see `upstream_lag` in the
    /// plan's build).
    pub(crate) fn new(workers: usize, len: usize, upstream_lag: u32) -> Self {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let workers_n = workers.max(1) as u32;
        // Small plans get short chunks, so that every worker finds some of the order.
        let by_size = len / (workers_n * 16);
        // The chunks in flight, one per worker, should end before most tasks' latest inputs
        // start: then a worker sweeping a chunk finds most of its tasks ready and runs them
        // in the order, and the workers sweep side by side. With longer chunks a worker finds
        // a run of tasks whose inputs are in another worker's chunk, takes the sweep's count
        // off each, and races to the end of the order; every task then waits for its inputs
        // to release it (1 us nodes on 100-wide layers: 95% of tasks, against 2% with chunks
        // of 16, and 3-8% more time per node).
        let by_lag = (upstream_lag / workers_n).max(MIN_LAG_CHUNK);
        let chunk_len = by_size.min(by_lag).clamp(1, MAX_CHUNK);
        Self {
            flags: Flags(AtomicU8::new(0)),
            cursor: Cursor {
                next_chunk: AtomicU32::new(0),
                refilling: AtomicU32::new(0),
            },
            len,
            chunk_len,
            chunks: (0..workers).map(|_| Chunk(AtomicU64::new(0))).collect(),
        }
    }

    /// The next position for the sweeper on pool thread `me`: from the thread's chunk, else
    /// from a new chunk, else from another thread's chunk. `None` once every position is
    /// taken, as far as `me` can see: a thread that has just taken a new chunk takes its
    /// positions itself.
    ///
    /// Only the sweeper on top of `me`'s stack takes from `me`'s chunk as its owner: one
    /// waiting below it (in a join, its node's body) is not inside `take`.
    ///
    /// The call that ends the sweep (see [`end`](Self::end)) calls `on_end`, once per sweep.
    /// A call that waits for another thread first (see below) calls `on_wait`: the time since
    /// the taker's last node is then not only its own few steps.
    #[inline]
    pub(crate) fn take(&self, me: usize, on_end: impl Fn(), on_wait: impl FnOnce()) -> Option<u32> {
        let workers = self.chunks.len();
        if workers == 0 {
            return None; // a sequential run: nobody sweeps
        }
        // A pool thread's index is below the pool's size; a division only if it is not.
        let me = if me < workers { me } else { me % workers };
        if let Some(position) = self.take_new(me, &on_end) {
            return Some(position);
        }
        // The shared cursor is used up. A thread that took one of the last chunks stores it
        // right after; without waiting for that store, this thread could find every chunk
        // used up and leave, and the new chunk's positions would wait behind the nodes its
        // owner runs.
        if self.cursor.refilling.load(Ordering::SeqCst) != 0 {
            on_wait();
        }
        let mut spins = 0u32;
        while self.cursor.refilling.load(Ordering::SeqCst) != 0 {
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now(); // the owner may have been preempted in between
            } else {
                std::hint::spin_loop();
            }
        }
        let taken = (0..workers)
            .map(|offset| (me + offset) % workers)
            .find_map(|other| self.take_from(other).map(|(position, _)| position));
        if taken.is_none() && self.end() {
            on_end();
        }
        taken
    }

    /// A position from `me`'s chunk or from a new one.
    #[inline]
    fn take_new(&self, me: usize, on_end: &impl Fn()) -> Option<u32> {
        let cursor = &self.cursor;
        loop {
            if let Some((position, end)) = self.take_from(me) {
                if position + 1 == end && cursor.next_chunk.load(Ordering::Relaxed) >= self.len {
                    // This thread's last position: whatever is left is in other threads'
                    // chunks, and this thread takes from them before it leaves the sweep.
                    // No helper needs queuing for it (a small plan's run spawns none).
                    if self.end() {
                        on_end();
                    }
                }
                return Some(position);
            }
            // Looked at first: once the order is used up, every worker that runs out of work
            // comes here, and adding would only bounce the line (and could wrap the cursor).
            // Sequentially consistent with `refilling`: a thread that sees the cursor used up
            // then sees every refill that used it up (see `take`).
            if cursor.next_chunk.load(Ordering::SeqCst) >= self.len {
                return None;
            }
            cursor.refilling.fetch_add(1, Ordering::SeqCst);
            let start = cursor
                .next_chunk
                .fetch_add(self.chunk_len, Ordering::SeqCst);
            let taken = start < self.len;
            if taken {
                let end = start.saturating_add(self.chunk_len).min(self.len);
                // Only the owner stores to its chunk, and only once the chunk is used up: a
                // taker that added to the old word took nothing, and one that adds to the new
                // word takes a position of the new chunk.
                self.chunks[me].0.store(pack(start, end), Ordering::Relaxed);
            }
            // Release: a thread that sees no refill left sees the chunk stored.
            cursor.refilling.fetch_sub(1, Ordering::SeqCst);
            if !taken {
                return None;
            }
        }
    }

    /// Ends the sweep before it starts: the run follows dependencies only.
    pub(crate) fn close(&self) {
        self.end();
    }

    /// Marks the sweep ended: no helper is queued from now on, and a sweeper job that starts
    /// leaves at once. Sweepers already at work still take what is left. `true` for the call
    /// that ended it.
    pub(crate) fn end(&self) -> bool {
        self.flags.0.fetch_or(DONE, Ordering::Relaxed) & DONE == 0
    }

    /// Whether the sweep has ended (see [`end`](Self::end)).
    pub(crate) fn ended(&self) -> bool {
        self.flags.0.load(Ordering::Relaxed) & DONE != 0
    }

    /// Whether a helper should be queued before a node runs: none is queued, and positions
    /// may be left.
    #[inline]
    pub(crate) fn wants_helper(&self) -> bool {
        self.flags.0.load(Ordering::Relaxed) == 0
    }

    /// Marks a helper queued; `false` if another thread did first.
    pub(crate) fn queue_helper(&self) -> bool {
        self.flags.0.fetch_or(HELPER_QUEUED, Ordering::Relaxed) & HELPER_QUEUED == 0
    }

    /// A queued helper has started: the next node queues another.
    pub(crate) fn helper_started(&self) {
        self.flags.0.fetch_and(!HELPER_QUEUED, Ordering::Relaxed);
    }

    /// A position of `worker`'s chunk, and the chunk's end.
    #[inline]
    fn take_from(&self, worker: usize) -> Option<(u32, u32)> {
        // The position's uniqueness is all this orders: what a task reads is published by
        // the dependency counters.
        let word = self.chunks[worker].0.fetch_add(1 << 32, Ordering::Relaxed);
        let (next, end) = ((word >> 32) as u32, word as u32);
        (next < end).then_some((next, end))
    }
}

fn pack(next: u32, end: u32) -> u64 {
    (u64::from(next) << 32) | u64::from(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sweeper_takes_every_position_in_order() {
        let sweep = Sweep::new(1, 300, u32::MAX);
        let taken: Vec<u32> = std::iter::from_fn(|| sweep.take(0, || (), || ())).collect();
        assert_eq!(taken, (0..300).collect::<Vec<_>>());
        assert_eq!(
            sweep.take(0, || (), || ()),
            None,
            "a used-up sweep stays used up"
        );
    }

    #[test]
    fn a_thread_that_runs_out_takes_the_rest_of_anothers_chunk() {
        let sweep = Sweep::new(2, 10_000, u32::MAX);
        let first = sweep.take(0, || (), || ()).unwrap();
        // Thread 0 is now busy with `first` (a long node): thread 1 takes everything else,
        // the rest of thread 0's chunk included.
        let mut rest: Vec<u32> = std::iter::from_fn(|| sweep.take(1, || (), || ())).collect();
        rest.push(first);
        rest.sort_unstable();
        assert_eq!(rest, (0..10_000).collect::<Vec<_>>());
        assert_eq!(sweep.take(0, || (), || ()), None);
    }

    #[test]
    fn concurrent_sweepers_take_each_position_exactly_once() {
        for (threads, len) in [(2, 1), (2, 5), (4, 100), (4, 10_000), (8, 3_001)] {
            let sweep = Sweep::new(threads, len, u32::MAX);
            let ends = std::sync::atomic::AtomicUsize::new(0);
            let mut taken: Vec<u32> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|me| {
                        let (sweep, ends) = (&sweep, &ends);
                        s.spawn(move || {
                            let end = || {
                                ends.fetch_add(1, Ordering::Relaxed);
                            };
                            std::iter::from_fn(|| sweep.take(me, end, || ())).collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap())
                    .collect()
            });
            taken.sort_unstable();
            assert_eq!(
                taken,
                (0..len as u32).collect::<Vec<_>>(),
                "{threads} threads, {len} positions"
            );
            assert_eq!(ends.into_inner(), 1, "the sweep ends once");
        }
    }

    #[test]
    fn a_taker_says_when_it_waited_for_another_threads_refill() {
        let sweep = Sweep::new(2, 8, u32::MAX);
        let mut waited = false;
        assert_eq!(sweep.take(0, || (), || waited = true), Some(0));
        assert!(
            !waited,
            "a position from the thread's own chunk needs no waiting"
        );
        // Thread 1 has taken the last chunk from the shared cursor and not yet stored it.
        sweep.cursor.next_chunk.store(sweep.len, Ordering::SeqCst);
        sweep.chunks[0].0.store(pack(1, 1), Ordering::SeqCst);
        sweep.cursor.refilling.store(1, Ordering::SeqCst);
        let taken = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                sweep.chunks[1].0.store(pack(6, 8), Ordering::SeqCst);
                sweep.cursor.refilling.store(0, Ordering::SeqCst);
            });
            sweep.take(0, || (), || waited = true)
        });
        assert_eq!(
            taken,
            Some(6),
            "the waiting thread takes from the stored chunk"
        );
        assert!(waited);
    }

    #[test]
    fn one_helper_is_queued_at_a_time_and_none_once_the_sweep_is_done() {
        let sweep = Sweep::new(2, 4, u32::MAX);
        assert!(sweep.wants_helper());
        assert!(sweep.queue_helper());
        assert!(!sweep.wants_helper(), "one is queued");
        assert!(
            !sweep.queue_helper(),
            "a second thread does not queue another"
        );
        sweep.helper_started();
        assert!(sweep.wants_helper(), "the queued one started");
        while sweep.take(0, || (), || ()).is_some() {}
        assert!(!sweep.wants_helper(), "nothing left to sweep");
    }

    #[test]
    fn chunks_end_before_most_tasks_latest_inputs_start() {
        // 100-wide layers, 3 random inputs each: a tenth of the tasks have their latest
        // input within 29 positions. Two workers' chunks in flight then stay shorter than that.
        assert_eq!(Sweep::new(2, 10_000, 29).chunk_len, MIN_LAG_CHUNK);
        assert_eq!(Sweep::new(2, 10_000, 80).chunk_len, 40);
        assert_eq!(Sweep::new(4, 10_000, 80).chunk_len, 20);
        // Wide layers, or no inputs at all: the longest chunks.
        assert_eq!(Sweep::new(2, 100_000, 283).chunk_len, MAX_CHUNK);
        assert_eq!(Sweep::new(2, 100_000, u32::MAX).chunk_len, MAX_CHUNK);
        // A chain: the lag is one, and chunks stay long enough to keep trips to the shared
        // cursor rare.
        assert_eq!(Sweep::new(2, 10_000, 1).chunk_len, MIN_LAG_CHUNK);
        // A small plan: short chunks whatever the lag, so every worker finds some of it.
        assert_eq!(Sweep::new(2, 100, u32::MAX).chunk_len, 3);
        assert_eq!(Sweep::new(2, 10, 1).chunk_len, 1);
    }

    #[test]
    fn a_sequential_run_has_no_sweep() {
        assert_eq!(Sweep::new(0, 10, u32::MAX).take(0, || (), || ()), None);
    }
}
