//! The env-driven telemetry bootstrap: one call at program start configures traces, logs and
//! metrics from the standard `OTEL_*` variables, a profile and an optional TOML file.

pub mod config;
