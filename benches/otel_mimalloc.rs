//! The OpenTelemetry overhead suite of `otel.rs`, with mimalloc as the global allocator.
//!
//! Span data is allocated on the pipeline threads and freed on the batch processor's exporting
//! thread. With glibc's malloc those remote frees contend for the allocating thread's arena
//! lock; allocators with per-thread heaps (mimalloc, jemalloc) take them without a lock. This
//! suite measures what that choice changes, for BENCHMARKS.md and the README's "Cost" section,
//! without installing anything in the system. Same options as the `otel` bench:
//! `cargo bench --bench otel_mimalloc -- otel_layered_100k`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "otel.rs"]
mod suite;

fn main() {
    suite::run("mimalloc");
}
