//! Type-erased values that flow between nodes.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

/// A node's output as the executor stores it. `Arc` so async nodes can own their inputs and
/// several consumers can share one value without copying it.
pub(crate) type Value = Arc<dyn Any + Send + Sync>;

/// A Rust type, remembered by id (for checks) and by name (for error messages).
#[derive(Clone, Copy)]
pub struct TypeTag {
    id: TypeId,
    name: &'static str,
}

impl TypeTag {
    /// The tag of `T`.
    pub fn of<T: Any>() -> Self {
        Self {
            id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
        }
    }

    /// The type's name as the compiler spells it.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl PartialEq for TypeTag {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for TypeTag {}

impl fmt::Debug for TypeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl fmt::Display for TypeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A value handed to a run (an external input or an override), with its type remembered so a
/// wrong type is reported by name instead of failing inside a node.
pub(crate) struct TypedValue {
    pub(crate) value: Value,
    pub(crate) ty: TypeTag,
}

impl TypedValue {
    pub(crate) fn new<T: Any + Send + Sync>(value: T) -> Self {
        Self {
            value: Arc::new(value),
            ty: TypeTag::of::<T>(),
        }
    }
}
