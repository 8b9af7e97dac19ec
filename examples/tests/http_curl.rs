//! The `http` example (hyper over sansock TLS streams) against an HTTP client no one here
//! wrote: curl, trusting the certificate the server generated (`--tls-self-signed --ca-out`).
//! curl gets the text of `/` on every runtime (tokio, tokio-current-thread, smol, async-std),
//! and on tokio reuses one connection for two requests (keep-alive) and downloads 100 MiB
//! whose length and SHA-256 match the pattern. Every process runs under a timeout; without
//! curl the tests fail (`.ci/run` installs it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The `http` binary with `--tls-self-signed`, killed when dropped (its CA file removed).
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
    ca: PathBuf,
}

impl Server {
    /// Starts the server on a free port with `--runtime runtime` and waits until its CA file
    /// is written.
    fn start(name: &str, runtime: &str) -> Server {
        assert!(
            Command::new("curl").arg("--version").output().is_ok(),
            "curl is missing: .ci/run installs it; install it to run this test"
        );
        let dir = std::env::temp_dir().join(format!(
            "sansock-http-{}-{name}-{runtime}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        let mut child = Command::new(env!("CARGO_BIN_EXE_http"))
            .args([
                "--runtime",
                runtime,
                "--port",
                "0",
                "--tls-self-signed",
                "--ca-out",
            ])
            .arg(&ca)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the http example");
        // The two lines it prints: `listening on ADDR`, then the CA file's path (written).
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let next_line = || {
            rx.recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("the http example printed nothing in 20 s"))
        };
        let first = next_line();
        let port = first
            .strip_prefix("listening on ")
            .and_then(|addr| addr.rsplit_once(':'))
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        let second = next_line();
        assert!(second.contains("written to"), "unexpected line {second:?}");
        let server = Server {
            child,
            port,
            dir,
            ca,
        };
        assert!(server.ca.exists(), "no CA file at {}", server.ca.display());
        server
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// Runs `curl --cacert CA args...`, killing it (and failing) after `limit`; asserts that
    /// it succeeded.
    fn curl(&self, args: &[&str], limit: Duration) -> Output {
        let mut child = Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--cacert"])
            .arg(&self.ca)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start curl");
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > limit {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "curl {args:?} still running after {limit:?}; stderr: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "curl {args:?}: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// curl gets the text of `/` from the server on `runtime`.
fn curl_gets_the_root_on(runtime: &str) {
    let server = Server::start("root", runtime);
    let out = server.curl(&[&server.url("/")], Duration::from_secs(20));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from sansock\n",
        "--runtime {runtime}"
    );
}

#[test]
fn curl_gets_the_root_over_verified_tls() {
    curl_gets_the_root_on("tokio");
}

#[test]
fn curl_gets_the_root_on_tokio_current_thread() {
    curl_gets_the_root_on("tokio-current-thread");
}

#[test]
fn curl_gets_the_root_on_smol() {
    curl_gets_the_root_on("smol");
}

#[test]
fn curl_gets_the_root_on_async_std() {
    curl_gets_the_root_on("async-std");
}

#[test]
fn curl_reuses_the_connection_for_a_second_request() {
    let server = Server::start("keepalive", "tokio");
    let url = server.url("/");
    let out = server.curl(&["--verbose", &url, &url], Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "hello from sansock\n".repeat(2), "stderr: {stderr}");
    // curl 7.x: "Re-using existing connection #0 with host localhost"; 8.x: "Re-using
    // existing connection with host localhost", later "Re-using existing https: connection
    // with host localhost"; some builds spell it "Reusing".
    let reused = stderr.lines().any(|line| {
        (line.contains("Re-using existing") || line.contains("Reusing existing"))
            && line.contains("connection")
    });
    assert!(reused, "curl opened a second connection:\n{stderr}");
    assert!(
        stderr.contains("ALPN: server accepted http/1.1")
            || stderr.contains("ALPN, server accepted to use http/1.1"),
        "the server did not pick http/1.1 by ALPN:\n{stderr}"
    );
}

#[test]
fn curl_downloads_100_mib_intact() {
    const LEN: u64 = 100 * 1024 * 1024;
    let server = Server::start("bytes", "tokio");
    let file = server.dir.join("download.bin");
    let started = Instant::now();
    server.curl(
        &[
            "--output",
            path_str(&file),
            &server.url(&format!("/bytes/{LEN}")),
        ],
        Duration::from_secs(120),
    );
    let elapsed = started.elapsed();
    let got = std::fs::metadata(&file).unwrap().len();
    assert_eq!(got, LEN, "downloaded {got} bytes, not {LEN}");
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(&file).unwrap(), &mut hasher).unwrap();
    assert_eq!(
        hasher.finalize().to_vec(),
        pattern_sha256(LEN),
        "the download differs from the pattern"
    );
    eprintln!(
        "{LEN} bytes over TLS in {elapsed:.2?} ({:.0} MB/s)",
        LEN as f64 / 1e6 / elapsed.as_secs_f64()
    );
}

/// The SHA-256 of `len` bytes of the server's pattern (byte `i` is `i % 251`; see
/// `examples/src/bin/http.rs`), computed in pieces.
fn pattern_sha256(len: u64) -> Vec<u8> {
    let mut hasher = Sha256::new();
    let mut piece = Vec::with_capacity(1 << 20);
    let mut offset = 0;
    while offset < len {
        let end = (offset + (1 << 20)).min(len);
        piece.clear();
        piece.extend((offset..end).map(|i| (i % 251) as u8));
        hasher.update(&piece);
        offset = end;
    }
    hasher.finalize().to_vec()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
