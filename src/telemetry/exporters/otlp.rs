//! OTLP exporters, configured only from [`OtlpSettings`]: endpoint, protocol, headers, timeout,
//! compression and TLS are all passed to the builders explicitly, so the values the
//! configuration layer resolved are the values used (the builders would otherwise fall back to
//! the `OTEL_EXPORTER_OTLP_*` variables for anything left unset). The header variables the
//! builders merge in regardless are taken out again (`exact_headers`); a `none` compression
//! cannot be passed, so the compression variables still apply then.
//!
//! gRPC exporters are built inside the telemetry runtime (see [`TelemetryRuntime`]); HTTP
//! exporters use the blocking client and need no runtime. The protocol is always given, so the
//! `http-json` feature never changes what `http/protobuf` means.

use std::time::Duration;

use opentelemetry_otlp::{
    LogExporter, MetricExporter, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::metrics::Temporality;

use super::exact_headers::{self, ExactHeaders};
use crate::telemetry::config::{Compression, OtlpSettings, Protocol, is_token_byte};
use crate::telemetry::runtime::TelemetryRuntime;
use crate::telemetry::{Signal, TelemetryError};

/// How the exporters name themselves to the collector, as the OTLP specification asks
/// (`OTel-OTLP-Exporter-<language>/<version>`, with dagtel's name and version).
pub(crate) const USER_AGENT: &str =
    concat!("OTel-OTLP-Exporter-Rust-dagtel/", env!("CARGO_PKG_VERSION"));

/// How long "no limit" is: a zero timeout (the specification's "no limit") passed to the
/// exporters as is would fail every export at once.
const NO_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);

/// The settings a signal's exporter is built with: a zero timeout means no limit, and the
/// batch processor's (or metric reader's) export timeout bounds each export too, since the
/// SDK's thread-based processors do not enforce it themselves.
pub(crate) fn effective(otlp: &OtlpSettings, export_timeout: Duration) -> OtlpSettings {
    let limit = |d: Duration| if d.is_zero() { NO_LIMIT } else { d };
    OtlpSettings {
        timeout: limit(otlp.timeout).min(limit(export_timeout)),
        ..otlp.clone()
    }
}

/// Builds an exporter over the configured protocol from a signal's fresh exporter builder. A
/// macro because the three signals' builders share `with_tonic`, `with_http` and `build` by
/// name only (inherent methods, no common trait).
macro_rules! build_exporter {
    ($builder:expr, $settings:expr, $runtime:expr, $signal:expr) => {{
        let (settings, signal) = ($settings, $signal);
        let built = match settings.protocol {
            Protocol::Grpc => {
                // tonic's channel must be created inside a Tokio runtime.
                let _entered = $runtime.enter()?;
                tonic($builder.with_tonic(), settings, signal)?.build()
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                http($builder.with_http(), settings, signal)?.build()
            }
        };
        built.map_err(|source| build_error(signal, settings, source))
    }};
}

/// The OTLP span exporter for `settings`.
pub(crate) fn span_exporter(
    settings: &OtlpSettings,
    runtime: &TelemetryRuntime,
) -> Result<SpanExporter, TelemetryError> {
    build_exporter!(SpanExporter::builder(), settings, runtime, Signal::Traces)
}

/// The OTLP log exporter for `settings`.
pub(crate) fn log_exporter(
    settings: &OtlpSettings,
    runtime: &TelemetryRuntime,
) -> Result<LogExporter, TelemetryError> {
    build_exporter!(LogExporter::builder(), settings, runtime, Signal::Logs)
}

/// The OTLP metric exporter for `settings`, reporting with `temporality`.
pub(crate) fn metric_exporter(
    settings: &OtlpSettings,
    temporality: Temporality,
    runtime: &TelemetryRuntime,
) -> Result<MetricExporter, TelemetryError> {
    let builder = MetricExporter::builder().with_temporality(temporality);
    build_exporter!(builder, settings, runtime, Signal::Metrics)
}

