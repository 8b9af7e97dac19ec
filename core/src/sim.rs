//! A deterministic in-memory network for testing the core: two [`Driver`]s joined by a
//! simulated link with simulated time, bounded "kernel" buffers, partial writes, short reads
//! and resets on demand. No sockets, no clock. Enabled by the `sim` feature; used by the core's
//! tests, the property tests and the fuzz targets, with one set of invariant checks.
//!
//! # The invariant checks (the only copy: tests and fuzz targets call these)
//!
//! - Recorded as each event is dispatched ([`SimHandler`]): `open` first and once, `close` at
//!   most once and nothing after it, `end` at most once, `drain` only after a refused or short
//!   write since the previous `drain` and only with nothing buffered.
//! - Recorded after every IO-loop turn ([`Pair::step`]): buffered bytes never above the
//!   high-water mark; no deadline in the past after `handle_timeout`; the closed state, the
//!   `close` event and the OS socket agree; and for plain TCP, the bytes handed to the link
//!   are exactly the accepted ones, in order, and an open socket never loses an accepted byte
//!   (handed to the link + buffered = accepted).
//! - [`Pair::check`]: any recorded violation; what each end received is a prefix of what its
//!   peer accepted; `bytes_written` equals what was recorded as accepted.
//! - [`Pair::check_settled`]: once both ends are left alone long enough, every end is closed
//!   or open for a reason the rules give, close kinds match what the user did, and a clean FIN
//!   exchange delivered every byte.
//! - [`check_sink_against_model`] / [`apply_sink_op`]: a [`Sink`] agrees with [`SinkModel`].
//!
//! Writes must go through [`sim_write`] (in handlers) or [`SimEnd::write`],
//! [`SimEnd::write_bytes`] and [`SimEnd::end_with`] (outside), so the accepted bytes are
//! recorded.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{
    Addr, Bytes, CloseAction, CloseError, ConnectionConfig, Driver, Handler, ListenerShared,
    RefCounter, Sink, Socket, SocketAddrs, SocketError, SocketHandle, WriteStatus,
};

static SIM_REFS: std::sync::LazyLock<Arc<RefCounter>> =
    std::sync::LazyLock::new(|| Arc::new(RefCounter::new()));

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
    /// How many bytes of `accepted` this side's transmits handed to the link.
    pub sent: usize,
    /// A write was refused or short since the last `drain`.
    pub drain_owed: bool,
    /// The first invariant violation seen, if any.
    pub violation: Option<String>,
}

impl SideLog {
    /// Records the outcome of a `try_write` of `offered` bytes.
    fn record_write(&mut self, offered: &[u8], result: Result<usize, crate::WriteError>) {
        if let Ok(n) = result {
            self.accepted.extend_from_slice(&offered[..n]);
            if n < offered.len() {
                self.drain_owed = true;
            }
        }
    }

    /// Records the outcome of a `write` (all or nothing) of `offered` bytes.
    fn record_write_all(
        &mut self,
        offered: &[u8],
        result: Result<WriteStatus, crate::WriteError>,
    ) -> Result<WriteStatus, crate::WriteError> {
        let status = result?;
        self.accepted.extend_from_slice(offered);
        if status.is_backpressured() {
            self.drain_owed = true;
        }
        Ok(status)
    }

    /// Records the first violation only.
    fn violate(&mut self, problem: String) {
        if self.violation.is_none() {
            self.violation = Some(problem);
        }
    }
}

