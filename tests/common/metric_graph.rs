//! The nodes the metrics tests count: a staged success, a failure with retries and the node
//! it skips.

#![allow(dead_code)] // each test binary uses its own part

use dagtel::*;

/// Adds `a` (stage `s`) -> `b`, and `bad`, which fails on both its attempts, -> `after`
/// (skipped), all reading `x`. Returns `b` and `after`.
pub fn staged_and_failing(g: &mut DagBuilder, x: Handle<u32>) -> (Handle<u32>, Handle<u32>) {
    let a = g.node("a").stage("s").run(x, |_, x| Ok(x + 1));
    let b = g.node("b").run(a, |_, a| Ok(a * 2));
    let bad = g
        .node("bad")
        .retry(RetryPolicy::attempts(2))
        .run(x, |_, _| -> NodeResult<u32> { Err(NodeError::msg("no")) });
    let after = g.node("after").run(bad, |_, v| Ok(*v));
    (b, after)
}
