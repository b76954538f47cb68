//! What a node reports while it runs (its entity, events, artifacts, dataset sizes), turned
//! into span events, log records and metrics on the node's current OpenTelemetry context.
//!
//! The calls are cheap no-ops when no OpenTelemetry hook is installed: they find no
//! [`NodeScope`] in the current context.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use serde::Serialize;

use super::context::{NodeScope, Running, run_instruments, running};
use super::conventions as conv;

/// Calls `f` with the running node's scope and its own context (the node span, else whatever
/// span is current); `None` when no node is running here under an OpenTelemetry hook.
fn with_node<R>(f: impl FnOnce(&NodeScope, Context) -> R) -> Option<R> {
    let scope = NodeScope::here()?;
    let cx = scope.node_context().unwrap_or_else(Context::current);
    // A sync node's context holds its span but not its scope (the thread does): in work
    // carried elsewhere, the report's log record finds the node through the context.
    let cx = match cx.get::<Arc<NodeScope>>() {
        Some(_) => cx,
        None => cx.with_value(Arc::clone(&scope)),
    };
    Some(f(&scope, cx))
}

/// Records the node's entity id on its span (and on links from its children) and for its
/// log records; the first declaration of an attempt wins.
pub(crate) fn entity(id: &str) {
    let declare = |scope: &NodeScope| {
        if scope.set_entity(id) {
            let cx = scope.node_context().unwrap_or_else(Context::current);
            cx.span()
                .set_attribute(KeyValue::new(conv::ENTITY_ID, id.to_string()));
        }
    };
    running(|node| match node {
        Running::Hooked(scope) => {
            declare(scope);
            // The executor's record of the same node, for its log records; not the node a
            // newer scope runs inside (a hand-driven node in its body).
            crate::execution::current::with(|node| {
                if let Some(node) = node.filter(|node| scope.is_for(node.node())) {
                    node.set_entity(id);
                }
            });
        }
        Running::Carried(scope) if scope.reports() => declare(&scope),
        Running::Carried(scope) => {
            let _ = scope.set_entity(id);
        }
        Running::Executor(node) => node.set_entity(id),
        Running::None => {}
    });
}

/// A named event with attributes: a span event, a log record.
pub(crate) fn event(name: &str, attributes: &impl Serialize) {
    with_node(|_, cx| {
        let attrs = flatten(attributes, None);
        cx.span().add_event(name.to_string(), attrs.clone());
        log_record(&cx, name, attrs);
    });
}

/// An artifact: a span event, a log record, and one more on the artifacts counter.
pub(crate) fn artifact(name: &str, payload: &impl Serialize) {
    with_node(|scope, cx| {
        let mut attrs = vec![KeyValue::new(conv::ARTIFACT_NAME, name.to_string())];
        attrs.extend(flatten(payload, Some("payload")));
        cx.span()
            .add_event(conv::EVENT_ARTIFACT.to_string(), attrs.clone());
        log_record(&cx, conv::EVENT_ARTIFACT, attrs);
        if let Some((instruments, dag)) = run_instruments(&cx) {
            instruments.artifacts.add(1, &metric_attrs(scope, dag));
        }
    });
}

/// A dataset's size: gauges, and a span event.
pub(crate) fn dataset(name: &str, rows: u64, columns: u64) {
    with_node(|scope, cx| {
        if let Some((instruments, dag)) = run_instruments(&cx) {
            let attrs = metric_attrs(scope, dag);
            instruments.dataset_rows.record(rows, &attrs);
            instruments.dataset_columns.record(columns, &attrs);
        }
        cx.span().add_event(
            conv::EVENT_DATASET.to_string(),
            vec![
                KeyValue::new(conv::DATASET_NAME, name.to_string()),
                KeyValue::new(conv::DATASET_ROWS, count(rows)),
                KeyValue::new(conv::DATASET_COLUMNS, count(columns)),
            ],
        );
    });
}

/// A count as an attribute: an integer, or its digits past `i64::MAX` (never a wrapped
/// negative number).
fn count(n: u64) -> Value {
    match i64::try_from(n) {
        Ok(n) => Value::I64(n),
        Err(_) => Value::String(n.to_string().into()),
    }
}

fn metric_attrs(scope: &NodeScope, dag: Arc<str>) -> [KeyValue; 2] {
    [
        KeyValue::new(conv::NODE_NAME, scope.name_value()),
        KeyValue::new(conv::DAG_NAME, StringValue::from(dag)),
    ]
}

/// The target of the `tracing` events that carry node reports.
pub(crate) const EVENT_TARGET: &str = "dagtel::event";

thread_local! {
    /// The attributes of the node report being logged on this thread, for
    /// `RunIdLogProcessor` to add to its record with their types (`tracing` fields cannot
    /// have runtime names, so the event itself carries them as one string).
    static REPORT_ATTRIBUTES: RefCell<Option<Vec<KeyValue>>> = const { RefCell::new(None) };
}

