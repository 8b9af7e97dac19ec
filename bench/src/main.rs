//! `sansock-bench`: measures sansock on every adapter against a hand-written echo server on the
//! same runtime (and Bun and Node when they are installed).
//!
//! ```text
//! sansock-bench run [--rounds 5] [--quick] [--out bench/results] [--runtimes tokio,smol,async-std]
//!                   [--workloads ping-pong-1,...] [--bun PATH] [--node PATH] [--peers none]
//! sansock-bench server --impl sansock|baseline --runtime tokio|tokio-current-thread|smol|async-std
//!                      [--workload echo|five-writes|one-write] [--port 0] [--high-water-mark BYTES]
//! sansock-bench load --addr HOST:PORT [--workload ping-pong-64] [--seconds 5]   (for profiling)
//! ```
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

fn main() {
    let args = args::Args::from_env();
    match args.subcommand() {
        Some("server") => server::main(&args),
        Some("run") => run::main(&args),
        Some("load") => run::load(&args),
        _ => {
            eprintln!(
                "usage: sansock-bench run [--rounds N] [--quick] [--out DIR] [--bun PATH] \
                 [--node PATH] [--peers none]\n       sansock-bench server --impl \
                 sansock|baseline --runtime tokio|smol|async-std [--workload \
                 echo|five-writes|one-write] [--port 0]"
            );
            std::process::exit(2);
        }
    }
}
