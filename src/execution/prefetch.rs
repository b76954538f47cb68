//! A cache prefetch hint for the lines a node writes when it ends.
//!
//! A parallel run's node stores its record and its output into lines that another worker
//! may have read or written last; requesting them for writing when the node starts lets
//! them change hands while it runs. (Earlier versions also requested the entry, closure,
//! inputs and counters of tasks about to be released. Since the workers sweep the plan's
//! order, that cost more than it saved: see BENCHMARKS.md, "Chunks sized by the upstream
//! lag".)

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
