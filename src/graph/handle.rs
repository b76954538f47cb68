use std::marker::PhantomData;

use crate::value::TypeTag;

/// How a dependency names its producer: directly, or by a name resolved when the graph is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Node(u32),
    Named(u32),
}

/// A typed reference to a node's output (or an external input) in one [`DagBuilder`].
///
/// Passing handles as dependencies is what makes a consumer's argument types checked by the
/// compiler. Handles are `Copy` and only meaningful in the builder that made them; using one
/// in another builder is reported by [`DagBuilder::build`].
///
/// [`DagBuilder`]: crate::DagBuilder
/// [`DagBuilder::build`]: crate::DagBuilder::build
pub struct Handle<T> {
    pub(crate) dag: u32,
    pub(crate) key: Key,
    _type: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    pub(crate) fn new(dag: u32, key: Key) -> Self {
        Self {
            dag,
            key,
            _type: PhantomData,
        }
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Handle<T> {}

impl<T> std::fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handle<{}>({:?})", std::any::type_name::<T>(), self.key)
    }
}

/// One declared dependency: which producer, and the type the consumer expects from it.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct DepSpec {
    pub(crate) dag: u32,
    pub(crate) key: Key,
    pub(crate) ty: TypeTag,
}

impl<T: std::any::Any> Handle<T> {
    pub(crate) fn spec(&self) -> DepSpec {
        DepSpec {
            dag: self.dag,
            key: self.key,
            ty: TypeTag::of::<T>(),
        }
    }
}
