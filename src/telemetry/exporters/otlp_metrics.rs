//! dagtel's OTLP metric exporter, used when exemplars are kept: the SDK's data points carry
//! no exemplars and cannot be given any, so this exporter builds the OTLP request itself
//! (with opentelemetry-proto's transform), adds the exemplars of dagtel's duration histograms
//! ([`Exemplars::attach`]), and sends it over gRPC (tonic) or HTTP (protobuf or JSON), with
//! the same endpoint, headers, timeout, compression and TLS settings as the other signals.
//!
//! Exports run off the pipeline's threads: on the periodic reader's thread for HTTP, on the
//! telemetry runtime for gRPC (the reader's thread waits for it). Each export, with its
//! retries of transient failures (see [`retry`](super::retry)), is bounded by the timeout; a
//! failed one is reported to the reader and counted as dropped.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use prost::Message as _;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

use super::otlp::{
    USER_AGENT, build_error, compression, default_http_client, grpc_endpoint, grpc_metadata,
    http_headers, tls, uses_tls,
};
use super::retry::{Backoff, grpc_retry, retry_after, retryable_http};
use crate::otel::exemplars::Exemplars;
use crate::telemetry::config::{OtlpSettings, Protocol, mask_url};
use crate::telemetry::runtime::TelemetryRuntime;
use crate::telemetry::{Signal, TelemetryError};

/// Sends metrics with exemplars to a collector.
pub(crate) struct OtlpMetricExporter {
    transport: Transport,
    temporality: Temporality,
    exemplars: Arc<Exemplars>,
    /// The endpoint, credentials masked, for error messages.
    endpoint: String,
    shut_down: AtomicBool,
}

enum Transport {
    Grpc {
        client: MetricsServiceClient<Channel>,
        metadata: tonic::metadata::MetadataMap,
        runtime: tokio::runtime::Handle,
        timeout: Duration,
    },
    Http {
        client: reqwest::blocking::Client,
        url: reqwest::Url,
        headers: reqwest::header::HeaderMap,
        json: bool,
        gzip: bool,
        /// Bounds each export, retries included.
        timeout: Duration,
    },
}

impl std::fmt::Debug for OtlpMetricExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let protocol = match self.transport {
            Transport::Grpc { .. } => "grpc",
            Transport::Http { json: true, .. } => "http/json",
            Transport::Http { .. } => "http/protobuf",
        };
        f.debug_struct("OtlpMetricExporter")
            .field("endpoint", &self.endpoint)
            .field("protocol", &protocol)
            .finish()
    }
}

impl OtlpMetricExporter {
    /// An exporter to the collector `settings` name, attaching what `exemplars` holds.
    pub(crate) fn new(
        settings: &OtlpSettings,
        temporality: Temporality,
        runtime: &TelemetryRuntime,
        exemplars: Arc<Exemplars>,
    ) -> Result<Self, TelemetryError> {
        let signal = Signal::Metrics;
        let invalid = |what: String| {
            build_error(
                signal,
                settings,
                opentelemetry_otlp::ExporterBuildError::InvalidConfiguration(what),
            )
        };
        let gzip = compression(settings).is_some();
        let transport = match settings.protocol {
            Protocol::Grpc => {
                let endpoint = grpc_endpoint(settings);
                let metadata = grpc_metadata(settings, signal)?;
                let tls = tls::grpc(settings, signal, uses_tls(&endpoint))?;
                let channel = tonic::transport::Endpoint::from_shared(endpoint)
                    .map_err(|e| invalid(format!("invalid endpoint: {e}")))?
                    .user_agent(USER_AGENT)
                    .map_err(|e| invalid(format!("user agent: {e}")))?
                    .timeout(settings.timeout);
                #[cfg(feature = "tls")]
                let channel = match tls {
                    Some(config) => channel
                        .tls_config(config)
                        .map_err(|e| invalid(format!("TLS: {e}")))?,
                    None => channel,
                };
                #[cfg(not(feature = "tls"))]
                let None = tls;
                // tonic's connection task is spawned on the runtime current when the channel
                // is created.
                let _entered = runtime.enter()?;
                let mut client = MetricsServiceClient::new(channel.connect_lazy());
                if gzip {
                    client = client
                        .send_compressed(CompressionEncoding::Gzip)
                        .accept_compressed(CompressionEncoding::Gzip);
                }
                Transport::Grpc {
                    client,
                    metadata,
                    runtime: runtime.handle()?,
                    timeout: settings.timeout,
                }
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                let url = reqwest::Url::parse(settings.endpoint.trim())
                    .map_err(|e| invalid(format!("invalid endpoint: {e}")))?;
                let mut headers = reqwest::header::HeaderMap::new();
                for (name, value) in http_headers(settings, signal)? {
                    let header = || TelemetryError::InvalidHeader {
                        signal,
                        name: name.clone(),
                    };
                    let key = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| header())?;
                    let value =
                        reqwest::header::HeaderValue::from_str(&value).map_err(|_| header())?;
                    headers.append(key, value);
                }
                let https = uses_tls(settings.endpoint.trim());
                let client = match tls::http_client(settings, signal, https)? {
                    Some(client) => client,
                    None => default_http_client(settings.timeout)
                        .map_err(|e| invalid(format!("HTTP client: {e}")))?,
                };
                if !headers.contains_key(reqwest::header::USER_AGENT) {
                    let agent = reqwest::header::HeaderValue::from_static(USER_AGENT);
                    headers.insert(reqwest::header::USER_AGENT, agent);
                }
                Transport::Http {
                    client,
                    url,
                    headers,
                    json: settings.protocol == Protocol::HttpJson,
                    gzip,
                    timeout: settings.timeout,
                }
            }
        };
        Ok(Self {
            transport,
            temporality,
            exemplars,
            endpoint: mask_url(&settings.endpoint),
            shut_down: AtomicBool::new(false),
        })
    }

    /// The request for `metrics`, with exemplars.
    fn request(&self, metrics: &ResourceMetrics) -> ExportMetricsServiceRequest {
        let mut request = ExportMetricsServiceRequest::from(metrics);
        self.exemplars.attach(&mut request);
        request
    }

    fn failed(&self, why: impl std::fmt::Display) -> OTelSdkError {
        OTelSdkError::InternalFailure(format!("metrics export to {}: {why}", self.endpoint))
    }
}

