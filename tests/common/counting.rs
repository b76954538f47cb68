//! A hook that counts what it is told and answers `node_events` as asked.

#![allow(dead_code)] // each test binary uses its own part

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use dagtel::hooks::{HookResult, Hooks, NodeStart, Parents, RunEnd};

/// Counts what a hook is told; answers `node_events` with `wants`.
#[derive(Default)]
pub struct Counting {
    pub wants: bool,
    /// `before_node` calls.
    pub nodes: AtomicUsize,
    /// `around_work` calls.
    pub work: AtomicUsize,
    /// Per run: whether node events were delivered, and how many nodes the record has.
    pub ends: Mutex<Vec<(bool, usize)>>,
}

impl Hooks for &'static Counting {
    type Run = ();
    type Stage = ();
    type Task = ();
    type Node = ();

    fn before_node(&self, _: Parents<'_, Self>, _: &NodeStart<'_>) -> HookResult {
        self.nodes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn node_events(&self, _: &()) -> bool {
        self.wants
    }

    fn around_work(&self, _: &(), work: &mut dyn FnMut()) -> HookResult {
        self.work.fetch_add(1, Ordering::Relaxed);
        work();
        Ok(())
    }

    fn after_run(&self, _: (), run: &RunEnd<'_>) -> HookResult {
        let nodes = run.record.map_or(0, |r| r.len());
        self.ends.lock().unwrap().push((run.node_events, nodes));
        Ok(())
    }
}

/// A counting hook for the whole test binary.
pub fn counting(wants: bool) -> &'static Counting {
    Box::leak(Box::new(Counting {
        wants,
        ..Counting::default()
    }))
}
