//! Helpers shared by several test binaries.

pub mod random_graph;
