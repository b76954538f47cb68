//! A minimal OTLP/gRPC receiver that records every export request, built on
//! opentelemetry-proto's generated tonic services.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

/// rotel compresses what it forwards with gzip whatever its compression flag says.
const GZIP: CompressionEncoding = CompressionEncoding::Gzip;

/// Everything received so far.
#[derive(Clone, Debug, Default)]
pub struct Received {
    pub traces: Vec<ExportTraceServiceRequest>,
    pub logs: Vec<ExportLogsServiceRequest>,
    pub metrics: Vec<ExportMetricsServiceRequest>,
    /// The ASCII metadata of each trace export, lowercase names.
    pub trace_headers: Vec<Vec<(String, String)>>,
}

#[derive(Clone, Default)]
struct Store(Arc<Mutex<Received>>);

#[tonic::async_trait]
impl TraceService for Store {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let headers = request
            .metadata()
            .iter()
            .filter_map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(key, value) => Some((
                    key.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )),
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let mut received = self.0.lock().unwrap();
        received.trace_headers.push(headers);
        received.traces.push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Store {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.0.lock().unwrap().logs.push(request.into_inner());
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Store {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.0.lock().unwrap().metrics.push(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// A receiver on a free local port, served by its own runtime until dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    store: Store,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("receiver runtime");
        let store = Store::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(store.clone()).accept_compressed(GZIP))
            .add_service(LogsServiceServer::new(store.clone()).accept_compressed(GZIP))
            .add_service(MetricsServiceServer::new(store.clone()).accept_compressed(GZIP))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        runtime.spawn(server);
        Receiver {
            addr,
            store,
            _runtime: runtime,
        }
    }

    /// A copy of what was received.
    pub fn received(&self) -> Received {
        self.store.0.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received; returns it. Gives up (returning what
    /// there is) only after a minute, so a slow machine cannot fail a test.
    pub fn wait_for(&self, done: impl Fn(&Received) -> bool) -> Received {
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            let received = self.received();
            if done(&received) || Instant::now() > give_up {
                return received;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
