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

/// A node error as a standard error, for callers whose functions return `Box<dyn Error>`.
/// (`NodeError` itself cannot implement `Error`: it converts from every error with `?`.)
impl From<NodeError> for Box<dyn Error + Send + Sync + 'static> {
    fn from(error: NodeError) -> Self {
        Box::new(StdNodeError(error))
    }
}

struct StdNodeError(NodeError);

impl fmt::Debug for StdNodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for StdNodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for StdNodeError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn Error + 'static))
    }
}
