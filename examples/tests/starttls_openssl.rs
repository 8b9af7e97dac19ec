//! The STARTTLS example against a TLS client no one here wrote: `openssl s_client -starttls
//! smtp` greets, upgrades the plain connection, and talks over TLS.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn openssl_s_client_starttls_smtp_upgrades_and_talks_tls() {
    assert!(
        Command::new("openssl").arg("version").output().is_ok(),
        "openssl is missing: .ci/run installs it; install it to run this test"
    );
    let dir = std::env::temp_dir().join(format!("sansock-starttls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let ca_path = ca.to_str().unwrap();
    let (server, addr) = common::start(
        env!("CARGO_BIN_EXE_starttls"),
        &["--port", "0", "--ca-out", ca_path],
    );
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "smtp",
            "-quiet",
            "-connect",
            &addr,
            "-CAfile",
        ])
        .arg(&ca)
        .args(["-verify_return_error", "-servername", "localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start openssl s_client");
    client
        .stdin
        .take()
        .unwrap()
        .write_all(b"HELLO-TLS\r\nQUIT\r\n")
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = client.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = client.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = client.wait_with_output().unwrap();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.is_some(),
        "s_client did not finish: {stdout} {stderr}"
    );
    // Lines answered after the upgrade, so over TLS; the certificate verified.
    assert!(
        stdout.contains("250 HELLO-TLS"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains("221 Bye"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("verify return:1"), "stderr: {stderr}");
}
