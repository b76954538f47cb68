//! Rayon pools shared by the tests.

use std::sync::Arc;

/// A caller's pool of one thread: every job of a run, and every job a node hands to rayon,
/// runs on that thread.
pub fn one_thread_pool() -> Arc<rayon::ThreadPool> {
    Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap(),
    )
}
