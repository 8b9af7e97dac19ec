//! A deterministic in-memory network for testing the core: two [`Driver`]s joined by a
//! simulated link with simulated time, bounded "kernel" buffers, partial writes, short reads
//! and resets on demand. No sockets, no clock. Enabled by the `sim` feature; used by the core's
//! tests, the property tests and the fuzz targets, with one set of invariant checks.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{
    Addr, CloseAction, CloseError, ConnectionConfig, Driver, Handler, ListenerShared, RefCounter,
    Socket, SocketAddrs, SocketError, SocketHandle,
};

static SIM_REFS: RefCounter = RefCounter::new();

/// What a handler saw, as recorded by the simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// `open`
    Open,
    /// `data` with these bytes
    Data(Vec<u8>),
    /// `drain`
    Drain,
    /// `end`
    End,
    /// `timeout`
    Timeout,
    /// `handshake` (TLS)
    Handshake(bool, Option<crate::tls::TlsError>),
    /// `error`
    Error(SocketError),
    /// `close`
    Close(Option<CloseError>),
}

impl Seen {
    /// A short name, for compact traces.
    pub fn name(&self) -> &'static str {
        match self {
            Seen::Open => "open",
            Seen::Data(_) => "data",
            Seen::Drain => "drain",
            Seen::End => "end",
            Seen::Timeout => "timeout",
            Seen::Handshake(..) => "handshake",
            Seen::Error(_) => "error",
            Seen::Close(_) => "close",
        }
    }
}

/// Everything recorded for one side.
#[derive(Debug, Default)]
pub struct SideLog {
    /// Events in order (data events are merged with the previous one when consecutive).
    pub events: Vec<Seen>,
    /// Every byte a write on this side accepted, in order.
    pub accepted: Vec<u8>,
    /// Every byte delivered to this side's `data` handler.
    pub received: Vec<u8>,
    /// The first invariant violation seen, if any.
    pub violation: Option<String>,
}

