//! Fan-in provenance: each node's final span is recorded in a per-run registry so that its
//! children can link to it.
//!
//! Nodes of a built graph are found by index. Per run the registry keeps only each node's
//! 8-byte span id, in a flat array of atomics (0: no span yet): every node span of a run is a
//! descendant of the run's root span and shares its trace id, flags and trace state, so a
//! link is rebuilt from the root's context and the span id. A node span that differs from the
//! root in any of those (a sampler that changes the trace state or the flags of some spans, a
//! suppressed or shut-down provider) is kept whole in a side map instead. Node names are the
//! graph's, built once per graph; entity ids, which few nodes declare, are kept in a side map.
//! The arrays are pooled per graph and reused by later runs; concurrent runs get their own.
//!
//! Nodes described by hand (programs with their own executor) are found by name, under a
//! mutex.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::trace::{Link, SpanContext, SpanId};
use opentelemetry::{KeyValue, StringValue};

use super::bound::GraphMetrics;
use crate::graph::{Dag, NodeMeta};
use crate::otel::conventions as conv;
use crate::sync::lock;

/// How many span arrays a graph keeps for later runs (more only while runs overlap).
const POOLED: usize = 2;

/// A node's span as its children see it (the by-name path).
#[derive(Clone, Debug)]
pub(crate) struct ParentSpan {
    pub(crate) context: SpanContext,
    pub(crate) name: StringValue,
    pub(crate) entity: Option<Arc<str>>,
}

impl ParentSpan {
    fn link(&self) -> Link {
        link(
            self.context.clone(),
            self.name.clone(),
            self.entity.as_ref(),
        )
    }
}

fn link(context: SpanContext, name: StringValue, entity: Option<&Arc<str>>) -> Link {
    let mut attributes = Vec::with_capacity(if entity.is_some() { 2 } else { 1 });
    attributes.push(KeyValue::new(conv::LINK_PARENT, name));
    if let Some(entity) = entity {
        attributes.push(KeyValue::new(
            conv::LINK_PARENT_ENTITY,
            StringValue::from(Arc::clone(entity)),
        ));
    }
    Link::new(context, attributes, 0)
}

/// What fan-in links need of a graph, kept across its runs: node names and spare span arrays.
#[derive(Debug)]
pub(crate) struct GraphLinks {
    len: usize,
    names: OnceLock<Arc<[StringValue]>>,
    pool: Mutex<Vec<Box<[AtomicU64]>>>,
}

impl GraphLinks {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            len,
            names: OnceLock::new(),
            pool: Mutex::new(Vec::new()),
        }
    }

    fn names(&self, dag: &Dag) -> Arc<[StringValue]> {
        let names = self.names.get_or_init(|| {
            (0..self.len as u32)
                .map(|i| StringValue::from(dag.entry(i).meta.shared_name()))
                .collect()
        });
        Arc::clone(names)
    }

    /// A zeroed span array, from the pool if one is free.
    fn checkout(&self) -> Box<[AtomicU64]> {
        let spare = lock(&self.pool).pop();
        spare.unwrap_or_else(|| (0..self.len).map(|_| AtomicU64::new(0)).collect())
    }

    /// Takes back an array, zeroed, unless the pool is full.
    fn give_back(&self, mut spans: Box<[AtomicU64]>) {
        if lock(&self.pool).len() >= POOLED {
            return;
        }
        for span in spans.iter_mut() {
            *span.get_mut() = 0;
        }
        let mut pool = lock(&self.pool);
        if pool.len() < POOLED {
            pool.push(spans);
        }
    }
}

/// The spans of one run's nodes.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    indexed: Option<Indexed>,
    by_name: Mutex<HashMap<String, ParentSpan>>,
}

/// The spans of a built graph's nodes, by graph index.
#[derive(Debug)]
struct Indexed {
    graph: Arc<GraphMetrics>,
    names: Arc<[StringValue]>,
    root: SpanContext,
    /// Each node's span id; 0 while it has none (and 1 for a span kept in `others` whose id
    /// is 0).
    spans: Box<[AtomicU64]>,
    /// Entity ids of the nodes that declared one.
    entities: Mutex<HashMap<u32, Arc<str>>>,
    any_entity: AtomicBool,
    /// Node spans whose trace id, flags or trace state differ from the root's.
    others: Mutex<HashMap<u32, SpanContext>>,
    any_other: AtomicBool,
}

impl Drop for Indexed {
    fn drop(&mut self) {
        let spans = std::mem::take(&mut self.spans);
        self.graph.links.give_back(spans);
    }
}

/// The links a node's span starts with.
pub(crate) struct Links {
    pub(crate) links: Vec<Link>,
    /// Upstream nodes with a span in this run.
    pub(crate) parents: usize,
}

