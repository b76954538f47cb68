//! Dependency lists: what a node's body receives, checked by the compiler.
//!
//! A node depends on a single [`Handle`], a `Vec` of handles of one type (a fan-in of any
//! width), or a tuple of up to eight of those. The body receives references in the same shape:
//! `&T` for a handle, [`Many<T>`] for a `Vec`, and a tuple for a tuple.

use std::any::Any;
use std::ops::Deref;
use std::sync::Arc;

use smallvec::SmallVec;

use super::handle::{DepSpec, Handle};
use crate::node::{Args, NodeError, OwnedArgs};

/// One item of a dependency list: a single handle or a homogeneous `Vec` of handles.
pub trait DepItem: 'static {
    /// What a sync body receives for this item.
    type Ref<'a>;
    /// What an async body receives for this item.
    type Owned: Send + 'static;
    #[doc(hidden)]
    fn push_specs(&self, out: &mut Vec<DepSpec>);
    #[doc(hidden)]
    fn fetch<'a>(args: &Args<'a>, start: usize, len: usize) -> Result<Self::Ref<'a>, NodeError>;
    #[doc(hidden)]
    fn fetch_owned(args: &OwnedArgs, start: usize, len: usize) -> Result<Self::Owned, NodeError>;
}

/// A node's whole dependency list, checked by the compiler.
///
/// A node depends on a single [`Handle`], a `Vec` of handles of one type (a fan-in of any
/// width), or a tuple of up to eight of those. The body receives references in the same shape:
/// `&T` for a handle, [`Many<T>`] for a `Vec`, and a tuple for a tuple.
pub trait Deps: 'static {
    /// What a sync body receives.
    type Refs<'a>;
    /// What an async body receives.
    type Owned: Send + 'static;
    #[doc(hidden)]
    fn specs(&self) -> (Vec<DepSpec>, Layout);
    #[doc(hidden)]
    fn fetch<'a>(layout: &Layout, args: &Args<'a>) -> Result<Self::Refs<'a>, NodeError>;
    #[doc(hidden)]
    fn fetch_owned(layout: &Layout, args: &OwnedArgs) -> Result<Self::Owned, NodeError>;
}

/// How many values each item of a dependency list takes, fixed when the node is declared.
#[doc(hidden)]
pub type Layout = SmallVec<[u32; 4]>;

/// The values of a fan-in dependency (`Vec<Handle<T>>`), in the order the handles were given.
pub struct Many<'a, T>(SmallVec<[&'a T; 4]>);

impl<'a, T> Deref for Many<'a, T> {
    type Target = [&'a T];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<'a, T> IntoIterator for Many<'a, T> {
    type Item = &'a T;
    type IntoIter = smallvec::IntoIter<[&'a T; 4]>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<T: Any + Send + Sync> DepItem for Handle<T> {
    type Ref<'a> = &'a T;
    type Owned = Arc<T>;
    fn push_specs(&self, out: &mut Vec<DepSpec>) {
        out.push(self.spec());
    }
    #[inline]
    fn fetch<'a>(args: &Args<'a>, start: usize, _len: usize) -> Result<&'a T, NodeError> {
        args.get::<T>(start)
    }
    fn fetch_owned(args: &OwnedArgs, start: usize, _len: usize) -> Result<Arc<T>, NodeError> {
        args.get::<T>(start)
    }
}

impl<T: Any + Send + Sync> DepItem for Vec<Handle<T>> {
    type Ref<'a> = Many<'a, T>;
    type Owned = Vec<Arc<T>>;
    fn push_specs(&self, out: &mut Vec<DepSpec>) {
        out.extend(self.iter().map(Handle::spec));
    }
    #[inline]
    fn fetch<'a>(args: &Args<'a>, start: usize, len: usize) -> Result<Many<'a, T>, NodeError> {
        // A plain loop: collecting through `Result` cost ~10% of a no-op fan-in node.
        let mut refs = SmallVec::with_capacity(len);
        args.get_many::<T, 4>(start, len, &mut refs)?;
        Ok(Many(refs))
    }
    fn fetch_owned(args: &OwnedArgs, start: usize, len: usize) -> Result<Vec<Arc<T>>, NodeError> {
        (start..start + len).map(|i| args.get::<T>(i)).collect()
    }
}

