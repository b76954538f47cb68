use std::any::Any;

use crate::graph::{Dag, Handle};
use crate::plan::Target;
use crate::value::Value;

/// The requested outputs of a run, typed through their handles.
pub struct Outputs {
    dag: Dag,
    /// By graph index, sorted, each index once; `None` once taken. A sorted list rather than
    /// a hash map: a run builds it in one pass, in index order, with one allocation.
    values: Vec<(u32, Option<Value>)>,
    /// How many are still present.
    present: usize,
}

impl Outputs {
    /// `values` sorted by graph index, each index at most once.
    pub(crate) fn new(dag: Dag, values: Vec<(u32, Option<Value>)>) -> Self {
        debug_assert!(
            values.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, distinct"
        );
        let present = values.iter().filter(|(_, v)| v.is_some()).count();
        Self {
            dag,
            values,
            present,
        }
    }

    fn position(&self, index: u32) -> Option<usize> {
        self.values.binary_search_by_key(&index, |&(i, _)| i).ok()
    }

    fn lookup(&self, target: Target) -> Option<&Value> {
        let index = target.resolve(&self.dag).ok()?;
        self.values[self.position(index)?].1.as_ref()
    }

    /// The output behind `handle`; `None` if it was not requested or its node did not succeed.
    pub fn get<T: Any>(&self, handle: Handle<T>) -> Option<&T> {
        self.lookup(Target::of(handle))?.downcast_ref()
    }

    /// Moves the output behind `handle` out of these outputs (`None` if absent, or if it is
    /// an input value the caller still shares).
    pub fn take<T: Any + Send + Sync>(&mut self, handle: Handle<T>) -> Option<T> {
        let index = Target::of(handle).resolve(&self.dag).ok()?;
        let at = self.position(index)?;
        let cell = &mut self.values[at].1;
        match cell.take()?.take::<T>() {
            Ok(owned) => {
                self.present -= 1;
                Some(owned)
            }
            Err(value) => {
                *cell = Some(value);
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
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|&(i, _)| self.dag.entry(i).meta.name())
            .collect();
        names.sort_unstable();
        names
    }

    /// How many outputs are present.
    pub fn len(&self) -> usize {
        self.present
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.present == 0
    }
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field("names", &self.names())
            .finish()
    }
}