impl Indexed {
    fn record(&self, index: u32, context: &SpanContext, entity: Option<&Arc<str>>) -> bool {
        let Some(slot) = self.spans.get(index as usize) else {
            return false;
        };
        if let Some(entity) = entity {
            lock(&self.entities).insert(index, Arc::clone(entity));
            self.any_entity.store(true, Ordering::Release);
        }
        let root = &self.root;
        let mut id = u64::from_be_bytes(context.span_id().to_bytes());
        if id == 0
            || context.trace_id() != root.trace_id()
            || context.trace_flags() != root.trace_flags()
            || context.is_remote()
            || context.trace_state() != root.trace_state()
        {
            lock(&self.others).insert(index, context.clone());
            self.any_other.store(true, Ordering::Release);
            id = id.max(1);
        }
        slot.store(id, Ordering::Release);
        true
    }

    /// Adds links to the parents in `deps` that have a span, up to `max` links in all;
    /// returns how many have one.
    fn links_for(&self, deps: &[u32], max: usize, links: &mut Vec<Link>) -> usize {
        let entities = self
            .any_entity
            .load(Ordering::Acquire)
            .then(|| lock(&self.entities));
        let others = self
            .any_other
            .load(Ordering::Acquire)
            .then(|| lock(&self.others));
        let names = &self.names;
        let mut parents = 0;
        let mut seen = std::collections::HashSet::new();
        for (i, &d) in deps.iter().enumerate() {
            // A node may read the same parent twice; it is one parent.
            let repeat = if deps.len() <= 32 {
                deps[..i].contains(&d)
            } else {
                !seen.insert(d)
            };
            if repeat {
                continue;
            }
            let Some(id) = self
                .spans
                .get(d as usize)
                .map(|s| s.load(Ordering::Acquire))
                .filter(|&id| id != 0)
            else {
                continue;
            };
            parents += 1;
            if links.len() >= max {
                continue;
            }
            let context = others
                .as_ref()
                .and_then(|o| o.get(&d).cloned())
                .unwrap_or_else(|| {
                    SpanContext::new(
                        self.root.trace_id(),
                        SpanId::from(id),
                        self.root.trace_flags(),
                        false,
                        self.root.trace_state().clone(),
                    )
                });
            let entity = entities.as_ref().and_then(|e| e.get(&d));
            links.push(link(context, names[d as usize].clone(), entity));
        }
        parents
    }
}

impl Registry {
    /// A registry for runs of `dag` whose root span is `root`, with a span array from
    /// `graph`'s pool.
    pub(crate) fn for_graph(graph: Arc<GraphMetrics>, dag: &Dag, root: SpanContext) -> Self {
        let names = graph.links.names(dag);
        let spans = graph.links.checkout();
        Self {
            indexed: Some(Indexed {
                graph,
                names,
                root,
                spans,
                entities: Mutex::default(),
                any_entity: AtomicBool::new(false),
                others: Mutex::default(),
                any_other: AtomicBool::new(false),
            }),
            by_name: Mutex::default(),
        }
    }

    /// The span id of the node at graph index `index` in this run, when it has one that
    /// shares the root span's trace, flags and trace state; 0 otherwise.
    pub(crate) fn span_id(&self, index: u32) -> u64 {
        let Some(indexed) = &self.indexed else {
            return 0;
        };
        let id = indexed
            .spans
            .get(index as usize)
            .map_or(0, |s| s.load(Ordering::Acquire));
        let other = id != 0
            && indexed.any_other.load(Ordering::Acquire)
            && lock(&indexed.others).contains_key(&index);
        if other { 0 } else { id }
    }

    /// Records `node`'s final span.
    pub(crate) fn record(&self, node: &NodeMeta, context: &SpanContext, entity: Option<&Arc<str>>) {
        if let (Some(indexed), Some(p)) = (&self.indexed, node.position())
            && indexed.record(p.index, context, entity)
        {
            return;
        }
        let span = ParentSpan {
            context: context.clone(),
            name: StringValue::from(node.shared_name()),
            entity: entity.cloned(),
        };
        let mut by_name = lock(&self.by_name);
        by_name.insert(node.name().to_string(), span);
    }

