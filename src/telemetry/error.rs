//! What can go wrong while installing telemetry.

use std::path::PathBuf;

use super::Signal;

/// Installing the telemetry providers failed; nothing was installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The OTLP exporter of a signal could not be built (bad endpoint, header or TLS file).
    #[error("cannot build the OTLP {signal} exporter for {endpoint}: {source}")]
    OtlpExporter {
        /// The signal whose exporter failed.
        signal: Signal,
        /// The endpoint it was meant to send to (credentials and query string masked).
        endpoint: String,
        /// The exporter's own error.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// A header for the OTLP exporter of a signal is not a valid HTTP header or gRPC metadata.
    #[error("OTLP {signal} header `{name}` is not a valid header name or value")]
    InvalidHeader {
        /// The signal.
        signal: Signal,
        /// The header's name.
        name: String,
    },
    /// A TLS setting was given but dagtel was built without the `tls` feature.
    #[error(
        "OTLP {signal}: {setting} needs TLS support; build dagtel with the `tls` feature or use an \
         `http://` endpoint"
    )]
    TlsNotEnabled {
        /// The signal.
        signal: Signal,
        /// The setting that needs TLS (an https endpoint, a CA certificate, a client key).
        setting: &'static str,
    },
    /// A TLS file (CA certificate, client certificate or key) could not be read or parsed.
    #[error("OTLP {signal}: cannot use TLS file {path}: {reason}")]
    TlsFile {
        /// The signal.
        signal: Signal,
        /// The file.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// The telemetry directory of the file exporter could not be created, or a file in it
    /// could not be opened.
    #[error("cannot write telemetry files under {path}: {source}")]
    TelemetryDir {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The small tokio runtime that gRPC exporters need could not be started.
    #[error("cannot start the telemetry runtime for gRPC exporters: {0}")]
    Runtime(#[source] std::io::Error),
    /// The configuration is invalid (strict mode, or an unreadable or malformed file).
    #[error("invalid telemetry configuration: {0}")]
    Config(#[from] super::config::ConfigError),
}
