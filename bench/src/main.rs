//! `sansock-bench`: measures sansock on every adapter against a hand-written echo server on the
//! same runtime (and Bun and Node when they are installed).
//!
//! ```text
//! sansock-bench run [--rounds 5] [--quick] [--out DIR] [--runtimes tokio,smol,async-std]
//!                   [--workloads ping-pong-1,...] [--bun PATH] [--node PATH] [--peers none]
//! sansock-bench server --impl sansock|sansock-stream|baseline
//!                      --runtime tokio|tokio-current-thread|smol|async-std
//!                      [--workload echo|five-writes|one-write] [--port 0] [--high-water-mark BYTES]
//!                      [--cert PEM --key PEM]   (TLS; the baseline only on tokio)
//! sansock-bench load --addr HOST:PORT [--workload ping-pong-64] [--seconds 5] [--cert PEM]
//!                    [--cpu N] [--stream-bytes N] [--idle-conns N]   (for profiling)
//! ```
//!
//! `sansock-bench --help` (and `run --help`, ...) says what each flag does. `run` writes into
//! `target/bench-results/YYYYMMDD-HHMMSS/` unless `--out DIR` says otherwise; the committed
//! results are `bench/results/`, replaced only by `--out bench/results`.
//!
//! Workloads: ping-pong-1, ping-pong-64, stream, idle, five-writes, one-write, churn,
//! tls-handshake-p256, tls-handshake-rsa2048, tls-resume, tls-stream, tls-idle. The TLS
//! workloads run on sansock (every adapter), the tokio-rustls baseline and Bun; `run` generates
//! their certificates (P-256 with rcgen, RSA-2048 with the `openssl` command).
//!
//! `run` is the orchestrator: it starts each server under test in its own process pinned to
//! one core, drives it from this process pinned to another, reads the server's CPU time and
//! RSS from `/proc`, and writes a table, `results.json` and `chart.svg`. `server` is the
//! process under test: it prints `listening on ADDR`, serves until killed or until its stdin
//! closes, and answers a `stats` line on stdin with its allocation and event counters.

mod alloc;
mod args;
mod client;
mod hash;
mod os;
mod report;
mod run;
mod server;
mod tls;

fn main() {
    let cli = <args::Cli as clap::Parser>::parse();
    match cli.command {
        args::Command::Run(args) => run::main(&args),
        args::Command::Server(args) => server::main(&args),
        args::Command::Load(args) => run::load(&args),
    }
}
