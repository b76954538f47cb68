//! The resolved telemetry settings: one typed value that every layer (defaults, profile, TOML
//! file, environment, builder) resolves into, and that the provider builders read. Precedence
//! is decided once, in [`super`]; nothing below reads the environment again.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::otel::NodeSeries;

/// Everything the bootstrap needs to build the tracer, logger and meter providers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Settings {
    /// `OTEL_SDK_DISABLED`: install no providers; the pipeline runs untouched.
    pub disabled: bool,
    /// `DAGTEL_PROFILE`.
    pub profile: Profile,
    /// `DAGTEL_STRICT_CONFIG`: an invalid value is an error instead of a warning.
    pub strict: bool,
    /// Service identity for the resource.
    pub service: ServiceSettings,
    /// `OTEL_RESOURCE_ATTRIBUTES`, parsed and percent-decoded, in order.
    pub resource_attributes: Vec<(String, String)>,
    /// `OTEL_EXPERIMENTAL_RESOURCE_DETECTORS` (empty: no detector).
    pub detectors: Vec<Detector>,
    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    pub sampler: SamplerSettings,
    /// `OTEL_TRACES_EXPORTER`, `OTEL_LOGS_EXPORTER`, `OTEL_METRICS_EXPORTER` (comma lists,
    /// without duplicates; `[ExporterKind::None]` alone when the signal is switched off).
    pub exporters: PerSignal<Vec<ExporterKind>>,
    /// `OTEL_EXPORTER_OTLP_*`, resolved per signal (signal variable > general variable >
    /// default), endpoints final (HTTP paths appended where the spec says so).
    pub otlp: PerSignal<OtlpSettings>,
    /// `OTEL_BSP_*`.
    pub span_batch: BatchSettings,
    /// `OTEL_BLRP_*`.
    pub log_batch: BatchSettings,
    /// `OTEL_METRIC_*`, `OTEL_METRICS_EXEMPLAR_FILTER` and the OTLP metrics preferences.
    pub metrics: MetricsSettings,
    /// `OTEL_ATTRIBUTE_*`, `OTEL_SPAN_*`, `OTEL_EVENT_*`, `OTEL_LINK_*`, `OTEL_LOGRECORD_*`.
    pub limits: LimitSettings,
    /// `OTEL_PROPAGATORS` (empty: no propagator).
    pub propagators: Vec<Propagator>,
    /// `OTEL_LOG_LEVEL`: the level of the SDK's own diagnostics.
    pub sdk_log_level: LogLevel,
    /// `DAGTEL_TELEMETRY_DIR`: where the embedded default writes `<run id>/*.jsonl`.
    pub telemetry_dir: PathBuf,
}

/// An operational profile (`DAGTEL_PROFILE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// No profile: the OpenTelemetry spec defaults.
    #[default]
    Default,
    /// Local development: everything sampled, quick export, console and file output.
    Dev,
    /// Continuous integration: in-memory exporters, no network.
    Ci,
    /// Production: 1% parent-based sampling, large batches, OTLP gRPC, all detectors.
    Prod,
}

/// Service identity (resource attributes `service.*` and `deployment.environment.name`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSettings {
    /// `OTEL_SERVICE_NAME` (beats `service.name` in `OTEL_RESOURCE_ATTRIBUTES`), else the name
    /// given to `init`.
    pub name: Option<String>,
    /// `DAGTEL_SERVICE_VERSION`.
    pub version: Option<String>,
    /// `DAGTEL_SERVICE_NAMESPACE`.
    pub namespace: Option<String>,
    /// `OTEL_SERVICE_INSTANCE_ID` / `DAGTEL_SERVICE_INSTANCE_ID`; random when unset.
    pub instance_id: Option<String>,
    /// `DAGTEL_ENVIRONMENT` / `DEPLOYMENT_ENVIRONMENT`.
    pub environment: Option<String>,
}

/// A resource detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detector {
    /// `process.pid`, runtime name and version (never the command line: it may hold secrets).
    Process,
    /// `os.type`.
    Os,
    /// `host.name`, `host.arch`, `host.id`.
    Host,
    /// `container.id`.
    Container,
    /// `k8s.pod.name`, `k8s.namespace.name`, `k8s.node.name`.
    K8s,
}

/// Which sampler, and its argument.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerSettings {
    /// The sampler.
    pub kind: SamplerKind,
    /// The ratio for the ratio samplers, in `[0, 1]`.
    pub ratio: f64,
}

