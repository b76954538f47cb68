//! Type-erased values that flow between nodes.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use smallbox::SmallBox;
use smallbox::space::S2;

/// A node's output as the executor stores it.
///
/// Small values (up to two words, e.g. numbers, ids, small structs) live inline in the slot:
/// no allocation, and the slot array stays dense in cache. Values that an async node reads
/// must be shareable (`Arc`), since the node's future owns its inputs; the plan marks those
/// producers (and requested outputs) to store `Shared`.
pub(crate) enum Value {
    Inline(SmallBox<dyn Any + Send + Sync, S2>),
    Shared(Arc<dyn Any + Send + Sync>),
}

impl Value {
    /// Wraps a node's output; `share` when an async consumer or the caller will own it.
    #[inline]
    pub(crate) fn new<T: Any + Send + Sync>(value: T, share: bool) -> Self {
        if share {
            Self::Shared(Arc::new(value))
        } else {
            Self::Inline(smallbox::smallbox!(value))
        }
    }

    #[inline]
    pub(crate) fn downcast_ref<T: Any>(&self) -> Option<&T> {
        match self {
            Self::Inline(inline) => inline.downcast_ref(),
            Self::Shared(shared) => shared.downcast_ref(),
        }
    }

    /// The shared pointer, for async consumers (`None` for inline values).
    pub(crate) fn shared(&self) -> Option<&Arc<dyn Any + Send + Sync>> {
        match self {
            Self::Shared(shared) => Some(shared),
            Self::Inline(_) => None,
        }
    }

    /// The value itself, if it is a shared `T` that nothing else shares (requested outputs
    /// are always stored shared).
    pub(crate) fn take<T: Any + Send + Sync>(self) -> Result<T, Self> {
        match self {
            Self::Inline(_) => Err(self),
            Self::Shared(shared) => match shared.downcast::<T>() {
                Ok(typed) => Arc::try_unwrap(typed).map_err(|arc| Self::Shared(arc)),
                Err(other) => Err(Self::Shared(other)),
            },
        }
    }
}

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
            value: Value::new(value, true),
            ty: TypeTag::of::<T>(),
        }
    }
}
