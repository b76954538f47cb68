//! Trace context across processes, through environment variables.
//!
//! A parent that starts a child process puts its current trace context into the child's
//! environment, following OpenTelemetry's environment-variable carrier convention: the
//! propagators' fields upper-cased (`TRACEPARENT`, `TRACESTATE`, `BAGGAGE`), plus
//! `DAGTEL_RUN_ID` for the run that started it. The child extracts them at startup, and the root
//! span of its next run becomes a child of the parent's span, in the same trace.
//!
//! ```
//! use std::process::Command;
//! use dagtel::telemetry::propagation;
//! use opentelemetry::Context;
//!
//! let mut child = Command::new("true");
//! propagation::inject_into_command(&mut child, &Context::current(), None);
//! ```

use std::collections::HashMap;
use std::process::Command;

use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::{Context, global};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

use super::config::Propagator;
use crate::RunId;

/// The variable carrying the parent's run id.
pub const RUN_ID_VAR: &str = "DAGTEL_RUN_ID";

/// The variables [`inject_into_command`] sets (or clears): W3C trace context, baggage, run id.
pub const PROPAGATION_VARS: [&str; 4] = ["TRACEPARENT", "TRACESTATE", "BAGGAGE", RUN_ID_VAR];

/// What a process inherited from the process that started it.
#[derive(Clone, Debug, Default)]
pub struct ParentContext {
    /// The parent's trace context (an empty context when there was none): start the next
    /// run's root span with it as parent.
    pub context: Context,
    /// The parent's run id, when it passed one.
    pub run_id: Option<RunId>,
}

impl ParentContext {
    /// Whether a parent process passed a valid trace context.
    pub fn is_remote(&self) -> bool {
        use opentelemetry::trace::TraceContextExt;
        self.context.span().span_context().is_valid()
    }

    /// Whether a parent process passed a valid trace context or any baggage: either is worth
    /// handing to the runs (baggage alone comes from a parent outside any span, or one that
    /// propagates baggage only).
    pub(crate) fn carries_anything(&self) -> bool {
        use opentelemetry::baggage::BaggageExt;
        self.is_remote() || !self.context.baggage().is_empty()
    }
}

/// The composite propagator for the configured propagators (`OTEL_PROPAGATORS`).
pub fn propagator(kinds: &[Propagator]) -> TextMapCompositePropagator {
    let propagators = kinds
        .iter()
        .map(|kind| -> Box<dyn TextMapPropagator + Send + Sync> {
            match kind {
                Propagator::TraceContext => Box::new(TraceContextPropagator::new()),
                Propagator::Baggage => Box::new(BaggagePropagator::new()),
            }
        })
        .collect();
    TextMapCompositePropagator::new(propagators)
}

/// The environment-variable name for a propagation field (`traceparent` -> `TRACEPARENT`).
fn var_name(field: &str) -> String {
    field.to_ascii_uppercase().replace(['-', '.'], "_")
}

struct EnvInjector(Vec<(String, String)>);

impl Injector for EnvInjector {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((var_name(key), value));
    }
}

struct EnvExtractor(HashMap<String, String>);

impl Extractor for EnvExtractor {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(&var_name(key)).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The variables that pass `cx` (and `run_id`) to a child process, using `propagator`.
pub fn child_env_with(
    propagator: &dyn TextMapPropagator,
    cx: &Context,
    run_id: Option<&RunId>,
) -> Vec<(String, String)> {
    let mut injector = EnvInjector(Vec::new());
    propagator.inject_context(cx, &mut injector);
    if let Some(run_id) = run_id {
        injector.0.push((RUN_ID_VAR.to_owned(), run_id.to_string()));
    }
    injector.0
}

/// The variables that pass `cx` (and `run_id`) to a child process, using the global
/// propagator (installed by the telemetry bootstrap).
pub fn child_env(cx: &Context, run_id: Option<&RunId>) -> Vec<(String, String)> {
    global::get_text_map_propagator(|propagator| child_env_with(propagator, cx, run_id))
}

/// Sets the propagation variables of `command` for `cx` and `run_id`, first removing any the
/// command would otherwise inherit from this process (a stale parent is worse than none).
pub fn inject_into_command(command: &mut Command, cx: &Context, run_id: Option<&RunId>) {
    for var in PROPAGATION_VARS {
        command.env_remove(var);
    }
    command.envs(child_env(cx, run_id));
}

/// Passes the current context to `command`: inside a node, the node's span becomes the parent
/// of the child process's run, and the run id goes along.
///
/// ```no_run
/// let mut child = std::process::Command::new("my-pipeline");
/// dagtel::telemetry::propagation::inject_current(&mut child);
/// let status = child.status()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn inject_current(command: &mut Command) {
    let run_id = crate::otel::RunScope::current().map(|scope| scope.run_id().clone());
    inject_into_command(command, &Context::current(), run_id.as_ref());
}

