//! Instrumentation scopes by layer: a node's `layer` tag picks the tracer its span is created
//! with, so backends can filter or colour by layer. Nodes without a layer, and run, stage and
//! task spans, use the `dagtel` scope; layer `L` uses `dagtel.L` unless mapped otherwise.

use std::borrow::Cow;
use std::collections::HashMap;

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
}

impl Scopes {
    pub(crate) fn new(provider: SdkTracerProvider, mapping: HashMap<String, String>) -> Self {
        let default = tracer(&provider, conv::SCOPE);
        Self {
            provider,
            mapping,
            default,
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
        tracer(&self.provider, self.scope_name(layer))
    }
}

/// The scope name is borrowed when it is static: the SDK clones the scope into every span it
/// exports, so an owned name costs an allocation per span.
fn tracer(provider: &SdkTracerProvider, name: impl Into<Cow<'static, str>>) -> SdkTracer {
    let scope = InstrumentationScope::builder(name)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    provider.tracer_with_scope(scope)
}
