//! Helpers shared by several test binaries.

pub mod counting;
pub mod random_graph;
