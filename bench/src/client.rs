//! The load generator: the client side of every workload. It runs in the orchestrator's
//! process, pinned to its own core, on a current-thread tokio runtime (ping-pong, churn) or
//! plain blocking threads (streaming, idle). It measures; the server's CPU and memory are read
//! from `/proc` around each measurement by the caller through [`Probe`].

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::hash::Hasher;

/// What the caller samples on the server around the measured interval.
pub trait Probe {
    /// The server's CPU seconds so far.
    fn cpu(&mut self) -> f64;
    /// The server's RSS in bytes.
    fn rss(&mut self) -> u64;
    /// The server's counters (allocations, live heap bytes, data events), when it has them.
    fn stats(&mut self) -> Option<Stats>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub allocs: u64,
    pub live_bytes: u64,
    pub events: u64,
}

/// A snapshot of the server at one instant.
struct Mark {
    at: Instant,
    cpu: f64,
    stats: Option<Stats>,
}

fn mark(probe: &mut dyn Probe) -> Mark {
    let stats = probe.stats();
    Mark {
        cpu: probe.cpu(),
        at: Instant::now(),
        stats,
    }
}

/// Metrics of one measurement, by name.
pub type Metrics = Vec<(&'static str, f64)>;

/// Adds the allocations per data event between two marks, when the server counts them.
fn alloc_metrics(m: &mut Metrics, a: &Mark, b: &Mark) {
    if let (Some(a), Some(b)) = (a.stats, b.stats) {
        let events = b.events.saturating_sub(a.events);
        if events > 0 {
            let allocs = b.allocs.saturating_sub(a.allocs);
            m.push(("allocs_per_event", allocs as f64 / events as f64));
            m.push(("events", events as f64));
        }
    }
}

/// Round trips of `msg_len`-byte messages on `conns` connections for `measure` after `warm`.
pub async fn ping_pong(
    addr: SocketAddr,
    conns: usize,
    msg_len: usize,
    warm: Duration,
    measure: Duration,
    probe: &mut dyn Probe,
) -> io::Result<Metrics> {
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        streams.push(s);
    }
    let count = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let count = count.clone();
            let failed = failed.clone();
            tokio::spawn(async move {
                let msg: Vec<u8> = (0..msg_len).map(|j| (i * 31 + j) as u8).collect();
                let mut buf = vec![0u8; msg_len];
                loop {
                    if s.write_all(&msg).await.is_err() || s.read_exact(&mut buf).await.is_err() {
                        failed.store(true, Relaxed);
                        return;
                    }
                    if buf != msg {
                        failed.store(true, Relaxed);
                        return;
                    }
                    count.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(warm).await;
    let a = mark(probe);
    let c0 = count.load(Relaxed);
    tokio::time::sleep(measure).await;
    let c1 = count.load(Relaxed);
    let b = mark(probe);
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    if failed.load(Relaxed) {
        return Err(io::Error::other(
            "a ping-pong connection failed or got wrong bytes",
        ));
    }
    let ops = (c1 - c0) as f64;
    let secs = b.at.duration_since(a.at).as_secs_f64();
    if ops == 0.0 {
        return Err(io::Error::other("no round trip completed"));
    }
    let mut m = vec![
        ("ops_per_s", ops / secs),
        ("cpu_us_per_op", (b.cpu - a.cpu) * 1e6 / ops),
        ("server_cpu_util", (b.cpu - a.cpu) / secs),
        ("latency_us", secs * 1e6 * conns as f64 / ops),
    ];
    alloc_metrics(&mut m, &a, &b);
    Ok(m)
}

/// Connect, one 1-byte round trip, close; `concurrency` loops for `measure` after `warm`.
pub async fn churn(
    addr: SocketAddr,
    concurrency: usize,
    warm: Duration,
    measure: Duration,
    probe: &mut dyn Probe,
) -> io::Result<Metrics> {
    let count = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (count, errors, stop) = (count.clone(), errors.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Relaxed) {
                    let once = async {
                        let mut s = tokio::net::TcpStream::connect(addr).await?;
                        s.set_nodelay(true)?;
                        s.write_all(b"x").await?;
                        let mut b = [0u8; 1];
                        s.read_exact(&mut b).await?;
                        io::Result::Ok(())
                    };
                    match once.await {
                        Ok(()) => count.fetch_add(1, Relaxed),
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            errors.fetch_add(1, Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(warm).await;
    let a = mark(probe);
    let c0 = count.load(Relaxed);
    tokio::time::sleep(measure).await;
    let c1 = count.load(Relaxed);
    let b = mark(probe);
    stop.store(true, Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let ops = (c1 - c0) as f64;
    if ops == 0.0 {
        return Err(io::Error::other("no connection completed"));
    }
    let secs = b.at.duration_since(a.at).as_secs_f64();
    Ok(vec![
        ("ops_per_s", ops / secs),
        ("cpu_us_per_op", (b.cpu - a.cpu) * 1e6 / ops),
        ("server_cpu_util", (b.cpu - a.cpu) / secs),
        ("errors", errors.load(Relaxed) as f64),
    ])
}

/// The bytes of the streaming workload: `total` bytes written in `chunk`-byte writes; each
/// chunk is a fixed pseudo-random block with the chunk's index stamped in its first 8 bytes,
/// so a lost, duplicated or reordered chunk changes the hash.
pub struct StreamPattern {
    pub total: u64,
    pub chunk: usize,
    block: Vec<u8>,
}

impl StreamPattern {
    pub fn new(total: u64, chunk: usize) -> Self {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let block = (0..chunk)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        StreamPattern {
            total,
            chunk: chunk.max(8),
            block,
        }
    }

    /// Calls `f` with each chunk in order.
    fn for_each(&self, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let mut buf = self.block.clone();
        let mut left = self.total;
        let mut i = 0u64;
        while left > 0 {
            buf[..8].copy_from_slice(&i.to_le_bytes());
            let n = (self.chunk as u64).min(left) as usize;
            f(&buf[..n])?;
            left -= n as u64;
            i += 1;
        }
        Ok(())
    }

    /// The hash of the whole stream (computed once, outside any measurement).
    pub fn expected_hash(&self) -> u64 {
        let mut h = Hasher::default();
        let _ = self.for_each(|c| {
            h.update(c);
            Ok(())
        });
        h.finish()
    }
}

/// Streams the pattern through the echo server on one connection (a writer and a reader
/// thread) and checks the hash of what comes back.
pub fn stream(
    addr: SocketAddr,
    pattern: &Arc<StreamPattern>,
    expected: u64,
    probe: &mut dyn Probe,
) -> io::Result<Metrics> {
    let s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut writer = s.try_clone()?;
    let mut reader = s;
    let a = mark(probe);
    let p = pattern.clone();
    let w = std::thread::spawn(move || -> io::Result<()> {
        p.for_each(|c| writer.write_all(c))?;
        writer.shutdown(std::net::Shutdown::Write)
    });
    let mut h = Hasher::default();
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        received += n as u64;
    }
    let b = mark(probe);
    w.join()
        .map_err(|_| io::Error::other("writer panicked"))??;
    if received != pattern.total || h.finish() != expected {
        return Err(io::Error::other(format!(
            "stream check failed: {received} of {} bytes back, hash {}",
            pattern.total,
            if h.finish() == expected {
                "equal"
            } else {
                "differs"
            }
        )));
    }
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let gib = pattern.total as f64 / (1u64 << 30) as f64;
    let mut m = vec![
        (
            "mib_per_s",
            pattern.total as f64 / (1u64 << 20) as f64 / secs,
        ),
        ("cpu_s_per_gib", (b.cpu - a.cpu) / gib),
        ("server_cpu_util", (b.cpu - a.cpu) / secs),
    ];
    alloc_metrics(&mut m, &a, &b);
    Ok(m)
}

/// Opens `conns` connections, each with one 1-byte round trip (so the server has set it up
/// fully), waits for the server to settle and reports its RSS growth per connection.
pub fn idle(addr: SocketAddr, conns: usize, probe: &mut dyn Probe) -> io::Result<Metrics> {
    let round_trip = |s: &mut std::net::TcpStream| -> io::Result<()> {
        s.write_all(b"x")?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)
    };
    // Warm the server up (runtime threads, per-thread buffers) before the baseline sample.
    for _ in 0..4 {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        round_trip(&mut s)?;
    }
    std::thread::sleep(Duration::from_millis(100));
    let rss0 = probe.rss();
    let heap0 = probe.stats();
    let mut open = Vec::with_capacity(conns);
    for _ in 0..conns {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        round_trip(&mut s)?;
        open.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss1 = probe.rss();
    let heap1 = probe.stats();
    drop(open);
    let n = conns as f64;
    let mut m = vec![("rss_bytes_per_conn", (rss1 as f64 - rss0 as f64) / n)];
    if let (Some(a), Some(b)) = (heap0, heap1) {
        m.push((
            "heap_bytes_per_conn",
            (b.live_bytes as f64 - a.live_bytes as f64) / n,
        ));
    }
    Ok(m)
}
