//! Telemetry configuration: every variable, profiles, the TOML file, explain(), strict mode.
//! No test touches the process environment: each passes its variables to the builder.

mod builder_order;
mod edge_values;
mod explain;
mod file;
mod file_layers;
mod file_lists;
mod install_edges;
mod profiles;
mod props;
mod rules;
mod secrets;
mod variables;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// A TOML file with a unique name, removed on drop.
pub(crate) struct TempToml(pub(crate) PathBuf);

impl TempToml {
    pub(crate) fn new(text: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "dagtel-config-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn var(&self) -> (&'static str, String) {
        ("DAGTEL_CONFIG", self.0.display().to_string())
    }
}

impl Drop for TempToml {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
