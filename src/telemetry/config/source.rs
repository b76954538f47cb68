//! Where a resolved setting came from.

use std::fmt;
use std::path::PathBuf;

use super::Profile;

/// The layer that supplied a setting, lowest precedence first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The built-in default (the OpenTelemetry specification's, or dagtel's embedded file
    /// exporter).
    Default,
    /// An operational profile (`DAGTEL_PROFILE`).
    Profile(Profile),
    /// The TOML file (`DAGTEL_CONFIG`).
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// An explicit option given to the builder in code.
    Builder,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Profile(p) => write!(f, "profile:{}", p.name()),
            Source::File(path) => write!(f, "file:{}", path.display()),
            Source::Env(var) => write!(f, "env:{var}"),
            Source::Builder => f.write_str("builder"),
        }
    }
}

impl Profile {
    /// The name `DAGTEL_PROFILE` accepts for this profile.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Dev => "dev",
            Profile::Ci => "ci",
            Profile::Prod => "prod",
        }
    }
}
