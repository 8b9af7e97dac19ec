//! The whole tool end to end in `--quick` mode (tiny sizes, one round, no Bun or Node): every
//! server starts, every workload runs against it, and the JSON has every row; the TLS
//! workloads run on the sansock servers and the tokio-rustls baseline only; the stream view
//! (`sansock-stream/tokio`) runs the plain workloads, compared with the handler API. Timings are not
//! asserted; they mean nothing in a debug build on a busy machine.

use std::process::Command;

const WORKLOADS: &[&str] = &[
    "ping-pong-1",
    "ping-pong-64",
    "stream",
    "idle",
    "five-writes",
    "one-write",
    "churn",
];
const TLS_WORKLOADS: &[&str] = &[
    "tls-handshake-p256",
    "tls-handshake-rsa2048",
    "tls-resume",
    "tls-stream",
    "tls-idle",
];
const TLS_SERVERS: &[&str] = &[
    "sansock/tokio",
    "sansock/smol",
    "sansock/async-std",
    "baseline/tokio",
];
const SERVERS: &[&str] = &[
    "sansock/tokio",
    "sansock-stream/tokio",
    "baseline/tokio",
    "sansock/smol",
    "baseline/smol",
    "sansock/async-std",
    "baseline/async-std",
];

#[test]
fn quick_run_measures_every_workload_on_every_server() {
    // The RSA certificate comes from the `openssl` command: every workload is checked, so
    // it must be installed (`.ci/run` installs it).
    assert!(
        Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "the tls-handshake-rsa2048 workload needs the `openssl` command; install it"
    );
    let out = std::env::temp_dir().join(format!("sansock-bench-quick-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(env!("CARGO_BIN_EXE_sansock-bench"))
        .args([
            "run", "--quick", "--rounds", "1", "--peers", "none", "--out",
        ])
        .arg(&out)
        .status()
        .expect("run sansock-bench");
    assert!(
        status.success(),
        "sansock-bench run --quick failed: {status}"
    );

    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let rows = json["rows"].as_array().expect("rows");
    let plain = WORKLOADS
        .iter()
        .flat_map(|w| SERVERS.iter().map(move |s| (w, s)));
    let tls = TLS_WORKLOADS
        .iter()
        .flat_map(|w| TLS_SERVERS.iter().map(move |s| (w, s)));
    for (workload, server) in plain.chain(tls) {
        let row = rows
            .iter()
            .find(|r| r["workload"] == *workload && r["server"] == *server)
            .unwrap_or_else(|| panic!("no row for {workload} on {server}"));
        assert_eq!(
            row["rounds_ok"], 1,
            "{workload} on {server} failed: {}",
            row["failures"]
        );
        let cost = row["cost_metric"].as_str().expect("cost metric");
        assert!(
            row["metrics"][cost]["median"].is_number(),
            "{workload} on {server} has no {cost}"
        );
        if server.starts_with("sansock") {
            assert!(
                row["cost_vs_baseline"]["median"].is_number(),
                "{workload} on {server} has no ratio to its baseline"
            );
        }
        if server.starts_with("sansock-stream/") {
            assert!(
                row["cost_vs_handler"]["median"].is_number(),
                "{workload} on {server} has no ratio to the handler API"
            );
        }
    }
    for workload in TLS_WORKLOADS {
        for server in [
            "baseline/smol",
            "baseline/async-std",
            "sansock-stream/tokio",
        ] {
            assert!(
                !rows
                    .iter()
                    .any(|r| r["workload"] == *workload && r["server"] == server),
                "{workload} has a row for {server}, which is not measured over TLS"
            );
        }
    }
    for server in TLS_SERVERS {
        let row = rows
            .iter()
            .find(|r| r["workload"] == "tls-resume" && r["server"] == *server)
            .expect("tls-resume row");
        let resumed = row["metrics"]["resumed_fraction"]["median"]
            .as_f64()
            .expect("resumed_fraction");
        assert!(resumed >= 0.9, "{server}: only {resumed} resumed");
    }
    let five = rows
        .iter()
        .find(|r| r["workload"] == "five-writes" && r["server"] == "sansock/tokio")
        .expect("five-writes row");
    assert!(five["five_vs_one"]["median"].is_number());
    assert_eq!(
        json["samples"].as_array().map(Vec::len),
        Some(WORKLOADS.len() * SERVERS.len() + TLS_WORKLOADS.len() * TLS_SERVERS.len())
    );

    let svg = std::fs::read_to_string(out.join("chart.svg")).expect("chart.svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let table = std::fs::read_to_string(out.join("table.md")).expect("table.md");
    assert!(table.contains("| ping-pong-64 | sansock/tokio |"));
    assert!(table.contains("| tls-stream | sansock/smol |"));
    assert!(table.contains("| sansock-stream/tokio | ping-pong-64 |"));
    let _ = std::fs::remove_dir_all(&out);
}
