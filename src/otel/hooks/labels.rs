//! What a node span carries from the node's declaration (stage, layer, version, task group)
//! and the tracer its layer selects, built once per graph instead of once per span.
//!
//! Strings copied into a span are allocated on the pipeline thread and freed on the exporting
//! thread; shared ones cost a reference count. Graphs with none of these labels keep nothing.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry::StringValue;
use opentelemetry_sdk::trace::SdkTracer;

use super::scopes::{LAYER_TAG, Scopes};
use crate::graph::{Dag, NodeMeta};

/// A node's declared labels as span attribute values, and its layer's tracer.
#[derive(Debug)]
pub(crate) struct NodeLabels {
    pub(crate) stage: Option<StringValue>,
    pub(crate) layer: Option<StringValue>,
    pub(crate) version: Option<StringValue>,
    pub(crate) task_group: Option<StringValue>,
    /// Index into [`GraphLabels::tracers`] of the node's layer tracer.
    tracer: Option<u32>,
}

impl NodeLabels {
    /// No labels.
    pub(crate) const NONE: Self = Self {
        stage: None,
        layer: None,
        version: None,
        task_group: None,
        tracer: None,
    };

    /// The labels of `meta`, shared strings made afresh (nodes outside a built graph).
    pub(crate) fn of(meta: &NodeMeta) -> Self {
        Self::with(meta, |s| StringValue::from(Arc::<str>::from(s)))
    }

    /// The labels of `meta`, each string made by `share`; no tracer.
    fn with<'m>(meta: &'m NodeMeta, mut share: impl FnMut(&'m str) -> StringValue) -> Self {
        Self {
            stage: meta.stage().map(&mut share),
            layer: meta.tag(LAYER_TAG).map(&mut share),
            version: meta.version().map(&mut share),
            task_group: meta.task_group().map(&mut share),
            tracer: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.stage.is_none()
            && self.layer.is_none()
            && self.version.is_none()
            && self.task_group.is_none()
    }
}

/// The labels of a graph's nodes, by graph index, and one tracer per layer.
#[derive(Debug, Default)]
pub(crate) struct GraphLabels {
    /// Empty when no node has a label.
    nodes: Box<[NodeLabels]>,
    tracers: Vec<SdkTracer>,
}

impl GraphLabels {
    /// Builds the labels of every node of `dag`; equal strings are shared.
    pub(crate) fn new(dag: &Dag, scopes: &Scopes) -> Self {
        let mut strings: HashMap<&str, Arc<str>> = HashMap::new();
        let mut layers: HashMap<&str, u32> = HashMap::new();
        let mut tracers = Vec::new();
        let mut any = false;
        let nodes: Box<[NodeLabels]> = (0..dag.len() as u32)
            .map(|i| {
                let meta = &dag.entry(i).meta;
                let mut labels = NodeLabels::with(meta, |s| {
                    StringValue::from(Arc::clone(strings.entry(s).or_insert_with(|| Arc::from(s))))
                });
                labels.tracer = meta.tag(LAYER_TAG).map(|layer| {
                    *layers.entry(layer).or_insert_with(|| {
                        tracers.push(scopes.tracer(layer));
                        (tracers.len() - 1) as u32
                    })
                });
                any |= !labels.is_empty();
                labels
            })
            .collect();
        Self {
            nodes: if any { nodes } else { Box::default() },
            tracers,
        }
    }

    /// The labels of the node at graph index `index`, if it has any.
    pub(crate) fn node(&self, index: u32) -> Option<&NodeLabels> {
        self.nodes.get(index as usize)
    }

    /// The tracer of a node's layer, if it has one.
    pub(crate) fn tracer(&self, labels: &NodeLabels) -> Option<&SdkTracer> {
        self.tracers.get(labels.tracer? as usize)
    }
}
