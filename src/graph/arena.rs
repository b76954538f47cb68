//! Sync node bodies placed one after another in memory, in declaration order.
//!
//! A body boxed on its own lands wherever the allocator puts it, between the node's name,
//! tags and dependency lists: on a 100k-node graph the bodies were spread over about 140 MB,
//! so the first load from each body's captured state was a cache miss, and often a TLB miss
//! as well, which prefetch hints only partly hide. A builder's arena packs them into chunks
//! instead (1 KiB for the first, doubling up to 64 KiB), a few MB for 100k small bodies, with
//! no body of up to a cache line straddling two lines.

use std::mem::MaybeUninit;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use crate::node::{Args, NodeCtx, NodeResult};
use crate::value::Value;

/// A sync node's body, type-erased: `share` asks for an `Arc`-backed output (see `Value`).
pub(crate) type SyncFn = dyn Fn(&NodeCtx<'_>, &Args<'_>, bool) -> NodeResult<Value> + Send + Sync;

const LINE: usize = 64;
/// Lines of the first chunk (1 KiB): a small graph keeps a small arena.
const FIRST_CHUNK_LINES: usize = 16;
/// Lines of the largest chunks (64 KiB); each chunk is twice the previous one up to this.
const CHUNK_LINES: usize = 1024;

#[repr(C, align(64))]
struct Line([MaybeUninit<u8>; LINE]);

/// The bodies of one builder. Dropped (with every body in it) when the last [`SyncBody`]
/// referring to it is.
#[derive(Default)]
pub(crate) struct BodyArena {
    state: Mutex<ArenaState>,
}

#[derive(Default)]
struct ArenaState {
    /// Chunks of storage and their lengths in lines (from `Box::leak`), kept as raw pointers
    /// so that placing a body never reborrows a chunk that other bodies' pointers point into;
    /// freed when the arena is dropped.
    chunks: Vec<(NonNull<Line>, usize)>,
    /// Bytes used of the last chunk.
    used: usize,
    /// Bodies placed in the chunks, to drop in place when the arena is dropped.
    placed: Vec<NonNull<SyncFn>>,
    /// Bodies too large or too aligned for a chunk, boxed on their own (from `Box::into_raw`,
    /// so that moving the list does not reassert unique ownership of what `SyncBody`s point
    /// to); freed when the arena is dropped.
    boxed: Vec<NonNull<SyncFn>>,
}

// SAFETY: the arena holds `Send + Sync` closures (the pointers in `placed` point to values of
// such types, owned by the arena) and plain bytes; all mutation goes through the mutex, and
// the values are only dropped when the arena is, with no reference left (every `SyncBody`
// holds an `Arc` of the arena).
unsafe impl Send for ArenaState {}

impl BodyArena {
    /// Moves `body` into the arena and returns a handle to it.
    pub(crate) fn place<F>(self: &Arc<Self>, body: F) -> SyncBody
    where
        F: Fn(&NodeCtx<'_>, &Args<'_>, bool) -> NodeResult<Value> + Send + Sync + 'static,
    {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let size = size_of::<F>();
        let align = align_of::<F>();
        let ptr: NonNull<SyncFn> = if size == 0 || size > LINE * CHUNK_LINES / 4 || align > LINE {
            let boxed: Box<SyncFn> = Box::new(body);
            let ptr = NonNull::from(Box::leak(boxed));
            state.boxed.push(ptr);
            ptr
        } else {
            let mut start = state.used.next_multiple_of(align);
            // A body that fits in a line gets one line (its first load and the prefetch
            // hint then touch the same line).
            if size <= LINE && start / LINE != (start + size - 1) / LINE {
                start = start.next_multiple_of(LINE);
            }
            let capacity = state.chunks.last().map_or(0, |&(_, lines)| lines * LINE);
            if start + size > capacity {
                let lines = (capacity / LINE * 2)
                    .clamp(FIRST_CHUNK_LINES, CHUNK_LINES)
                    .max(size.div_ceil(LINE));
                let chunk: Box<[Line]> = (0..lines)
                    .map(|_| Line([MaybeUninit::uninit(); LINE]))
                    .collect();
                let raw = NonNull::from(Box::leak(chunk)).cast::<Line>();
                state.chunks.push((raw, lines));
                start = 0;
            }
            state.used = start + size;
            let (chunk, _) = *state.chunks.last().expect("a chunk was just ensured");
            // SAFETY: `start + size` is within the chunk (checked above), `start` is a multiple
            // of `align` and the chunk is 64-aligned with `align <= 64`, so the write is in
            // bounds and aligned; this range was never handed out before (`used` only grows
            // within a chunk).
            let typed = unsafe {
                let slot = chunk.as_ptr().cast::<u8>().add(start).cast::<F>();
                slot.write(body);
                NonNull::new_unchecked(slot)
            };
            let ptr: NonNull<SyncFn> = typed;
            state.placed.push(ptr);
            ptr
        };
        SyncBody {
            body: BodyRef(ptr),
            _arena: Arc::clone(self),
        }
    }
}

