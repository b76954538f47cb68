use std::any::Any;
use std::collections::HashMap;

use crate::graph::{Dag, Handle};
use crate::plan::Target;
use crate::value::Value;

/// The requested outputs of a run, typed through their handles.
pub struct Outputs {
    dag: Dag,
    values: HashMap<u32, Value>,
}

impl Outputs {
    pub(crate) fn new(dag: Dag, values: HashMap<u32, Value>) -> Self {
        Self { dag, values }
    }

    fn lookup(&self, target: Target) -> Option<&Value> {
        let index = target.resolve(&self.dag).ok()?;
        self.values.get(&index)
    }

    /// The output behind `handle`; `None` if it was not requested or its node did not succeed.
    pub fn get<T: Any>(&self, handle: Handle<T>) -> Option<&T> {
        self.lookup(Target::of(handle))?.downcast_ref()
    }

    /// Moves the output behind `handle` out of these outputs (`None` if absent, or if it is
    /// an input value the caller still shares).
    pub fn take<T: Any + Send + Sync>(&mut self, handle: Handle<T>) -> Option<T> {
        let index = Target::of(handle).resolve(&self.dag).ok()?;
        let value = self.values.remove(&index)?;
        match value.take::<T>() {
            Ok(owned) => Some(owned),
            Err(value) => {
                self.values.insert(index, value);
                None
            }
        }
    }

    /// The output of the node called `name`, if it is of type `T`.
    pub fn get_named<T: Any>(&self, name: &str) -> Option<&T> {
        self.lookup(Target::Name(name.to_string()))?.downcast_ref()
    }

    /// Names of the outputs present.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .values
            .keys()
            .map(|&i| self.dag.entry(i).meta.name())
            .collect();
        names.sort_unstable();
        names
    }

    /// How many outputs are present.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field("names", &self.names())
            .finish()
    }
}
