//! The `echo` binary serves a plain std::net client (any other tool would do) correctly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn echo_binary_serves_a_foreign_client() {
    for runtime in ["tokio", "tokio-current-thread"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_echo"))
            .args(["--runtime", runtime, "--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start echo");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // 4 MiB in, 4 MiB back, from a writer thread so neither side blocks the other.
        let payload: Vec<u8> = (0..4u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
        let mut writer = stream.try_clone().unwrap();
        let sent = payload.clone();
        let t = std::thread::spawn(move || {
            writer.write_all(&sent).unwrap();
            writer.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut echoed = Vec::new();
        stream.read_to_end(&mut echoed).unwrap();
        t.join().unwrap();
        assert!(
            echoed == payload,
            "echo with {runtime} returned different bytes"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn demo_runs_and_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .output()
        .expect("run demo");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("server  close"), "{text}");
    assert!(text.contains("client  close"), "{text}");
    assert!(text.trim_end().ends_with("done"), "{text}");
}
