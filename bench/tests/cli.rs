//! `sansock-bench`'s command line: `--help` at every level exits 0 at once (it never starts a
//! run); a bad flag or value exits 2 with clap's message; a port in use exits 1 with one
//! `error:` line; `run` writes under `target/bench-results/` by default, never into the
//! committed `bench/results/`. Every process runs under a timeout.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_sansock-bench");

/// How long any one run may take before the test kills it and fails.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `sansock-bench args...` in `dir` to completion, killing it (and failing) after
/// [`LIMIT`].
fn run_in(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(BENCH)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sansock-bench");
    // Open until the end: `server` exits (status 0) as soon as its stdin closes.
    let _stdin = child.stdin.take();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sansock-bench {args:?} still running after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn run(args: &[&str]) -> Output {
    run_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// Reads a pipe to its end on a thread (so a full pipe never blocks the child).
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Asserts that `sansock-bench args` exits with `code` and no panic; returns its stderr.
fn exits_with(code: i32, args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "sansock-bench {args:?}: {}\nstdout: {}\nstderr: {stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    stderr
}

fn usage_error(args: &[&str], mentions: &str) {
    let stderr = exits_with(2, args);
    assert!(
        stderr.starts_with("error: ") && stderr.contains(mentions),
        "sansock-bench {args:?}: expected a message about {mentions:?}, got: {stderr}"
    );
}

#[test]
fn help_at_every_level_exits_zero_quickly() {
    for (args, shows) in [
        (&["--help"][..], "Usage: sansock-bench <COMMAND>"),
        (&["help"], "Usage: sansock-bench <COMMAND>"),
        (&["run", "--help"], "Usage: sansock-bench run"),
        (&["run", "--quick", "-h"], "Usage: sansock-bench run"),
        (&["help", "run"], "Usage: sansock-bench run"),
        (&["server", "--help"], "Usage: sansock-bench server"),
        (&["load", "--help"], "Usage: sansock-bench load"),
    ] {
        let started = Instant::now();
        let out = run(args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", out.status);
        assert!(stdout.contains(shows), "{args:?} printed: {stdout}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}: it must not start a run",
            started.elapsed()
        );
    }
    let run_help = String::from_utf8_lossy(&run(&["run", "--help"]).stdout).into_owned();
    for flag in [
        "--rounds",
        "--quick",
        "--out",
        "--runtimes",
        "--workloads",
        "--bun",
        "--node",
        "--peers",
    ] {
        assert!(run_help.contains(flag), "run --help lacks {flag}");
    }
}

#[test]
fn bad_command_lines_exit_2() {
    // No subcommand: the help, on stderr.
    assert!(exits_with(2, &[]).contains("Usage: sansock-bench <COMMAND>"));
    usage_error(&["walk"], "walk");
    usage_error(&["run", "--no-such-flag"], "--no-such-flag");
    usage_error(&["run", "--rounds", "x"], "--rounds");
    usage_error(&["run", "--rounds", "0"], "--rounds");
    usage_error(&["run", "--workloads", "ping-pong-1,nope"], "nope");
    usage_error(&["run", "--runtimes", "tokio,nope"], "nope");
    usage_error(&["run", "--peers", "some"], "--peers");
    usage_error(&["server", "--runtime", "nope"], "--runtime");
    usage_error(&["server", "--impl", "nope"], "--impl");
    usage_error(&["server", "--port", "abc"], "--port");
    usage_error(&["server", "--workload", "nope"], "--workload");
    usage_error(&["server", "--cert", "x"], "--key");
    usage_error(&["server", "--key", "x"], "--cert");
    usage_error(&["load"], "--addr");
    usage_error(&["load", "--addr", "nonsense"], "--addr");
    usage_error(
        &["load", "--addr", "127.0.0.1:9", "--seconds=-1"],
        "--seconds",
    );
    usage_error(
        &["load", "--addr", "127.0.0.1:9", "--workload", "nope"],
        "--workload",
    );
}

#[test]
fn a_port_in_use_is_one_error_line_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for imp in ["sansock", "sansock-stream", "baseline"] {
        let stderr = exits_with(1, &["server", "--impl", imp, "--port", &port]);
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("error: "),
            "{imp}: expected one `error:` line, got {stderr:?}"
        );
    }
    drop(taken);
}

#[test]
fn run_writes_under_target_by_default_not_into_bench_results() {
    let dir = std::env::temp_dir().join(format!("sansock-bench-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bench/results")).unwrap();
    let out = run_in(
        &dir,
        &[
            "run",
            "--quick",
            "--peers",
            "none",
            "--runtimes",
            "tokio",
            "--workloads",
            "ping-pong-1",
        ],
    );
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<_> = std::fs::read_dir(dir.join("target/bench-results"))
        .expect("target/bench-results")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].join("results.json").is_file());
    assert!(results[0].join("table.md").is_file());
    assert_eq!(
        std::fs::read_dir(dir.join("bench/results"))
            .unwrap()
            .count(),
        0,
        "run wrote into bench/results without --out"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