    /// Links to `node`'s upstream spans: when it has at least two (a fan-in), or at least one
    /// with `every_edge`; at most `max` of them.
    pub(crate) fn links_for(&self, node: &NodeMeta, every_edge: bool, max: usize) -> Links {
        let min = if every_edge { 1 } else { 2 };
        let indexed = match (&self.indexed, node.position()) {
            (Some(indexed), Some(p)) => Some((indexed, &p.deps[..])),
            _ => None,
        };
        let count = match indexed {
            Some((_, deps)) => deps.len(),
            None => node.deps().len(),
        };
        if count < min {
            return Links {
                links: Vec::new(),
                parents: 0,
            };
        }
        let mut links = Vec::with_capacity(count.min(max));
        let mut parents = 0;
        match indexed {
            Some((indexed, deps)) => parents = indexed.links_for(deps, max, &mut links),
            None => {
                let by_name = lock(&self.by_name);
                let mut seen = std::collections::HashSet::new();
                for dep in node.deps() {
                    if !seen.insert(dep) {
                        continue;
                    }
                    if let Some(parent) = by_name.get(dep) {
                        parents += 1;
                        if links.len() < max {
                            links.push(parent.link());
                        }
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

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{TraceFlags, TraceId, TraceState};

    use super::*;
    use crate::graph::DagBuilder;
    use crate::otel::hooks::bound::BoundCache;

    fn diamond() -> Dag {
        let mut g = DagBuilder::new("links");
        let a = g.node("a").run((), |_, ()| Ok(1u8));
        let b = g.node("b").run((), |_, ()| Ok(2u8));
        g.node("c").run((a, b), |_, (a, b)| Ok(*a + *b));
        g.build().unwrap()
    }

    fn context(trace: u128, span: u64) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        )
    }

    fn linked(links: &Links) -> Vec<(SpanContext, String)> {
        links
            .links
            .iter()
            .map(|l| {
                (
                    l.span_context.clone(),
                    l.attributes[0].value.as_str().into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_pooled_array_comes_back_empty_and_concurrent_registries_get_their_own() {
        let dag = diamond();
        let graph = BoundCache::default().for_dag(&dag);
        let node = |name: &str| dag.node(name).unwrap();
        let first = Registry::for_graph(Arc::clone(&graph), &dag, context(1, 100));
        first.record(node("a"), &context(1, 101), None);
        first.record(node("b"), &context(1, 102), Some(&Arc::from("e-b")));
        let links = first.links_for(node("c"), false, 128);
        assert_eq!(
            linked(&links),
            [
                (context(1, 101), "a".to_string()),
                (context(1, 102), "b".to_string())
            ]
        );
        assert_eq!(links.links[1].attributes.len(), 2, "b's entity");
        assert_eq!(links.links[0].attributes.len(), 1, "a declared none");
        let array = first.indexed.as_ref().unwrap().spans.as_ptr();

        // A concurrent run gets an array of its own.
        let second = Registry::for_graph(Arc::clone(&graph), &dag, context(2, 200));
        assert_ne!(second.indexed.as_ref().unwrap().spans.as_ptr(), array);
        assert_eq!(second.links_for(node("c"), true, 128).parents, 0);
        drop(second);
        drop(first);

        // A later run reuses an array, cleared: only its own spans are there.
        let third = Registry::for_graph(Arc::clone(&graph), &dag, context(3, 300));
        let third_array = third.indexed.as_ref().unwrap().spans.as_ptr();
        assert!(
            lock(&graph.links.pool).len() == 1,
            "one array left in the pool"
        );
        let _ = third_array;
        third.record(node("a"), &context(3, 301), None);
        let links = third.links_for(node("c"), true, 128);
        assert_eq!(links.parents, 1);
        assert_eq!(linked(&links), [(context(3, 301), "a".to_string())]);
        assert_eq!(
            links.links[0].attributes.len(),
            1,
            "no entity from the first run"
        );
    }

    #[test]
    fn a_node_span_unlike_the_root_is_linked_as_it_is() {
        let dag = diamond();
        let graph = BoundCache::default().for_dag(&dag);
        let node = |name: &str| dag.node(name).unwrap();
        let registry = Registry::for_graph(graph, &dag, context(1, 100));
        let state = TraceState::from_key_value([("k", "v")]).unwrap();
        let a = SpanContext::new(
            TraceId::from(1),
            SpanId::from(101),
            TraceFlags::SAMPLED,
            false,
            state,
        );
        let b = SpanContext::new(
            TraceId::from(1),
            SpanId::INVALID,
            TraceFlags::default(),
            false,
            TraceState::default(),
        );
        registry.record(node("a"), &a, None);
        registry.record(node("b"), &b, None);
        let links = registry.links_for(node("c"), false, 128);
        assert_eq!(linked(&links), [(a, "a".to_string()), (b, "b".to_string())]);
    }

    #[test]
    fn nodes_without_a_position_are_found_by_name() {
        let dag = diamond();
        let graph = BoundCache::default().for_dag(&dag);
        let registry = Registry::for_graph(graph, &dag, context(1, 100));
        let (left, right) = (NodeMeta::new("left"), NodeMeta::new("right"));
        let join = NodeMeta::new("join").with_deps(["left", "right"]);
        registry.record(&left, &context(1, 5), None);
        registry.record(&right, &context(1, 6), None);
        let links = registry.links_for(&join, false, 1);
        assert_eq!(links.parents, 2);
        assert_eq!(linked(&links), [(context(1, 5), "left".to_string())]);
    }
}
