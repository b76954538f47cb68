//! The configured headers, and only those, on every OTLP request.
//!
//! `opentelemetry-otlp` merges the `OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS` variables of the
//! process into the requests of the exporters it builds, over the configured headers and over
//! its own (`content-type`, `content-encoding`, `user-agent`), whatever the configuration
//! resolved: a header the configuration ignored with a warning, or one that a
//! `ConfigBuilder::env` isolation left out, would still be sent. These wrappers give each
//! request its own headers and the configured ones, nothing else: for gRPC an interceptor that
//! replaces the request's metadata, for HTTP a client that rebuilds the request's headers.

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::otlp::USER_AGENT;

/// An interceptor that gives each request exactly `metadata`, with dagtel's `user-agent` unless
/// one is configured. The library calls it after adding its own metadata (the configured
/// headers and the variables'), so this wins.
pub(crate) fn grpc(
    mut metadata: tonic::metadata::MetadataMap,
) -> impl tonic::service::Interceptor + Clone + Send + Sync + 'static {
    if !metadata.contains_key("user-agent") {
        metadata.insert(
            "user-agent",
            tonic::metadata::MetadataValue::from_static(USER_AGENT),
        );
    }
    move |mut request: tonic::Request<()>| {
        *request.metadata_mut() = metadata.clone();
        Ok(request)
    }
}

/// An HTTP client that sends each request with the headers of its body (`content-type` for
/// the protocol, `content-encoding: gzip` when the body is gzip), dagtel's `user-agent` and the
/// configured headers (which may replace the user agent), and no others.
#[derive(Debug)]
pub(crate) struct ExactHeaders<C> {
    inner: C,
    headers: HeaderMap,
}

impl<C> ExactHeaders<C> {
    /// `inner` sending bodies of `content_type` with the `configured` headers (already
    /// checked: one that is not a valid header is left out).
    pub(crate) fn new(
        inner: C,
        content_type: &'static str,
        configured: &[(String, String)],
    ) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        for (name, value) in configured {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        // The body's own headers last: a configured `content-type` would misdescribe it.
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.remove(CONTENT_ENCODING);
        Self { inner, headers }
    }

    /// The headers to send with `body`.
    fn headers_for(&self, body: &[u8]) -> HeaderMap {
        let mut headers = self.headers.clone();
        // The library compresses when configured to, or when a compression variable says so;
        // a gzip stream starts with 1f 8b, a protobuf or JSON export request never does.
        if body.starts_with(&[0x1f, 0x8b]) {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        headers
    }
}

#[async_trait::async_trait]
impl<C: HttpClient> HttpClient for ExactHeaders<C> {
    async fn send_bytes(&self, mut request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        *request.headers_mut() = self.headers_for(request.body());
        self.inner.send_bytes(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(headers: &HeaderMap) -> Vec<String> {
        let mut shown: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
            .collect();
        shown.sort();
        shown
    }

    #[test]
    fn the_body_decides_its_headers_and_the_configuration_the_rest() {
        let configured = [
            ("X-Tenant".to_owned(), "a".to_owned()),
            ("content-type".to_owned(), "text/plain".to_owned()),
        ];
        let client = ExactHeaders::new((), "application/x-protobuf", &configured);
        assert_eq!(
            shown(&client.headers_for(&[0x0a, 0x01])),
            [
                "content-type: application/x-protobuf".to_owned(),
                format!("user-agent: {USER_AGENT}"),
                "x-tenant: a".to_owned(),
            ]
        );
        assert!(
            shown(&client.headers_for(&[0x1f, 0x8b, 0x08]))
                .contains(&"content-encoding: gzip".into())
        );
        let agent = [("User-Agent".to_owned(), "mine/1".to_owned())];
        let client = ExactHeaders::new((), "application/json", &agent);
        assert_eq!(
            shown(&client.headers_for(b"{}")),
            ["content-type: application/json", "user-agent: mine/1"]
        );
    }
}
