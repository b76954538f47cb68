use crate::graph::{Dag, Handle, Key};

use super::PlanError;

/// What a run should produce: outputs by handle or name, and nodes whose values the caller
/// will supply instead of running them (overrides).
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub(crate) outputs: Vec<Target>,
    pub(crate) overrides: Vec<String>,
}

/// A node named by a handle or by text, resolved against a graph when used.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Name(String),
    /// A handle's builder, key, and type name (for an error about a foreign handle).
    Handle(u32, Key, &'static str),
}

impl Target {
    pub(crate) fn of<T>(handle: Handle<T>) -> Self {
        Self::Handle(handle.dag, handle.key, std::any::type_name::<T>())
    }

    /// The graph index, or the text to name in an error.
    pub(crate) fn resolve(&self, dag: &Dag) -> Result<u32, String> {
        match self {
            Self::Name(name) => dag.index_of(name).ok_or_else(|| name.clone()),
            Self::Handle(id, key, type_name) => dag.resolve_key(*id, *key, type_name),
        }
    }
}

impl Request {
    /// An empty request; add outputs with [`output`](Self::output) or [`named`](Self::named).
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests the output behind `handle`.
    pub fn output<T>(mut self, handle: Handle<T>) -> Self {
        self.outputs.push(Target::of(handle));
        self
    }

    /// Requests outputs by name.
    pub fn named<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.outputs
            .extend(names.into_iter().map(|n| Target::Name(n.into())));
        self
    }

    /// Declares overridden nodes: their values come with the run's inputs, they do not run,
    /// and whatever only they needed is pruned.
    pub fn overrides<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.overrides.extend(names.into_iter().map(Into::into));
        self
    }

    pub(crate) fn resolve_outputs(&self, dag: &Dag) -> Result<Vec<u32>, PlanError> {
        self.outputs
            .iter()
            .map(|target| {
                target
                    .resolve(dag)
                    .map_err(|name| PlanError::UnknownOutput {
                        dag: dag.name().to_string(),
                        name,
                    })
            })
            .collect()
    }
}