pub(crate) fn build_error(
    signal: Signal,
    settings: &OtlpSettings,
    source: opentelemetry_otlp::ExporterBuildError,
) -> TelemetryError {
    TelemetryError::OtlpExporter {
        signal,
        endpoint: crate::telemetry::config::mask_url(&settings.endpoint),
        source,
    }
}

pub(crate) fn compression(settings: &OtlpSettings) -> Option<opentelemetry_otlp::Compression> {
    match settings.compression {
        Compression::None => None,
        Compression::Gzip => Some(opentelemetry_otlp::Compression::Gzip),
    }
}

/// The gRPC endpoint with the spec's `INSECURE` rule applied: a scheme-less endpoint gets
/// `http://` when insecure and `https://` otherwise; an endpoint with a scheme keeps it. The
/// exporter applies the same rule, but from the environment; doing it here makes the setting
/// the only input.
pub(crate) fn grpc_endpoint(settings: &OtlpSettings) -> String {
    let endpoint = settings.endpoint.trim();
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else if settings.insecure {
        format!("http://{endpoint}")
    } else {
        format!("https://{endpoint}")
    }
}

pub(crate) fn uses_tls(endpoint: &str) -> bool {
    endpoint
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

fn tonic<B: WithExportConfig + WithTonicConfig>(
    builder: B,
    settings: &OtlpSettings,
    signal: Signal,
) -> Result<B, TelemetryError> {
    let endpoint = grpc_endpoint(settings);
    // The configured headers go in through the interceptor, which sets them as the only ones.
    let mut builder = builder
        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
        .with_timeout(settings.timeout)
        .with_interceptor(exact_headers::grpc(grpc_metadata(settings, signal)?));
    if let Some(compression) = compression(settings) {
        builder = builder.with_compression(compression);
    }
    let config = tls::grpc(settings, signal, uses_tls(&endpoint))?;
    #[cfg(feature = "tls")]
    if let Some(config) = config {
        builder = builder.with_tls_config(config);
    }
    #[cfg(not(feature = "tls"))]
    let None = config;
    Ok(builder.with_endpoint(endpoint))
}

/// The configured headers as gRPC metadata; a header that cannot be one is an error naming it.
pub(crate) fn grpc_metadata(
    settings: &OtlpSettings,
    signal: Signal,
) -> Result<tonic::metadata::MetadataMap, TelemetryError> {
    let mut metadata = tonic::metadata::MetadataMap::new();
    for (name, value) in &settings.headers {
        let invalid = || TelemetryError::InvalidHeader {
            signal,
            name: name.clone(),
        };
        let lower = name.to_ascii_lowercase();
        if crate::telemetry::config::is_binary_header(&lower) {
            // Binary metadata: the configured value is its base64 text.
            let key = tonic::metadata::BinaryMetadataKey::from_bytes(lower.as_bytes())
                .map_err(|_| invalid())?;
            let bytes = crate::telemetry::config::decode_base64(value).ok_or_else(invalid)?;
            metadata.append_bin(
                key,
                tonic::metadata::BinaryMetadataValue::from_bytes(&bytes),
            );
            continue;
        }
        let key =
            tonic::metadata::MetadataKey::from_bytes(lower.as_bytes()).map_err(|_| invalid())?;
        let value =
            tonic::metadata::MetadataValue::try_from(value.as_str()).map_err(|_| invalid())?;
        metadata.append(key, value);
    }
    Ok(metadata)
}

fn http<B: WithExportConfig + WithHttpConfig>(
    builder: B,
    settings: &OtlpSettings,
    signal: Signal,
) -> Result<B, TelemetryError> {
    let protocol = match settings.protocol {
        Protocol::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
        Protocol::HttpProtobuf | Protocol::Grpc => opentelemetry_otlp::Protocol::HttpBinary,
    };
    // The configured headers go in through the client, which sets them as the only ones.
    let headers = http_headers(settings, signal)?;
    let mut builder = builder
        .with_protocol(protocol)
        .with_endpoint(settings.endpoint.trim())
        .with_timeout(settings.timeout);
    if let Some(compression) = compression(settings) {
        builder = builder.with_compression(compression);
    }
    let client = match tls::http_client(settings, signal, uses_tls(settings.endpoint.trim()))? {
        Some(client) => client,
        None => default_http_client(settings.timeout).map_err(|reason| {
            let source = opentelemetry_otlp::ExporterBuildError::InternalFailure(format!(
                "the HTTP client: {reason}"
            ));
            build_error(signal, settings, source)
        })?,
    };
    let content_type = match protocol {
        opentelemetry_otlp::Protocol::HttpJson => "application/json",
        _ => "application/x-protobuf",
    };
    Ok(builder.with_http_client(ExactHeaders::new(client, content_type, &headers)))
}

/// The blocking client starts its own runtime and refuses to be built inside another one, so
/// it is built on a plain thread.
pub(crate) fn default_http_client(timeout: Duration) -> Result<reqwest::blocking::Client, String> {
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
    })
    .join()
    .map_err(|_| "building it panicked".to_string())?
    .map_err(|e| e.to_string())
}