/// A handler's reaction to an event, scripted per test.
pub type Script = Arc<dyn Fn(&Seen, &mut Socket<'_, SimData>) + Send + Sync>;

/// The per-socket data of simulated sockets: where to record.
pub struct SimData {
    log: Arc<Mutex<SideLog>>,
}

/// Writes through `socket` and records what was accepted.
pub fn sim_write(
    socket: &mut Socket<'_, SimData>,
    bytes: &[u8],
) -> Result<usize, crate::WriteError> {
    let r = socket.write(bytes);
    if let Ok(n) = r {
        lock(&socket.data().log)
            .accepted
            .extend_from_slice(&bytes[..n]);
    }
    r
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The recording handler: checks the event-order invariants, then runs the script.
pub struct SimHandler {
    script: Script,
}

impl SimHandler {
    /// A handler running `script` on every event.
    pub fn new(
        script: impl Fn(&Seen, &mut Socket<'_, SimData>) + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(SimHandler {
            script: Arc::new(script),
        })
    }

    fn record(&self, socket: &mut Socket<'_, SimData>, seen: Seen) {
        {
            let mut log = lock(&socket.data().log);
            check_order(&mut log, &seen);
            if let Seen::Data(bytes) = &seen {
                log.received.extend_from_slice(bytes);
            }
            match (log.events.last_mut(), &seen) {
                (Some(Seen::Data(prev)), Seen::Data(more)) => prev.extend_from_slice(more),
                _ => log.events.push(seen.clone()),
            }
        }
        (self.script)(&seen, socket);
    }
}

/// The event-order invariants: `open` first, `end` at most once, `close` at most once and
/// nothing after it.
fn check_order(log: &mut SideLog, seen: &Seen) {
    let problem = if log.events.is_empty() && *seen != Seen::Open {
        Some(format!("first event was {} instead of open", seen.name()))
    } else if !log.events.is_empty() && *seen == Seen::Open {
        Some("open fired twice".to_owned())
    } else if log.events.iter().any(|e| matches!(e, Seen::Close(_))) {
        Some(format!("{} fired after close", seen.name()))
    } else if *seen == Seen::End && log.events.contains(&Seen::End) {
        Some("end fired twice".to_owned())
    } else {
        None
    };
    if let (Some(p), None) = (problem, &log.violation) {
        log.violation = Some(p);
    }
}

impl Handler for SimHandler {
    type Data = SimData;
    fn open(&self, s: &mut Socket<'_, SimData>) {
        self.record(s, Seen::Open)
    }
    fn data(&self, s: &mut Socket<'_, SimData>, bytes: &[u8]) {
        self.record(s, Seen::Data(bytes.to_vec()))
    }
    fn drain(&self, s: &mut Socket<'_, SimData>) {
        self.record(s, Seen::Drain)
    }
    fn end(&self, s: &mut Socket<'_, SimData>) {
        self.record(s, Seen::End)
    }
    fn timeout(&self, s: &mut Socket<'_, SimData>) {
        self.record(s, Seen::Timeout)
    }
    fn handshake(
        &self,
        s: &mut Socket<'_, SimData>,
        success: bool,
        e: Option<&crate::tls::TlsError>,
    ) {
        self.record(s, Seen::Handshake(success, e.cloned()))
    }
    fn error(&self, s: &mut Socket<'_, SimData>, e: &SocketError) {
        self.record(s, Seen::Error(e.clone()))
    }
    fn close(&self, s: &mut Socket<'_, SimData>, e: Option<&CloseError>) {
        self.record(s, Seen::Close(e.cloned()))
    }
}

/// One end of the simulated link.
pub struct SimEnd {
    driver: Driver<SimData>,
    /// The recorded events and bytes.
    pub log: Arc<Mutex<SideLog>>,
    /// Bytes on their way to this end (its kernel receive buffer).
    inbox: VecDeque<u8>,
    /// The peer's FIN is queued behind `inbox`.
    fin_in: bool,
    /// A reset from the peer arrives after `inbox` drains.
    reset_in: bool,
    /// The OS socket is gone.
    gone: bool,
    /// How this end's OS socket was closed.
    pub closed_with: Option<CloseAction>,
}

impl SimEnd {
    fn new(driver: Driver<SimData>, log: Arc<Mutex<SideLog>>) -> Self {
        SimEnd {
            driver,
            log,
            inbox: VecDeque::new(),
            fin_in: false,
            reset_in: false,
            gone: false,
            closed_with: None,
        }
    }

    /// A handle to this end's socket.
    pub fn handle(&self) -> SocketHandle<SimData> {
        self.driver.handle()
    }

    /// Writes through this end's handle (from outside any handler) and records what was
    /// accepted.
    pub fn write(&self, bytes: &[u8]) -> Result<usize, crate::WriteError> {
        let r = self.handle().write(bytes);
        if let Ok(n) = r {
            self.log().accepted.extend_from_slice(&bytes[..n]);
        }
        r
    }

    /// The recorded log.
    pub fn log(&self) -> MutexGuard<'_, SideLog> {
        lock(&self.log)
    }

    /// Event names so far.
    pub fn trace(&self) -> Vec<&'static str> {
        self.log().events.iter().map(Seen::name).collect()
    }
}

/// Which end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The accepting (server) end; index 0.
    Server,
    /// The connecting (client) end; index 1.
    Client,
}

/// Two connected sockets, a link between them and a clock.
pub struct Pair {
    /// `[server, client]`.
    pub ends: [SimEnd; 2],
    /// The listener that accepted the server end.
    pub listener: Arc<ListenerShared<SimData>>,
    /// The simulated clock.
    pub now: Instant,
    /// Each direction's kernel buffer capacity (bytes in flight before writes block).
    pub capacity: usize,
    /// Most bytes one read returns (short reads).
    pub read_chunk: usize,
    /// Most bytes one vectored write takes (partial writes).
    pub write_chunk: usize,
}

