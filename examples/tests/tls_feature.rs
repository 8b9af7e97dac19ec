//! TLS is a default feature: without it, no adapter builds rustls, ring or webpki-roots, and
//! every adapter still compiles.

use std::process::Command;

const ADAPTERS: [&str; 3] = ["sansock-tokio", "sansock-smol", "sansock-async-std"];
const TLS_CRATES: [&str; 3] = ["rustls", "ring", "webpki-roots"];

fn cargo() -> Command {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    c
}

/// The crates an adapter depends on (normal edges), one name per line.
fn dependencies(adapter: &str, default_features: bool) -> Vec<String> {
    let mut c = cargo();
    c.args([
        "tree",
        "--offline",
        "-e",
        "normal",
        "--prefix",
        "none",
        "-p",
        adapter,
    ]);
    if !default_features {
        c.arg("--no-default-features");
    }
    let out = c.output().expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn without_the_tls_feature_no_adapter_depends_on_rustls() {
    for adapter in ADAPTERS {
        let with = dependencies(adapter, true);
        let without = dependencies(adapter, false);
        for tls in TLS_CRATES {
            assert!(
                with.iter().any(|d| d == tls),
                "{adapter} with TLS lacks {tls}"
            );
            assert!(
                !without.iter().any(|d| d == tls),
                "{adapter} without TLS has {tls}"
            );
        }
    }
}

#[test]
fn every_adapter_compiles_without_the_tls_feature() {
    let target = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/no-tls");
    let mut c = cargo();
    c.args([
        "check",
        "--offline",
        "--lib",
        "--no-default-features",
        "--target-dir",
        target,
    ]);
    for adapter in ADAPTERS {
        c.args(["-p", adapter]);
    }
    let out = c.output().expect("run cargo check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
