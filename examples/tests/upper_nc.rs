//! The framing example against `nc` (netcat), a client no one here wrote.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `upper` with `args`; returns the process and its address.
fn start(args: &[&str]) -> (common::KillOnDrop, String) {
    let mut all = vec!["--port", "0"];
    all.extend_from_slice(args);
    common::start(env!("CARGO_BIN_EXE_upper"), &all)
}

/// Runs `nc -N HOST PORT` with `input` on stdin; returns what it printed.
fn nc(addr: &str, input: &[u8]) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut client = Command::new("nc")
        .args(["-N", host, port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("nc is missing: .ci/run installs netcat-openbsd");
    client.stdin.take().unwrap().write_all(input).unwrap();
    let started = Instant::now();
    while client.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = client.kill();
            panic!("nc did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    String::from_utf8(client.wait_with_output().unwrap().stdout).unwrap()
}

#[test]
fn nc_gets_every_line_back_in_upper_case() {
    let (_server, addr) = start(&[]);
    let mut input = String::new();
    for i in 0..2000 {
        input.push_str(&format!("line {i} of many\r\n"));
    }
    let out = nc(&addr, input.as_bytes());
    assert_eq!(out, input.replace("\r\n", "\n").to_uppercase());
}

#[test]
fn a_line_over_the_limit_ends_the_connection_with_an_error() {
    let (_server, addr) = start(&["--max-line", "16"]);
    let out = nc(
        &addr,
        b"short\nthis line is far too long for sixteen bytes\nnever\n",
    );
    assert_eq!(out, "SHORT\nerror: line longer than 16 bytes\n");
}