fn single_layout<I: DepItem>(item: &I) -> (Vec<DepSpec>, Layout) {
    let mut specs = Vec::new();
    item.push_specs(&mut specs);
    let layout = Layout::from_slice(&[specs.len() as u32]);
    (specs, layout)
}

macro_rules! single_item_deps {
    ($($ty:ty),*) => {$(
        impl<T: Any + Send + Sync> Deps for $ty {
            type Refs<'a> = <$ty as DepItem>::Ref<'a>;
            type Owned = <$ty as DepItem>::Owned;
            fn specs(&self) -> (Vec<DepSpec>, Layout) {
                single_layout(self)
            }
            #[inline]
            fn fetch<'a>(_: &Layout, args: &Args<'a>) -> Result<Self::Refs<'a>, NodeError> {
                // The only item takes every value: its length is the argument count, read
                // from the executor's list rather than from the layout kept with the body,
                // whose first load would otherwise come before any argument is fetched.
                <$ty as DepItem>::fetch(args, 0, args.len())
            }
            fn fetch_owned(layout: &Layout, args: &OwnedArgs) -> Result<Self::Owned, NodeError> {
                <$ty as DepItem>::fetch_owned(args, 0, layout[0] as usize)
            }
        }
    )*};
}

single_item_deps!(Handle<T>, Vec<Handle<T>>);

impl Deps for () {
    type Refs<'a> = ();
    type Owned = ();
    fn specs(&self) -> (Vec<DepSpec>, Layout) {
        (Vec::new(), Layout::new())
    }
    fn fetch<'a>(_: &Layout, _: &Args<'a>) -> Result<(), NodeError> {
        Ok(())
    }
    fn fetch_owned(_: &Layout, _: &OwnedArgs) -> Result<(), NodeError> {
        Ok(())
    }
}

macro_rules! tuple_deps {
    ($($item:ident $idx:tt),+) => {
        impl<$($item: DepItem),+> Deps for ($($item,)+) {
            type Refs<'a> = ($($item::Ref<'a>,)+);
            type Owned = ($($item::Owned,)+);
            fn specs(&self) -> (Vec<DepSpec>, Layout) {
                let mut specs = Vec::new();
                let mut layout = Layout::new();
                $(
                    let before = specs.len();
                    self.$idx.push_specs(&mut specs);
                    layout.push((specs.len() - before) as u32);
                )+
                (specs, layout)
            }
            #[allow(unused_assignments)]
            #[inline]
            fn fetch<'a>(layout: &Layout, args: &Args<'a>) -> Result<Self::Refs<'a>, NodeError> {
                let mut start = 0usize;
                Ok(($({
                    let len = layout[$idx] as usize;
                    let value = $item::fetch(args, start, len)?;
                    start += len;
                    value
                },)+))
            }
            #[allow(unused_assignments)]
            fn fetch_owned(layout: &Layout, args: &OwnedArgs) -> Result<Self::Owned, NodeError> {
                let mut start = 0usize;
                Ok(($({
                    let len = layout[$idx] as usize;
                    let value = $item::fetch_owned(args, start, len)?;
                    start += len;
                    value
                },)+))
            }
        }
    };
}

tuple_deps!(A 0);
tuple_deps!(A 0, B 1);
tuple_deps!(A 0, B 1, C 2);
tuple_deps!(A 0, B 1, C 2, D 3);
tuple_deps!(A 0, B 1, C 2, D 3, E 4);
tuple_deps!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_deps!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_deps!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