/// Settings for a [`Pair`].
#[derive(Clone, Default)]
pub struct PairConfig {
    /// Server-side connection settings.
    pub server: ConnectionConfig,
    /// Client-side connection settings.
    pub client: ConnectionConfig,
}

fn addr(port: u16) -> Addr {
    Addr::Ip(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

impl Pair {
    /// A connected pair: the server end accepted through a listener with `server` handlers,
    /// the client end with `client` handlers. Nothing is dispatched until the first step.
    pub fn new(
        config: PairConfig,
        server: Arc<dyn Handler<Data = SimData>>,
        client: Arc<dyn Handler<Data = SimData>>,
    ) -> Self {
        Self::with_tls(config, None, server, client)
    }

    /// A TLS server end with a plain-TCP client end (garbage, silence).
    pub fn with_tls_server_only(
        server_tls: crate::tls::ServerTls,
        server: Arc<dyn Handler<Data = SimData>>,
        client: Arc<dyn Handler<Data = SimData>>,
    ) -> Self {
        Self::build(
            PairConfig::default(),
            Some(server_tls),
            None,
            server,
            client,
        )
    }

    /// [`Pair::new`] over TLS when `tls` is given: the server end serves with the first
    /// configuration, the client end connects with the second.
    pub fn with_tls(
        config: PairConfig,
        tls: Option<(crate::tls::ServerTls, crate::tls::ClientTls)>,
        server: Arc<dyn Handler<Data = SimData>>,
        client: Arc<dyn Handler<Data = SimData>>,
    ) -> Self {
        let (server_tls, client_tls) = match tls {
            Some((s, c)) => (Some(s), Some(c)),
            None => (None, None),
        };
        Self::build(config, server_tls, client_tls, server, client)
    }

    fn build(
        config: PairConfig,
        server_tls: Option<crate::tls::ServerTls>,
        client_tls: Option<crate::tls::ClientTls>,
        server: Arc<dyn Handler<Data = SimData>>,
        client: Arc<dyn Handler<Data = SimData>>,
    ) -> Self {
        let now = Instant::now();
        let listener = ListenerShared::new(server, config.server, &SIM_REFS, server_tls);
        listener.set_ref(false);
        let slog = Arc::new(Mutex::new(SideLog::default()));
        let clog = Arc::new(Mutex::new(SideLog::default()));
        let saddrs = SocketAddrs {
            local: addr(1),
            remote: addr(2),
        };
        let caddrs = SocketAddrs {
            local: addr(2),
            remote: addr(1),
        };
        let sdriver = listener
            .accept(now, saddrs, SimData { log: slog.clone() })
            .expect("a fresh listener accepts");
        let cdata = SimData { log: clog.clone() };
        let cdriver = match &client_tls {
            None => Driver::connected(client, config.client, caddrs, cdata, now, &SIM_REFS),
            Some(tls) => {
                Driver::connected_tls(client, config.client, caddrs, cdata, now, &SIM_REFS, tls)
                    .unwrap_or_else(|(_, e)| panic!("client TLS session: {e}"))
            }
        };
        Pair {
            ends: [SimEnd::new(sdriver, slog), SimEnd::new(cdriver, clog)],
            listener,
            now,
            capacity: 64 * 1024,
            read_chunk: 64 * 1024,
            write_chunk: usize::MAX,
        }
    }

    /// The given end.
    pub fn end(&self, side: Side) -> &SimEnd {
        &self.ends[side as usize]
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Makes the link reset: `side` sees a connection reset after what is in flight.
    pub fn inject_reset(&mut self, side: Side) {
        self.ends[side as usize].reset_in = true;
    }

    /// Runs both ends until nothing changes (bounded); returns the number of rounds.
    pub fn run(&mut self) -> usize {
        for round in 0..10_000 {
            let a = self.step(0);
            let b = self.step(1);
            if !a && !b {
                return round;
            }
        }
        panic!("simulation did not settle in 10,000 rounds");
    }

    /// One IO-loop turn for end `i`, following the crate's driving contract. Returns whether
    /// anything happened.
    pub fn step(&mut self, i: usize) -> bool {
        let now = self.now;
        let (read_chunk, write_chunk, capacity) =
            (self.read_chunk, self.write_chunk, self.capacity);
        let (this, peer) = if i == 0 {
            let [a, b] = &mut self.ends;
            (a, b)
        } else {
            let [a, b] = &mut self.ends;
            (b, a)
        };
        if this.gone {
            return false;
        }
        let mut progress = false;
        this.driver.handle_timeout(now);
        // Reads.
        let mut reads = 0;
        while this.driver.interest().read && reads < 16 {
            reads += 1;
            if !this.inbox.is_empty() {
                let n = this.inbox.len().min(read_chunk);
                let bytes: Vec<u8> = this.inbox.drain(..n).collect();
                this.driver.handle_read(now, &bytes);
                progress = true;
            } else if this.reset_in {
                this.reset_in = false;
                this.driver
                    .handle_io_error(now, &io::Error::from(io::ErrorKind::ConnectionReset));
                progress = true;
            } else if this.fin_in {
                this.fin_in = false;
                this.driver.handle_eof(now);
                progress = true;
            } else {
                break;
            }
        }
        // Writes: the peer's inbox is the kernel buffer.
        let peer_gone = peer.gone;
        let inbox = &mut peer.inbox;
        let mut write_error = None;
        this.driver.transmit(now, |slices| {
            if peer_gone {
                return Some(Err(write_error
                    .take()
                    .unwrap_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))));
            }
            let room = capacity.saturating_sub(inbox.len()).min(write_chunk);
            if room == 0 {
                return None;
            }
            let mut n = 0;
            for s in slices {
                let take = s.len().min(room - n);
                inbox.extend(&s[..take]);
                n += take;
                if n == room {
                    break;
                }
            }
            progress |= n > 0;
            Some(Ok(n))
        });
        if this.driver.poll_fin(now) {
            peer.fin_in = true;
            progress = true;
        }
        let _ = this.driver.take_options();
        if let Some(action) = this.driver.close_action() {
            this.gone = true;
            this.closed_with = Some(action);
            match action {
                CloseAction::Reset => {
                    peer.inbox.clear();
                    peer.reset_in = true;
                }
                CloseAction::Graceful => peer.fin_in = true,
            }
            progress = true;
        }
        self.check_bounds(i);
        progress
    }

    fn check_bounds(&mut self, i: usize) {
        let end = &self.ends[i];
        let handle = end.driver.handle();
        let buffered = handle.buffered_amount();
        let hwm = self.config_hwm(i);
        if buffered > hwm {
            let mut log = end.log();
            if log.violation.is_none() {
                log.violation = Some(format!(
                    "buffered {buffered} bytes above the high-water mark {hwm}"
                ));
            }
        }
        if let Some(deadline) = end.driver.interest().deadline {
            if deadline < self.now {
                let mut log = end.log();
                if log.violation.is_none() {
                    log.violation = Some("deadline in the past after handle_timeout".to_owned());
                }
            }
        }
    }

    fn config_hwm(&self, i: usize) -> usize {
        let _ = i;
        self.ends[i]
            .driver
            .handle()
            .shared
            .lock()
            .conn
            .high_water_mark()
    }

    /// Checks the byte invariant (what each end received is a prefix of what the other
    /// accepted; all of it once both are closed cleanly) and any recorded violation.
    pub fn check(&self) -> Result<(), String> {
        for (i, end) in self.ends.iter().enumerate() {
            let log = end.log();
            if let Some(v) = &log.violation {
                return Err(format!("end {i}: {v}"));
            }
            let peer = self.ends[1 - i].log();
            if !peer.accepted.starts_with(&log.received) {
                return Err(format!(
                    "end {i} received {} bytes that are not a prefix of the {} accepted by its peer",
                    log.received.len(),
                    peer.accepted.len()
                ));
            }
        }
        Ok(())
    }
}