/// `OTEL_TRACES_SAMPLER` values (serialized with the specification's spelling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio`.
    #[serde(rename = "traceidratio")]
    TraceIdRatio,
    /// `parentbased_always_on` (the spec default).
    #[serde(rename = "parentbased_always_on")]
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`.
    #[serde(rename = "parentbased_always_off")]
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`.
    #[serde(rename = "parentbased_traceidratio")]
    ParentBasedTraceIdRatio,
}

/// Where a signal goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExporterKind {
    /// OTLP to a collector.
    Otlp,
    /// Human-readable output on stdout.
    Console,
    /// OTLP/JSON lines under the telemetry directory (the embedded default).
    File,
    /// In-memory exporters (test mode): nothing leaves the process.
    Memory,
    /// Nothing.
    None,
}

/// One value per signal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerSignal<T> {
    /// Traces.
    pub traces: T,
    /// Logs.
    pub logs: T,
    /// Metrics.
    pub metrics: T,
}

/// OTLP exporter settings for one signal, final. Its `Debug` masks the endpoint's
/// credentials and every header value.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OtlpSettings {
    /// The URL to send to (HTTP: with the `/v1/<signal>` path).
    pub endpoint: String,
    /// Whether an endpoint was set at all (unset means the embedded default is used when no
    /// exporter was chosen).
    pub endpoint_set: bool,
    /// Transport and encoding.
    pub protocol: Protocol,
    /// Extra headers (percent-decoded).
    pub headers: Vec<(String, String)>,
    /// Per-export timeout (`Duration::ZERO`: no limit, the spec's `0`).
    #[serde(with = "super::duration_ms")]
    pub timeout: Duration,
    /// Payload compression.
    pub compression: Compression,
    /// gRPC without TLS for scheme-less endpoints.
    pub insecure: bool,
    /// CA certificate file (PEM) to trust.
    pub certificate: Option<PathBuf>,
    /// Client key file (PEM) for mTLS.
    pub client_key: Option<PathBuf>,
    /// Client certificate file (PEM) for mTLS.
    pub client_certificate: Option<PathBuf>,
}

impl std::fmt::Debug for OtlpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, _)| (name.as_str(), "***"))
            .collect();
        f.debug_struct("OtlpSettings")
            .field("endpoint", &super::mask_url(&self.endpoint))
            .field("endpoint_set", &self.endpoint_set)
            .field("protocol", &self.protocol)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("insecure", &self.insecure)
            .field("certificate", &self.certificate)
            .field("client_key", &self.client_key)
            .field("client_certificate", &self.client_certificate)
            .finish()
    }
}

/// OTLP transports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// `grpc`.
    #[serde(rename = "grpc")]
    Grpc,
    /// `http/protobuf`.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// `http/json`.
    #[serde(rename = "http/json")]
    HttpJson,
}

/// Payload compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// None.
    None,
    /// gzip.
    Gzip,
}

/// Batch processor settings (spans or log records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSettings {
    /// Delay between two exports.
    #[serde(with = "super::duration_ms")]
    pub schedule_delay: Duration,
    /// Longest an export may take (`Duration::ZERO`: no limit, the spec's `0`).
    #[serde(with = "super::duration_ms")]
    pub export_timeout: Duration,
    /// Records held at most; more are dropped (and counted).
    pub max_queue_size: usize,
    /// Records per export, at most `max_queue_size`.
    pub max_export_batch_size: usize,
}

/// Metric reader and exporter settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsSettings {
    /// `OTEL_METRIC_EXPORT_INTERVAL` (never zero).
    #[serde(with = "super::duration_ms")]
    pub export_interval: Duration,
    /// `OTEL_METRIC_EXPORT_TIMEOUT` (`Duration::ZERO`: no limit, the spec's `0`).
    #[serde(with = "super::duration_ms")]
    pub export_timeout: Duration,
    /// `OTEL_METRICS_EXEMPLAR_FILTER`.
    pub exemplar_filter: ExemplarFilter,
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`.
    pub temporality: TemporalityPreference,
    /// `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`.
    pub histogram_aggregation: HistogramAggregation,
    /// `DAGTEL_NODE_METRICS`: the series node metrics are recorded in (per node by default).
    pub node_series: NodeSeries,
}

/// `OTEL_METRICS_EXEMPLAR_FILTER` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExemplarFilter {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `trace_based` (the default).
    TraceBased,
}

/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemporalityPreference {
    /// `cumulative` (the default).
    Cumulative,
    /// `delta`.
    Delta,
    /// `lowmemory`.
    LowMemory,
}

/// `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistogramAggregation {
    /// `explicit_bucket_histogram` (the default; dagtel's duration buckets).
    ExplicitBucketHistogram,
    /// `base2_exponential_bucket_histogram`.
    Base2ExponentialBucketHistogram,
}

