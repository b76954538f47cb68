//! Run identifiers.

use std::fmt;
use std::sync::Arc;

/// The identifier of one pipeline run.
///
/// Generated runs get a UUIDv7, so ids sort by start time; a caller that already has an id
/// (from a scheduler, a parent process, a ticket) passes its own with [`RunId::from`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(Arc<str>);

impl RunId {
    /// A new time-ordered id (UUIDv7).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string().into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's shared text, for attribute values that should not copy it.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl From<&str> for RunId {
    fn from(value: &str) -> Self {
        Self(value.into())
    }
}

impl From<String> for RunId {
    fn from(value: String) -> Self {
        Self(value.into())
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({})", self.0)
    }
}
