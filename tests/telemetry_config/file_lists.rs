//! `docs/configuration.md` ("Reading Settings"): "`exporters.<signal> ==
//! [ExporterKind::None]` means the signal is off; lists never mix `None` with other kinds and
//! hold no duplicates." Lists from the TOML file are taken as they are.

use crate::TempToml;
use dagtel::telemetry::config::{ConfigBuilder, ExporterKind};

#[test]
fn file_exporter_lists_follow_the_settings_contract() {
    let f = TempToml::new(
        "[exporters]\ntraces = [\"none\", \"otlp\", \"otlp\"]\nlogs = []\nmetrics = [\"file\", \"file\"]\n",
    );
    let r = ConfigBuilder::new()
        .env(Vec::<(String, String)>::new())
        .config_file(&f.0)
        .resolve()
        .unwrap();
    let e = &r.settings.exporters;
    let ok = |l: &[ExporterKind]| {
        !l.is_empty()
            && (l == [ExporterKind::None] || !l.contains(&ExporterKind::None))
            && l.iter().enumerate().all(|(i, k)| !l[..i].contains(k))
    };
    assert!(
        ok(&e.traces) && ok(&e.logs) && ok(&e.metrics) || !r.warnings.is_empty(),
        "traces {:?} logs {:?} metrics {:?}, warnings {:?}",
        e.traces,
        e.logs,
        e.metrics,
        r.warnings
    );
}
