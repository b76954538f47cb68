//! Telemetry configuration: every `OTEL_*` variable (and dagtel's own `DAGTEL_*`), an
//! operational profile and an optional TOML file, resolved into one typed [`Settings`] value
//! that says where each setting came from.
//!
//! ```
//! use dagtel::telemetry::config::{ConfigBuilder, ExporterKind, Profile, SamplerKind, Source};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Tests pass the environment explicitly; programs call `resolve()` or leave `env` out.
//! let resolved = ConfigBuilder::new()
//!     .env([
//!         ("DAGTEL_PROFILE", "prod"),
//!         ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
//!         ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"), // invalid: ignored with a warning
//!         ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cr3t"),
//!     ])
//!     .default_service_name("etl")
//!     .resolve()?;
//!
//! let s = &resolved.settings;
//! assert_eq!(s.sampler.kind, SamplerKind::ParentBasedTraceIdRatio); // from the profile
//! assert_eq!(s.sampler.ratio, 0.25); // the environment overrides the profile
//! assert_eq!(s.span_batch.max_queue_size, 4096); // the profile's value was kept
//! assert_eq!(s.exporters.traces, [ExporterKind::Otlp]);
//! assert_eq!(s.otlp.traces.endpoint, "http://localhost:4317"); // gRPC in prod
//!
//! let w = &resolved.warnings[0];
//! assert_eq!((w.variable.as_str(), w.value.as_str()), ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"));
//! assert_eq!(w.used, "4096 (profile:prod)");
//!
//! let explain = resolved.explain();
//! assert_eq!(explain.get("sampler.ratio").unwrap().source, Source::Env("OTEL_TRACES_SAMPLER_ARG".into()));
//! assert_eq!(explain.get("otlp.traces.headers").unwrap().value, "authorization=***");
//! println!("{explain}"); // SETTING  VARIABLE  VALUE  SOURCE, one line per setting
//! # Ok(())
//! # }
//! ```
//!
//! Layers, lowest first; a higher layer wins key by key:
//!
//! 1. defaults: the OpenTelemetry specification's, with the embedded file exporter;
//! 2. the profile ([`Profile`], `DAGTEL_PROFILE`);
//! 3. the TOML file `DAGTEL_CONFIG` names (a missing or malformed file is an error);
//! 4. the environment, parsed by the specification's rules (an invalid value is ignored with
//!    one [`ConfigWarning`]; with `DAGTEL_STRICT_CONFIG=true` it is a [`ConfigError`]);
//! 5. explicit [`ConfigBuilder`] options.
//!
//! Within one layer a per-signal OTLP value (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`) beats the
//! general one (`OTEL_EXPORTER_OTLP_TIMEOUT`), and a span or log-record limit beats the general
//! attribute limit. `docs/configuration.md` lists every setting.

mod builder;
mod duration_ms;
mod env;
mod error;
mod explain;
mod file;
mod layer;
mod parse;
mod profile;
mod resolve;
mod settings;
mod signal;
mod source;

pub use builder::ConfigBuilder;
pub use env::{EnvSource, ProcessEnv, variables};
pub use error::{ConfigError, ConfigWarning};
pub(crate) use explain::mask_url;
pub use explain::{ExplainRow, Explanation};
pub(crate) use parse::is_token_byte;
pub use parse::{PercentDecodeError, percent_decode, percent_encode};
pub use resolve::{MAX_QUEUE_SIZE, Resolved, resolve};
pub(crate) use resolve::{decode_base64, is_binary_header};
pub use settings::*;
pub use signal::Signal;
pub use source::Source;
