//! Declaring a pipeline: nodes, their typed dependencies, tags, stages and task groups.
//!
//! [`DagBuilder`] collects declarations; [`DagBuilder::build`] checks them (names, types,
//! cycles, task groups) and returns an immutable [`Dag`], cheap to clone and share between
//! threads. Per-node facts that hooks need (names, tags, dependency names, fingerprints) are
//! computed here, once.

mod arena;
mod builder;
mod deps;
mod error;
mod handle;
mod meta;
mod validate;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;

pub use builder::{DagBuilder, NodeBuilder};
pub use deps::{DepItem, Deps, Layout, Many};
pub use error::BuildError;
pub(crate) use handle::Key;
pub use handle::{DepSpec, Handle};
pub use meta::{GraphPosition, NodeKind, NodeMeta, RetryPolicy};
pub(crate) use validate::stable_order;

use crate::node::{AsyncNodeCtx, NodeResult, OwnedArgs};
use crate::value::{TypeTag, Value};

pub(crate) use arena::{BodyArena, BodyRef, SyncBody, SyncFn};
/// An async node's body, type-erased likewise.
pub(crate) type AsyncBody = Arc<
    dyn Fn(AsyncNodeCtx, OwnedArgs, bool) -> BoxFuture<'static, NodeResult<Value>> + Send + Sync,
>;

#[derive(Clone)]
pub(crate) enum Body {
    Input,
    Sync(SyncBody),
    Async(AsyncBody),
}

pub(crate) struct NodeEntry {
    pub(crate) meta: Arc<NodeMeta>,
    pub(crate) body: Body,
    pub(crate) deps: Vec<u32>,
    pub(crate) output: TypeTag,
}

pub(crate) struct DagInner {
    pub(crate) id: u32,
    pub(crate) name: String,
    pub(crate) nodes: Vec<NodeEntry>,
    pub(crate) by_name: HashMap<String, u32>,
    pub(crate) topo: Vec<u32>,
    pub(crate) stages: Vec<String>,
    pub(crate) children: Vec<Vec<u32>>,
    pub(crate) named_refs: Vec<String>,
}

/// A validated, immutable graph. Clones share the same graph.
#[derive(Clone)]
pub struct Dag {
    pub(crate) inner: Arc<DagInner>,
}

impl Dag {
    /// The graph's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How many nodes and inputs it has.
    pub fn len(&self) -> usize {
        self.inner.nodes.len()
    }

    /// Whether it has no nodes at all.
    pub fn is_empty(&self) -> bool {
        self.inner.nodes.is_empty()
    }

    /// The declaration of the node or input called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeMeta> {
        self.inner
            .by_name
            .get(name)
            .map(|&i| &*self.inner.nodes[i as usize].meta)
    }

    /// Every node and input, in a topological order (producers before consumers).
    pub fn nodes(&self) -> impl Iterator<Item = &NodeMeta> + '_ {
        self.inner
            .topo
            .iter()
            .map(|&i| &*self.inner.nodes[i as usize].meta)
    }

    /// The stages, in declaration order.
    pub fn stages(&self) -> &[String] {
        &self.inner.stages
    }

    /// Names of the nodes that read `name`'s output.
    pub fn consumers(&self, name: &str) -> Vec<&str> {
        let Some(&index) = self.inner.by_name.get(name) else {
            return Vec::new();
        };
        // One entry per edge (a node may read the same value twice); list each reader once.
        let mut readers: Vec<&str> = self.inner.children[index as usize]
            .iter()
            .map(|&c| self.inner.nodes[c as usize].meta.name())
            .collect();
        readers.dedup();
        readers
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<u32> {
        self.inner.by_name.get(name).copied()
    }

    /// The node a handle refers to, if the handle belongs to this graph and resolves.
    pub(crate) fn resolve_key(&self, dag: u32, key: Key, type_name: &str) -> Result<u32, String> {
        if dag != self.inner.id {
            return Err(format!(
                "(a `{type_name}` handle from another graph builder)"
            ));
        }
        match key {
            handle::Key::Node(index) => Ok(index),
            handle::Key::Named(reference) => {
                let name = &self.inner.named_refs[reference as usize];
                self.index_of(name).ok_or_else(|| name.clone())
            }
        }
    }

    pub(crate) fn entry(&self, index: u32) -> &NodeEntry {
        &self.inner.nodes[index as usize]
    }
}

impl std::fmt::Debug for Dag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dag")
            .field("name", &self.inner.name)
            .field("nodes", &self.inner.nodes.len())
            .finish()
    }
}
