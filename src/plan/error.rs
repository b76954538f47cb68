use thiserror::Error;

/// Why a plan could not be made for a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A requested output is not a node of the graph.
    #[error("requested output `{name}` is not a node or input of graph `{dag}`")]
    UnknownOutput {
        /// The graph.
        dag: String,
        /// What was asked for.
        name: String,
    },
    /// An override names no node of the graph.
    #[error("override `{name}` is not a node of graph `{dag}`")]
    UnknownOverride {
        /// The graph.
        dag: String,
        /// The override's name.
        name: String,
    },
    /// An override names an input; inputs are supplied as inputs.
    #[error("`{name}` is an input: supply it with `Inputs::set`, not as an override")]
    OverrideOfInput {
        /// The input's name.
        name: String,
    },
}
