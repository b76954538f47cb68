//! Telemetry configuration: every variable, profiles, the TOML file, explain(), strict mode.
//! No test touches the process environment: each passes its variables to the builder.

mod explain;
mod file;
mod profiles;
mod props;
mod rules;
mod variables;

use dagtel::telemetry::config::{ConfigBuilder, ConfigError, Resolved};

/// Resolves with exactly these variables set.
pub(crate) fn resolve(vars: &[(&str, &str)]) -> Resolved {
    match ConfigBuilder::new().env(vars.iter().copied()).resolve() {
        Ok(r) => r,
        Err(e) => panic!("{vars:?} failed to resolve: {e}"),
    }
}

/// Resolves in strict mode and expects an error.
pub(crate) fn strict_error(vars: &[(&str, &str)]) -> ConfigError {
    match ConfigBuilder::new()
        .env(vars.iter().copied())
        .strict(true)
        .resolve()
    {
        Ok(r) => panic!("{vars:?} resolved in strict mode: {:?}", r.warnings),
        Err(e) => e,
    }
}