impl Drop for BodyArena {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for ptr in state.placed.drain(..) {
            // SAFETY: each pointer is to a value written by `place` into a chunk that is still
            // allocated, dropped once here; no `SyncBody` (hence no reference) is left, since
            // each holds an `Arc` of this arena.
            unsafe { std::ptr::drop_in_place(ptr.as_ptr()) };
        }
        for ptr in state.boxed.drain(..) {
            // SAFETY: made by `Box::leak` in `place`, freed once here; no `SyncBody` is left.
            drop(unsafe { Box::from_raw(ptr.as_ptr()) });
        }
        for (chunk, len) in state.chunks.drain(..) {
            let lines = std::ptr::slice_from_raw_parts_mut(chunk.as_ptr(), len);
            // SAFETY: made by `Box::leak` of a boxed slice of `len` lines in `place`, freed
            // once here, after every body in it was dropped above.
            drop(unsafe { Box::from_raw(lines) });
        }
    }
}

/// A sync body owned by its builder's arena; clones share it.
#[derive(Clone)]
pub(crate) struct SyncBody {
    body: BodyRef,
    /// Keeps the arena, and so the body, alive.
    _arena: Arc<BodyArena>,
}

impl SyncBody {
    /// The body's address without the arena's reference count, for per-task entries of a
    /// plan, which holds the graph (and so the arena) for as long as it exists.
    pub(crate) fn raw(&self) -> BodyRef {
        self.body
    }
}

impl Deref for SyncBody {
    type Target = SyncFn;

    fn deref(&self) -> &SyncFn {
        // SAFETY: the arena (held by `self`) owns the value until it is dropped.
        unsafe { self.body.0.as_ref() }
    }
}

/// The address of a body in an arena, valid while the arena lives.
#[derive(Clone, Copy)]
pub(crate) struct BodyRef(NonNull<SyncFn>);

// SAFETY: the body it points to is `Send + Sync`, and a `BodyRef` only gives shared access.
unsafe impl Send for BodyRef {}
// SAFETY: as above.
unsafe impl Sync for BodyRef {}

impl BodyRef {
    /// The body.
    ///
    /// # Safety
    ///
    /// The arena holding the body must outlive `'a`: the caller holds a [`SyncBody`] of the
    /// same arena (or something that does, such as the plan's graph) for that long.
    pub(crate) unsafe fn get<'a>(self) -> &'a SyncFn {
        // SAFETY: by the caller's contract the arena, which owns the value, outlives `'a`.
        unsafe { self.0.as_ref() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPS: AtomicUsize = AtomicUsize::new(0);

    struct Counted(u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn bodies_are_packed_dropped_once_and_big_ones_boxed() {
        let arena = Arc::new(BodyArena::default());
        let mut bodies = Vec::new();
        for i in 0..5000u64 {
            let c = Counted(i);
            bodies.push(arena.place(move |_: &NodeCtx<'_>, _: &Args<'_>, _| {
                let c: &Counted = &c;
                Ok(Value::new(c.0, false))
            }));
        }
        let big = [7u8; 40_000];
        let c = Counted(0);
        bodies.push(arena.place(move |_: &NodeCtx<'_>, _: &Args<'_>, _| {
            let c: &Counted = &c;
            Ok(Value::new(u64::from(big[0]) + c.0, false))
        }));
        bodies.push(arena.place(|_: &NodeCtx<'_>, _: &Args<'_>, _| Ok(Value::new(1u8, false))));
        for body in &bodies[..5000] {
            let addr = (&**body as *const SyncFn).cast::<u8>() as usize;
            let size = size_of_val(&**body);
            assert_eq!(addr / LINE, (addr + size - 1) / LINE, "straddles a line");
        }
        {
            let state = arena.state.lock().unwrap();
            let lines: Vec<usize> = state.chunks.iter().map(|&(_, lines)| lines).collect();
            assert_eq!(lines[..3], [FIRST_CHUNK_LINES, 32, 64], "chunks grow");
            assert!(lines.iter().all(|&l| l <= CHUNK_LINES));
        }
        let first = (&*bodies[0] as *const SyncFn).cast::<u8>() as usize;
        let second = (&*bodies[1] as *const SyncFn).cast::<u8>() as usize;
        assert!(second > first && second - first <= LINE);
        let copies: Vec<SyncBody> = bodies.iter().step_by(7).cloned().collect();
        drop(bodies);
        drop(arena);
        assert_eq!(DROPS.load(Ordering::SeqCst), 0, "clones keep the arena");
        drop(copies);
        assert_eq!(DROPS.load(Ordering::SeqCst), 5001);
    }
}
