//! The example binaries' command lines: `--help` exits 0 with the usage; an unknown flag, a bad
//! value or a missing or inconsistent flag exits 2 with clap's message; a failure at run time
//! (a port in use, a refused connect, TLS files that do not load) exits 1 with one `error:`
//! line; nothing a user types makes a binary panic. Every process runs under a timeout.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BINARIES: &[(&str, &str)] = &[
    ("demo", env!("CARGO_BIN_EXE_demo")),
    ("echo", env!("CARGO_BIN_EXE_echo")),
    ("chat", env!("CARGO_BIN_EXE_chat")),
    ("proxy", env!("CARGO_BIN_EXE_proxy")),
    ("line_client", env!("CARGO_BIN_EXE_line_client")),
    ("starttls", env!("CARGO_BIN_EXE_starttls")),
    ("upper", env!("CARGO_BIN_EXE_upper")),
    ("http", env!("CARGO_BIN_EXE_http")),
    ("ws_echo", env!("CARGO_BIN_EXE_ws_echo")),
];

/// How long any one run may take before the test kills it and fails.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `binary args...` to completion, killing it (and failing) after [`LIMIT`].
fn run(binary: &str, args: &[&str]) -> Output {
    common::run_within(Command::new(binary).args(args).stdin(Stdio::null()), LIMIT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that `binary args` exits with `code` and no panic, and returns its stderr.
fn exits_with(code: i32, binary: &str, args: &[&str]) -> String {
    let out = run(binary, args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "{binary} {args:?}: {}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    assert!(
        !stderr.contains("panicked"),
        "{binary} {args:?} panicked: {stderr}"
    );
    stderr
}

/// Asserts a usage error: exit 2, clap's `error:` message mentioning `mentions`.
fn usage_error(binary: &str, args: &[&str], mentions: &str) {
    let stderr = exits_with(2, binary, args);
    assert!(
        stderr.starts_with("error: ") && stderr.contains(mentions),
        "{binary} {args:?}: expected a message about {mentions:?}, got: {stderr}"
    );
}

/// Asserts a run-time failure: exit 1 and exactly one line on stderr, `error: ...`
/// mentioning `mentions`.
fn runtime_error(binary: &str, args: &[&str], mentions: &str) {
    let stderr = exits_with(1, binary, args);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: ") && lines[0].contains(mentions),
        "{binary} {args:?}: expected one `error:` line about {mentions:?}, got: {stderr:?}"
    );
}

/// The arguments a binary needs besides the one under test.
fn required(name: &str) -> &'static [&'static str] {
    match name {
        "proxy" => &["--upstream", "127.0.0.1:9"],
        "line_client" => &["--connect", "127.0.0.1:9"],
        _ => &[],
    }
}

fn with_required<'a>(name: &str, args: &[&'a str]) -> Vec<&'a str> {
    required(name)
        .iter()
        .copied()
        .chain(args.iter().copied())
        .collect()
}

#[test]
fn help_prints_the_usage_and_exits_zero() {
    for (name, binary) in BINARIES {
        for flag in ["--help", "-h"] {
            let out = run(binary, &[flag]);
            let stdout = text(&out.stdout);
            assert!(out.status.success(), "{name} {flag}: {}", out.status);
            assert!(
                stdout.contains(&format!("Usage: {name}")) && stdout.contains("--runtime"),
                "{name} {flag} printed: {stdout}"
            );
        }
    }
}

#[test]
fn unknown_flags_are_rejected_with_exit_2() {
    for (name, binary) in BINARIES {
        usage_error(
            binary,
            &with_required(name, &["--no-such-flag"]),
            "--no-such-flag",
        );
    }
    // A misspelt flag is an error (with a suggestion), not a silently random port.
    usage_error(
        env!("CARGO_BIN_EXE_echo"),
        &["--prot", "7000"],
        "a similar argument exists: '--port'",
    );
}

#[test]
fn bad_values_are_rejected_with_exit_2() {
    for (name, binary) in BINARIES {
        usage_error(
            binary,
            &with_required(name, &["--runtime", "nope"]),
            "possible values: tokio, tokio-current-thread, smol, async-std",
        );
        usage_error(binary, &with_required(name, &["--log=[[["]), "--log");
    }
    for name in ["echo", "chat", "proxy"] {
        let binary = BINARIES.iter().find(|(n, _)| *n == name).unwrap().1;
        usage_error(binary, &with_required(name, &["--port", "abc"]), "--port");
        usage_error(binary, &with_required(name, &["--port", "65536"]), "--port");
    }
    let proxy = env!("CARGO_BIN_EXE_proxy");
    let line_client = env!("CARGO_BIN_EXE_line_client");
    for bad in ["nonsense", "host:", ":80", "host:port", "host:70000"] {
        usage_error(proxy, &["--upstream", bad], "HOST:PORT");
        usage_error(line_client, &["--connect", bad], "HOST:PORT");
    }
    usage_error(
        line_client,
        &["--connect", "127.0.0.1:9", "--timeout-ms", "soon"],
        "--timeout-ms",
    );
}

