//! `run`: the orchestrator. Starts each server under test in its own process pinned to one
//! core, drives it from this process pinned to another, and records one sample per round,
//! workload and server.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::args::{LoadArgs, Peers, RunArgs};
use crate::client::{self, Metrics, Probe, Stats, StreamPattern};
use crate::os;
use crate::report::{self, Record, RunInfo};
use crate::tls::{self, CertFiles};

/// The workloads, in the order they run within a round.
pub const WORKLOADS: &[&str] = &[
    "ping-pong-1",
    "ping-pong-64",
    "stream",
    "idle",
    "five-writes",
    "one-write",
    "churn",
    "tls-handshake-p256",
    "tls-handshake-rsa2048",
    "tls-resume",
    "tls-stream",
    "tls-idle",
];

/// Whether `workload` runs over TLS (only sansock, the tokio baseline and Bun serve those).
pub fn is_tls(workload: &str) -> bool {
    workload.starts_with("tls-")
}

/// The adapters measured by default.
pub const RUNTIMES: &[&str] = &["tokio", "smol", "async-std"];

/// Message size of the ping-pong workloads.
const PING_BYTES: usize = 64;
/// Write size of the streaming workload.
const STREAM_CHUNK: usize = 64 * 1024;
/// Concurrent connect loops of the churn workload.
const CHURN_CONCURRENCY: usize = 16;
/// Concurrent handshake loops of the TLS handshake workloads.
const HANDSHAKE_CONCURRENCY: usize = 16;

/// One server under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Sansock(String),
    /// sansock's stream view (`listen_stream`, a `SocketStream` per connection echoed by the
    /// baseline's read/`write_all` loop); measured on tokio only.
    SansockStream(String),
    Baseline(String),
    Bun(PathBuf),
    Node(PathBuf),
}

impl Target {
    pub fn label(&self) -> String {
        match self {
            Target::Sansock(rt) => format!("sansock/{rt}"),
            Target::SansockStream(rt) => format!("sansock-stream/{rt}"),
            Target::Baseline(rt) => format!("baseline/{rt}"),
            Target::Bun(_) => "bun".into(),
            Target::Node(_) => "node".into(),
        }
    }

    /// Whether this server has a row for `workload`: TLS workloads run on sansock, the tokio
    /// baseline (tokio-rustls) and Bun only; the other workloads on the selected runtimes'
    /// servers (the tokio baseline may be there for the TLS workloads alone); the stream view
    /// on the plain workloads.
    fn runs(&self, workload: &str, runtimes: &[String]) -> bool {
        match self {
            Target::Sansock(_) | Target::Bun(_) => true,
            Target::SansockStream(_) => !is_tls(workload),
            Target::Baseline(rt) if is_tls(workload) => rt == "tokio",
            Target::Baseline(rt) => runtimes.contains(rt),
            Target::Node(_) => !is_tls(workload),
        }
    }
}

/// Sizes and durations of one run.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub warm: Duration,
    pub measure: Duration,
    pub stream_bytes: u64,
    pub idle_conns: usize,
    pub tls_stream_bytes: u64,
    pub tls_idle_conns: usize,
}

impl Sizes {
    pub fn full() -> Self {
        Sizes {
            warm: Duration::from_millis(300),
            measure: Duration::from_millis(1500),
            stream_bytes: 1 << 30,
            idle_conns: 10_000,
            tls_stream_bytes: 256 << 20,
            tls_idle_conns: 2_000,
        }
    }
    pub fn quick() -> Self {
        Sizes {
            warm: Duration::from_millis(30),
            measure: Duration::from_millis(100),
            stream_bytes: 2 << 20,
            idle_conns: 50,
            tls_stream_bytes: 1 << 20,
            tls_idle_conns: 20,
        }
    }
}

/// A running server process.
struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    counts: bool,
}

