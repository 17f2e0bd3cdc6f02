//! The short fault-injection run (issue #16): every fault once, under load,
//! on each backend, judged by `moderato-chaos`'s ledger (it exits non-zero
//! when anything acknowledged was lost, duplicated or decided twice, the
//! stream had a gap, or calls did not come back). `bench/chaos` runs the
//! long version; RELIABILITY.md has its figures.

use std::process::Command;

fn short_run(backend: &str) {
    let report = std::env::temp_dir().join(format!(
        "moderato-chaos-{backend}-{}.json",
        std::process::id()
    ));
    let status = Command::new(env!("CARGO_BIN_EXE_moderato-chaos"))
        .args(["--backend", backend, "--rounds", "1", "--calm", "1.5"])
        .args(["--submitters", "16", "--moderators", "3"])
        .arg("--moderato")
        .arg(env!("CARGO_BIN_EXE_moderato"))
        .arg("--report")
        .arg(&report)
        .status()
        .expect("moderato-chaos runs");
    let json = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    assert!(
        status.success(),
        "moderato-chaos on {backend}: {status}\n{json}"
    );
    // The run did what it says: each fault injected, comments acknowledged
    // and decided, the stream followed.
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let findings = &report["findings"];
    assert!(
        findings["acknowledged"].as_u64().unwrap() > 100,
        "{findings}"
    );
    assert!(
        findings["decisions_acknowledged"].as_u64().unwrap() > 0,
        "{findings}"
    );
    assert!(
        findings["stream_events_seen"].as_u64().unwrap() > 100,
        "{findings}"
    );
    for summary in report["summary"].as_array().unwrap() {
        assert_eq!(summary["injected"], 1, "{summary}");
    }
}

#[test]
fn postgres_survives_each_fault() {
    short_run("postgres");
}

#[test]
fn sqlite_survives_each_fault() {
    short_run("sqlite");
}
