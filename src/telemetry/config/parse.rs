//! The OpenTelemetry specification's rules for environment variable values, one function per
//! value type. Every parser takes the raw text (already trimmed and known to be non-empty: an
//! empty value counts as unset) and returns the typed value as a figment [`Value`] plus the
//! parts it had to ignore. None of them panics, whatever the input.

use figment::value::Value;
use serde::Serialize;

use crate::otel::NodeSeries;

use super::settings::{
    Compression, Detector, ExemplarFilter, ExporterKind, HistogramAggregation, LogLevel, Profile,
    Propagator, Protocol, SamplerKind, TemporalityPreference,
};

/// The outcome of parsing one variable.
#[derive(Debug, Default)]
pub(super) struct Parsed {
    /// The value to use, if any part of the input was valid.
    pub(super) value: Option<Value>,
    /// Each ignored part: the offending text (already masked if it may be secret) and why.
    pub(super) problems: Vec<(String, String)>,
}

impl Parsed {
    fn ok(value: Value) -> Self {
        Self {
            value: Some(value),
            problems: Vec::new(),
        }
    }

    fn bad(raw: &str, problem: impl Into<String>) -> Self {
        Self {
            value: None,
            problems: vec![(raw.to_owned(), problem.into())],
        }
    }

    fn scalar(raw: &str, result: Result<Value, String>) -> Self {
        match result {
            Ok(v) => Self::ok(v),
            Err(problem) => Self::bad(raw, problem),
        }
    }
}

/// A parser for one kind of variable.
pub(super) type Parser = fn(&str) -> Parsed;

fn to_value<T: Serialize>(v: T) -> Value {
    // Serializing our own plain types into a figment value cannot fail; an empty value keeps
    // that claim from ever becoming a panic.
    Value::serialize(v).unwrap_or_else(|_| Value::from(String::new()))
}

/// Any text.
pub(super) fn text(raw: &str) -> Parsed {
    Parsed::ok(Value::from(raw.to_owned()))
}

/// Only a case-insensitive `true` is true; `false` is false; anything else is invalid.
pub(super) fn boolean(raw: &str) -> Parsed {
    let v = if raw.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if raw.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("not a boolean (`true` or `false`)".to_owned())
    };
    Parsed::scalar(raw, v.map(Value::from))
}

fn integer(raw: &str) -> Result<u64, String> {
    raw.parse::<u64>().map_err(|_| {
        if raw.starts_with('-') && raw[1..].bytes().all(|b| b.is_ascii_digit()) && raw.len() > 1 {
            "negative".to_owned()
        } else if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
            "too large".to_owned()
        } else {
            "not a non-negative integer".to_owned()
        }
    })
}

/// A non-negative integer that fits in `u32` (attribute and event limits).
pub(super) fn count_u32(raw: &str) -> Parsed {
    let v = integer(raw).and_then(|n| u32::try_from(n).map_err(|_| "too large".to_owned()));
    Parsed::scalar(raw, v.map(to_value))
}

/// A positive integer (queue and batch sizes).
pub(super) fn positive(raw: &str) -> Parsed {
    let v = integer(raw).and_then(|n| {
        if n == 0 {
            Err("must be at least 1".to_owned())
        } else {
            usize::try_from(n).map_err(|_| "too large".to_owned())
        }
    });
    Parsed::scalar(raw, v.map(to_value))
}

/// A duration in milliseconds, zero allowed.
pub(super) fn millis(raw: &str) -> Parsed {
    Parsed::scalar(raw, integer(raw).map(to_value))
}

/// A timeout in milliseconds; `0` means no limit (kept as zero).
pub(super) fn timeout(raw: &str) -> Parsed {
    millis(raw)
}

/// A positive duration in milliseconds (an interval of zero would spin).
pub(super) fn interval(raw: &str) -> Parsed {
    let v = integer(raw).and_then(|n| {
        if n == 0 {
            Err("must be at least 1 ms".to_owned())
        } else {
            Ok(n)
        }
    });
    Parsed::scalar(raw, v.map(to_value))
}

/// A sampling ratio in `[0, 1]`.
pub(super) fn ratio(raw: &str) -> Parsed {
    let v = match raw.parse::<f64>() {
        Ok(r) if r.is_finite() && (0.0..=1.0).contains(&r) => Ok(r),
        Ok(_) => Err("outside [0, 1]".to_owned()),
        Err(_) => Err("not a number".to_owned()),
    };
    Parsed::scalar(raw, v.map(to_value))
}