#[test]
fn missing_required_flags_exit_2() {
    usage_error(env!("CARGO_BIN_EXE_proxy"), &[], "--upstream");
    usage_error(env!("CARGO_BIN_EXE_line_client"), &["hello"], "--connect");
}

#[test]
fn inconsistent_tls_flags_exit_2() {
    let echo = env!("CARGO_BIN_EXE_echo");
    usage_error(echo, &["--tls-cert", "x"], "--tls-key");
    usage_error(echo, &["--tls-key", "x"], "--tls-cert");
    usage_error(
        echo,
        &["--tls-cert", "x", "--tls-key", "y", "--tls-self-signed"],
        "cannot be used with",
    );
    usage_error(echo, &["--ca-out", "ca.pem"], "--tls-self-signed");
    usage_error(echo, &["--alpn", "h2"], "--tls-self-signed");
}

#[test]
fn a_port_in_use_is_one_error_line_and_exit_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for name in ["echo", "chat", "proxy"] {
        let binary = BINARIES.iter().find(|(n, _)| *n == name).unwrap().1;
        for runtime in ["tokio", "smol"] {
            runtime_error(
                binary,
                &with_required(name, &["--port", &port, "--runtime", runtime]),
                "address in use",
            );
        }
    }
    drop(taken);
}

#[test]
fn a_refused_connect_is_one_error_line_and_exit_1() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    runtime_error(
        env!("CARGO_BIN_EXE_line_client"),
        &["--connect", &addr, "hello"],
        "connection refused",
    );
}

#[test]
fn unreadable_tls_files_are_one_error_line_and_exit_1() {
    let missing = std::env::temp_dir().join(format!("sansock-no-such-{}.pem", std::process::id()));
    let missing = missing.to_str().unwrap();
    runtime_error(
        env!("CARGO_BIN_EXE_echo"),
        &["--tls-cert", missing, "--tls-key", missing],
        missing,
    );
}

/// Starts `echo args...` with its own temporary directory and stdout and stderr piped.
fn start_echo(args: &[&str], tmp: &std::path::Path) -> common::KillOnDrop {
    common::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_echo"))
            .args(args)
            .env("TMPDIR", tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start echo"),
    )
}

/// Reads lines from `reader` on a thread until `until` matches one (or the pipe ends), under
/// [`LIMIT`]; returns the lines read.
fn read_lines_until(
    reader: impl Read + Send + 'static,
    until: fn(&str) -> bool,
) -> (Vec<String>, BufReader<Box<dyn Read + Send>>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(Box::new(reader) as Box<dyn Read + Send>);
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let done = until(&line);
            lines.push(line);
            if done {
                break;
            }
        }
        let _ = tx.send((lines, reader));
    });
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("no matching line within {LIMIT:?}"))
}

fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sansock-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn tls_self_signed_prints_the_certificate_and_leaves_no_file() {
    let tmp = fresh_dir("self-signed");
    let mut echo = start_echo(&["--port", "0", "--tls-self-signed"], &tmp);
    let (lines, _rest) = read_lines_until(echo.0.stdout.take().unwrap(), |l| {
        l.starts_with("-----END CERTIFICATE-----")
    });
    let all = lines.concat();
    assert!(lines[0].starts_with("listening on "), "{all}");
    assert!(
        all.contains("-----BEGIN CERTIFICATE-----") && all.contains("-----END CERTIFICATE-----"),
        "{all}"
    );
    drop(echo);
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "echo left files behind: {left:?}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn tls_self_signed_writes_the_certificate_where_asked() {
    let tmp = fresh_dir("ca-out");
    let ca = tmp.join("ca.pem");
    let mut echo = start_echo(
        &[
            "--port",
            "0",
            "--tls-self-signed",
            "--ca-out",
            ca.to_str().unwrap(),
        ],
        &tmp,
    );
    let (lines, _rest) =
        read_lines_until(echo.0.stdout.take().unwrap(), |l| l.starts_with("TLS: "));
    assert!(lines.concat().contains(ca.to_str().unwrap()), "{lines:?}");
    let pem = std::fs::read_to_string(&ca).expect("the CA file");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    drop(echo);
    // The file is the user's: still there, and nothing else.
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("ca.pem")]);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn log_has_no_colour_codes_when_stderr_is_not_a_terminal() {
    let tmp = fresh_dir("log");
    let mut echo = start_echo(&["--port", "0", "--log=debug"], &tmp);
    let (lines, _stdout) = read_lines_until(echo.0.stdout.take().unwrap(), |l| {
        l.starts_with("listening on ")
    });
    let addr = lines[0].trim().strip_prefix("listening on ").unwrap();
    // A connection to log: open, one echo, close.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.write_all(b"ping").unwrap();
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).unwrap();
    drop(stream);
    std::thread::sleep(Duration::from_millis(300));
    let _ = echo.0.kill();
    let _ = echo.0.wait();
    let stderr = common::drain(echo.0.stderr.take().unwrap()).join().unwrap();
    let stderr = text(&stderr);
    assert!(
        stderr.contains("DEBUG"),
        "--log=debug logged nothing: {stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "escape codes in a redirected log: {stderr:?}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
