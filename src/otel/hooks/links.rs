//! Fan-in provenance: each node's final span is recorded in a per-run registry so that its
//! children can link to it.
//!
//! Nodes of a built graph are found by index (a flat array, no lock); nodes described by hand
//! (programs with their own executor) by name, under a mutex.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::trace::{Link, SpanContext};
use opentelemetry::{KeyValue, StringValue};

use crate::graph::NodeMeta;
use crate::otel::conventions as conv;

/// A node's span as its children see it.
#[derive(Clone, Debug)]
pub(crate) struct ParentSpan {
    pub(crate) context: SpanContext,
    pub(crate) name: StringValue,
    pub(crate) entity: Option<Arc<str>>,
}

impl ParentSpan {
    fn link(&self) -> Link {
        let mut attributes = Vec::with_capacity(2);
        attributes.push(KeyValue::new(conv::LINK_PARENT, self.name.clone()));
        if let Some(entity) = &self.entity {
            attributes.push(KeyValue::new(
                conv::LINK_PARENT_ENTITY,
                StringValue::from(entity.clone()),
            ));
        }
        Link::new(self.context.clone(), attributes, 0)
    }
}

/// The spans of one run's nodes.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_index: Box<[OnceLock<ParentSpan>]>,
    by_name: Mutex<HashMap<String, ParentSpan>>,
}

/// The links a node's span starts with.
pub(crate) struct Links {
    pub(crate) links: Vec<Link>,
    /// Upstream nodes with a span in this run.
    pub(crate) parents: usize,
}

impl Registry {
    /// A registry for a graph of `node_count` nodes.
    pub(crate) fn new(node_count: usize) -> Self {
        Self {
            by_index: (0..node_count).map(|_| OnceLock::new()).collect(),
            by_name: Mutex::default(),
        }
    }

    /// Records `node`'s final span.
    pub(crate) fn record(&self, node: &NodeMeta, span: ParentSpan) {
        match node
            .position()
            .and_then(|p| self.by_index.get(p.index as usize))
        {
            Some(slot) => {
                let _ = slot.set(span);
            }
            None => {
                let mut by_name = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
                by_name.insert(node.name().to_string(), span);
            }
        }
    }

    /// Links to `node`'s upstream spans: when it has at least two (a fan-in), or at least one
    /// with `every_edge`; at most `max` of them.
    pub(crate) fn links_for(&self, node: &NodeMeta, every_edge: bool, max: usize) -> Links {
        let min = if every_edge { 1 } else { 2 };
        let mut links = Vec::with_capacity(node.deps().len().min(max));
        let mut parents = 0;
        let mut add = |parent: &ParentSpan, links: &mut Vec<Link>| {
            parents += 1;
            if links.len() < max {
                links.push(parent.link());
            }
        };
        match node.position() {
            Some(p) if !self.by_index.is_empty() => {
                if p.deps.len() < min {
                    return Links { links, parents: 0 };
                }
                let mut seen = std::collections::HashSet::new();
                for (i, &d) in p.deps.iter().enumerate() {
                    // A node may read the same parent twice; it is one parent.
                    let repeat = if p.deps.len() <= 32 {
                        p.deps[..i].contains(&d)
                    } else {
                        !seen.insert(d)
                    };
                    if repeat {
                        continue;
                    }
                    if let Some(parent) = self.by_index.get(d as usize).and_then(OnceLock::get) {
                        add(parent, &mut links);
                    }
                }
            }
            _ => {
                if node.deps().len() < min {
                    return Links { links, parents: 0 };
                }
                let by_name = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
                let mut seen = std::collections::HashSet::new();
                for dep in node.deps() {
                    if !seen.insert(dep) {
                        continue;
                    }
                    if let Some(parent) = by_name.get(dep) {
                        add(parent, &mut links);
                    }
                }
            }
        }
        if parents < min {
            links.clear();
        }
        Links { links, parents }
    }
}