/// Attribute, event and link limits. `None` means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitSettings {
    /// `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT` (falls back to `OTEL_ATTRIBUTE_COUNT_LIMIT`, 128).
    pub span_attribute_count: u32,
    /// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` (falls back to
    /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`).
    pub span_attribute_value_length: Option<u32>,
    /// `OTEL_SPAN_EVENT_COUNT_LIMIT` (128).
    pub span_event_count: u32,
    /// `OTEL_SPAN_LINK_COUNT_LIMIT` (128).
    pub span_link_count: u32,
    /// `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT` (128).
    pub event_attribute_count: u32,
    /// `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT` (128).
    pub link_attribute_count: u32,
    /// `OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT` (falls back to `OTEL_ATTRIBUTE_COUNT_LIMIT`).
    pub log_attribute_count: u32,
    /// `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT` (falls back to
    /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`).
    pub log_attribute_value_length: Option<u32>,
}

/// `OTEL_PROPAGATORS` values we support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagator {
    /// W3C `traceparent` / `tracestate`.
    TraceContext,
    /// W3C `baggage`.
    Baggage,
}

/// `OTEL_LOG_LEVEL` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    Info,
    /// Verbose.
    Debug,
    /// Everything.
    Trace,
}

impl Default for Settings {
    /// The OpenTelemetry specification's defaults (no profile), with dagtel's embedded file
    /// default as the exporter of every signal.
    fn default() -> Self {
        let otlp = |path: &str| OtlpSettings {
            endpoint: format!("http://localhost:4318/v1/{path}"),
            endpoint_set: false,
            protocol: Protocol::HttpProtobuf,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            compression: Compression::None,
            insecure: false,
            certificate: None,
            client_key: None,
            client_certificate: None,
        };
        Self {
            disabled: false,
            profile: Profile::Default,
            strict: false,
            service: ServiceSettings::default(),
            resource_attributes: Vec::new(),
            detectors: vec![
                Detector::Process,
                Detector::Os,
                Detector::Host,
                Detector::Container,
                Detector::K8s,
            ],
            sampler: SamplerSettings {
                kind: SamplerKind::ParentBasedAlwaysOn,
                ratio: 1.0,
            },
            exporters: PerSignal {
                traces: vec![ExporterKind::File],
                logs: vec![ExporterKind::File],
                metrics: vec![ExporterKind::File],
            },
            otlp: PerSignal {
                traces: otlp("traces"),
                logs: otlp("logs"),
                metrics: otlp("metrics"),
            },
            span_batch: BatchSettings {
                schedule_delay: Duration::from_millis(5000),
                export_timeout: Duration::from_millis(30000),
                max_queue_size: 2048,
                max_export_batch_size: 512,
            },
            log_batch: BatchSettings {
                schedule_delay: Duration::from_millis(1000),
                export_timeout: Duration::from_millis(30000),
                max_queue_size: 2048,
                max_export_batch_size: 512,
            },
            metrics: MetricsSettings {
                export_interval: Duration::from_millis(60000),
                export_timeout: Duration::from_millis(30000),
                exemplar_filter: ExemplarFilter::TraceBased,
                temporality: TemporalityPreference::Cumulative,
                histogram_aggregation: HistogramAggregation::ExplicitBucketHistogram,
                node_series: NodeSeries::Node,
            },
            limits: LimitSettings {
                span_attribute_count: 128,
                span_attribute_value_length: None,
                span_event_count: 128,
                span_link_count: 128,
                event_attribute_count: 128,
                link_attribute_count: 128,
                log_attribute_count: 128,
                log_attribute_value_length: None,
            },
            propagators: vec![Propagator::TraceContext, Propagator::Baggage],
            sdk_log_level: LogLevel::Info,
            telemetry_dir: PathBuf::from("telemetry"),
        }
    }
}
