//! The `echo` binary serves a plain std::net client (any other tool would do) correctly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn echo_binary_serves_a_foreign_client() {
    for runtime in ["tokio", "tokio-current-thread", "smol", "async-std"] {
        let mut child = KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_echo"))
                .args(["--runtime", runtime, "--port", "0"])
                .stdout(Stdio::piped())
                .spawn()
                .expect("start echo"),
        );
        let mut first = String::new();
        BufReader::new(child.0.stdout.take().unwrap())
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
        drop(child);
    }
}

#[test]
fn demo_runs_and_exits_zero() {
    for runtime in ["tokio", "tokio-current-thread", "smol", "async-std"] {
        let out = Command::new(env!("CARGO_BIN_EXE_demo"))
            .args(["--runtime", runtime])
            .output()
            .expect("run demo");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("server  close"), "{text}");
        assert!(text.contains("client  close"), "{text}");
        assert!(text.trim_end().ends_with("done"), "{text}");
    }
}

#[test]
fn chat_broadcasts_lines_to_the_other_members() {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_chat"))
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start chat"),
    );
    let mut first = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let join = |name: &str| {
        let s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut prompt = [0u8; 6];
        r.read_exact(&mut prompt).unwrap();
        assert_eq!(&prompt, b"name? ");
        (&s).write_all(format!("{name}\n").as_bytes()).unwrap();
        (s, r)
    };
    let (_ann, mut ann_r) = join("ann");
    let (bob, mut bob_r) = join("bob");
    let mut line = String::new();
    ann_r.read_line(&mut line).unwrap();
    assert_eq!(line, "* bob joined\n");
    (&bob).write_all(b"hi all\n").unwrap();
    line.clear();
    ann_r.read_line(&mut line).unwrap();
    assert_eq!(line, "bob: hi all\n");
    bob.shutdown(std::net::Shutdown::Both).unwrap();
    line.clear();
    ann_r.read_line(&mut line).unwrap();
    assert_eq!(line, "* bob left\n");
    let _ = bob_r.read_line(&mut String::new());
}

/// Kills the example process when the test ends, passed or failed.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
