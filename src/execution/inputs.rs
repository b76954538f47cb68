use std::any::Any;

use crate::graph::Handle;
use crate::plan::Target;
use crate::value::TypedValue;

/// Values supplied to one run: external inputs, and values for overridden nodes.
///
/// Setting by handle is checked by the compiler; setting by name is checked against the
/// graph's declared type when the run starts.
#[derive(Default)]
pub struct Inputs {
    pub(crate) values: Vec<(Target, TypedValue)>,
}

impl Inputs {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Supplies the value of an input, or of an overridden node, by its handle. Setting the
    /// same name twice keeps the last value.
    pub fn set<T: Any + Send + Sync>(mut self, handle: Handle<T>, value: T) -> Self {
        self.values
            .push((Target::of(handle), TypedValue::new(value)));
        self
    }

    /// Supplies a value by name.
    pub fn set_named<T: Any + Send + Sync>(mut self, name: impl Into<String>, value: T) -> Self {
        self.values
            .push((Target::Name(name.into()), TypedValue::new(value)));
        self
    }

    /// How many values were supplied.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .values
            .iter()
            .map(|(target, value)| format!("{target:?}: {}", value.ty))
            .collect();
        f.debug_struct("Inputs").field("values", &names).finish()
    }
}