/// An OTLP endpoint: `http://` or `https://` with a host, or a scheme-less `host:port` (gRPC
/// only; checked once the protocol is known).
pub(super) fn endpoint(raw: &str) -> Parsed {
    Parsed::scalar(raw, check_url(raw).map(|()| Value::from(raw.to_owned())))
}

/// Whether `raw` can be the endpoint of `protocol`: HTTP needs a scheme.
pub(super) fn check_endpoint(raw: &str, protocol: Protocol) -> Result<(), String> {
    check_url(raw)?;
    if protocol != Protocol::Grpc && !raw.contains("://") {
        return Err("needs http:// or https:// for the HTTP protocols".to_owned());
    }
    Ok(())
}

fn check_url(raw: &str) -> Result<(), String> {
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("not a URL (contains whitespace)".to_owned());
    }
    let rest = match raw.split_once("://") {
        Some((scheme, rest)) => {
            if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
                return Err(format!("unsupported scheme `{scheme}` (http or https)"));
            }
            rest
        }
        None => raw,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("no host".to_owned());
    }
    // The exporters parse it as a URI: anything the URI grammar refuses would fail there.
    let full = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    if raw.contains('#') {
        // A path the exporter appends would land in the fragment, which is never sent.
        return Err("has a fragment (`#`)".to_owned());
    }
    let uri = full
        .parse::<tonic::codegen::http::Uri>()
        .map_err(|e| format!("not a valid URL ({e})"))?;
    // The URI grammar keeps the port as text: 99999 parses, and no connection can use it.
    let host_port = uri
        .authority()
        .map(|a| a.as_str().rsplit('@').next().unwrap_or(""))
        .unwrap_or("");
    let port_text = host_port.rsplit_once(':').map(|(_, p)| p);
    if let Some(port) = port_text.filter(|p| !p.ends_with(']'))
        && port.parse::<u16>().is_err()
    {
        return Err(format!("port `{port}` is not a port (0 to 65535)"));
    }
    Ok(())
}

/// A value of one of the enums the variables accept.
pub(super) trait Choice: Serialize + Copy + PartialEq + 'static {
    /// Accepted names (lowercase) and their value.
    const OPTIONS: &'static [(&'static str, Self)];
    /// Names the specification defines but dagtel does not provide.
    const UNSUPPORTED: &'static [&'static str] = &[];
    /// What a list that is just `none` means.
    fn none_list() -> Vec<Self> {
        Vec::new()
    }
}

fn lookup<T: Choice>(name: &str) -> Result<T, String> {
    let lower = name.to_ascii_lowercase();
    if let Some((_, v)) = T::OPTIONS.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    let known: Vec<&str> = T::OPTIONS.iter().map(|(n, _)| *n).collect();
    if T::UNSUPPORTED.contains(&lower.as_str()) {
        Err(format!(
            "not supported by dagtel (supported: {})",
            known.join(", ")
        ))
    } else {
        Err(format!(
            "unknown value (expected one of: {})",
            known.join(", ")
        ))
    }
}

/// One enum value, case-insensitive.
pub(super) fn choice<T: Choice>(raw: &str) -> Parsed {
    Parsed::scalar(raw, lookup::<T>(raw).map(to_value))
}

/// A comma-separated list of enum values. Unknown entries are ignored one by one; `none`
/// alone is the empty (null) value; duplicates are dropped.
pub(super) fn list<T: Choice>(raw: &str) -> Parsed {
    let mut out: Vec<T> = Vec::new();
    let mut problems = Vec::new();
    let mut saw_none = false;
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry.eq_ignore_ascii_case("none") {
            saw_none = true;
            continue;
        }
        match lookup::<T>(entry) {
            Ok(v) if !out.contains(&v) => out.push(v),
            Ok(_) => {}
            Err(problem) => problems.push((entry.to_owned(), problem)),
        }
    }
    let value = if saw_none && out.is_empty() {
        Some(to_value(T::none_list()))
    } else {
        if saw_none {
            problems.push((
                "none".to_owned(),
                "`none` cannot be combined with other values".to_owned(),
            ));
        }
        if out.is_empty() && problems.is_empty() {
            // Separators only (`,`): neither blank nor a value.
            problems.push((raw.trim().to_owned(), "no values".to_owned()));
        }
        (!out.is_empty()).then(|| to_value(out))
    };
    Parsed { value, problems }
}

