//! The `echo` binary serves a plain std::net client (any other tool would do) correctly.

mod common;

use common::{start, KillOnDrop};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn echo_binary_serves_a_foreign_client() {
    for runtime in ["tokio", "tokio-current-thread", "smol", "async-std"] {
        let (child, addr) = start(
            env!("CARGO_BIN_EXE_echo"),
            &["--runtime", runtime, "--port", "0"],
        );
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
    let (_child, addr) = start(env!("CARGO_BIN_EXE_chat"), &["--port", "0"]);
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

#[test]
fn echo_binary_serves_tls_with_a_self_signed_certificate() {
    assert!(
        Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "this test needs the `openssl` command; install it (`.ci/run` does)"
    );
    let ca_out =
        std::env::temp_dir().join(format!("sansock-echo-test-ca-{}.pem", std::process::id()));
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_echo"))
            .args(["--port", "0", "--tls-self-signed", "--ca-out"])
            .arg(&ca_out)
            .args(["--alpn", "h2", "--alpn", "http/1.1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start echo"),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let ca = second.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(std::path::Path::new(&ca), ca_out, "{second}");
    let mut client = KillOnDrop(
        Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr,
                "-servername",
                "localhost",
                "-verify_return_error",
                "-quiet",
                "-CAfile",
                &ca,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    client
        .0
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"secure echo\n")
        .unwrap();
    let mut buf = [0u8; 12];
    client
        .0
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    assert_eq!(&buf, b"secure echo\n");
    drop(client);

    // ALPN: the server picks from what it was given with --alpn, in its order of preference.
    for (offered, chosen) in [("http/1.1", "http/1.1"), ("http/1.1,h2", "h2")] {
        let mut s_client = Command::new("openssl");
        s_client
            .args(["s_client", "-connect", &addr, "-servername", "localhost"])
            .args(["-verify_return_error", "-CAfile", &ca, "-alpn", offered]);
        let text = stdout_within(s_client, Duration::from_secs(20));
        assert!(
            text.contains(&format!("ALPN protocol: {chosen}")),
            "offered {offered}, expected {chosen}: {text}"
        );
    }
    let _ = std::fs::remove_file(ca);
}

/// Runs `command` with no input and returns its stdout, killing it (and failing) if it has
/// not exited within `limit`.
fn stdout_within(mut command: Command, limit: Duration) -> String {
    let mut child = KillOnDrop(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the command"),
    );
    let mut stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let started = std::time::Instant::now();
    while child.0.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().unwrap()
}

/// Peak resident memory of a process, from /proc (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn proxy_moves_a_gigabyte_with_bounded_memory() {
    // Upstream: a plain echo server on a thread.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        let (s, _) = upstream.accept().unwrap();
        let mut r = s.try_clone().unwrap();
        let mut w = s;
        let _ = std::io::copy(&mut r, &mut w);
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
    let (child, addr) = start(
        env!("CARGO_BIN_EXE_proxy"),
        &["--port", "0", "--upstream", &up_addr.to_string()],
    );
    let stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    const TOTAL: usize = 1 << 30;
    let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
    let mut writer = stream.try_clone().unwrap();
    let c2 = chunk.clone();
    let t = std::thread::spawn(move || {
        for _ in 0..TOTAL / c2.len() {
            writer.write_all(&c2).unwrap();
        }
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut reader = stream;
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0usize;
    while got < TOTAL {
        let n = reader
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("read failed after {got} bytes: {e}"));
        assert!(n > 0, "proxy closed early after {got} bytes");
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(
                *b,
                chunk[(got + i) % chunk.len()],
                "corrupt byte at {}",
                got + i
            );
        }
        got += n;
    }
    t.join().unwrap();
    let peak = peak_rss_kib(child.0.id()).unwrap_or(0);
    eprintln!("proxy peak RSS after moving 1 GiB each way: {peak} KiB");
    // Bounded: buffers are at most 2 x 256 KiB high-water marks + 2 reads per connection.
    assert!(peak < 64 * 1024, "proxy peak RSS {peak} KiB is not bounded");
}

#[test]
fn line_client_gets_replies_and_times_out_on_silence() {
    let (_echo, addr) = start(env!("CARGO_BIN_EXE_echo"), &["--port", "0"]);
    let out = Command::new(env!("CARGO_BIN_EXE_line_client"))
        .args(["--connect", &addr, "one", "two"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "< one\n< two\n");
    // A server that never answers: the idle timeout fires and the client gives up.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_line_client"))
        .args(["--connect", &silent_addr, "--timeout-ms", "200", "hello?"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no reply within"));
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(silent);
}
