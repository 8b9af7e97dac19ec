//! The command line, parsed with `clap`: `sansock-bench run|server|load [FLAGS]`. `--help`
//! works at every level; a bad flag or value exits with status 2 and clap's message.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, RangedU64ValueParser};
use clap::{Parser, Subcommand, ValueEnum};

use crate::run::WORKLOADS;

/// The runtimes a server can run on.
const RUNTIMES: &[&str] = &["tokio", "tokio-current-thread", "smol", "async-std"];

/// Measures sansock on every adapter against a hand-written echo server on the same runtime
/// (and Bun and Node when they are installed).
#[derive(Parser, Debug)]
#[command(name = "sansock-bench", after_help = workloads_help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the benchmark: every workload on every server, for several rounds (about 10
    /// minutes; --quick for a smoke run of tiny sizes). Writes table.md, results.json and
    /// chart.svg into --out.
    Run(RunArgs),
    /// Serve one echo server under test: prints `listening on ADDR`, serves until killed or
    /// until stdin closes, answers a `stats` line on stdin with its counters.
    Server(ServerArgs),
    /// Run one workload's load generator against a server started by hand (to profile it with
    /// `perf record -p PID`, say).
    Load(LoadArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Rounds of every workload on every server [default: 5, or 1 with --quick].
    #[arg(long, value_name = "N", value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub rounds: Option<usize>,
    /// A smoke run: tiny sizes, one round by default.
    #[arg(long)]
    pub quick: bool,
    /// Where to write table.md, results.json and chart.svg [default:
    /// target/bench-results/YYYYMMDD-HHMMSS (UTC)]. The committed results are in
    /// bench/results: pass `--out bench/results` to replace them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The adapters to measure, comma-separated [default: tokio,smol,async-std].
    #[arg(long, value_name = "RT,...", value_delimiter = ',', value_parser = PossibleValuesParser::new(RUNTIMES))]
    pub runtimes: Option<Vec<String>>,
    /// The workloads to run, comma-separated [default: all].
    #[arg(long, value_name = "W,...", value_delimiter = ',', value_parser = PossibleValuesParser::new(WORKLOADS))]
    pub workloads: Option<Vec<String>>,
    /// The Bun binary to compare with [default: `bun` on PATH, if any].
    #[arg(long, value_name = "PATH")]
    pub bun: Option<PathBuf>,
    /// The Node binary to compare with [default: `node` on PATH, if any].
    #[arg(long, value_name = "PATH")]
    pub node: Option<PathBuf>,
    /// `none`: leave Bun and Node out.
    #[arg(long, value_enum, default_value_t = Peers::Auto)]
    pub peers: Peers,
}

/// Whether `run` compares with Bun and Node.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peers {
    /// Bun and Node when they are found (--bun, --node, or on PATH).
    Auto,
    /// Neither.
    None,
}

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// sansock (the handler API), sansock-stream (sansock's stream view: `listen_stream`,
    /// each `SocketStream` echoed by the baseline's read/`write_all` loop), or the
    /// hand-written baseline.
    #[arg(long = "impl", value_name = "IMPL", default_value = "sansock", value_parser = ["sansock", "sansock-stream", "baseline"])]
    pub imp: String,
    /// The runtime to serve on.
    #[arg(long, default_value = "tokio", value_parser = PossibleValuesParser::new(RUNTIMES))]
    pub runtime: String,
    /// echo (the same as one-write) sends back each read as one write, five-writes as five.
    #[arg(long, default_value = "echo", value_parser = ["echo", "five-writes", "one-write"])]
    pub workload: String,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// sansock's high-water mark, in bytes [default: sansock's].
    #[arg(long, value_name = "BYTES")]
    pub high_water_mark: Option<usize>,
    /// Serve TLS with this certificate (PEM); needs --key. The baseline serves TLS on tokio
    /// only.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The server to load.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// The workload to run.
    #[arg(long, default_value = "ping-pong-64", value_parser = PossibleValuesParser::new(WORKLOADS))]
    pub workload: String,
    /// How long to measure, in seconds.
    #[arg(long, default_value_t = 5.0, value_parser = positive_seconds)]
    pub seconds: f64,
    /// Pin the load generator to this CPU.
    #[arg(long, value_name = "N")]
    pub cpu: Option<usize>,
    /// Bytes each way of stream [default: 1 GiB] and tls-stream [default: 256 MiB].
    #[arg(long, value_name = "N")]
    pub stream_bytes: Option<u64>,
    /// Connections of idle [default: 10000] and tls-idle [default: 2000].
    #[arg(long, value_name = "N")]
    pub idle_conns: Option<usize>,
    /// The server's certificate (PEM), to trust: the TLS workloads need it.
    #[arg(long, value_name = "PEM")]
    pub cert: Option<PathBuf>,
}

/// A positive, finite number of seconds (the `value_parser` of `load --seconds`).
fn positive_seconds(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(s),
        _ => Err("expected a positive number of seconds".into()),
    }
}

fn workloads_help() -> String {
    format!("Workloads: {}", WORKLOADS.join(", "))
}

/// `run`'s default output folder: `target/bench-results/YYYYMMDD-HHMMSS` (UTC), so a run
/// never overwrites the committed `bench/results/` unless asked to.
pub fn default_out_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from("target/bench-results").join(utc_stamp(secs))
}

/// `YYYYMMDD-HHMMSS` for a Unix time (UTC; days to civil date after Howard Hinnant).
fn utc_stamp(unix_secs: u64) -> String {
    let (days, secs) = ((unix_secs / 86_400) as i64, unix_secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_700_000_000), "20231114-221320");
    }
}