/// Calls `f` with each attribute of the node report being logged on this thread, if any.
pub(crate) fn for_each_report_attribute(mut f: impl FnMut(&KeyValue)) {
    REPORT_ATTRIBUTES.with(|cell| {
        // A processor that logs again from inside the call finds the cell borrowed: its own
        // record simply gets nothing.
        if let Ok(attrs) = cell.try_borrow()
            && let Some(attrs) = attrs.as_ref()
        {
            attrs.iter().for_each(&mut f);
        }
    });
}

fn log_record(node_cx: &Context, name: &str, attrs: Vec<KeyValue>) {
    // A `tracing` event, so it reaches every subscriber: the OpenTelemetry log bridge and the
    // console. With the node's context attached the record is correlated with the node span;
    // with no parent span it does not also become an event on a user's `tracing` span.
    let _attached = node_cx.clone().attach();
    let fields = attrs
        .iter()
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect::<Vec<_>>()
        .join(" ");
    /// Takes the attributes back however the subscriber returns.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            let _ = REPORT_ATTRIBUTES.try_with(|cell| cell.borrow_mut().take());
        }
    }
    REPORT_ATTRIBUTES.with(|cell| *cell.borrow_mut() = Some(attrs));
    let _clear = Clear;
    // The run, node and entity are added by `RunIdLogProcessor` from the context, and the
    // typed attributes from `REPORT_ATTRIBUTES`.
    tracing::info!(
        name: "dag.event",
        target: EVENT_TARGET,
        parent: None,
        attributes = fields.as_str(),
        "{}",
        name
    );
}

/// Turns a serializable payload into attributes: an object's top-level fields become one
/// attribute each (`prefix.field` when a prefix is given); arrays of strings, integers, numbers
/// or booleans keep their type; nested objects and mixed arrays become JSON strings; integers
/// past `i64` keep their digits as a string; any other payload becomes one attribute named
/// `prefix` (or `value`). A field serde cannot represent as JSON (a `u128` past `u64`, a map
/// with non-string keys) becomes a string saying so, and the other fields are kept.
pub fn flatten(payload: &impl Serialize, prefix: Option<&str>) -> Vec<KeyValue> {
    let key = |field: Cow<'_, str>| match prefix {
        Some(p) => format!("{p}.{field}"),
        None => field.into_owned(),
    };
    let value = match serde_json::to_value(payload) {
        Ok(value) => value,
        // One field may be what failed: serialize the fields one by one.
        Err(err) => match super::payload_fields::fields_one_by_one(payload) {
            Some(fields) => {
                return fields
                    .into_iter()
                    .map(|(field, v)| KeyValue::new(key(Cow::Owned(field)), v))
                    .collect();
            }
            None => serde_json::Value::String(format!("<unserializable: {err}>")),
        },
    };
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(field, v)| KeyValue::new(key(Cow::Owned(field)), scalar(v)))
            .collect(),
        other => vec![KeyValue::new(
            prefix.unwrap_or("value").to_string(),
            scalar(other),
        )],
    }
}

pub(super) fn scalar(value: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match value {
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => match (n.as_i64(), n.is_u64()) {
            (Some(i), _) => Value::I64(i),
            // Past i64 (a hash, an id): its digits, not a rounded float.
            (None, true) => Value::String(n.to_string().into()),
            (None, false) => match n.as_f64() {
                Some(f) => Value::F64(f),
                None => Value::String(n.to_string().into()),
            },
        },
        J::String(s) => Value::String(s.into()),
        J::Null => Value::String("null".into()),
        J::Array(items) => typed_array(items),
        nested => Value::String(nested.to_string().into()),
    }
}

/// An array of one scalar type as a typed array; anything else as its JSON text.
fn typed_array(items: Vec<serde_json::Value>) -> Value {
    use serde_json::Value as J;
    if items.iter().all(J::is_string) {
        return Value::Array(Array::String(
            items
                .into_iter()
                .map(|v| StringValue::from(v.as_str().unwrap_or_default().to_string()))
                .collect(),
        ));
    }
    if !items.is_empty() && items.iter().all(J::is_boolean) {
        return Value::Array(Array::Bool(items.iter().filter_map(J::as_bool).collect()));
    }
    if !items.is_empty() && items.iter().all(J::is_i64) {
        return Value::Array(Array::I64(items.iter().filter_map(J::as_i64).collect()));
    }
    if !items.is_empty() && items.iter().all(|v| v.is_f64() || v.is_i64()) {
        return Value::Array(Array::F64(items.iter().filter_map(J::as_f64).collect()));
    }
    Value::String(J::Array(items).to_string().into())
}