/// The parent context carried by `env`, using `propagator`.
pub fn extract_parent_with<I, K, V>(propagator: &dyn TextMapPropagator, env: I) -> ParentContext
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let env = EnvExtractor(env.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
    let context = propagator.extract_with_context(&Context::new(), &env);
    let run_id = env
        .0
        .get(RUN_ID_VAR)
        .filter(|id| !id.is_empty())
        .map(|id| RunId::from(id.as_str()));
    ParentContext { context, run_id }
}

/// The parent context in this process's environment, using the global propagator.
pub fn extract_parent() -> ParentContext {
    global::get_text_map_propagator(|propagator| {
        extract_parent_with(
            propagator,
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry::KeyValue;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };

    use super::*;

    fn remote_parent() -> Context {
        let sc = SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_key_value([("vendor", "x")]).unwrap(),
        );
        Context::new()
            .with_remote_span_context(sc)
            .with_baggage([KeyValue::new("tenant", "acme")])
    }

    #[test]
    fn inject_then_extract_round_trips() {
        let p = propagator(&[Propagator::TraceContext, Propagator::Baggage]);
        let cx = remote_parent();
        let run = RunId::from("run-42");
        let env = child_env_with(&p, &cx, Some(&run));
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.contains(&"TRACEPARENT"), "{names:?}");
        assert!(names.contains(&"TRACESTATE"), "{names:?}");
        assert!(names.contains(&"BAGGAGE"), "{names:?}");
        assert!(names.contains(&RUN_ID_VAR), "{names:?}");
        let traceparent = &env.iter().find(|(k, _)| k == "TRACEPARENT").unwrap().1;
        assert_eq!(
            traceparent,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );

        let parent = extract_parent_with(&p, env);
        let span = parent.context.span();
        let sc = span.span_context();
        assert_eq!(sc.trace_id(), cx.span().span_context().trace_id());
        assert_eq!(sc.span_id(), cx.span().span_context().span_id());
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(sc.trace_state().get("vendor"), Some("x"));
        assert_eq!(
            parent
                .context
                .baggage()
                .get("tenant")
                .map(|v| v.to_string()),
            Some("acme".to_owned())
        );
        assert_eq!(parent.run_id, Some(run));
    }

    #[test]
    fn nothing_to_extract_gives_an_empty_parent() {
        let p = propagator(&[Propagator::TraceContext]);
        let parent = extract_parent_with(&p, [("PATH", "/bin"), (RUN_ID_VAR, "")]);
        assert!(!parent.context.span().span_context().is_valid());
        assert!(parent.run_id.is_none());
    }

    #[test]
    fn commands_lose_inherited_variables_and_get_the_run_id() {
        let mut command = Command::new("true");
        inject_into_command(&mut command, &Context::new(), Some(&RunId::from("r-1")));
        let envs: HashMap<_, _> = command
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_str().unwrap().to_owned(),
                    v.map(|v| v.to_str().unwrap().to_owned()),
                )
            })
            .collect();
        for var in ["TRACEPARENT", "TRACESTATE", "BAGGAGE"] {
            assert_eq!(envs.get(var), Some(&None), "{var} must be cleared");
        }
        assert_eq!(envs.get(RUN_ID_VAR), Some(&Some("r-1".to_owned())));
    }

    #[test]
    fn only_configured_propagators_are_used() {
        let p = propagator(&[Propagator::TraceContext]);
        let env = child_env_with(&p, &remote_parent(), None);
        assert!(env.iter().all(|(k, _)| k != "BAGGAGE"));
        assert!(env.iter().all(|(k, _)| k != RUN_ID_VAR));
    }
}