/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs, comma-separated, keys and values
/// percent-decoded and trimmed. Invalid pairs are ignored one by one; a repeated key keeps its
/// last value.
pub(super) fn resource_attributes(raw: &str) -> Parsed {
    key_values(raw, false)
}

/// `OTEL_EXPORTER_OTLP_*HEADERS`: like resource attributes, but names must be valid header
/// names, values must not contain line breaks, and ignored parts are never echoed (a header
/// value is often a credential).
pub(super) fn headers(raw: &str) -> Parsed {
    key_values(raw, true)
}

fn key_values(raw: &str, header: bool) -> Parsed {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut problems = Vec::new();
    for (i, entry) in raw.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        match key_value(entry, header) {
            // Header names are case-insensitive: `X-Tenant` and `x-tenant` are one header.
            Ok((k, v)) => match pairs
                .iter_mut()
                .find(|(pk, _)| *pk == k || (header && pk.eq_ignore_ascii_case(&k)))
            {
                Some(slot) => slot.1 = v,
                None => pairs.push((k, v)),
            },
            Err(problem) => {
                let shown = if header {
                    hidden_entry(i, entry)
                } else {
                    entry.trim().to_owned()
                };
                problems.push((shown, problem));
            }
        }
    }
    let value = (!pairs.is_empty()).then(|| to_value(pairs));
    Parsed { value, problems }
}

/// A rejected `key=value` entry as a warning may show it: the key only when it is a plain
/// token that does not look like a credential (base64 with its `=` padding, or text written
/// with curl's `Name: value` syntax, would otherwise be shown whole).
fn hidden_entry(index: usize, entry: &str) -> String {
    match entry.split_once('=') {
        Some((k, rest)) if plain_key(k.trim()) && !only_padding(rest) => {
            format!("{}=<hidden>", k.trim())
        }
        _ => format!("<entry {} hidden, {} chars>", index + 1, entry.len()),
    }
}

/// A key short enough and made of token characters only.
fn plain_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 64 && key.bytes().all(is_token_byte)
}

/// What follows a key when the entry is base64 text: `=` padding and nothing else.
fn only_padding(rest: &str) -> bool {
    rest.trim().bytes().all(|b| b == b'=')
}

fn key_value(entry: &str, header: bool) -> Result<(String, String), String> {
    let (k, v) = entry.split_once('=').ok_or("no `=`")?;
    let key = percent_decode(k.trim()).map_err(|e| format!("key: {e}"))?;
    let value = percent_decode(v.trim()).map_err(|e| format!("value: {e}"))?;
    if key.is_empty() {
        return Err("empty key".to_owned());
    }
    if header {
        if only_padding(v) && !v.trim().is_empty() {
            return Err("no value (base64 text without a header name?)".to_owned());
        }
        if !key.bytes().all(is_token_byte) {
            return Err("not a valid header name".to_owned());
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err("header value contains control characters".to_owned());
        }
    }
    Ok((key, value))
}

/// RFC 9110 `tchar`: the bytes of a header name.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Decodes `%XX` escapes; the result must be UTF-8. `+` is a plus, not a space (W3C Baggage).
pub fn percent_decode(s: &str) -> Result<String, PercentDecodeError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(PercentDecodeError::Truncated)?;
            let hi = hex_digit(hex[0]).ok_or(PercentDecodeError::BadEscape)?;
            let lo = hex_digit(hex[1]).ok_or(PercentDecodeError::BadEscape)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PercentDecodeError::NotUtf8)
}

/// Encodes everything but unreserved characters (RFC 3986) as `%XX`; the inverse of
/// [`percent_decode`].
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Why a percent-encoded text could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PercentDecodeError {
    /// A `%` not followed by two characters.
    #[error("`%` at the end without two hex digits")]
    Truncated,
    /// A `%` followed by something other than two hex digits.
    #[error("`%` not followed by two hex digits")]
    BadEscape,
    /// The decoded bytes are not UTF-8.
    #[error("decoded bytes are not UTF-8")]
    NotUtf8,
}

impl Choice for Profile {
    const OPTIONS: &'static [(&'static str, Self)] = &[
        ("default", Profile::Default),
        ("dev", Profile::Dev),
        ("ci", Profile::Ci),
        ("prod", Profile::Prod),
    ];
}

