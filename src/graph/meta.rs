use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

/// How a node is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeKind {
    /// A value supplied by the caller at run time.
    Input,
    /// A synchronous function, run on the executor's threads.
    Sync,
    /// An `async` function, run on tokio.
    Async,
}

/// How often a failing node is tried again, and how long to wait in between.
///
/// Delays grow geometrically: `initial`, `initial * factor`, ... capped at `max_delay`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial: Duration,
    factor: f64,
    max_delay: Duration,
}

impl RetryPolicy {
    /// Run once, never retry (the default).
    pub const NONE: Self = Self {
        max_attempts: 1,
        initial: Duration::ZERO,
        factor: 1.0,
        max_delay: Duration::ZERO,
    };

    /// Up to `max_attempts` attempts in all (values below 1 mean 1), with no delay.
    pub fn attempts(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            ..Self::NONE
        }
    }

    /// Waits `initial` before the first retry, then `factor` times longer each time, at most
    /// `max_delay` (an `initial` above it waits `max_delay`). A `factor` below 1 (or not a
    /// number) is treated as 1.
    pub fn with_backoff(self, initial: Duration, factor: f64, max_delay: Duration) -> Self {
        let factor = if factor.is_finite() && factor >= 1.0 {
            factor
        } else {
            1.0
        };
        Self {
            initial: initial.min(max_delay),
            factor,
            max_delay,
            ..self
        }
    }

    /// Attempts in all, including the first.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait before attempt `next_attempt` (2 for the first retry).
    pub fn delay_before(&self, next_attempt: u32) -> Duration {
        let retries_so_far = next_attempt.saturating_sub(2) as i32;
        let scaled = self.initial.as_secs_f64() * self.factor.powi(retries_so_far);
        // Large factors overflow to infinity, which no Duration holds: that is the cap.
        Duration::try_from_secs_f64(scaled)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::NONE
    }
}

/// The declaration of one node as hooks and reports see it.
///
/// The executor builds these once per graph, so hooks receive them by reference at no cost.
/// Programs that drive hooks from their own executor build them with [`NodeMeta::new`].
#[derive(Clone, Debug)]
pub struct NodeMeta {
    name: Arc<str>,
    kind: NodeKind,
    tags: Vec<(String, String)>,
    stage: Option<String>,
    task_group: Option<String>,
    deps: Vec<String>,
    output_type: &'static str,
    version: Option<String>,
    retry: RetryPolicy,
    timeout: Option<Duration>,
    fingerprint: u64,
    position: Option<GraphPosition>,
}

/// Where a node sits in its graph: indices that hooks can use to keep per-node state in flat
/// arrays (e.g. a span context per node for fan-in links) instead of maps keyed by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphPosition {
    /// The node's index, `0..node_count`.
    pub index: u32,
    /// The indices of its dependencies, in the order of [`NodeMeta::deps`].
    pub deps: Vec<u32>,
    /// How many nodes (inputs included) the graph has.
    pub node_count: u32,
}

impl NodeMeta {
    /// A sync node with no tags, stage or dependencies.
    pub fn new(name: impl Into<String>) -> Self {
        let mut meta = Self {
            name: Arc::from(name.into()),
            kind: NodeKind::Sync,
            tags: Vec::new(),
            stage: None,
            task_group: None,
            deps: Vec::new(),
            output_type: "",
            version: None,
            retry: RetryPolicy::NONE,
            timeout: None,
            fingerprint: 0,
            position: None,
        };
        meta.refresh_fingerprint();
        meta
    }

    /// Adds a tag.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self.refresh_fingerprint();
        self
    }

    /// Sets the stage.
    pub fn with_stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = Some(stage.into());
        self.refresh_fingerprint();
        self
    }

    /// Puts the node in a task group (see [`TaskMeta::group`](crate::TaskMeta::group)).
    pub fn with_task_group(mut self, group: impl Into<String>) -> Self {
        self.task_group = Some(group.into());
        self.refresh_fingerprint();
        self
    }

    /// Sets the dependency names, in argument order.
    pub fn with_deps<I, S>(mut self, deps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.deps = deps.into_iter().map(Into::into).collect();
        self.refresh_fingerprint();
        self
    }

    /// Sets a code version; change it when the node's logic changes.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self.refresh_fingerprint();
        self
    }

    pub(crate) fn declared(parts: DeclaredNode) -> Self {
        let mut meta = Self {
            name: parts.name.into(),
            kind: parts.kind,
            tags: parts.tags,
            stage: parts.stage,
            task_group: parts.task_group,
            deps: parts.deps,
            output_type: parts.output_type,
            version: parts.version,
            retry: parts.retry,
            timeout: parts.timeout,
            fingerprint: 0,
            position: parts.position,
        };
        meta.refresh_fingerprint();
        meta
    }

    /// Unique name in the graph.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared: attribute values and per-run records can keep it without copying.
    pub fn shared_name(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    /// Input, sync or async.
    pub fn kind(&self) -> NodeKind {
        self.kind
    }

    /// Key/value tags, in declaration order.
    pub fn tags(&self) -> &[(String, String)] {
        &self.tags
    }

    /// The value of tag `key`, if set (the last one wins when a key repeats).
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The declared stage.
    pub fn stage(&self) -> Option<&str> {
        self.stage.as_deref()
    }

    /// The explicit task group, if the node was put in one.
    pub fn task_group(&self) -> Option<&str> {
        self.task_group.as_deref()
    }

    /// The task this node runs in: its group, or its own name.
    pub fn task_id(&self) -> &str {
        self.task_group.as_deref().unwrap_or(&*self.name)
    }

    /// Names of the nodes and inputs this node reads, in argument order.
    pub fn deps(&self) -> &[String] {
        &self.deps
    }

    /// The Rust type of the node's output.
    pub fn output_type(&self) -> &'static str {
        self.output_type
    }

    /// The declared code version.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// The per-attempt timeout (async nodes).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The node's position in a built graph; `None` for metadata built by hand with
    /// [`NodeMeta::new`].
    pub fn position(&self) -> Option<&GraphPosition> {
        self.position.as_ref()
    }

    /// A hash of the declaration (name, kind, dependencies, types, tags, stage, version).
    ///
    /// Computed once when the node is declared. It changes when any of those change, so it
    /// can key caches or tell two runs' versions of a node apart; bump the version when only
    /// the function body changes. Stable within one build of the program.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn refresh_fingerprint(&mut self) {
        let mut hasher = DefaultHasher::new();
        (
            &self.name,
            self.kind,
            &self.tags,
            &self.stage,
            &self.task_group,
            &self.deps,
            self.output_type,
            &self.version,
        )
            .hash(&mut hasher);
        self.fingerprint = hasher.finish();
    }
}

/// Everything the builder knows about a node once its dependencies are named.
pub(crate) struct DeclaredNode {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) stage: Option<String>,
    pub(crate) task_group: Option<String>,
    pub(crate) deps: Vec<String>,
    pub(crate) output_type: &'static str,
    pub(crate) version: Option<String>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Option<Duration>,
    pub(crate) position: Option<GraphPosition>,
}
