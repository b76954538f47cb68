use std::error::Error;
use std::fmt;

/// The error a node returns.
///
/// Any error type converts into it with `?`, so node bodies can use their own errors; the
/// message (with its chain of sources) is what the run record, the run error and hooks show.
pub struct NodeError {
    message: String,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

/// What a node body returns.
pub type NodeResult<T> = Result<T, NodeError>;

impl NodeError {
    /// An error with only a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            source: None,
        }
    }

    /// The message, including the messages of the error's sources.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The original error, when the node returned one.
    pub fn source(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl<E: Error + Send + Sync + 'static> From<E> for NodeError {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut cause = error.source();
        while let Some(inner) = cause {
            message.push_str(": ");
            message.push_str(&inner.to_string());
            cause = inner.source();
        }
        Self {
            message,
            source: Some(Box::new(error)),
        }
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeError({:?})", self.message)
    }
}