impl Choice for SamplerKind {
    const OPTIONS: &'static [(&'static str, Self)] = &[
        ("always_on", SamplerKind::AlwaysOn),
        ("always_off", SamplerKind::AlwaysOff),
        ("traceidratio", SamplerKind::TraceIdRatio),
        ("parentbased_always_on", SamplerKind::ParentBasedAlwaysOn),
        ("parentbased_always_off", SamplerKind::ParentBasedAlwaysOff),
        (
            "parentbased_traceidratio",
            SamplerKind::ParentBasedTraceIdRatio,
        ),
    ];
    const UNSUPPORTED: &'static [&'static str] =
        &["jaeger_remote", "parentbased_jaeger_remote", "xray"];
}

impl Choice for ExporterKind {
    const OPTIONS: &'static [(&'static str, Self)] = &[
        ("otlp", ExporterKind::Otlp),
        ("console", ExporterKind::Console),
        ("file", ExporterKind::File),
        ("memory", ExporterKind::Memory),
    ];
    const UNSUPPORTED: &'static [&'static str] = &["zipkin", "jaeger", "prometheus", "logging"];
    fn none_list() -> Vec<Self> {
        vec![ExporterKind::None]
    }
}

impl Choice for Protocol {
    const OPTIONS: &'static [(&'static str, Self)] = &[
        ("grpc", Protocol::Grpc),
        ("http/protobuf", Protocol::HttpProtobuf),
        ("http/json", Protocol::HttpJson),
    ];
}

impl Choice for Compression {
    const OPTIONS: &'static [(&'static str, Self)] =
        &[("gzip", Compression::Gzip), ("none", Compression::None)];
    const UNSUPPORTED: &'static [&'static str] = &["zstd"];
}

impl Choice for ExemplarFilter {
    const OPTIONS: &'static [(&'static str, Self)] = &[
        ("always_on", ExemplarFilter::AlwaysOn),
        ("always_off", ExemplarFilter::AlwaysOff),
        ("trace_based", ExemplarFilter::TraceBased),
    ];
}

impl Choice for TemporalityPreference {
    const OPTIONS: &'static [(&'static str, Self)] = &[
        ("cumulative", TemporalityPreference::Cumulative),
        ("delta", TemporalityPreference::Delta),
        ("lowmemory", TemporalityPreference::LowMemory),
    ];
}

impl Choice for HistogramAggregation {
    const OPTIONS: &'static [(&'static str, Self)] = &[
        (
            "explicit_bucket_histogram",
            HistogramAggregation::ExplicitBucketHistogram,
        ),
        (
            "base2_exponential_bucket_histogram",
            HistogramAggregation::Base2ExponentialBucketHistogram,
        ),
    ];
}

impl Choice for NodeSeries {
    const OPTIONS: &'static [(&'static str, Self)] = &[
        ("node", NodeSeries::Node),
        ("layer", NodeSeries::Layer),
        ("stage", NodeSeries::Stage),
    ];
}

impl Choice for Detector {
    const OPTIONS: &'static [(&'static str, Self)] = &[
        ("process", Detector::Process),
        ("os", Detector::Os),
        ("host", Detector::Host),
        ("container", Detector::Container),
        ("k8s", Detector::K8s),
    ];
}

impl Choice for Propagator {
    const OPTIONS: &'static [(&'static str, Self)] = &[
        ("tracecontext", Propagator::TraceContext),
        ("baggage", Propagator::Baggage),
    ];
    const UNSUPPORTED: &'static [&'static str] = &["b3", "b3multi", "jaeger", "xray", "ottrace"];
}

