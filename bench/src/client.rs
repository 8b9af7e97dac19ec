//! The load generator: the client side of every workload. It runs in the orchestrator's
//! process, pinned to its own core, on a current-thread tokio runtime (ping-pong; the TLS
//! handshakes and TLS streaming in `tls.rs`), a plain epoll loop (churn) or plain blocking
//! threads (streaming, idle, TLS idle). It measures; the server's CPU and memory are read
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

/// A snapshot of the server (and of the load generator's own CPU time) at one instant.
pub struct Mark {
    pub at: Instant,
    pub cpu: f64,
    pub client_cpu: f64,
    pub stats: Option<Stats>,
}

pub fn mark(probe: &mut dyn Probe) -> Mark {
    let stats = probe.stats();
    Mark {
        cpu: probe.cpu(),
        client_cpu: crate::os::cpu_seconds(std::process::id()),
        at: Instant::now(),
        stats,
    }
}

/// Metrics of one measurement, by name.
pub type Metrics = Vec<(&'static str, f64)>;

/// Adds the allocations per data event between two marks, when the server counts them.
pub fn alloc_metrics(m: &mut Metrics, a: &Mark, b: &Mark) {
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

/// Loopback source addresses the connect loops spread over (127.0.0.1 to 127.0.0.32).
pub const SOURCE_ADDRS: usize = 32;

/// `IP_BIND_ADDRESS_NO_PORT` (Linux 4.2): `bind` takes the address only; the port is chosen
/// by `connect`, unique per 4-tuple rather than per source address.
const IP_BIND_ADDRESS_NO_PORT: libc::c_int = 24;

/// The source address of the `n`th connection towards a loopback server, 127.0.0.(1 + n % 32),
/// or `None` when the server is not on IPv4 loopback.
pub fn spread_source(addr: SocketAddr, n: usize) -> Option<SocketAddr> {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_loopback() => {
            let ip = std::net::Ipv4Addr::new(127, 0, 0, 1 + (n % SOURCE_ADDRS) as u8);
            Some(SocketAddr::new(ip.into(), 0))
        }
        _ => None,
    }
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` on a socket about to be bound to an address only.
pub fn bind_address_no_port(fd: std::os::fd::RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `fd` is an open socket; the option value is a live c_int of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Connects to `addr`; towards IPv4 loopback, from the source address [`spread_source`] picks
/// for `n`. From one source address the kernel's search for a free ephemeral port caps a
/// client near 16,500 connections per second (TIME_WAIT entries pile up per address).
pub async fn connect_spread(addr: SocketAddr, n: usize) -> io::Result<tokio::net::TcpStream> {
    let Some(src) = spread_source(addr, n) else {
        return tokio::net::TcpStream::connect(addr).await;
    };
    let socket = tokio::net::TcpSocket::new_v4()?;
    bind_address_no_port(std::os::fd::AsRawFd::as_raw_fd(&socket))?;
    socket.bind(src)?;
    socket.connect(addr).await
}

/// Connect, one 1-byte round trip, close; `concurrency` loops for `measure` after `warm`, the
/// connections spread over [`SOURCE_ADDRS`] loopback source addresses.
///
/// The loops are driven by a plain level-triggered epoll loop on this thread rather than
/// tokio, so the load generator's core (which on loopback also runs much of the server's TCP
/// work in its softirqs) spends about 15 % less per connection: the 1-byte request is written
/// right after `connect` (on loopback the handshake has completed by the time `connect`
/// returns; otherwise it waits for writability), no `SO_ERROR` check, no `TCP_NODELAY` (a
/// lone small write goes out at once), no `EPOLL_CTL_DEL` (`close` removes the socket from
/// the epoll set). The close is a normal one (FIN), after the reply has been read.
pub fn churn(
    addr: SocketAddr,
    concurrency: usize,
    warm: Duration,
    measure: Duration,
    probe: &mut dyn Probe,
) -> io::Result<Metrics> {
    use socket2::{Domain, SockAddr, Socket, Type};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    enum State {
        /// Not connected; (re)start at the instant given.
        Idle(Instant),
        /// `connect` returned before the handshake completed; waiting to write.
        Connecting,
        /// Request written; waiting for the reply.
        Waiting,
    }
    struct Slot {
        socket: Option<Socket>,
        state: State,
    }

    // SAFETY: plain syscall; the result is checked and owned below.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `ep` is a fresh descriptor owned by nobody else.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    let ctl = |op: libc::c_int, fd: libc::c_int, events: u32, slot: usize| -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: slot as u64,
        };
        // SAFETY: both descriptors are open; `ev` is a live epoll_event.
        if unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd, &mut ev) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    let dst = SockAddr::from(addr);
    let domain = Domain::for_address(addr);
    let mut next = 0usize;
    // Opens the next connection into `slot` and writes its request when it can.
    let mut start = |slot: usize| -> io::Result<(Socket, State)> {
        let n = next;
        next += 1;
        let s = Socket::new(domain, Type::STREAM.nonblocking(), None)?;
        if let Some(src) = spread_source(addr, n) {
            bind_address_no_port(s.as_raw_fd())?;
            s.bind(&src.into())?;
        }
        match s.connect(&dst) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        match (&s).write(b"x") {
            Ok(1) => {
                ctl(
                    libc::EPOLL_CTL_ADD,
                    s.as_raw_fd(),
                    libc::EPOLLIN as u32,
                    slot,
                )?;
                Ok((s, State::Waiting))
            }
            Ok(_) => Err(io::Error::other("short write")),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ctl(
                    libc::EPOLL_CTL_ADD,
                    s.as_raw_fd(),
                    libc::EPOLLOUT as u32,
                    slot,
                )?;
                Ok((s, State::Connecting))
            }
            Err(e) => Err(e),
        }
    };

    let began = Instant::now();
    let mut slots: Vec<Slot> = (0..concurrency)
        .map(|_| Slot {
            socket: None,
            state: State::Idle(began),
        })
        .collect();
    let (mut count, mut errors) = (0u64, 0u64);
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; concurrency.max(1)];
    let mut buf = [0u8; 16];
    let (warm_end, mut stop_at) = (began + warm, None::<Instant>);
    let (mut a, mut c0) = (None, 0u64);
    let mut b = None;
    let mut c1 = 0u64;
    loop {
        let now = Instant::now();
        if a.is_none() && now >= warm_end {
            a = Some(mark(probe));
            c0 = count;
            stop_at = Some(Instant::now() + measure);
        }
        if let Some(t) = stop_at {
            if b.is_none() && now >= t {
                c1 = count;
                b = Some(mark(probe));
            }
        }
        let stopping = b.is_some();
        // Start idle slots whose time has come.
        let mut next_retry: Option<Instant> = None;
        for (i, slot) in slots.iter_mut().enumerate() {
            if let State::Idle(at) = slot.state {
                if stopping {
                    continue;
                }
                if at > now {
                    next_retry = Some(next_retry.map_or(at, |r| r.min(at)));
                    continue;
                }
                match start(i) {
                    Ok((s, state)) => {
                        slot.socket = Some(s);
                        slot.state = state;
                    }
                    Err(_) => {
                        errors += 1;
                        slot.state = State::Idle(now + Duration::from_millis(1));
                    }
                }
            }
        }
        if stopping && slots.iter().all(|s| s.socket.is_none()) {
            break;
        }
        if stopping && Instant::now() > stop_at.expect("set") + Duration::from_secs(5) {
            break; // Give up on connections that never answered.
        }
        let deadline = [
            Some(warm_end).filter(|_| a.is_none()),
            stop_at.filter(|_| !stopping),
            next_retry,
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout_ms = deadline.map_or(10, |d| {
            d.saturating_duration_since(Instant::now())
                .as_millis()
                .min(10) as libc::c_int
        });
        // SAFETY: `events` is a live buffer of the length given.
        let n = unsafe {
            libc::epoll_wait(
                ep.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let i = ev.u64 as usize;
            let slot = &mut slots[i];
            let Some(s) = slot.socket.as_ref() else {
                continue;
            };
            let done: Option<bool> = match slot.state {
                State::Connecting => match (&*s).write(b"x") {
                    Ok(1) => {
                        match ctl(libc::EPOLL_CTL_MOD, s.as_raw_fd(), libc::EPOLLIN as u32, i) {
                            Ok(()) => {
                                slot.state = State::Waiting;
                                None
                            }
                            Err(_) => Some(false),
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                    _ => Some(false),
                },
                State::Waiting => match (&*s).read(&mut buf) {
                    Ok(1) => Some(true),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                    _ => Some(false),
                },
                State::Idle(_) => None,
            };
            if let Some(ok) = done {
                // A normal close: FIN (the reply has been read, nothing is left unread).
                slot.socket = None;
                slot.state = State::Idle(Instant::now());
                if ok {
                    count += 1;
                } else {
                    errors += 1;
                }
            }
        }
    }
    drop(slots);
    let (Some(a), Some(b)) = (a, b) else {
        return Err(io::Error::other("churn: the measurement did not complete"));
    };
    let ops = (c1 - c0) as f64;
    if ops == 0.0 {
        return Err(io::Error::other("no connection completed"));
    }
    let secs = b.at.duration_since(a.at).as_secs_f64();
    Ok(vec![
        ("ops_per_s", ops / secs),
        ("cpu_us_per_op", (b.cpu - a.cpu) * 1e6 / ops),
        ("server_cpu_util", (b.cpu - a.cpu) / secs),
        ("client_cpu_util", (b.client_cpu - a.client_cpu) / secs),
        ("errors", errors as f64),
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

    /// The chunks in order, one at a time (for async writers).
    pub fn chunks(&self) -> Chunks {
        Chunks {
            buf: self.block.clone(),
            chunk: self.chunk,
            left: self.total,
            i: 0,
        }
    }

    /// Calls `f` with each chunk in order.
    fn for_each(&self, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let mut chunks = self.chunks();
        while let Some(c) = chunks.next_chunk() {
            f(c)?;
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

/// A cursor over the chunks of a [`StreamPattern`].
pub struct Chunks {
    buf: Vec<u8>,
    chunk: usize,
    left: u64,
    i: u64,
}

impl Chunks {
    /// The next chunk, or `None` after the last.
    pub fn next_chunk(&mut self) -> Option<&[u8]> {
        if self.left == 0 {
            return None;
        }
        self.buf[..8].copy_from_slice(&self.i.to_le_bytes());
        let n = (self.chunk as u64).min(self.left) as usize;
        self.left -= n as u64;
        self.i += 1;
        Some(&self.buf[..n])
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
    let secs = b.at.duration_since(a.at).as_secs_f64();
    stream_metrics(pattern, expected, received, h.finish(), &a, &b, secs)
}

/// Checks a streaming sample (byte count and hash) and computes its metrics.
pub fn stream_metrics(
    pattern: &StreamPattern,
    expected: u64,
    received: u64,
    hash: u64,
    a: &Mark,
    b: &Mark,
    secs: f64,
) -> io::Result<Metrics> {
    if received != pattern.total || hash != expected {
        return Err(io::Error::other(format!(
            "stream check failed: {received} of {} bytes back, hash {}",
            pattern.total,
            if hash == expected { "equal" } else { "differs" }
        )));
    }
    let gib = pattern.total as f64 / (1u64 << 30) as f64;
    let mut m = vec![
        (
            "mib_per_s",
            pattern.total as f64 / (1u64 << 20) as f64 / secs,
        ),
        ("cpu_s_per_gib", (b.cpu - a.cpu) / gib),
        ("server_cpu_util", (b.cpu - a.cpu) / secs),
    ];
    alloc_metrics(&mut m, a, b);
    Ok(m)
}

/// Opens `conns` connections, each with one 1-byte round trip (so the server has set it up
/// fully), waits for the server to settle and reports its RSS growth per connection.
pub fn idle(addr: SocketAddr, conns: usize, probe: &mut dyn Probe) -> io::Result<Metrics> {
    idle_with(conns, probe, || {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"x")?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        Ok(s)
    })
}

/// The idle measurement around `open`, which opens one connection and does its round trip.
pub fn idle_with<S>(
    conns: usize,
    probe: &mut dyn Probe,
    mut open: impl FnMut() -> io::Result<S>,
) -> io::Result<Metrics> {
    // Warm the server up (runtime threads, per-thread buffers) before the baseline sample.
    for _ in 0..4 {
        drop(open()?);
    }
    std::thread::sleep(Duration::from_millis(100));
    let rss0 = probe.rss();
    let heap0 = probe.stats();
    let mut held = Vec::with_capacity(conns);
    for _ in 0..conns {
        held.push(open()?);
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss1 = probe.rss();
    let heap1 = probe.stats();
    drop(held);
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
