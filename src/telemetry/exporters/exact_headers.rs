//! The configured headers, and only those, on every OTLP request.
//!
//! `opentelemetry-otlp` merges the `OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS` variables of the
//! process into the requests of the exporters it builds, over the configured headers, whatever
//! the configuration resolved: a header the configuration ignored with a warning, or one that a
//! `ConfigBuilder::env` isolation left out, would still be sent. These wrappers put the
//! configured headers back as the only ones: for gRPC an interceptor that replaces the request's
//! metadata, for HTTP a client that removes what the variables added.

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::telemetry::Signal;
use crate::telemetry::config::percent_decode;

/// An interceptor that gives each request exactly `metadata`. The library calls it after
/// adding its own metadata (the configured headers and the variables'), so this wins.
pub(crate) fn grpc(
    metadata: tonic::metadata::MetadataMap,
) -> impl tonic::service::Interceptor + Clone + Send + Sync + 'static {
    move |mut request: tonic::Request<()>| {
        *request.metadata_mut() = metadata.clone();
        Ok(request)
    }
}

/// An HTTP client that sends each request with the configured headers and without those the
/// process's header variables added.
#[derive(Debug)]
pub(crate) struct ExactHeaders<C> {
    inner: C,
    configured: HeaderMap,
    from_env: Vec<HeaderName>,
}

impl<C> ExactHeaders<C> {
    /// `inner` sending `signal`'s requests with the `configured` headers (already checked).
    pub(crate) fn new(inner: C, configured: &[(String, String)], signal: Signal) -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in configured {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        Self {
            inner,
            configured: headers,
            from_env: names_from_env(signal, |var| std::env::var(var).ok()),
        }
    }
}

/// The header names the library reads for `signal`: the signal's variable if set, else the
/// general one (its rule), parsed as leniently as it does. The request's own headers
/// (`content-type`, `content-encoding`, `content-length`) are never removed.
fn names_from_env(signal: Signal, var: impl Fn(&str) -> Option<String>) -> Vec<HeaderName> {
    let specific = format!(
        "OTEL_EXPORTER_OTLP_{}_HEADERS",
        signal.name().to_ascii_uppercase()
    );
    let Some(list) = var(&specific).or_else(|| var("OTEL_EXPORTER_OTLP_HEADERS")) else {
        return Vec::new();
    };
    list.split(',')
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(key, _)| {
            let key = key.trim();
            let key = percent_decode(key).unwrap_or_else(|_| key.to_owned());
            HeaderName::from_bytes(key.trim().as_bytes()).ok()
        })
        .filter(|name| !name.as_str().starts_with("content-"))
        .collect()
}

#[async_trait::async_trait]
impl<C: HttpClient> HttpClient for ExactHeaders<C> {
    async fn send_bytes(&self, mut request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let headers = request.headers_mut();
        for name in &self.from_env {
            headers.remove(name);
        }
        for (name, value) in &self.configured {
            headers.insert(name.clone(), value.clone());
        }
        self.inner.send_bytes(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signals_variable_wins_over_the_general_one_as_in_the_library() {
        let env = |var: &str| match var {
            "OTEL_EXPORTER_OTLP_HEADERS" => Some("x-general=1".to_owned()),
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS" => {
                Some(" X-Tenant = a , x%2Dbad=%zz, content-type=text/plain, junk".to_owned())
            }
            _ => None,
        };
        let names = |signal| -> Vec<String> {
            names_from_env(signal, env)
                .iter()
                .map(|n| n.as_str().to_owned())
                .collect()
        };
        assert_eq!(names(Signal::Traces), ["x-tenant", "x-bad"]);
        assert_eq!(names(Signal::Logs), ["x-general"]);
    }
}