impl Choice for LogLevel {
    const OPTIONS: &'static [(&'static str, Self)] = &[
        ("error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("trace", LogLevel::Trace),
        // Spellings other SDKs use for the same levels.
        ("warning", LogLevel::Warn),
        ("critical", LogLevel::Error),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TOML file and `explain()` use the serde names; they must be the variables' spelling.
    fn serde_names_match<T: Choice>(aliases: &[&str]) {
        for (name, v) in T::OPTIONS.iter().filter(|(n, _)| !aliases.contains(n)) {
            assert_eq!(serde_json::to_value(v).unwrap(), *name);
        }
    }

    #[test]
    fn every_enum_serializes_with_the_spelling_of_its_variable() {
        serde_names_match::<Profile>(&[]);
        serde_names_match::<SamplerKind>(&[]);
        serde_names_match::<ExporterKind>(&[]);
        serde_names_match::<Protocol>(&[]);
        serde_names_match::<Compression>(&[]);
        serde_names_match::<ExemplarFilter>(&[]);
        serde_names_match::<TemporalityPreference>(&[]);
        serde_names_match::<HistogramAggregation>(&[]);
        serde_names_match::<NodeSeries>(&[]);
        serde_names_match::<Detector>(&[]);
        serde_names_match::<Propagator>(&[]);
        serde_names_match::<LogLevel>(&["warning", "critical"]);
    }

    #[test]
    fn integers_explain_why_they_fail() {
        assert_eq!(integer("-5").unwrap_err(), "negative");
        assert_eq!(integer("99999999999999999999999").unwrap_err(), "too large");
        assert_eq!(integer("1.5").unwrap_err(), "not a non-negative integer");
        assert_eq!(integer("-").unwrap_err(), "not a non-negative integer");
        assert_eq!(integer("007").unwrap(), 7);
    }

    #[test]
    fn percent_decoding_rejects_broken_escapes() {
        assert_eq!(percent_decode("prod%20eu").unwrap(), "prod eu");
        assert_eq!(percent_decode("a+b").unwrap(), "a+b");
        assert_eq!(percent_decode("%2C%3D").unwrap(), ",=");
        assert_eq!(
            percent_decode("x%2").unwrap_err(),
            PercentDecodeError::Truncated
        );
        assert_eq!(
            percent_decode("%zz").unwrap_err(),
            PercentDecodeError::BadEscape
        );
        assert_eq!(
            percent_decode("%FF").unwrap_err(),
            PercentDecodeError::NotUtf8
        );
    }

    #[test]
    fn endpoints_need_a_host_and_an_http_scheme() {
        let grpc = Protocol::Grpc;
        let http = Protocol::HttpProtobuf;
        assert!(check_endpoint("http://collector:4318", http).is_ok());
        assert!(check_endpoint("https://u:p@collector/otlp", http).is_ok());
        assert!(check_endpoint("collector:4317", grpc).is_ok());
        assert!(
            check_endpoint("collector:4317", http).is_err(),
            "HTTP needs a scheme"
        );
        assert!(check_endpoint("garbage", http).is_err());
        assert!(check_endpoint("ftp://collector", grpc).is_err());
        assert!(check_endpoint("http://", grpc).is_err());
        assert!(check_endpoint("http://:4318", grpc).is_err());
        assert!(check_endpoint("not a url", grpc).is_err());
        assert!(
            check_endpoint("http://[::1", grpc).is_err(),
            "unbalanced IPv6 bracket"
        );
    }

    #[test]
    fn lists_drop_unknown_entries_and_handle_none() {
        let p = list::<Detector>("process, bogus,OS,process");
        assert_eq!(
            p.value,
            Some(to_value(vec![Detector::Process, Detector::Os]))
        );
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].0, "bogus");

        let p = list::<ExporterKind>("NONE");
        assert_eq!(p.value, Some(to_value(vec![ExporterKind::None])));
        let p = list::<Propagator>("none");
        assert_eq!(p.value, Some(to_value(Vec::<Propagator>::new())));

        let p = list::<ExporterKind>("otlp,none");
        assert_eq!(p.value, Some(to_value(vec![ExporterKind::Otlp])));
        assert_eq!(p.problems.len(), 1);

        let p = list::<Propagator>("b3");
        assert_eq!(p.value, None);
        assert!(p.problems[0].1.contains("not supported"));
    }

    #[test]
    fn header_problems_never_echo_values() {
        let p = headers("Authorization=Bearer%zzsecret,Bearer sekrit,ok=1");
        assert_eq!(
            p.value,
            Some(to_value(vec![("ok".to_owned(), "1".to_owned())]))
        );
        let shown: Vec<&str> = p.problems.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            shown,
            ["Authorization=<hidden>", "<entry 2 hidden, 13 chars>"]
        );
    }

    #[test]
    fn key_values_decode_trim_and_keep_the_last_duplicate() {
        let p = resource_attributes(" a = x%2Cy , b=1,a=2,=bad,novalue");
        assert_eq!(
            p.value,
            Some(to_value(vec![
                ("a".to_owned(), "2".to_owned()),
                ("b".to_owned(), "1".to_owned())
            ]))
        );
        assert_eq!(p.problems.len(), 2);
    }
}