/// The configured headers, checked as HTTP headers: a header that cannot be one is an error
/// naming it.
pub(crate) fn http_headers(
    settings: &OtlpSettings,
    signal: Signal,
) -> Result<Vec<(String, String)>, TelemetryError> {
    for (name, value) in &settings.headers {
        // Visible characters, spaces and tabs (RFC 9110 field values; the configuration
        // accepts the same).
        let value_ok = value
            .bytes()
            .all(|b| (b >= 0x20 || b == b'\t') && b != 0x7f);
        let valid = http_header_name_ok(name) && value_ok;
        if !valid {
            return Err(TelemetryError::InvalidHeader {
                signal,
                name: name.clone(),
            });
        }
    }
    Ok(settings.headers.clone())
}

/// An HTTP header name is a non-empty RFC 9110 token. The exporter silently skips invalid
/// headers; rejecting them at install says which one is wrong.
fn http_header_name_ok(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_token_byte)
}

#[cfg(not(feature = "tls"))]
pub(crate) mod tls {
    //! Without the `tls` feature, any TLS setting is an install error that names it, rather
    //! than an export that fails later.

    use super::*;

    /// No TLS configuration, or the refusal of one.
    pub(crate) fn grpc(
        settings: &OtlpSettings,
        signal: Signal,
        https: bool,
    ) -> Result<Option<std::convert::Infallible>, TelemetryError> {
        refuse(settings, signal, https).map(|()| None)
    }

    /// No HTTP client of ours, or the refusal of TLS settings.
    pub(crate) fn http_client(
        settings: &OtlpSettings,
        signal: Signal,
        https: bool,
    ) -> Result<Option<reqwest::blocking::Client>, TelemetryError> {
        refuse(settings, signal, https).map(|()| None)
    }

    /// The same refusal for gRPC and HTTP: neither can use TLS without the feature.
    fn refuse(settings: &OtlpSettings, signal: Signal, https: bool) -> Result<(), TelemetryError> {
        let setting = if settings.certificate.is_some() {
            "a CA certificate"
        } else if settings.client_certificate.is_some() || settings.client_key.is_some() {
            "a client certificate"
        } else if https && !settings.endpoint.contains("://") {
            "a gRPC endpoint without a scheme (https unless `OTEL_EXPORTER_OTLP_INSECURE=true` \
             or the signal's own `..._INSECURE`)"
        } else if https {
            "an https endpoint"
        } else {
            return Ok(());
        };
        Err(TelemetryError::TlsNotEnabled { signal, setting })
    }
}

#[cfg(feature = "tls")]
pub(crate) mod tls {
    //! TLS from the certificate settings: tonic's rustls configuration for gRPC, a blocking
    //! reqwest client (native TLS) for HTTP.