impl Server {
    fn start(
        target: &Target,
        workload: &str,
        cpu: Option<usize>,
        scripts: &Path,
        tls: Option<&CertFiles>,
    ) -> Result<Self, String> {
        let server_workload = match workload {
            "five-writes" | "one-write" => workload,
            _ => "echo",
        };
        let mut cmd = match target {
            Target::Sansock(rt) | Target::SansockStream(rt) | Target::Baseline(rt) => {
                let imp = match target {
                    Target::Sansock(_) => "sansock",
                    Target::SansockStream(_) => "sansock-stream",
                    _ => "baseline",
                };
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                let mut c = Command::new(exe);
                c.args(["server", "--impl", imp, "--runtime", rt]);
                c.args(["--workload", server_workload, "--port", "0"]);
                if let Some(tls) = tls {
                    c.arg("--cert").arg(&tls.cert).arg("--key").arg(&tls.key);
                }
                c
            }
            Target::Bun(bun) => {
                let mut c = Command::new(bun);
                c.arg(scripts.join("bun-echo.js"));
                c.env("SANSOCK_BENCH_WORKLOAD", server_workload);
                if let Some(tls) = tls {
                    c.env("SANSOCK_BENCH_CERT", &tls.cert);
                    c.env("SANSOCK_BENCH_KEY", &tls.key);
                }
                c
            }
            Target::Node(_) if tls.is_some() => {
                return Err("no TLS server for node".into());
            }
            Target::Node(node) => {
                let mut c = Command::new(node);
                c.arg(scripts.join("node-echo.js"));
                c.env("SANSOCK_BENCH_WORKLOAD", server_workload);
                c
            }
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(cpu) = cpu {
            // SAFETY: the closure only makes one async-signal-safe syscall.
            unsafe {
                cmd.pre_exec(move || os::pin(0, cpu));
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("start {}: {e}", target.label()))?;
        let pid = child.id();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let stdin = child.stdin.take();
        let mut line = String::new();
        let addr = loop {
            line.clear();
            match stdout.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{} exited before listening", target.label()));
                }
                Ok(_) => {}
            }
            if let Some(a) = line.trim().strip_prefix("listening on ") {
                break a
                    .parse()
                    .map_err(|e| format!("{}: bad address {a:?}: {e}", target.label()))?;
            }
        };
        Ok(Server {
            child,
            pid,
            addr,
            stdin,
            stdout,
            counts: matches!(
                target,
                Target::Sansock(_) | Target::SansockStream(_) | Target::Baseline(_)
            ),
        })
    }

