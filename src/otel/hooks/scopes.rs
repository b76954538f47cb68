//! Instrumentation scopes by layer: a node's `layer` tag picks the tracer its span is created
//! with, so backends can filter or colour by layer. Nodes without a layer, and run, stage and
//! task spans, use the `dagtel` scope; layer `L` uses `dagtel.L` unless mapped otherwise.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, RwLock};

use opentelemetry::InstrumentationScope;
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::otel::conventions as conv;

/// The tag whose value selects a node's instrumentation scope.
pub const LAYER_TAG: &str = "layer";

/// The default scope name for a layer: `dagtel.<layer>`.
pub fn default_scope_for_layer(layer: &str) -> String {
    format!("{}.{layer}", conv::SCOPE)
}

/// Tracers by layer, created once per layer.
#[derive(Debug)]
pub(crate) struct Scopes {
    provider: SdkTracerProvider,
    mapping: HashMap<String, String>,
    pub(crate) default: SdkTracer,
    /// Tracers of layers met outside a built graph (nodes a caller describes), at most
    /// [`STATIC_NAMES`] of them: making one costs more than the rest of a node span's start.
    by_layer: RwLock<HashMap<String, SdkTracer>>,
}

impl Scopes {
    pub(crate) fn new(provider: SdkTracerProvider, mapping: HashMap<String, String>) -> Self {
        let default = tracer(&provider, conv::SCOPE);
        Self {
            provider,
            mapping,
            default,
            by_layer: RwLock::default(),
        }
    }

    /// The scope name for `layer`.
    pub(crate) fn scope_name(&self, layer: &str) -> String {
        self.mapping
            .get(layer)
            .cloned()
            .unwrap_or_else(|| default_scope_for_layer(layer))
    }

    /// A tracer for `layer`.
    pub(crate) fn tracer(&self, layer: &str) -> SdkTracer {
        tracer(&self.provider, static_name(self.scope_name(layer)))
    }

    /// A tracer for `layer`, kept for the next node of the same layer.
    pub(crate) fn cached_tracer(&self, layer: &str) -> SdkTracer {
        let read = self.by_layer.read().unwrap_or_else(|e| e.into_inner());
        if let Some(tracer) = read.get(layer) {
            return tracer.clone();
        }
        drop(read);
        let tracer = self.tracer(layer);
        let mut write = self.by_layer.write().unwrap_or_else(|e| e.into_inner());
        if write.len() < STATIC_NAMES {
            write.insert(layer.to_owned(), tracer.clone());
        }
        tracer
    }
}

/// How many distinct scope names are made static; later ones stay owned.
const STATIC_NAMES: usize = 256;

/// `name`, static: the first [`STATIC_NAMES`] distinct names are leaked once each, so that
/// spans of layered scopes do not allocate a copy of the name each; a program that makes up
/// layer names without bound keeps the rest owned instead of leaking them.
fn static_name(name: String) -> Cow<'static, str> {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.get(name.as_str()) {
        return Cow::Borrowed(known);
    }
    if names.len() >= STATIC_NAMES {
        return Cow::Owned(name);
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    names.insert(leaked);
    Cow::Borrowed(leaked)
}

/// The scope name is borrowed when it is static: the SDK clones the scope into every span it
/// exports, so an owned name costs an allocation per span.
fn tracer(provider: &SdkTracerProvider, name: impl Into<Cow<'static, str>>) -> SdkTracer {
    let scope = InstrumentationScope::builder(name)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    provider.tracer_with_scope(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_tracers_have_their_layers_scope() {
        use opentelemetry::trace::{Span as _, Tracer as _};
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let scopes = Scopes::new(
            provider,
            HashMap::from([("io".to_string(), "etl.io".to_string())]),
        );
        for _ in 0..2 {
            for layer in ["io", "ml"] {
                scopes.cached_tracer(layer).start(layer).end();
            }
        }
        assert_eq!(scopes.by_layer.read().unwrap().len(), 2, "one per layer");
        let scopes: Vec<(String, String)> = exporter
            .get_finished_spans()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    s.instrumentation_scope.name().to_string(),
                )
            })
            .collect();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            scopes,
            [
                pair("io", "etl.io"),
                pair("ml", "dagtel.ml"),
                pair("io", "etl.io"),
                pair("ml", "dagtel.ml")
            ]
        );
    }

    #[test]
    fn scope_names_are_made_static_once_each_up_to_a_bound() {
        let first = static_name("dagtel.test-layer".to_string());
        let again = static_name("dagtel.test-layer".to_string());
        let (Cow::Borrowed(first), Cow::Borrowed(again)) = (first, again) else {
            panic!("a known name is static");
        };
        assert!(std::ptr::eq(first, again), "leaked once, then reused");
        // Made-up names past the bound stay owned instead of leaking.
        let owned = (0..=STATIC_NAMES)
            .map(|i| static_name(format!("dagtel.made-up-{i}")))
            .filter(|name| matches!(name, Cow::Owned(_)))
            .count();
        assert!(owned >= 1, "names past {STATIC_NAMES} are owned");
        assert_eq!(
            static_name("dagtel.test-layer".to_string()),
            "dagtel.test-layer",
            "known names are still found"
        );
    }
}
