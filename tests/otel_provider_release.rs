//! Hooks keep nothing of a run once it has ended: a user who drops their own tracer provider
//! after a run gets it shut down and its batch flushed, as the SDK documents, whatever threads
//! ran the run's nodes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dagtel::otel::OtelHooks;
use dagtel::*;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

/// Records exported span names and whether the provider shut it down.
#[derive(Debug, Clone, Default)]
struct Recording {
    names: Arc<Mutex<Vec<String>>>,
    shut_down: Arc<AtomicBool>,
}

impl SpanExporter for Recording {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.names
            .lock()
            .unwrap()
            .extend(batch.into_iter().map(|s| s.name.to_string()));
        std::future::ready(Ok(()))
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.shut_down.store(true, Ordering::SeqCst);
        Ok(())
    }
}

fn one_node_dag() -> (Dag, Request, Handle<u32>) {
    let mut g = DagBuilder::new("flush");
    let n = g.input::<u32>("n");
    let out = g.node("double").run(n, |_, n| Ok(*n * 2));
    let dag = g.build().unwrap();
    (dag, Request::new().output(out), n)
}

/// A user with their own batch provider drops it after the run, as the SDK documents
/// (dropping the last handle shuts the provider down and flushes the batch).
fn run_then_drop_provider(executor: impl FnOnce(OtelHooks) -> Result<Run, RunError>) {
    let recording = Recording::default();
    let tp = SdkTracerProvider::builder()
        .with_batch_exporter(recording.clone())
        .build();
    let mp = SdkMeterProvider::builder().build();
    let hooks = OtelHooks::new(&tp, &mp);
    executor(hooks).unwrap();
    drop(tp);
    drop(mp);
    let names = recording.names.lock().unwrap().clone();
    assert!(
        recording.shut_down.load(Ordering::SeqCst),
        "the provider was shut down when its last handle went"
    );
    assert_eq!(names.len(), 2, "root and node spans flushed: {names:?}");
}

#[test]
fn sequential_run_dropping_the_provider_shuts_it_down() {
    let (dag, request, n) = one_node_dag();
    run_then_drop_provider(|hooks| {
        Executor::sequential()
            .hook(hooks)
            .execute(&dag, &request, Inputs::new().set(n, 1))
    });
}

#[test]
fn run_on_a_callers_pool_dropping_the_provider_shuts_it_down() {
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    let (dag, request, n) = one_node_dag();
    run_then_drop_provider(|hooks| {
        Executor::parallel()
            .pool(Arc::clone(&pool))
            .hook(hooks)
            .execute(&dag, &request, Inputs::new().set(n, 1))
    });
}

#[test]
fn a_run_keeps_nothing_of_its_callers_context() {
    // The run attaches its caller's context (here holding a span of the user's provider) on
    // pool and tokio threads; once `run` returns, no copy of it is left anywhere.
    use opentelemetry::Context;
    use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    let mut g = DagBuilder::new("caller");
    let mut leaves: Vec<Handle<u8>> = (0..16)
        .map(|i| g.node(format!("leaf-{i}")).run((), |_, ()| Ok(1u8)))
        .collect();
    leaves.push(g.node("async").run_async((), |_, ()| async { Ok(1u8) }));
    let total = g.node("total").run(leaves, |_, leaves| Ok(leaves.len()));
    let plan = g
        .build()
        .unwrap()
        .plan(&Request::new().output(total))
        .unwrap();
    let executor = Executor::parallel().threads(3);
    for _ in 0..3 {
        let recording = Recording::default();
        let tp = SdkTracerProvider::builder()
            .with_batch_exporter(recording.clone())
            .build();
        {
            let span = tp.tracer("user").start("caller");
            let _attached = Context::current_with_span(span).attach();
            executor.run(&plan, Inputs::new()).unwrap();
        }
        drop(tp);
        assert!(
            recording.shut_down.load(Ordering::SeqCst),
            "the provider was shut down when its last handle went"
        );
        assert_eq!(
            *recording.names.lock().unwrap(),
            ["caller"],
            "the caller's span ended and was flushed"
        );
    }
}
