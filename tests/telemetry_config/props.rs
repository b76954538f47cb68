//! Arbitrary input never panics; percent-encoding round-trips through the variables.

use dagtel::telemetry::config::{
    ConfigBuilder, ConfigError, percent_decode, percent_encode, variables,
};
use proptest::prelude::*;

fn garbage() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        "[,=%a-z0-9 ]{0,30}",
        Just("%".to_owned()),
        Just("-0".to_owned()),
        Just("NaN".to_owned()),
        Just("18446744073709551616".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_values_never_panic(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), garbage()), 1..6),
        strict in any::<bool>(),
    ) {
        let vars: Vec<String> = variables().into_iter().filter(|v| v != "DAGTEL_CONFIG").collect();
        let env: Vec<(String, String)> =
            picks.into_iter().map(|(i, v)| (i.get(&vars).clone(), v)).collect();
        match ConfigBuilder::new().env(env.clone()).strict(strict).resolve() {
            Ok(r) => {
                prop_assert!(!strict || r.warnings.is_empty());
                prop_assert!(r.settings.span_batch.max_export_batch_size <= r.settings.span_batch.max_queue_size);
                prop_assert!((0.0..=1.0).contains(&r.settings.sampler.ratio));
                let _ = r.explain().to_string();
            }
            Err(ConfigError::Strict { problems }) => prop_assert!(strict && !problems.is_empty()),
            Err(e) => prop_assert!(false, "{env:?}: {e}"),
        }
    }

    #[test]
    fn percent_decoding_inverts_encoding(s in any::<String>()) {
        prop_assert_eq!(percent_decode(&percent_encode(&s)).unwrap(), s);
    }

    #[test]
    fn resource_attributes_round_trip_through_the_variable(
        attrs in proptest::collection::btree_map("[a-z]{1,8}", any::<String>(), 1..5),
    ) {
        let raw = attrs
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join(",");
        let r = ConfigBuilder::new().env([("OTEL_RESOURCE_ATTRIBUTES", raw)]).resolve().unwrap();
        prop_assert!(r.warnings.is_empty());
        let got: Vec<(String, String)> = r.settings.resource_attributes;
        let want: Vec<(String, String)> = attrs.into_iter().collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn headers_round_trip_and_never_leak_into_warnings(
        value in any::<String>(),
        broken in "[^=,]{1,20}",
    ) {
        let raw = format!("x-token={},{broken}", percent_encode(&value));
        let r = ConfigBuilder::new().env([("OTEL_EXPORTER_OTLP_HEADERS", raw)]).resolve().unwrap();
        let has_control = value.chars().any(|c| c.is_control() && c != '\t');
        if !has_control {
            prop_assert_eq!(&r.settings.otlp.traces.headers, &vec![("x-token".to_owned(), value.clone())]);
        }
        // An entry without `=` may be a bare credential: its text is never shown.
        let expected = usize::from(has_control) + usize::from(!broken.trim().is_empty());
        prop_assert_eq!(r.warnings.len(), expected);
        for w in &r.warnings {
            prop_assert!(
                w.value == "x-token=<hidden>" || w.value.starts_with("<entry 2 hidden"),
                "{}",
                w.value
            );
        }
    }
}