    fn stop(mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Probe for Server {
    fn cpu(&mut self) -> f64 {
        os::cpu_seconds(self.pid)
    }
    fn rss(&mut self) -> u64 {
        os::rss_bytes(self.pid)
    }
    fn stats(&mut self) -> Option<Stats> {
        if !self.counts {
            return None;
        }
        let stdin = self.stdin.as_mut()?;
        stdin.write_all(b"stats\n").ok()?;
        stdin.flush().ok()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).ok()?;
        let mut s = Stats::default();
        for field in line.trim().strip_prefix("stats ")?.split_whitespace() {
            let (k, v) = field.split_once('=')?;
            let v: u64 = v.parse().ok()?;
            match k {
                "allocs" => s.allocs = v,
                "live_bytes" => s.live_bytes = v,
                "events" => s.events = v,
                _ => {}
            }
        }
        Some(s)
    }
}

/// Finds a peer runtime: the flag's path, else the name on `PATH`.
fn find_peer(flag: Option<&Path>, name: &str) -> Option<PathBuf> {
    if let Some(p) = flag {
        return p.exists().then(|| p.to_owned());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn peer_version(path: &Path) -> String {
    Command::new(path)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

const BUN_SCRIPT: &str = r#"// Bun echo server for sansock-bench (backpressure: keep the rest, pause, write on drain).
// Over TLS when SANSOCK_BENCH_CERT and SANSOCK_BENCH_KEY name PEM files.
const mode = process.env.SANSOCK_BENCH_WORKLOAD || "echo";
const tls = process.env.SANSOCK_BENCH_CERT
  ? { tls: { key: Bun.file(process.env.SANSOCK_BENCH_KEY), cert: Bun.file(process.env.SANSOCK_BENCH_CERT) } }
  : {};
function send(s, b) {
  if (s.data.pending.length) { s.data.pending.push(Buffer.from(b)); return; }
  const n = s.write(b);
  if (n < b.length) { s.data.pending.push(Buffer.from(b.subarray(Math.max(n, 0)))); s.pause?.(); }
}
const server = Bun.listen({ hostname: "127.0.0.1", port: 0, ...tls, socket: {
  open(s) { s.data = { pending: [] }; s.setNoDelay?.(true); },
  data(s, b) {
    if (mode === "five-writes") { for (let i = 0; i < 5; i++) { const p = b.subarray((b.length * i / 5) | 0, (b.length * (i + 1) / 5) | 0); if (p.length) send(s, p); } }
    else send(s, b);
  },
  drain(s) { const q = s.data.pending; s.data.pending = []; for (const b of q) send(s, b); if (!s.data.pending.length) s.resume?.(); },
} });
console.log(`listening on 127.0.0.1:${server.port}`);
process.stdin.on("end", () => process.exit(0)); process.stdin.resume();
"#;

const NODE_SCRIPT: &str = r#"// Node echo server for sansock-bench.
const net = require("net");
const mode = process.env.SANSOCK_BENCH_WORKLOAD || "echo";
const server = net.createServer({ noDelay: true }, (s) => {
  s.setNoDelay(true);
  if (mode !== "five-writes") { s.pipe(s); return; }
  s.on("data", (b) => {
    let ok = true;
    for (let i = 0; i < 5; i++) { const p = b.subarray((b.length * i / 5) | 0, (b.length * (i + 1) / 5) | 0); if (p.length) ok = s.write(p); }
    if (!ok) { s.pause(); s.once("drain", () => s.resume()); }
  });
  s.on("error", () => {});
});
server.listen(0, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${server.address().port}`));
process.stdin.on("end", () => process.exit(0)); process.stdin.resume();
"#;

pub fn main(args: &RunArgs) {
    let quick = args.quick;
    let rounds = args.rounds.unwrap_or(if quick { 1 } else { 5 });
    let out = args
        .out
        .clone()
        .unwrap_or_else(crate::args::default_out_dir);
    // Fail now, not after the run, when the results cannot be written.
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("error: --out {}: {e}", out.display());
        std::process::exit(1);
    }
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    let runtimes = args
        .runtimes
        .clone()
        .unwrap_or_else(|| RUNTIMES.iter().map(|s| s.to_string()).collect());
    // clap checked every name against WORKLOADS.
    let workloads = args
        .workloads
        .clone()
        .unwrap_or_else(|| WORKLOADS.iter().map(|s| s.to_string()).collect());
    let no_peers = args.peers == Peers::None;
    let mut targets = Vec::new();
    for rt in &runtimes {
        targets.push(Target::Sansock(rt.clone()));
        // The stream view (issue 19), compared with the handler API on tokio.
        if rt == "tokio" && workloads.iter().any(|w| !is_tls(w)) {
            targets.push(Target::SansockStream(rt.clone()));
        }
        targets.push(Target::Baseline(rt.clone()));
    }
    // The TLS workloads compare every adapter with the tokio-rustls baseline.
    let tokio_baseline = Target::Baseline("tokio".into());
    if workloads.iter().any(|w| is_tls(w)) && !targets.contains(&tokio_baseline) {
        targets.push(tokio_baseline);
    }
    let mut peers = Vec::new();
    if !no_peers {
        if let Some(bun) = find_peer(args.bun.as_deref(), "bun") {
            peers.push(("bun", peer_version(&bun)));
            targets.push(Target::Bun(bun));
        }
        if let Some(node) = find_peer(args.node.as_deref(), "node") {
            peers.push(("node", peer_version(&node)));
            targets.push(Target::Node(node));
        }
    }

    // Pinning: the server on the first allowed CPU, this process (the load generator) on the
    // second; without two CPUs nothing is pinned.
    let cpus = os::allowed_cpus();
    let (server_cpu, client_cpu) = if cpus.len() >= 2 {
        (Some(cpus[0]), Some(cpus[1]))
    } else {
        (None, None)
    };
    if let Some(c) = client_cpu {
        if let Err(e) = os::pin(0, c) {
            eprintln!("warning: could not pin the load generator to CPU {c}: {e}");
        }
    }
    let nofile = os::raise_nofile_limit();
    if (nofile as usize) < sizes.idle_conns + 100 {
        eprintln!(
            "warning: open-files limit {nofile} is low for {} idle connections",
            sizes.idle_conns
        );
    }

    let scripts = std::env::temp_dir().join(format!("sansock-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scripts).expect("scripts folder");
    std::fs::write(scripts.join("bun-echo.js"), BUN_SCRIPT).expect("write bun script");
    std::fs::write(scripts.join("node-echo.js"), NODE_SCRIPT).expect("write node script");
    let certs = Certs::generate(&workloads, &scripts);

    let info = RunInfo {
        command: std::iter::once("sansock-bench".to_owned())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        quick,
        rounds,
        server_cpu,
        client_cpu,
        load_before: os::load_average(),
        load_after: String::new(),
        cpu_model: os::cpu_model(),
        kernel: os::kernel(),
        peers: peers
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect(),
        sizes: sizes.clone(),
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        seconds: 0.0,
    };
    eprintln!(
        "sansock-bench: {rounds} round(s) of {} workload(s) on {} server(s){}; server CPU {}, load generator CPU {}; load average {}",
        workloads.len(),
        targets.len(),
        if quick { " (quick)" } else { "" },
        server_cpu.map_or("unpinned".into(), |c| c.to_string()),
        client_cpu.map_or("unpinned".into(), |c| c.to_string()),
        info.load_before,
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let plan = Plan::new(sizes.clone(), |w| workloads.iter().any(|x| x == w));

    let started = Instant::now();
    let total = rounds
        * workloads
            .iter()
            .map(|w| targets.iter().filter(|t| t.runs(w, &runtimes)).count())
            .sum::<usize>();
    let mut done = 0;
    let mut records = Vec::new();
    for round in 0..rounds {
        for workload in &workloads {
            let here: Vec<&Target> = targets
                .iter()
                .filter(|t| t.runs(workload, &runtimes))
                .collect();
            // Rotate the order each round so no server always runs first.
            let n = here.len();
            for k in 0..n {
                let target = here[(k + round) % n];
                done += 1;
                let result = certs.of(workload).and_then(|tls| {
                    Server::start(target, workload, server_cpu, &scripts, tls).and_then(
                        |mut server| {
                            let addr = server.addr;
                            let r = measure(&rt, workload, addr, &plan, tls, &mut server);
                            server.stop();
                            r.map_err(|e| e.to_string())
                        },
                    )
                });
                let elapsed = started.elapsed().as_secs_f64();
                let eta = elapsed / done as f64 * (total - done) as f64;
                eprintln!(
                    "[{done:>3}/{total}] round {}/{rounds} {workload:<21} {:<18} {}   ({:.0}s, ~{:.0}s left)",
                    round + 1,
                    target.label(),
                    match &result {
                        Ok(m) => report::summary(workload, m),
                        Err(e) => format!("FAILED: {e}"),
                    },
                    elapsed,
                    eta
                );
                records.push(Record {
                    round,
                    workload: workload.clone(),
                    target: target.label(),
                    result,
                });
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scripts);
    let info = RunInfo {
        load_after: os::load_average(),
        seconds: started.elapsed().as_secs_f64(),
        ..info
    };
    let targets: Vec<String> = targets.iter().map(Target::label).collect();
    let rows = report::aggregate(&records, &workloads, &targets);
    let table = report::table(&rows, &info);
    println!("{table}");
    if let Err(e) = report::write_all(&out, &rows, &records, &info, &table) {
        eprintln!("sansock-bench: writing {}: {e}", out.display());
        std::process::exit(1);
    }
    eprintln!(
        "wrote {0}/results.json, {0}/chart.svg and {0}/table.md",
        out.display()
    );
}

/// The certificates of the TLS workloads, generated once per run into the scripts folder.
struct Certs {
    p256: Option<Result<CertFiles, String>>,
    rsa2048: Option<Result<CertFiles, String>>,
}

impl Certs {
    /// Generates the certificates the selected workloads need (P-256 with rcgen, RSA-2048
    /// with the `openssl` command); a failure fails only the workloads that need it.
    fn generate(workloads: &[String], dir: &Path) -> Self {
        let needs = |rsa: bool| {
            workloads
                .iter()
                .any(|w| is_tls(w) && (w == "tls-handshake-rsa2048") == rsa)
        };
        let certs = Certs {
            p256: needs(false).then(|| tls::generate_p256(dir)),
            rsa2048: needs(true).then(|| tls::generate_rsa2048(dir)),
        };
        for e in [&certs.p256, &certs.rsa2048]
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_ref().err())
        {
            eprintln!("warning: {e}");
        }
        certs
    }

    /// The certificate `workload` is served with (`None` for plain TCP).
    fn of(&self, workload: &str) -> Result<Option<&CertFiles>, String> {
        if !is_tls(workload) {
            return Ok(None);
        }
        let certs = if workload == "tls-handshake-rsa2048" {
            &self.rsa2048
        } else {
            &self.p256
        };
        match certs {
            Some(Ok(files)) => Ok(Some(files)),
            Some(Err(e)) => Err(e.clone()),
            None => Err("no certificate generated".into()),
        }
    }
}

/// Sizes and the precomputed streaming patterns of a run.
struct Plan {
    sizes: Sizes,
    pattern: Arc<StreamPattern>,
    expected: u64,
    tls_pattern: Arc<StreamPattern>,
    tls_expected: u64,
}

impl Plan {
    /// Hashes the streaming patterns of the selected streaming workloads (outside any
    /// measurement).
    fn new(sizes: Sizes, selected: impl Fn(&str) -> bool) -> Self {
        let pattern = Arc::new(StreamPattern::new(sizes.stream_bytes, STREAM_CHUNK));
        let tls_pattern = Arc::new(StreamPattern::new(sizes.tls_stream_bytes, STREAM_CHUNK));
        Plan {
            expected: if selected("stream") {
                pattern.expected_hash()
            } else {
                0
            },
            tls_expected: if selected("tls-stream") {
                tls_pattern.expected_hash()
            } else {
                0
            },
            sizes,
            pattern,
            tls_pattern,
        }
    }
}

fn measure(
    rt: &tokio::runtime::Runtime,
    workload: &str,
    addr: SocketAddr,
    plan: &Plan,
    tls: Option<&CertFiles>,
    server: &mut dyn Probe,
) -> std::io::Result<Metrics> {
    let sizes = &plan.sizes;
    let client_config = |resumption: bool| match tls {
        Some(files) => tls::client_config(&files.cert, resumption),
        None => Err(std::io::Error::other(format!(
            "{workload} needs a certificate"
        ))),
    };
    match workload {
        "ping-pong-1" => rt.block_on(client::ping_pong(
            addr,
            1,
            PING_BYTES,
            sizes.warm,
            sizes.measure,
            server,
        )),
        "ping-pong-64" => rt.block_on(client::ping_pong(
            addr,
            64,
            PING_BYTES,
            sizes.warm,
            sizes.measure,
            server,
        )),
        "five-writes" | "one-write" => rt.block_on(client::ping_pong(
            addr,
            64,
            5,
            sizes.warm,
            sizes.measure,
            server,
        )),
        "stream" => client::stream(addr, &plan.pattern, plan.expected, server),
        "idle" => client::idle(addr, sizes.idle_conns, server),
        "churn" => client::churn(addr, CHURN_CONCURRENCY, sizes.warm, sizes.measure, server),
        "tls-handshake-p256" | "tls-handshake-rsa2048" | "tls-resume" => {
            let resumption = workload == "tls-resume";
            // A fresh configuration (and session cache) for every sample.
            rt.block_on(tls::handshakes(
                addr,
                client_config(resumption)?,
                resumption,
                HANDSHAKE_CONCURRENCY,
                sizes.warm,
                sizes.measure,
                server,
            ))
        }
        "tls-stream" => tls::stream(
            addr,
            client_config(false)?,
            &plan.tls_pattern,
            plan.tls_expected,
            server,
        ),
        "tls-idle" => tls::idle(addr, client_config(false)?, sizes.tls_idle_conns, server),
        other => Err(std::io::Error::other(format!("unknown workload {other}"))),
    }
}

/// A probe for a server this process did not start (`load`): no CPU or memory readings.
struct NoProbe;

impl Probe for NoProbe {
    fn cpu(&mut self) -> f64 {
        0.0
    }
    fn rss(&mut self) -> u64 {
        0
    }
    fn stats(&mut self) -> Option<Stats> {
        None
    }
}

/// `load`: runs one workload's load generator against a server started by hand (to profile
/// it with `perf record -p PID`, say), for `--seconds`.
pub fn load(args: &LoadArgs) {
    let addr: SocketAddr = args.addr;
    let workload = args.workload.clone();
    let seconds = args.seconds;
    if let Some(cpu) = args.cpu {
        let _ = os::pin(0, cpu);
    }
    let sizes = Sizes {
        warm: Duration::from_millis(100),
        measure: Duration::from_secs_f64(seconds),
        stream_bytes: args.stream_bytes.unwrap_or(1 << 30),
        idle_conns: args.idle_conns.unwrap_or(10_000),
        tls_stream_bytes: args.stream_bytes.unwrap_or(256 << 20),
        tls_idle_conns: args.idle_conns.unwrap_or(2_000),
    };
    // TLS workloads trust the server's certificate, given as --cert PATH.
    let tls = args.cert.clone().map(|cert| CertFiles {
        cert,
        key: PathBuf::new(),
    });
    if is_tls(&workload) && tls.is_none() {
        eprintln!("load: {workload} needs --cert PATH (the server's certificate)");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let plan = Plan::new(sizes, |w| w == workload);
    match measure(&rt, &workload, addr, &plan, tls.as_ref(), &mut NoProbe) {
        Ok(m) => println!("{}", report::summary(&workload, &m)),
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(1)
        }
    }
}