    use std::path::Path;

    use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};

    use super::*;

    fn read(path: &Path, signal: Signal) -> Result<Vec<u8>, TelemetryError> {
        std::fs::read(path).map_err(|error| TelemetryError::TlsFile {
            signal,
            path: path.to_owned(),
            reason: error.to_string(),
        })
    }

    /// A client certificate and its key, PEM.
    struct ClientIdentity {
        cert: Vec<u8>,
        key: Vec<u8>,
    }

    /// The client certificate and key, both or neither.
    fn identity(
        settings: &OtlpSettings,
        signal: Signal,
    ) -> Result<Option<ClientIdentity>, TelemetryError> {
        match (&settings.client_certificate, &settings.client_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(ClientIdentity {
                cert: read(cert, signal)?,
                key: read(key, signal)?,
            })),
            (Some(path), None) | (None, Some(path)) => Err(TelemetryError::TlsFile {
                signal,
                path: path.clone(),
                reason: "a client certificate needs a client key, and a key needs a certificate"
                    .into(),
            }),
        }
    }

    /// The TLS configuration of a gRPC channel, when it uses TLS.
    pub(crate) fn grpc(
        settings: &OtlpSettings,
        signal: Signal,
        https: bool,
    ) -> Result<Option<ClientTlsConfig>, TelemetryError> {
        let identity = identity(settings, signal)?;
        if !https && settings.certificate.is_none() && identity.is_none() {
            return Ok(None);
        }
        let mut config = ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &settings.certificate {
            config = config.ca_certificate(Certificate::from_pem(read(ca, signal)?));
        }
        if let Some(id) = identity {
            config = config.identity(Identity::from_pem(id.cert, id.key));
        }
        Ok(Some(config))
    }

    /// A blocking HTTP client with the configured certificates, when there are any.
    pub(crate) fn http_client(
        settings: &OtlpSettings,
        signal: Signal,
        _https: bool,
    ) -> Result<Option<reqwest::blocking::Client>, TelemetryError> {
        let identity = identity(settings, signal)?;
        if settings.certificate.is_none() && identity.is_none() {
            // https endpoints work with the default client and the system roots.
            return Ok(None);
        }
        let rejected =
            |path: &Option<std::path::PathBuf>, error: reqwest::Error| TelemetryError::TlsFile {
                signal,
                path: path.clone().unwrap_or_default(),
                reason: error.to_string(),
            };
        let mut client = reqwest::blocking::Client::builder().timeout(settings.timeout);
        if let Some(path) = &settings.certificate {
            let cert = reqwest::Certificate::from_pem(&read(path, signal)?)
                .map_err(|e| rejected(&settings.certificate, e))?;
            client = client.add_root_certificate(cert);
        }
        if let Some(id) = &identity {
            let id = reqwest::Identity::from_pkcs8_pem(&id.cert, &id.key)
                .map_err(|e| rejected(&settings.client_certificate, e))?;
            client = client.identity(id);
        }
        // The blocking client starts its own runtime and refuses to be built inside another
        // one, so it is built on a plain thread (the exporter does the same for its default).
        let client = std::thread::spawn(move || client.build())
            .join()
            .map_err(|_| TelemetryError::TlsFile {
                signal,
                path: settings.certificate.clone().unwrap_or_default(),
                reason: "building the HTTP client panicked".into(),
            })?
            .map_err(|e| rejected(&settings.certificate, e))?;
        Ok(Some(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::config::Settings;

    #[test]
    fn a_build_error_names_the_endpoint_without_its_credentials() {
        let mut s = Settings::default().otlp.traces;
        s.endpoint = "https://user:s3cr3t@collector:4318/v1/traces?token=t0k3n".into();
        let source = opentelemetry_otlp::ExporterBuildError::InvalidConfiguration("x".into());
        let text = build_error(Signal::Traces, &s, source).to_string();
        assert!(
            text.contains("https://***@collector:4318/v1/traces?***"),
            "{text}"
        );
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0k3n"),
            "{text}"
        );
    }

    #[test]
    fn a_zero_timeout_means_no_limit_and_the_export_timeout_bounds_it() {
        let mut s = Settings::default().otlp.traces;
        s.timeout = Duration::ZERO;
        assert_eq!(effective(&s, Duration::ZERO).timeout, NO_LIMIT);
        assert_eq!(
            effective(&s, Duration::from_secs(3)).timeout,
            Duration::from_secs(3)
        );
        s.timeout = Duration::from_secs(10);
        assert_eq!(
            effective(&s, Duration::from_secs(30)).timeout,
            Duration::from_secs(10)
        );
        assert_eq!(
            effective(&s, Duration::ZERO).timeout,
            Duration::from_secs(10)
        );
    }

    #[test]
    fn grpc_endpoint_follows_the_insecure_rule() {
        let mut s = Settings::default().otlp.traces;
        s.endpoint = "collector:4317".into();
        s.insecure = true;
        assert_eq!(grpc_endpoint(&s), "http://collector:4317");
        s.insecure = false;
        assert_eq!(grpc_endpoint(&s), "https://collector:4317");
        s.endpoint = "http://collector:4317".into();
        assert_eq!(grpc_endpoint(&s), "http://collector:4317");
    }

    #[test]
    fn grpc_bin_headers_are_binary_metadata_from_base64() {
        let mut s = Settings::default().otlp.traces;
        s.headers = vec![
            ("X-Trace-Bin".into(), "AAEC".into()),
            ("x-ok".into(), "1".into()),
        ];
        let metadata = grpc_metadata(&s, Signal::Traces).unwrap();
        let bin = metadata.get_bin("x-trace-bin").unwrap();
        assert_eq!(bin.to_bytes().unwrap().as_ref(), [0u8, 1, 2]);
        assert_eq!(metadata.get("x-ok").unwrap(), "1");
    }

    #[test]
    fn header_names_must_be_tokens() {
        assert!(http_header_name_ok("x-api-key"));
        assert!(!http_header_name_ok("bad header"));
        assert!(!http_header_name_ok(""));
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_settings_without_the_feature_are_refused() {
        let runtime = TelemetryRuntime::default();
        let mut s = Settings::default().otlp.traces;
        s.endpoint = "https://collector:4318/v1/traces".into();
        let err = span_exporter(&s, &runtime).unwrap_err();
        assert!(
            matches!(
                err,
                TelemetryError::TlsNotEnabled {
                    setting: "an https endpoint",
                    ..
                }
            ),
            "{err}"
        );
        s.endpoint = "http://collector:4318/v1/traces".into();
        s.certificate = Some("ca.pem".into());
        let err = span_exporter(&s, &runtime).unwrap_err();
        assert!(matches!(
            err,
            TelemetryError::TlsNotEnabled {
                setting: "a CA certificate",
                ..
            }
        ));
        // gRPC without a scheme is https by the specification's rule: the error says why.
        let mut s = Settings::default().otlp.traces;
        s.protocol = crate::telemetry::config::Protocol::Grpc;
        s.endpoint = "localhost:4317".into();
        let err = span_exporter(&s, &runtime).unwrap_err().to_string();
        assert!(
            err.contains("without a scheme") && err.contains("OTEL_EXPORTER_OTLP_INSECURE=true"),
            "{err}"
        );
    }

    #[test]
    fn invalid_headers_name_the_header() {
        let runtime = TelemetryRuntime::default();
        let mut s = Settings::default().otlp.logs;
        s.headers = vec![("bad header".into(), "v".into())];
        let err = log_exporter(&s, &runtime).unwrap_err();
        assert!(err.to_string().contains("bad header"), "{err}");
        // A tab is a valid field-value character, which the configuration accepts too.
        s.headers = vec![("x-note".into(), "a\tb".into())];
        assert!(log_exporter(&s, &runtime).is_ok());
    }
}