/// Sends `request` over gRPC, retrying transient failures within `limit`.
async fn send_grpc(
    mut client: MetricsServiceClient<Channel>,
    metadata: tonic::metadata::MetadataMap,
    request: ExportMetricsServiceRequest,
    limit: Duration,
) -> Result<(), tonic::Status> {
    let mut backoff = Backoff::within(limit);
    loop {
        let call = tonic::Request::from_parts(
            metadata.clone(),
            tonic::Extensions::default(),
            request.clone(),
        );
        let status = match client.export(call).await {
            Ok(_) => return Ok(()),
            Err(status) => status,
        };
        match grpc_retry(&status).and_then(|hint| backoff.next(hint)) {
            Some(wait) => tokio::time::sleep(wait).await,
            None => return Err(status),
        }
    }
}

/// A failed gRPC export as reported: the code, and the local cause when the transport failed
/// (connection refused, say). The status message is left out: a server may echo credentials
/// back in it.
fn grpc_failure(status: &tonic::Status) -> String {
    use std::error::Error as _;
    match status.source() {
        Some(cause) => format!("gRPC {:?}: {cause}", status.code()),
        None => format!("gRPC {:?}", status.code()),
    }
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body)?;
    encoder.finish()
}

impl PushMetricExporter for OtlpMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let request = self.request(metrics);
        match &self.transport {
            Transport::Grpc {
                client,
                metadata,
                runtime,
                timeout,
            } => {
                let (client, metadata, limit) = (client.clone(), metadata.clone(), *timeout);
                let sent = runtime.spawn(async move {
                    tokio::time::timeout(limit, send_grpc(client, metadata, request, limit)).await
                });
                match sent.await {
                    Ok(Ok(Ok(()))) => Ok(()),
                    Ok(Ok(Err(status))) => Err(self.failed(grpc_failure(&status))),
                    Ok(Err(_)) => Err(OTelSdkError::Timeout(limit)),
                    Err(e) => Err(self.failed(format!("the export task ended: {e}"))),
                }
            }
            Transport::Http {
                client,
                url,
                headers,
                json,
                gzip: compress,
                timeout,
            } => {
                let (mut body, content_type) = if *json {
                    let body = serde_json::to_vec(&request).map_err(|e| self.failed(e))?;
                    (body, "application/json")
                } else {
                    (request.encode_to_vec(), "application/x-protobuf")
                };
                let mut headers = headers.clone();
                let content_type = reqwest::header::HeaderValue::from_static(content_type);
                headers.insert(reqwest::header::CONTENT_TYPE, content_type);
                if *compress {
                    body = gzip(&body).map_err(|e| self.failed(e))?;
                    let gzip = reqwest::header::HeaderValue::from_static("gzip");
                    headers.insert(reqwest::header::CONTENT_ENCODING, gzip);
                }
                let mut backoff = Backoff::within(*timeout);
                loop {
                    let sent = client
                        .post(url.clone())
                        .headers(headers.clone())
                        .timeout(backoff.remaining())
                        .body(body.clone())
                        .send();
                    let (error, hint) = match sent {
                        Ok(response) if response.status().is_success() => return Ok(()),
                        Ok(response) => {
                            let status = response.status();
                            let error = self.failed(format!("HTTP {status}"));
                            if !retryable_http(status.as_u16()) {
                                return Err(error);
                            }
                            let after = response
                                .headers()
                                .get(reqwest::header::RETRY_AFTER)
                                .and_then(|v| v.to_str().ok());
                            (error, retry_after(after))
                        }
                        Err(e) if e.is_timeout() => return Err(OTelSdkError::Timeout(*timeout)),
                        // Without the URL, which may hold credentials.
                        Err(e) if e.is_connect() => (self.failed(e.without_url()), None),
                        Err(e) => return Err(self.failed(e.without_url())),
                    };
                    match backoff.next(hint) {
                        Some(wait) => std::thread::sleep(wait),
                        None => return Err(error),
                    }
                }
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.shut_down.store(true, Ordering::Release);
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        self.temporality
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader, Read as _};
    use std::net::TcpListener;

    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

    use super::*;
    use crate::otel::conventions as conv;
    use crate::otel::exemplars::{ExemplarFilter, Origin};
    use crate::telemetry::config::{Compression, Settings};

    /// One HTTP request as a server received it: its head (lowercased) and body.
    struct Received {
        head: String,
        body: Vec<u8>,
    }

    /// A server that answers its requests with `statuses` in turn (the last one from then on,
    /// closing each connection) and hands each request over.
    fn scripted_server(statuses: &[u16]) -> (String, std::sync::mpsc::Receiver<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/metrics", listener.local_addr().unwrap());
        let (sender, receiver) = std::sync::mpsc::channel();
        let statuses = statuses.to_vec();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line.to_ascii_lowercase());
                }
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let status = statuses[n.min(statuses.len() - 1)];
                // Handed over before the answer: the client sees it only after.
                if sender.send(Received { head, body }).is_err() {
                    return;
                }
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = (&stream).write_all(answer.as_bytes());
            }
        });
        (url, receiver)
    }

    /// Exports one `dag.node.duration` point with an exemplar of span 9 over HTTP/JSON with
    /// gzip and a header to a server answering `statuses`; returns what `force_flush` said and
    /// the requests the server received.
    fn export_once(statuses: &[u16]) -> (OTelSdkResult, Vec<Received>) {
        let (url, received) = scripted_server(statuses);
        let mut settings = Settings::default().otlp.metrics;
        settings.endpoint = url;
        settings.protocol = Protocol::HttpJson;
        settings.compression = Compression::Gzip;
        settings.headers = vec![("x-api-key".into(), "k1".into())];
        let exemplars = Arc::new(Exemplars::new(ExemplarFilter::AlwaysOn));
        let runtime = TelemetryRuntime::default();
        let exporter = OtlpMetricExporter::new(
            &settings,
            Temporality::Cumulative,
            &runtime,
            Arc::clone(&exemplars),
        )
        .unwrap();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter).build())
            .build();
        let attrs = [KeyValue::new(conv::NODE_NAME, "load")];
        let histogram = provider
            .meter("t")
            .f64_histogram(conv::METRIC_NODE_DURATION)
            .with_boundaries(crate::otel::metrics::DURATION_BUCKETS.to_vec())
            .build();
        histogram.record(0.2, &attrs);
        let origin = Origin {
            trace_id: opentelemetry::trace::TraceId::from_bytes([3; 16]),
            span_id: opentelemetry::trace::SpanId::from_bytes(9u64.to_be_bytes()),
            sampled: true,
        };
        exemplars.offer(conv::METRIC_NODE_DURATION, &attrs, 0.2, origin, None);
        let flushed = provider.force_flush();
        (flushed, received.try_iter().collect())
    }

    #[test]
    fn http_json_requests_carry_exemplars_headers_and_gzip() {
        let (flushed, received) = export_once(&[200]);
        assert!(flushed.is_ok(), "{flushed:?}");
        let [received] = &received[..] else {
            panic!("one request: {}", received.len());
        };
        assert!(
            received
                .head
                .contains("user-agent: otel-otlp-exporter-rust-dagtel/"),
            "{}",
            received.head
        );
        assert!(
            received.head.starts_with("post /v1/metrics "),
            "{}",
            received.head
        );
        assert!(received.head.contains("content-type: application/json"));
        assert!(received.head.contains("content-encoding: gzip"));
        assert!(received.head.contains("x-api-key: k1"));
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(&received.body[..])
            .read_to_end(&mut json)
            .unwrap();
        let request: ExportMetricsServiceRequest = serde_json::from_slice(&json).unwrap();
        let point = request
            .resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .find_map(|m| match &m.data {
                Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Histogram(h)) => {
                    h.data_points.first()
                }
                _ => None,
            })
            .expect("the histogram point");
        assert_eq!(point.exemplars.len(), 1);
        assert_eq!(point.exemplars[0].span_id, 9u64.to_be_bytes().to_vec());
        assert_eq!(point.exemplars[0].trace_id, vec![3; 16]);
    }

    #[test]
    fn transient_failures_are_retried_and_others_are_not() {
        let (flushed, received) = export_once(&[503, 502, 200]);
        assert!(flushed.is_ok(), "{flushed:?}");
        assert_eq!(received.len(), 3, "two retries, then delivered");
        let (flushed, received) = export_once(&[400]);
        assert!(flushed.is_err(), "a 400 is final");
        assert_eq!(received.len(), 1);
        let (flushed, received) = export_once(&[503]);
        assert!(flushed.is_err(), "still unavailable after the retries");
        assert_eq!(received.len(), 4, "the first attempt and three retries");
    }

    /// A gRPC collector that answers `failure()` `failures` times, then OK; counts calls.
    struct Flaky {
        failures: u32,
        failure: fn() -> tonic::Status,
        calls: Arc<std::sync::atomic::AtomicU32>,
    }

    #[tonic::async_trait]
    impl opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsService
        for Flaky
    {
        async fn export(
            &self,
            _: tonic::Request<ExportMetricsServiceRequest>,
        ) -> Result<
            tonic::Response<
                opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse,
            >,
            tonic::Status,
        > {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call < self.failures {
                return Err((self.failure)());
            }
            Ok(tonic::Response::new(Default::default()))
        }
    }

    /// Exports one counter point over gRPC to a [`Flaky`] collector; returns what
    /// `force_flush` said and how many calls the collector got.
    fn export_grpc(failures: u32, failure: fn() -> tonic::Status) -> (OTelSdkResult, u32) {
        use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsServiceServer;
        let server = tokio::runtime::Runtime::new().unwrap();
        let listener = server
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let service = MetricsServiceServer::new(Flaky {
            failures,
            failure,
            calls: Arc::clone(&calls),
        });
        server.spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let mut settings = Settings::default().otlp.metrics;
        settings.endpoint = format!("http://{addr}");
        settings.protocol = Protocol::Grpc;
        let runtime = TelemetryRuntime::default();
        let exemplars = Arc::new(Exemplars::new(ExemplarFilter::AlwaysOn));
        let exporter =
            OtlpMetricExporter::new(&settings, Temporality::Delta, &runtime, exemplars).unwrap();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter).build())
            .build();
        provider
            .meter("t")
            .u64_counter("dag.runs")
            .build()
            .add(1, &[]);
        let flushed = provider.force_flush();
        (flushed, calls.load(Ordering::SeqCst))
    }

    #[test]
    fn grpc_exports_retry_an_unavailable_collector() {
        let (flushed, calls) = export_grpc(2, || tonic::Status::unavailable("restarting"));
        assert!(flushed.is_ok(), "{flushed:?}");
        assert_eq!(calls, 3, "two UNAVAILABLE, then delivered");
    }

    #[test]
    fn grpc_resource_exhausted_is_retried_only_when_the_collector_sets_a_delay() {
        use tonic_types::{ErrorDetails, StatusExt as _};
        let (flushed, calls) = export_grpc(1, || {
            let details = ErrorDetails::with_retry_info(Some(Duration::from_millis(150)));
            tonic::Status::with_error_details(tonic::Code::ResourceExhausted, "busy", details)
        });
        assert!(flushed.is_ok(), "{flushed:?}");
        assert_eq!(calls, 2, "retried after the delay it asked for");
        let (flushed, calls) = export_grpc(1, || tonic::Status::resource_exhausted("full"));
        assert!(flushed.is_err(), "no delay: final");
        assert_eq!(calls, 1);
    }

    #[test]
    fn a_rejected_export_fails_and_errors_mask_credentials() {
        let mut settings = Settings::default().otlp.metrics;
        settings.endpoint = "http://user:s3cr3t@127.0.0.1:9/v1/metrics?token=t0k3n".into();
        let exemplars = Arc::new(Exemplars::new(ExemplarFilter::AlwaysOn));
        let runtime = TelemetryRuntime::default();
        let exporter =
            OtlpMetricExporter::new(&settings, Temporality::Delta, &runtime, exemplars).unwrap();
        let text = format!("{} {exporter:?}", exporter.failed("HTTP 503"));
        assert!(text.contains("HTTP 503"), "{text}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0k3n"),
            "{text}"
        );
    }
}
