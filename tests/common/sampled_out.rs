//! A tracer provider whose sampler drops every run: what sampled-out runs are tested with.

#![allow(dead_code)] // each test binary uses its own part

use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

/// A tracer provider that samples nothing and exports nowhere.
pub fn off_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build()
}
