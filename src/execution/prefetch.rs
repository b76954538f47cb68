//! Cache prefetch hints for the data of tasks about to run.
//!
//! On large graphs the node closures and per-node plan entries are spread over the heap, and
//! a parallel run reaches them in no predictable order, so each node started with a few cache
//! misses (a third of a no-op node's time on a 100k-node graph). A task's data is therefore
//! requested ahead: its entry when one of its dependencies finishes, its closure and
//! dependency list once at most one is left (see `RunShared::release`).

/// Asks the CPU to bring the cache line at `address` closer; a hint only.
#[inline(always)]
pub(crate) fn prefetch<T>(address: *const T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: `prefetcht0` is an SSE instruction, which this build targets (checked by the
    // `cfg` above); it never faults, whatever the address, and changes no memory.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(address.cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = address;
}

/// Asks the CPU to bring the cache line at `address` in, owned for writing: a line that the
/// other worker read or wrote last then changes hands before this thread stores to it, not
/// while a locked instruction waits for the store. A hint only.
#[inline(always)]
pub(crate) fn prefetch_write<T>(address: *const T) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: `prefetchw` never faults, whatever the address, and changes no memory; CPUs
    // without it (before Broadwell) execute it as a no-op.
    unsafe {
        std::arch::asm!(
            "prefetchw [{}]",
            in(reg) address,
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    let _ = address;
}
