//! Helpers shared by several test binaries.

pub mod counting;
pub mod metric_graph;
pub mod random_graph;
pub mod sampled_out;