/// A handler's reaction to an event, scripted per test.
pub type Script = Arc<dyn Fn(&Seen, &mut Socket<'_, SimData>) + Send + Sync>;

/// The per-socket data of simulated sockets: where to record.
#[derive(Default)]
pub struct SimData {
    log: Arc<Mutex<SideLog>>,
}

/// `try_write`s through `socket` (Bun's semantics: takes what fits under the high-water
/// mark) and records what was accepted.
pub fn sim_write(
    socket: &mut Socket<'_, SimData>,
    bytes: &[u8],
) -> Result<usize, crate::WriteError> {
    let r = socket.try_write(bytes);
    lock(&socket.data().log).record_write(bytes, r);
    r
}

/// `write`s all of `bytes` through `socket` (or none, with an error) and records it.
pub fn sim_write_all(
    socket: &mut Socket<'_, SimData>,
    bytes: &[u8],
) -> Result<WriteStatus, crate::WriteError> {
    let r = socket.write(bytes);
    lock(&socket.data().log).record_write_all(bytes, r)
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
            let buffered = socket.buffered_amount();
            let mut log = lock(&socket.data().log);
            check_order(&mut log, &seen);
            if seen == Seen::Drain {
                check_drain(&mut log, buffered);
            }
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

/// The `drain` invariants: it answers a refused or short write (one `drain` per episode), and
/// fires only once everything buffered has been written.
fn check_drain(log: &mut SideLog, buffered: usize) {
    if !log.drain_owed {
        log.violate("drain fired without a refused or short write since the last one".into());
    } else if buffered != 0 {
        log.violate(format!("drain fired with {buffered} bytes still buffered"));
    }
    log.drain_owed = false;
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
    /// This end's driver asked for its FIN to be sent.
    fin_sent: bool,
    /// What the user did to this end through the [`Pair`]'s operations.
    pub actions: UserActions,
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
            fin_sent: false,
            actions: UserActions::default(),
        }
    }

    /// A handle to this end's socket.
    pub fn handle(&self) -> SocketHandle<SimData> {
        self.driver.handle()
    }

    /// `try_write`s through this end's handle (from outside any handler) and records what
    /// was accepted.
    pub fn write(&self, bytes: &[u8]) -> Result<usize, crate::WriteError> {
        let r = self.handle().try_write(bytes);
        self.log().record_write(bytes, r);
        r
    }

    /// `write`s all of `bytes` through this end's handle and records it.
    pub fn write_all(&self, bytes: &[u8]) -> Result<WriteStatus, crate::WriteError> {
        let r = self.handle().write(bytes);
        self.log().record_write_all(bytes, r)
    }

    /// Like [`write_all`](Self::write_all) with an owned buffer (`SocketHandle::write_bytes`:
    /// large chunks are queued without a copy).
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<WriteStatus, crate::WriteError> {
        let r = self.handle().write_bytes(Bytes::copy_from_slice(bytes));
        self.log().record_write_all(bytes, r)
    }

    /// `SocketHandle::end_with` from outside, recording what was accepted.
    pub fn end_with(&self, bytes: &[u8]) -> Result<(), crate::WriteError> {
        let r = self.handle().end_with(bytes);
        self.log()
            .record_write_all(bytes, r.map(|()| WriteStatus::Ready))
            .map(|_| ())
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

/// What the user did to one end through the [`Pair`]'s operations ([`Pair::end_side`],
/// [`Pair::close_side`], ...), for [`Pair::check_settled`].
#[derive(Debug, Default, Clone)]
pub struct UserActions {
    /// `end()` (or `end_with`).
    pub end: bool,
    /// `shutdown()`.
    pub shutdown: bool,
    /// `close()` (also through the listener's `stop(true)`).
    pub close: bool,
    /// `terminate()`.
    pub terminate: bool,
    /// `terminate()` while the socket was open: it must close with a reset.
    pub terminate_while_open: bool,
    /// [`Pair::inject_reset`] on this end.
    pub reset_injected: bool,
    /// `set_timeout` with a non-zero duration.
    pub timeout_armed: bool,
    /// `end()` after `shutdown()`'s FIN had gone out (informational: a known bug's trigger).
    pub end_after_fin: bool,
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

    /// A plain-TCP server end that sends `bytes` on open, with a TLS client end (a fake
    /// server speaking garbage to a TLS client).
    pub fn with_tls_client_only(
        client_tls: crate::tls::ClientTls,
        bytes: Vec<u8>,
        client: Arc<dyn Handler<Data = SimData>>,
    ) -> Self {
        let server = SimHandler::new(move |seen, s| {
            if *seen == Seen::Open {
                let _ = sim_write(s, &bytes);
            }
        });
        Self::build(
            PairConfig::default(),
            None,
            Some(client_tls),
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
        let listener = ListenerShared::new(server, config.server, &SIM_REFS, server_tls);
        listener.set_ref(false);
        Self::connect_to(listener, Instant::now(), config.client, client_tls, client)
    }

    /// Another connection to this pair's listener (its handlers and its current TLS
    /// configuration, see [`ListenerShared::set_tls`]), from a client end with `client`
    /// handlers, over TLS with `client_tls`: a new pair on the same listener, its clock starting
    /// at this pair's time, run on its own. This pair is untouched.
    pub fn connect_again(
        &self,
        client_tls: Option<crate::tls::ClientTls>,
        client: Arc<dyn Handler<Data = SimData>>,
    ) -> Self {
        let config = ConnectionConfig::default();
        Self::connect_to(self.listener.clone(), self.now, config, client_tls, client)
    }

    fn connect_to(
        listener: Arc<ListenerShared<SimData>>,
        now: Instant,
        client_config: ConnectionConfig,
        client_tls: Option<crate::tls::ClientTls>,
        client: Arc<dyn Handler<Data = SimData>>,
    ) -> Self {
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
            .expect("the listener accepts (it is not stopped)");
        let cdata = SimData { log: clog.clone() };
        let cdriver = match &client_tls {
            None => Driver::connected(client, client_config, caddrs, cdata, now, &SIM_REFS),
            Some(tls) => {
                Driver::connected_tls(client, client_config, caddrs, cdata, now, &SIM_REFS, tls)
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

    /// A bare FIN from its peer reaches `side` after what is in flight (the peer's TCP
    /// connection ends without anything else: over TLS, without close_notify). The peer's own
    /// state does not change.
    pub fn inject_bare_fin(&mut self, side: Side) {
        self.ends[side as usize].fin_in = true;
    }

    /// Makes the link reset: `side` sees a connection reset after what is in flight.
    pub fn inject_reset(&mut self, side: Side) {
        let end = &mut self.ends[side as usize];
        end.reset_in = true;
        end.actions.reset_injected = true;
    }

    // ----- user operations, recorded in `SimEnd::actions` for `check_settled` -----

    /// `end()` on `side`'s handle.
    pub fn end_side(&mut self, side: Side) {
        self.note_end(side);
        self.ends[side as usize].handle().end();
    }

    /// `end_with(bytes)` on `side` (see [`SimEnd::end_with`]).
    pub fn end_side_with(&mut self, side: Side, bytes: &[u8]) -> Result<(), crate::WriteError> {
        self.note_end(side);
        self.ends[side as usize].end_with(bytes)
    }

    fn note_end(&mut self, side: Side) {
        let end = &mut self.ends[side as usize];
        let h = end.handle();
        if end.actions.shutdown && end.fin_sent && !h.is_closed() {
            end.actions.end_after_fin = true;
        }
        end.actions.end = true;
    }

    /// `shutdown()` on `side`'s handle.
    pub fn shutdown_side(&mut self, side: Side) {
        let end = &mut self.ends[side as usize];
        end.actions.shutdown = true;
        end.handle().shutdown();
    }

    /// `close()` on `side`'s handle.
    pub fn close_side(&mut self, side: Side) {
        let end = &mut self.ends[side as usize];
        end.actions.close = true;
        end.handle().close();
    }

    /// `terminate()` on `side`'s handle.
    pub fn terminate_side(&mut self, side: Side) {
        let end = &mut self.ends[side as usize];
        let h = end.handle();
        end.actions.terminate = true;
        end.actions.terminate_while_open |= !h.is_closed();
        h.terminate();
    }

    /// `set_timeout(duration)` on `side`'s handle.
    pub fn set_timeout_side(&mut self, side: Side, duration: Duration) {
        let end = &mut self.ends[side as usize];
        end.actions.timeout_armed |= !duration.is_zero();
        end.handle().set_timeout(duration);
    }

    /// The listener's `stop(close_active)`; with `close_active` the server end is asked to
    /// close (recorded as a `close()` on it).
    pub fn stop_listener(&mut self, close_active: bool) {
        let server = &mut self.ends[Side::Server as usize];
        if close_active && !server.handle().is_closed() {
            server.actions.close = true;
        }
        self.listener.stop(close_active);
    }

    // ----- running -----

    /// Runs both ends until nothing changes (bounded); returns the number of rounds.
    pub fn run(&mut self) -> usize {
        self.run_for(10_000)
    }

    /// Like [`run`](Self::run) with a round limit sized by the caller (every round that does
    /// not settle moves at least one byte, so a 1-byte link needs about one round per byte).
    /// Panics if the pair has not settled after `max_rounds`.
    pub fn run_for(&mut self, max_rounds: usize) -> usize {
        for round in 0..max_rounds {
            let a = self.step(0);
            let b = self.step(1);
            if !a && !b {
                return round;
            }
        }
        panic!("simulation did not settle in {max_rounds} rounds");
    }

    /// Leaves both ends alone until everything is over: resumes reading on both, runs to
    /// quiescence, then twice lets every timer expire (the clock moves past the longest end
    /// linger, and at least a minute) and runs again. Then [`check_settled`](Self::check_settled)
    /// applies.
    pub fn finish(&mut self, max_rounds: usize) {
        for end in &self.ends {
            end.handle().resume();
        }
        self.run_for(max_rounds);
        let longest = self
            .ends
            .iter()
            .map(|e| e.handle().shared.lock().conn.config().end_linger)
            .max()
            .unwrap_or_default();
        for _ in 0..2 {
            self.advance((longest + Duration::from_secs(1)).max(Duration::from_secs(60)));
            self.run_for(max_rounds);
        }
    }

    /// One IO-loop turn for end `i`, following the crate's driving contract. Returns whether
    /// anything happened. Records any violation of the per-turn invariants.
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
                let mut bytes: Vec<u8> = this.inbox.drain(..n).collect();
                this.driver.handle_read(now, &mut bytes);
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
        let log = &this.log;
        // Over TLS the link carries records, not the accepted bytes themselves.
        let plain = !this.handle().shared.lock().conn.is_tls();
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
            let mut log = lock(log);
            let mut n = 0;
            for s in slices {
                let take = s.len().min(room - n);
                if plain {
                    check_sent(&mut log, &s[..take]);
                }
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
            this.fin_sent = true;
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
        self.check_turn(i);
        progress
    }

    /// The per-turn invariants of end `i`, checked right after its turn.
    fn check_turn(&mut self, i: usize) {
        let now = self.now;
        let end = &self.ends[i];
        let handle = end.driver.handle();
        let (buffered, hwm, closed, plain) = {
            let state = handle.shared.lock();
            (
                state.conn.buffered_amount(),
                state.conn.max_buffered(),
                state.conn.is_closed(),
                !state.conn.is_tls(),
            )
        };
        let deadline = end.driver.interest().deadline;
        let mut log = end.log();
        // Writes stop at `max_buffered` (`try_write` at the high-water mark); over TLS,
        // encrypting what they accepted adds record overhead (at most 64 bytes per 16 KiB
        // record, plus post-handshake messages).
        let slack = if plain { 0 } else { hwm / 256 + 1024 };
        if buffered > hwm + slack {
            log.violate(format!(
                "buffered {buffered} bytes above max_buffered {hwm}"
            ));
        }
        if matches!(deadline, Some(d) if d < now) {
            log.violate("deadline in the past after handle_timeout".to_owned());
        }
        // A turn dispatches everything it causes: a closed connection has run `close` and
        // its OS socket is gone, and the other way round.
        let close_seen = log.events.iter().any(|e| matches!(e, Seen::Close(_)));
        if closed != close_seen || closed != end.gone {
            log.violate(format!(
                "after a turn: closed {closed}, close event {close_seen}, OS socket gone {}",
                end.gone
            ));
        }
        // Nothing accepted is dropped while the socket is open (plain TCP: over TLS the
        // accepted bytes leave the buffer as records).
        let (sent, accepted) = (log.sent, log.accepted.len());
        if plain && !closed && sent + buffered != accepted {
            log.violate(format!(
                "open socket lost bytes: {sent} sent + {buffered} buffered != {accepted} accepted"
            ));
        }
    }

    /// Checks the byte invariants (what each end received is a prefix of what the other
    /// accepted; `bytes_written` counts exactly the accepted bytes) and any recorded
    /// violation.
    pub fn check(&self) -> Result<(), String> {
        for (i, end) in self.ends.iter().enumerate() {
            let bytes_written = end.handle().bytes_written();
            let log = end.log();
            if let Some(v) = &log.violation {
                return Err(format!("end {i}: {v}"));
            }
            if bytes_written != log.accepted.len() as u64 {
                return Err(format!(
                    "end {i}: bytes_written {bytes_written} but {} bytes were accepted",
                    log.accepted.len()
                ));
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

    /// The final-state invariants, after [`finish`](Self::finish) (or an equivalent: both
    /// ends resumed, run to quiescence, every timer expired). Only what the user did through
    /// the pair's operations ([`end_side`](Self::end_side), [`close_side`](Self::close_side),
    /// ..., see [`UserActions`]) is known here: the handler scripts must not end, close or
    /// terminate.
    ///
    /// - [`check`](Self::check) holds;
    /// - `close` fired exactly when the handle says closed and the OS socket is gone;
    /// - a reset close is exactly a `terminate` while open, a `close()` that timed out, or a
    ///   TLS handshake that timed out;
    /// - no `timeout` without `set_timeout`;
    /// - with no end/shutdown/close/terminate/reset at all, both ends are still open;
    /// - an end still open is half-open by the rules (it saw the peer's FIN with
    ///   `allow_half_open`, never ended its side, is writable with nothing buffered), or is a
    ///   `shutdown()` waiting for the FIN of such a half-open peer;
    /// - a clean FIN exchange (no close, end, terminate or reset) that closed both ends
    ///   delivered every accepted byte and closed without an error.
    pub fn check_settled(&self) -> Result<(), String> {
        self.check()?;
        let did = [&self.ends[0].actions, &self.ends[1].actions];
        let traces = [self.ends[0].trace(), self.ends[1].trace()];
        let closed = [0, 1].map(|i| traces[i].contains(&"close"));
        // A TLS handshake that did not finish in time is dropped with a reset, on its own.
        let handshake_timed_out = [0, 1].map(|i| {
            self.ends[i].log().events.contains(&Seen::Handshake(
                false,
                Some(crate::tls::TlsError::HandshakeTimeout),
            ))
        });
        let half_open = [0, 1].map(|i| {
            self.ends[i]
                .handle()
                .shared
                .lock()
                .conn
                .config()
                .allow_half_open
        });
        let fail = |what: String| {
            Err(format!(
                "{what}\ntraces {traces:?}\nactions {did:?}\nbuffered {:?}",
                [0, 1].map(|j| self.ends[j].handle().buffered_amount())
            ))
        };
        for i in 0..2 {
            let end = &self.ends[i];
            let h = end.handle();
            let closes = traces[i].iter().filter(|e| **e == "close").count();
            if closes != closed[i] as usize {
                return fail(format!("end {i}: close fired {closes} times"));
            }
            if h.is_closed() != closed[i] {
                return fail(format!("end {i}: is_closed vs close event"));
            }
            if end.closed_with.is_some() != closed[i] {
                return fail(format!("end {i}: OS socket vs close event"));
            }
            // close() gives up on a peer that will not take its bytes within the linger: a
            // reset with a timed-out close error.
            let close_timed_out = did[i].close
                && end.log().events.last() == Some(&Seen::Close(Some(CloseError::TimedOut)));
            // A write beyond `max_buffered` resets the connection on its own.
            let buffer_limit = end
                .log()
                .events
                .iter()
                .any(|e| matches!(e, Seen::Close(Some(CloseError::BufferLimit { .. }))));
            if (end.closed_with == Some(CloseAction::Reset))
                != (did[i].terminate_while_open
                    || close_timed_out
                    || handshake_timed_out[i]
                    || buffer_limit)
            {
                return fail(format!(
                    "end {i}: closed with {:?}; a reset close is exactly a terminate while open, \
                     a close() that timed out or a TLS handshake that timed out",
                    end.closed_with
                ));
            }
            if !did[i].timeout_armed && traces[i].contains(&"timeout") {
                return fail(format!("end {i}: timeout without set_timeout"));
            }
        }

        // A TLS handshake that timed out ends both sides by itself; nothing was delivered.
        if handshake_timed_out.contains(&true) {
            if (0..2).any(|i| !self.ends[i].log().received.is_empty()) {
                return fail("data delivered on a connection whose handshake timed out".into());
            }
            return Ok(());
        }
        let anything_terminal = did
            .iter()
            .any(|d| d.end || d.shutdown || d.close || d.terminate || d.reset_injected);
        if !anything_terminal {
            if closed[0] || closed[1] {
                return fail("closed without any end/close/reset".to_owned());
            }
            return Ok(());
        }

        // Every end that is still open must be open for a reason the rules give.
        let called_no_fin =
            |i: usize| !did[i].end && !did[i].shutdown && !did[i].close && !did[i].terminate;
        // Half-open: it saw the peer's FIN, stays writable, and never ended its own side.
        let half_open_idle = |i: usize| {
            let h = self.ends[i].handle();
            !closed[i]
                && half_open[i]
                && traces[i].contains(&"end")
                && called_no_fin(i)
                && h.is_writable()
                && h.buffered_amount() == 0
        };
        // shutdown() waits for the peer's FIN without a bound; a half-open peer never sends
        // one.
        let waits_for_half_open_peer = |i: usize| {
            did[i].shutdown
                && !did[i].close
                && !did[i].terminate
                && !did[i].end
                && !traces[i].contains(&"end")
                && half_open_idle(1 - i)
        };
        for (i, &is_closed) in closed.iter().enumerate() {
            if !is_closed && !half_open_idle(i) && !waits_for_half_open_peer(i) {
                return fail(format!("end {i} is still open with no reason"));
            }
        }

        // A clean FIN exchange (no close(), no end() linger, no resets) delivers every byte.
        let clean = did
            .iter()
            .all(|d| !d.close && !d.end && !d.terminate && !d.reset_injected);
        if clean && closed[0] && closed[1] {
            for i in 0..2 {
                let received = self.ends[i].log().received.clone();
                if received != self.ends[1 - i].log().accepted {
                    return fail(format!("end {i} lost bytes in a clean exchange"));
                }
                let last = self.ends[i].log().events.last().cloned();
                if last != Some(Seen::Close(None)) {
                    return fail(format!("end {i} closed with {last:?} in a clean exchange"));
                }
            }
        }
        Ok(())
    }
}

/// The link invariant of one transmit: the bytes handed to the OS are the next accepted ones.
fn check_sent(log: &mut SideLog, bytes: &[u8]) {
    let start = log.sent;
    let end = start + bytes.len();
    if log.accepted.get(start..end) != Some(bytes) {
        let accepted = log.accepted.len();
        log.violate(format!(
            "transmit handed out {} bytes at stream offset {start} that were not the accepted \
             ones ({accepted} accepted)",
            bytes.len(),
        ));
    }
    log.sent = end;
}

// -------------------------------------------------------------------------------------------
// The sink against a model.
// -------------------------------------------------------------------------------------------

/// The reference model of a [`Sink`]: a plain byte vector and a high-water mark.
#[derive(Debug, Clone)]
pub struct SinkModel {
    bytes: Vec<u8>,
    high_water_mark: usize,
}

impl SinkModel {
    /// An empty model with the given high-water mark (at least 1, as the sink's).
    pub fn new(high_water_mark: usize) -> Self {
        SinkModel {
            bytes: Vec::new(),
            high_water_mark: high_water_mark.max(1),
        }
    }

    /// The bytes the sink must hold, oldest first.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The high-water mark the sink must report.
    pub fn high_water_mark(&self) -> usize {
        self.high_water_mark
    }

    /// The room the sink must report: the mark minus what is buffered, never negative (bytes
    /// kept from before a lowered mark may exceed it).
    pub fn room(&self) -> usize {
        self.high_water_mark.saturating_sub(self.bytes.len())
    }
}

/// An operation on a [`Sink`] and its [`SinkModel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkOp {
    /// `write` (copied).
    Write(Vec<u8>),
    /// `write_bytes` (owned; large chunks queued without a copy).
    WriteBytes(Vec<u8>),
    /// `consume(n)` (clamped to the length).
    Consume(usize),
    /// `take_all`.
    TakeAll,
    /// `clear`.
    Clear,
    /// `set_high_water_mark(n)` (at least 1; buffered bytes are kept).
    SetHighWaterMark(usize),
    /// `shrink` (releases memory only when empty; the contents never change).
    Shrink,
}

/// Applies `op` to both the sink and the model, checks that the sink answered as the model
/// says (a write accepts `min(offered, room)` bytes; `take_all` returns exactly the model's
/// bytes), then [`check_sink_against_model`].
pub fn apply_sink_op(sink: &mut Sink, model: &mut SinkModel, op: &SinkOp) -> Result<(), String> {
    match op {
        SinkOp::Write(data) | SinkOp::WriteBytes(data) => {
            let room = model.room();
            let expected = data.len().min(room);
            let n = match op {
                SinkOp::Write(_) => sink.write(data),
                _ => sink.write_bytes(Bytes::copy_from_slice(data)),
            };
            if n != expected {
                return Err(format!(
                    "{} of {} bytes with {room} bytes of room accepted {n}, expected {expected}",
                    if matches!(op, SinkOp::Write(_)) {
                        "write"
                    } else {
                        "write_bytes"
                    },
                    data.len()
                ));
            }
            model.bytes.extend_from_slice(&data[..n]);
        }
        SinkOp::Consume(n) => {
            sink.consume(*n);
            let n = (*n).min(model.bytes.len());
            model.bytes.drain(..n);
        }
        SinkOp::TakeAll => {
            let all = sink.take_all();
            if all[..] != model.bytes[..] {
                return Err(format!(
                    "take_all returned {} bytes that differ from the model's {}",
                    all.len(),
                    model.bytes.len()
                ));
            }
            model.bytes.clear();
        }
        SinkOp::Clear => {
            sink.clear();
            model.bytes.clear();
        }
        SinkOp::SetHighWaterMark(n) => {
            sink.set_high_water_mark(*n);
            model.high_water_mark = (*n).max(1);
        }
        SinkOp::Shrink => sink.shrink(),
    }
    check_sink_against_model(sink, model)
}

/// Checks that `sink` agrees with `model`: `len`, `is_empty`, `room` and `high_water_mark`;
/// `io_slices` hands out exactly the model's bytes, in order, in non-empty slices, at most two
/// per 512 buffered bytes plus two (owned chunks below 512 bytes are copied, so small writes
/// cannot fragment the iovec), and a shorter slice array gets a prefix of them;
/// `first_slice` is a non-empty prefix exactly when something is buffered.
pub fn check_sink_against_model(sink: &Sink, model: &SinkModel) -> Result<(), String> {
    let want = model.bytes();
    if sink.len() != want.len() {
        return Err(format!(
            "len {} but the model has {}",
            sink.len(),
            want.len()
        ));
    }
    if sink.is_empty() != want.is_empty() {
        return Err(format!(
            "is_empty {} with len {}",
            sink.is_empty(),
            want.len()
        ));
    }
    if sink.high_water_mark() != model.high_water_mark() {
        return Err(format!(
            "high_water_mark {} but the model's is {}",
            sink.high_water_mark(),
            model.high_water_mark()
        ));
    }
    if sink.room() != model.room() {
        return Err(format!(
            "room {} but the model's is {}",
            sink.room(),
            model.room()
        ));
    }
    // One entry more than the bound allows, to see a sink that needs more.
    let bound = 2 * (want.len() / 512) + 2;
    let mut slices = vec![IoSlice::new(&[]); bound + 1];
    let n = sink.io_slices(&mut slices);
    if n > bound {
        return Err(format!(
            "io_slices used more than {bound} slices for {} bytes",
            want.len()
        ));
    }
    let slices = &slices[..n];
    if slices.iter().any(|s| s.is_empty()) {
        return Err("io_slices handed out an empty slice".to_owned());
    }
    let mut at = 0;
    for s in slices {
        if want.get(at..at + s.len()) != Some(&**s) {
            return Err(format!(
                "io_slices hands out bytes that differ from the model's at offset {at} \
                 ({} buffered)",
                want.len()
            ));
        }
        at += s.len();
    }
    if at != want.len() {
        return Err(format!(
            "io_slices hands out {at} bytes but {} are buffered",
            want.len()
        ));
    }
    for k in [1, 2] {
        let mut short = vec![IoSlice::new(&[]); k];
        let m = sink.io_slices(&mut short);
        if m != n.min(k) || short[..m].iter().zip(slices).any(|(a, b)| **a != **b) {
            return Err(format!(
                "io_slices into {k} entries did not give the first {} slices",
                n.min(k)
            ));
        }
    }
    let first = sink.first_slice();
    if first.is_empty() != want.is_empty() || !want.starts_with(first) {
        return Err(format!(
            "first_slice ({} bytes) is not a non-empty prefix of the {} buffered",
            first.len(),
            want.len()
        ));
    }
    Ok(())
}
