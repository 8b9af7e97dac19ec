//! One TCP connection as a pure state machine: lifecycle, half-close, backpressure, timers.
//!
//! See the crate docs for the driving contract. Every state change goes through
//! [`Connection::close_with`], [`Connection::begin_fin`] or the `handle_*` inputs, so the
//! transitions are few and each one is tested in `tests/`.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::{Duration, Instant};

use std::io;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{CloseError, SocketError, WriteError};
use crate::jobs::{TlsReceive, Transmit};
use crate::sink::{Sink, DEFAULT_HIGH_WATER_MARK};
use crate::timer::IdleTimer;
use crate::tls::session::{TlsEvent, TlsSession};
use crate::tls::{TlsError, TlsInfo};

/// How long `end()` waits for the peer's FIN after ours before closing anyway.
pub const DEFAULT_END_LINGER: Duration = Duration::from_secs(10);

/// The hard ceiling on a socket's send buffer when none is configured: 16 MiB.
pub const DEFAULT_MAX_BUFFERED: usize = 16 * 1024 * 1024;

/// What a [`write`](Connection::write) that took every byte says about the send buffer.
///
/// Ignoring it loses nothing: the bytes are buffered either way. It tells a producer whether
/// to keep going or to wait for `drain` (the buffer is bounded by `max_buffered`, which closes
/// the socket with a typed error if a producer never waits).
// A data-carrying variant also makes `status as usize` a compile error: code written for a
// count-returning `write` fails to build instead of counting zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStatus {
    /// The send buffer is below the high-water mark: keep writing.
    Ready,
    /// The send buffer is at or above the high-water mark: every byte was taken, but stop
    /// producing (for example with `pause_until_drain`) until `drain`.
    Backpressured {
        /// Bytes buffered now (for TLS, plaintext and unwritten ciphertext).
        buffered: usize,
    },
}

impl WriteStatus {
    /// Whether the buffer reached the high-water mark (stop producing until `drain`).
    pub fn is_backpressured(self) -> bool {
        matches!(self, WriteStatus::Backpressured { .. })
    }
}

/// Per-connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// The send buffer's level at which `write` reports [`WriteStatus::Backpressured`] (and
    /// `try_write` stops accepting).
    pub high_water_mark: usize,
    /// The hard ceiling on the send buffer: a write that would take it above this closes the
    /// socket with [`CloseError::BufferLimit`]. Never below the high-water mark.
    pub max_buffered: usize,
    /// Keep the socket writable after the peer's FIN (`true`), or end it once pending bytes are
    /// flushed (`false`, the default, as in Bun and Node).
    pub allow_half_open: bool,
    /// How long `end()` waits for the peer's FIN after sending ours.
    pub end_linger: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            max_buffered: DEFAULT_MAX_BUFFERED,
            allow_half_open: false,
            end_linger: DEFAULT_END_LINGER,
        }
    }
}

impl ConnectionConfig {
    /// Sets [`high_water_mark`](Self::high_water_mark).
    pub fn high_water_mark(mut self, bytes: usize) -> Self {
        self.high_water_mark = bytes.max(1);
        self
    }
    /// Sets [`max_buffered`](Self::max_buffered).
    pub fn max_buffered(mut self, bytes: usize) -> Self {
        self.max_buffered = bytes.max(1);
        self
    }
    /// Sets [`allow_half_open`](Self::allow_half_open).
    pub fn allow_half_open(mut self, allow: bool) -> Self {
        self.allow_half_open = allow;
        self
    }
    /// Sets [`end_linger`](Self::end_linger).
    pub fn end_linger(mut self, linger: Duration) -> Self {
        self.end_linger = linger;
        self
    }
}

/// What the connection asks its handlers to see, in order. Data is not an event: the driver
/// hands read bytes to the `data` handler directly, without a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The socket is open (always first).
    Open,
    /// A write was refused or short earlier, and everything buffered has now been written.
    Drain,
    /// The peer sent FIN (at most once).
    End,
    /// The idle timeout passed (once per arm).
    Timeout,
    /// The TLS handshake finished (TLS sockets only, exactly once): `success` is false when
    /// it failed (the socket then closes); `authorization_error` says why the peer's
    /// certificate was not trusted (with `reject_unauthorized` off, the socket stays open).
    Handshake {
        /// Whether the handshake completed and the connection proceeds.
        success: bool,
        /// The failure, or the verification problem that was forgiven.
        authorization_error: Option<TlsError>,
    },
    /// A handler failed; the socket closes right after.
    Error(SocketError),
    /// The socket closed (exactly once, always last); `None` for a clean close.
    Close(Option<CloseError>),
}

/// What the adapter does with the OS socket once the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAction {
    /// Close the descriptor normally.
    Graceful,
    /// Reset the connection: set `SO_LINGER` to zero, then close (`terminate`).
    Reset,
}

/// The lifecycle phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Closed(CloseAction),
}

/// Our sending direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendState {
    /// Writes are accepted.
    Open,
    /// `end`/`shutdown`/`close` was called: flush what was accepted, then send FIN.
    Flushing,
    /// FIN was handed to the adapter.
    FinSent,
}

/// How the connection closes once our FIN is out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FinMode {
    /// `shutdown()`: half-close, keep reading until the peer's FIN, however long it takes.
    HalfClose,
    /// `end()`: keep reading until the peer's FIN, but at most `end_linger`.
    Linger,
    /// `close()`: close as soon as the FIN is out; stop reading now.
    Close,
}

/// The bound on a graceful close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Linger {
    Off,
    /// Armed by an operation that had no fresh `now` (a handle, say): starts at the next input.
    Pending,
    At(Instant),
}

/// TLS writes at least this large skip the send buffer when it is empty (see `write`); smaller
/// ones are gathered there, so that many small writes become one record, not many.
const DIRECT_ENCRYPT_MIN: usize = 4096;

/// One connection's state machine. Feed it with `handle_*`, act on it with the user
/// operations, drain it with [`poll_event`](Self::poll_event),
/// [`io_slices`](Self::io_slices) / [`poll_fin`](Self::poll_fin),
/// [`poll_timeout`](Self::poll_timeout) and [`close_action`](Self::close_action).
#[derive(Debug)]
pub struct Connection {
    config: ConnectionConfig,
    phase: Phase,
    send: SendState,
    fin_mode: FinMode,
    /// The peer's FIN arrived.
    recv_finished: bool,
    paused: bool,
    sink: Sink,
    /// `Open` has not been handed out yet. A flag rather than a queue entry, so a connection
    /// that sees no other event (an idle one) never allocates the queue.
    open_pending: bool,
    events: VecDeque<Event>,
    idle: IdleTimer,
    linger: Linger,
    /// A write was backpressured (or short) and `drain` has not fired since.
    drain_owed: bool,
    /// `pause_until_drain`: resume reading when `drain` is queued.
    resume_on_drain: bool,
    /// TLS: the peer's close_notify arrived (its FIN is then not a truncation).
    close_notify_received: bool,
    /// TLS: the peer's FIN came after the handshake without close_notify.
    truncated: bool,
    /// `End` was handed out with `allow_half_open` off: end our side once the handler returned.
    end_after_end_event: bool,
    bytes_accepted: u64,
    /// The TLS session, for TLS sockets (out with a [`Transmit`] or a receive for a moment).
    tls: Option<Box<TlsSession>>,
    /// A [`Transmit`] holds the send buffer (and TLS session): bytes it holds, counted as
    /// buffered until it is finished.
    in_flight: Option<usize>,
    /// After a STARTTLS upgrade: the plain bytes accepted before it, sent before any record.
    plain_prefix: Option<Box<Sink>>,
    handshake_deadline: Option<Instant>,
    tls_info: Option<Arc<TlsInfo>>,
}

impl Connection {
    /// A connection that has just been accepted or connected at `now`; `Open` is queued.
    pub fn new(config: ConnectionConfig, now: Instant) -> Self {
        Connection {
            sink: Sink::with_high_water_mark(config.high_water_mark),
            config,
            phase: Phase::Open,
            send: SendState::Open,
            fin_mode: FinMode::HalfClose,
            recv_finished: false,
            paused: false,
            open_pending: true,
            events: VecDeque::new(),
            idle: IdleTimer::new(now),
            linger: Linger::Off,
            drain_owed: false,
            resume_on_drain: false,
            close_notify_received: false,
            truncated: false,
            end_after_end_event: false,
            bytes_accepted: 0,
            tls: None,
            in_flight: None,
            plain_prefix: None,
            handshake_deadline: None,
            tls_info: None,
        }
    }

    /// A TLS connection: `Open` is queued; `Handshake` follows once the handshake ends, which
    /// must happen within `handshake_timeout`.
    pub(crate) fn with_tls(
        config: ConnectionConfig,
        now: Instant,
        session: TlsSession,
        handshake_timeout: std::time::Duration,
    ) -> Self {
        let mut conn = Self::new(config, now);
        conn.tls = Some(Box::new(session));
        conn.handshake_deadline = Some(now + handshake_timeout);
        conn
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// What the TLS handshake negotiated, once it completed.
    pub fn tls_info(&self) -> Option<&Arc<TlsInfo>> {
        self.tls_info.as_ref()
    }

    /// Keying material exported from the TLS session (see
    /// [`SocketHandle::export_keying_material`](crate::SocketHandle::export_keying_material)).
    pub fn export_keying_material(
        &self,
        label: &[u8],
        context: Option<&[u8]>,
        len: usize,
    ) -> Result<Vec<u8>, crate::tls::ExportError> {
        match &self.tls {
            Some(session) => session.export_keying_material(label, context, len),
            None => Err(crate::tls::ExportError::NotTls),
        }
    }

    fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// Plaintext may be handed to the transport: plain TCP, or TLS after a good handshake.
    fn may_encrypt(&self) -> bool {
        self.tls
            .as_ref()
            .is_none_or(|t| !t.is_handshaking() && !t.is_failed())
    }

    // ----- predicates -----

    /// Whether the socket is closed (the `Close` event may still be queued).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// Whether `write` can accept bytes now or later (the write side is open).
    pub fn may_send(&self) -> bool {
        !self.is_closed() && self.send == SendState::Open
    }

    /// Whether incoming bytes are still delivered (open, peer has not sent FIN, not closing).
    pub fn may_recv(&self) -> bool {
        !self.is_closed() && !self.recv_finished && self.fin_mode != FinMode::Close
    }

    /// Whether reading is paused by the user.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether the adapter should read from the socket now. While `close()` flushes, reads
    /// continue and are discarded, so two sides closing at once cannot block each other.
    pub fn wants_read(&self) -> bool {
        // The handshake and close() both read regardless of pause: neither delivers data.
        !self.is_closed()
            && !self.recv_finished
            && (!self.paused || self.fin_mode == FinMode::Close || self.tls_handshaking())
    }

    /// Whether the adapter has bytes or a FIN to send.
    pub fn wants_write(&self) -> bool {
        if self.is_closed() {
            return false;
        }
        let tls_pending =
            self.tls.as_ref().is_some_and(|t| t.wants_write()) || self.plain_prefix.is_some();
        let encryptable =
            self.may_encrypt() && (!self.sink.is_empty() || self.send == SendState::Flushing);
        tls_pending || encryptable
    }

    /// Bytes accepted and not yet written to the OS (for TLS: plaintext not yet encrypted plus
    /// ciphertext not yet written).
    pub fn buffered_amount(&self) -> usize {
        self.sink.len()
            + self.tls.as_ref().map_or(0, |t| t.pending_ciphertext())
            + self.plain_prefix.as_ref().map_or(0, |p| p.len())
            + self.in_flight.unwrap_or(0)
    }

    /// Total bytes accepted by writes since the connection opened (Bun's `bytesWritten`).
    pub fn bytes_accepted(&self) -> u64 {
        self.bytes_accepted
    }

    /// The configured high-water mark.
    pub fn high_water_mark(&self) -> usize {
        self.sink.high_water_mark()
    }

    /// The hard ceiling on the send buffer (see [`ConnectionConfig::max_buffered`]).
    pub fn max_buffered(&self) -> usize {
        self.config.max_buffered.max(self.sink.high_water_mark())
    }

    /// The settings this connection runs with.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    // ----- user operations (called from handlers and handles) -----

    /// Takes every byte of `data` (or none, with an error) and says whether the send buffer
    /// is now at or above the high-water mark. Nothing taken is ever dropped while the socket
    /// is open. Errors: the write side ended or the socket closed (nothing is taken), or
    /// taking `data` would exceed [`max_buffered`](Self::max_buffered): then nothing is taken,
    /// `Error` and `Close` are queued with [`CloseError::BufferLimit`], and the connection
    /// resets.
    pub fn write(&mut self, data: &[u8]) -> Result<WriteStatus, WriteError> {
        self.check_writable()?;
        self.check_limit(data.len())?;
        let direct = self.encrypt_direct(data);
        self.sink.push(&data[direct..]);
        Ok(self.took(data.len()))
    }

    /// Like [`write`](Self::write) for an owned buffer, queued without a copy when large.
    pub fn write_bytes(&mut self, data: Bytes) -> Result<WriteStatus, WriteError> {
        self.check_writable()?;
        self.check_limit(data.len())?;
        let len = data.len();
        self.sink.push_bytes(data);
        Ok(self.took(len))
    }

    /// Bun's `write`: takes as much of `data` as fits under the high-water mark and returns how
    /// much (`Ok(0)` when full). The caller keeps the rest and writes it on `drain`, which a
    /// short count arms.
    pub fn try_write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        self.check_writable()?;
        let fits = &data[..data.len().min(self.room())];
        let direct = self.encrypt_direct(fits);
        self.sink.push(&fits[direct..]);
        let n = fits.len();
        self.bytes_accepted += n as u64;
        if n < data.len() {
            self.owe_drain();
        }
        Ok(n)
    }

    /// A large TLS write with nothing queued before it is encrypted at once rather than
    /// copied into the send buffer first; returns how much of `data` was encrypted.
    fn encrypt_direct(&mut self, data: &[u8]) -> usize {
        match self.tls.as_deref_mut() {
            Some(tls) if data.len() >= DIRECT_ENCRYPT_MIN && self.sink.is_empty() => {
                tls.encrypt_direct(data, self.sink.high_water_mark())
            }
            _ => 0,
        }
    }

    /// What writes may still add under the high-water mark: it bounds the send buffer and,
    /// for TLS, the ciphertext not yet written together.
    fn room(&self) -> usize {
        self.sink
            .high_water_mark()
            .saturating_sub(self.buffered_amount())
    }

    /// Refuses a write that would take the buffer above `max_buffered`, closing the socket
    /// loudly: a producer that never waits for `drain` must not grow memory without bound,
    /// and must not lose bytes silently either.
    fn check_limit(&mut self, offered: usize) -> Result<(), WriteError> {
        let (buffered, limit) = (self.buffered_amount(), self.max_buffered());
        if buffered.saturating_add(offered) <= limit {
            return Ok(());
        }
        tracing::warn!(
            buffered,
            refused = offered,
            limit,
            "send buffer limit reached (the peer is not reading, or the producer ignores \
             backpressure); closing the socket"
        );
        self.events
            .push_back(Event::Error(SocketError::BufferLimit {
                buffered,
                refused: offered,
                limit,
            }));
        self.close_with(
            Some(CloseError::BufferLimit {
                buffered,
                refused: offered,
                limit,
            }),
            CloseAction::Reset,
        );
        Err(WriteError::BufferLimit {
            buffered,
            refused: offered,
            limit,
        })
    }

    /// Counts `n` taken bytes and reports the buffer's level against the high-water mark.
    fn took(&mut self, n: usize) -> WriteStatus {
        self.bytes_accepted += n as u64;
        let buffered = self.buffered_amount();
        if buffered >= self.sink.high_water_mark() {
            self.owe_drain();
            WriteStatus::Backpressured { buffered }
        } else {
            WriteStatus::Ready
        }
    }

    fn owe_drain(&mut self) {
        if !self.drain_owed {
            tracing::trace!(
                buffered = self.buffered_amount(),
                "backpressure: drain owed once the buffer empties"
            );
            self.drain_owed = true;
        }
    }

    fn check_writable(&self) -> Result<(), WriteError> {
        match (self.phase, self.send) {
            (Phase::Closed(_), _) => Err(WriteError::Closed),
            (Phase::Open, SendState::Open) => Ok(()),
            (Phase::Open, _) => Err(WriteError::Ended),
        }
    }

    /// Flushes every accepted byte, sends FIN, keeps delivering data until the peer's FIN
    /// (at most `end_linger`), then closes.
    pub fn end(&mut self) {
        self.begin_fin(FinMode::Linger);
    }

    /// Half-close: flushes every accepted byte, sends FIN, keeps reading; closes when the
    /// peer's FIN arrives.
    pub fn shutdown(&mut self) {
        self.begin_fin(FinMode::HalfClose);
    }

    /// Flushes every accepted byte, sends FIN and closes without waiting for the peer; no more
    /// data is delivered.
    pub fn close(&mut self) {
        self.begin_fin(FinMode::Close);
    }

    /// Closes at once with a reset; buffered bytes are dropped.
    pub fn terminate(&mut self) {
        self.close_with(None, CloseAction::Reset);
    }

    /// Stops reading: no `data` until [`resume`](Self::resume); the kernel queues the bytes
    /// (over TLS, ciphertext already read is held, undecrypted, until then).
    pub fn pause(&mut self) {
        self.paused = true;
        self.resume_on_drain = false;
    }

    /// Resumes reading after [`pause`](Self::pause).
    pub fn resume(&mut self) {
        self.paused = false;
        self.resume_on_drain = false;
    }

    /// Asks for a `drain` once everything buffered is written (at the next flush if nothing
    /// is): how a flush waits for the OS to take the bytes.
    pub fn request_drain(&mut self) {
        if !self.is_closed() && self.send == SendState::Open {
            self.drain_owed = true;
        }
    }

    /// Stops reading until `drain`: the echo/proxy pattern for a write that returned
    /// [`WriteStatus::Backpressured`]. Reading resumes by itself right before the `drain`
    /// event (which fires once everything buffered is written, at once if nothing is).
    pub fn pause_until_drain(&mut self) {
        if self.is_closed() || self.send != SendState::Open {
            return;
        }
        self.paused = true;
        self.resume_on_drain = true;
        self.drain_owed = true;
    }

    /// Arms the idle timeout (zero disarms): `Timeout` fires once after `duration` without
    /// reads or writes. It does not close the socket.
    pub fn set_timeout(&mut self, duration: Duration) {
        if !self.is_closed() {
            self.idle.set(duration);
        }
    }

    /// Changes the high-water mark for later writes.
    pub fn set_high_water_mark(&mut self, bytes: usize) {
        self.sink.set_high_water_mark(bytes);
    }

    fn begin_fin(&mut self, mode: FinMode) {
        if self.is_closed() {
            return;
        }
        // A stronger request wins: close > linger > half-close.
        let rank = |m: FinMode| match m {
            FinMode::HalfClose => 0,
            FinMode::Linger => 1,
            FinMode::Close => 2,
        };
        if self.send == SendState::Open || rank(mode) > rank(self.fin_mode) {
            self.fin_mode = mode;
        }
        if mode == FinMode::Close && self.linger == Linger::Off {
            self.linger = Linger::Pending;
        }
        match self.send {
            SendState::Open => self.send = SendState::Flushing,
            SendState::Flushing => {}
            SendState::FinSent => self.after_fin_sent(None),
        }
    }

    // ----- adapter inputs -----

    /// `n` bytes were read at `now`; returns whether to deliver them to `data`.
    pub fn handle_read(&mut self, now: Instant, n: usize) -> bool {
        if n == 0 || !self.may_recv() {
            return false;
        }
        self.idle.activity(now);
        true
    }

    /// The peer's FIN arrived (a read returned 0).
    pub fn handle_eof(&mut self, now: Instant) {
        self.idle.observe(now);
        if self.is_closed() || self.recv_finished {
            return;
        }
        if self.tls_handshaking() {
            self.recv_finished = true;
            self.fail_handshake(TlsError::ClosedDuringHandshake, CloseAction::Graceful);
            return;
        }
        self.recv_finished = true;
        if self.tls.as_ref().is_some_and(|t| !t.is_failed()) && !self.close_notify_received {
            // A TLS peer ends with close_notify; a bare FIN may cut its data short.
            self.truncated = true;
        }
        if self.fin_mode == FinMode::Close && self.send != SendState::Open {
            // close() already stopped delivery; the peer's FIN changes nothing.
            return;
        }
        self.events.push_back(Event::End);
        if self.send == SendState::FinSent {
            self.close_with(None, CloseAction::Graceful);
        }
    }

    /// The OS accepted `n` bytes from [`io_slices`](Self::io_slices) at `now`.
    pub fn handle_written(&mut self, now: Instant, n: usize) {
        if self.is_closed() {
            return;
        }
        self.sink.consume(n);
        if n > 0 {
            self.idle.activity(now);
        }
        if self.sink.is_empty() {
            self.queue_drain();
        }
    }

    /// A read, write or shutdown on the socket failed.
    pub fn handle_io_error(&mut self, now: Instant, error: &std::io::Error) {
        self.idle.observe(now);
        self.close_with(Some(CloseError::from_io(error)), CloseAction::Graceful);
    }

    /// A handler panicked: queue `Error`, then close (buffered bytes are dropped).
    pub fn handle_panic(&mut self, handler: &'static str, message: String) {
        if self.is_closed() {
            return;
        }
        self.events
            .push_back(Event::Error(SocketError::HandlerPanicked {
                handler,
                message: message.clone(),
            }));
        self.close_with(
            Some(CloseError::HandlerPanicked(message)),
            CloseAction::Graceful,
        );
    }

    /// Time passed: fires expired timers. Call it on every wake-up, before the other inputs.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if matches!(self.handshake_deadline, Some(d) if d <= now) && self.tls_handshaking() {
            self.fail_handshake(TlsError::HandshakeTimeout, CloseAction::Reset);
            return;
        }
        if self.idle.expire(now) {
            self.events.push_back(Event::Timeout);
        }
        self.observe_linger(now);
        if matches!(self.linger, Linger::At(deadline) if deadline <= now) {
            if self.send == SendState::FinSent {
                // end(): the peer never answered our FIN; everything we accepted was sent.
                self.close_with(None, CloseAction::Graceful);
            } else {
                // close(): the peer would not take our bytes; give up on them with a reset.
                self.close_with(Some(CloseError::TimedOut), CloseAction::Reset);
            }
        }
    }

    // ----- outputs -----

    /// The next event for the handlers. Consequences of an event (such as ending our side
    /// after `End` when half-open is off) apply when the next one is asked for, so writes made
    /// by the handler still go out.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.end_after_end_event {
            self.end_after_end_event = false;
            self.begin_fin(FinMode::HalfClose);
        }
        if self.open_pending {
            // `Open` is always first: it was queued before anything else could be.
            self.open_pending = false;
            return Some(Event::Open);
        }
        let event = self.events.pop_front();
        if event == Some(Event::End) && !self.config.allow_half_open {
            self.end_after_end_event = true;
        }
        event
    }

    /// Writes what is pending through `write` (one vectored write per call of `write`; `None`
    /// means it would block): buffered plaintext for TCP, ciphertext for TLS (plaintext is
    /// encrypted first, after the handshake). Returns true if it would block. The same as
    /// [`begin_transmit`](Self::begin_transmit), [`Transmit::run`] and
    /// [`finish_transmit`](Self::finish_transmit).
    pub fn transmit(
        &mut self,
        now: Instant,
        write: impl FnMut(&[IoSlice<'_>]) -> Option<io::Result<usize>>,
    ) -> bool {
        match self.begin_transmit() {
            None => false,
            Some(mut job) => {
                job.run(write);
                self.finish_transmit(now, job)
            }
        }
    }

    /// Takes out what a transmit works on (the send buffer and, for TLS, the session), so the
    /// writes and the encryption can run without the connection: the driver runs them without
    /// its lock, and writers on other threads go on filling a fresh buffer meanwhile (it is
    /// put behind the taken one by [`finish_transmit`](Self::finish_transmit)). `None` once
    /// closed. Call `finish_transmit` with the job before any other input.
    pub fn begin_transmit(&mut self) -> Option<Transmit> {
        if self.is_closed() || self.in_flight.is_some() {
            return None;
        }
        self.in_flight = Some(self.buffered_amount());
        let hwm = self.sink.high_water_mark();
        Some(Transmit::new(
            self.plain_prefix.take(),
            std::mem::replace(&mut self.sink, Sink::with_high_water_mark(hwm)),
            self.tls.take(),
            self.send == SendState::Flushing,
        ))
    }

    /// Puts back what [`begin_transmit`](Self::begin_transmit) took, after [`Transmit::run`]:
    /// bytes written meanwhile follow the unwritten ones. Returns true if the transport would
    /// block; a write error closes the connection.
    pub fn finish_transmit(&mut self, now: Instant, job: Transmit) -> bool {
        self.in_flight = None;
        let (plain_prefix, mut sink, tls, outcome) = job.into_parts();
        sink.append(&mut self.sink);
        self.sink = sink;
        self.tls = tls;
        self.plain_prefix = plain_prefix;
        if outcome.written > 0 {
            self.idle.activity(now);
        }
        if self.is_closed() {
            // Closed from another thread meanwhile (terminate, say): what it took is dropped.
            self.sink.clear();
            self.sink.shrink();
            return false;
        }
        if let Some(e) = outcome.error {
            self.handle_io_error(now, &e);
            return false;
        }
        self.check_drain();
        outcome.blocked
    }

    fn check_drain(&mut self) {
        let tls_pending =
            self.tls.as_ref().is_some_and(|t| t.wants_write()) || self.plain_prefix.is_some();
        if self.sink.is_empty() && !tls_pending {
            self.queue_drain();
        }
    }

    /// Everything buffered is written: `Drain` if one is owed (reading resumes first after
    /// `pause_until_drain`).
    fn queue_drain(&mut self) {
        if self.drain_owed && self.send == SendState::Open {
            self.drain_owed = false;
            if self.resume_on_drain {
                self.resume();
            }
            self.events.push_back(Event::Drain);
        }
    }

    /// TLS only: feeds ciphertext from `input` (advancing it; records are decrypted in place,
    /// so its contents change) and decrypts into `out`; returns how many plaintext bytes in
    /// `out` to deliver to `data`, and whether to call again (after delivering them and
    /// dispatching the events) even if `input` is empty. The same as
    /// [`begin_receive_tls`](Self::begin_receive_tls), [`TlsReceive::run`] and
    /// [`finish_receive_tls`](Self::finish_receive_tls).
    pub fn receive_tls(
        &mut self,
        now: Instant,
        input: &mut &mut [u8],
        out: &mut [u8],
    ) -> (usize, bool) {
        match self.begin_receive_tls(now, input) {
            None => (0, false),
            Some(mut job) => {
                job.run(input, out);
                self.finish_receive_tls(now, job)
            }
        }
    }

    /// TLS only: takes the session out to decrypt `input` without the connection (the driver
    /// decrypts without its lock). `None` when there is nothing to decrypt now: not TLS,
    /// closed (`input` is dropped), or paused after the handshake (`input` is held,
    /// undecrypted, until `resume`, as the kernel keeps unread bytes for plain TCP).
    pub fn begin_receive_tls(&mut self, now: Instant, input: &mut &mut [u8]) -> Option<TlsReceive> {
        if !input.is_empty() {
            self.idle.activity(now);
        }
        let deliver = self.may_recv();
        if self.phase != Phase::Open || self.in_flight.is_some() {
            *input = &mut [];
            return None;
        }
        let Some(tls) = self.tls.as_deref_mut() else {
            *input = &mut [];
            return None;
        };
        if self.paused && deliver && !tls.is_handshaking() {
            tls.hold(input);
            return None;
        }
        self.in_flight = Some(tls.pending_ciphertext());
        self.tls.take().map(TlsReceive::new)
    }

    /// Puts the session back after [`TlsReceive::run`] and acts on what happened; returns as
    /// [`receive_tls`](Self::receive_tls) does.
    pub fn finish_receive_tls(&mut self, now: Instant, job: TlsReceive) -> (usize, bool) {
        self.in_flight = None;
        let (tls, n, event, again) = job.into_parts();
        self.tls = Some(tls);
        // Asked again now: another thread may have closed the socket meanwhile.
        let deliver = self.may_recv();
        match event {
            None => {}
            Some(TlsEvent::HandshakeDone(info)) => {
                self.handshake_deadline = None;
                self.events.push_back(Event::Handshake {
                    success: true,
                    authorization_error: info.authorization_error.clone(),
                });
                self.tls_info = Some(info);
            }
            Some(TlsEvent::HandshakeFailed(e)) => self.fail_handshake(e, CloseAction::Graceful),
            Some(TlsEvent::Fatal(e)) => {
                self.events.push_back(Event::Error(SocketError::Tls(e)));
                self.fail_tls();
            }
            Some(TlsEvent::PeerClosed) => {
                self.close_notify_received = true;
                self.handle_eof(now)
            }
        }
        (if deliver { n } else { 0 }, again && !self.is_closed())
    }

    /// The handshake failed: `Handshake(false)`, then close (after sending our alert, unless
    /// `action` is a reset).
    fn fail_handshake(&mut self, error: TlsError, action: CloseAction) {
        self.events.push_back(Event::Handshake {
            success: false,
            authorization_error: Some(error),
        });
        self.handshake_deadline = None;
        match action {
            CloseAction::Reset => {
                if let Some(t) = self.tls.as_deref_mut() {
                    t.fail();
                }
                self.close_with(None, CloseAction::Reset);
            }
            CloseAction::Graceful if self.recv_finished => {
                if let Some(t) = self.tls.as_deref_mut() {
                    t.fail();
                }
                self.close_with(None, CloseAction::Graceful);
            }
            CloseAction::Graceful => self.fail_tls(),
        }
    }

    /// The session is unusable: drop pending plaintext, send the alert, FIN, close.
    fn fail_tls(&mut self) {
        if let Some(t) = self.tls.as_deref_mut() {
            t.fail();
        }
        self.sink.clear();
        self.drain_owed = false;
        self.begin_fin(FinMode::Close);
    }

    /// Slices of every buffered byte, oldest first, for one vectored write.
    pub fn io_slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        if self.is_closed() {
            return 0;
        }
        self.sink.io_slices(out)
    }

    /// Returns true once, when every accepted byte is written and the adapter must now shut
    /// down the write side (send FIN).
    pub fn poll_fin(&mut self, now: Instant) -> bool {
        // Arm what operations of the last dispatch left pending, with this fresh time.
        self.idle.observe(now);
        self.observe_linger(now);
        if self.is_closed() || self.send != SendState::Flushing {
            return false;
        }
        let flushed = match &self.tls {
            None => self.sink.is_empty(),
            Some(t) if t.is_failed() => !t.wants_write(),
            Some(t) => {
                !t.is_handshaking()
                    && self.sink.is_empty()
                    && t.close_notify_sent()
                    && !t.wants_write()
            }
        };
        if !flushed || self.plain_prefix.is_some() {
            return false;
        }
        self.after_fin_sent(Some(now));
        true
    }

    fn after_fin_sent(&mut self, now: Option<Instant>) {
        self.send = SendState::FinSent;
        self.drain_owed = false;
        if self.recv_finished || self.fin_mode == FinMode::Close {
            self.close_with(None, CloseAction::Graceful);
        } else if self.fin_mode == FinMode::Linger && self.linger == Linger::Off {
            self.linger = Linger::Pending;
        }
        if let Some(now) = now {
            self.observe_linger(now);
        }
    }

    fn observe_linger(&mut self, now: Instant) {
        if self.linger == Linger::Pending {
            self.linger = Linger::At(now + self.config.end_linger);
        }
    }

    fn idle_last_seen(&self) -> Instant {
        self.idle.last_activity()
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let linger = match self.linger {
            Linger::At(deadline) => Some(deadline),
            // Arm it at once: the adapter calls `handle_timeout` with a fresh `now`.
            Linger::Pending => Some(self.idle_last_seen()),
            Linger::Off => None,
        };
        let handshake = self.handshake_deadline.filter(|_| self.tls_handshaking());
        // Held ciphertext to decrypt after a resume: due now.
        let held = self.has_held_input().then(|| self.idle_last_seen());
        [self.idle.deadline(), linger, handshake, held]
            .into_iter()
            .flatten()
            .min()
    }

    /// Once closed: what to do with the OS socket.
    pub fn close_action(&self) -> Option<CloseAction> {
        match self.phase {
            Phase::Closed(action) => Some(action),
            Phase::Open => None,
        }
    }

    /// STARTTLS: from now on this connection speaks TLS through `session`. Bytes written
    /// before are sent as they are, ahead of the first record; every later write is
    /// encrypted (queued until the handshake completes), and every later read is ciphertext.
    /// `Handshake` fires when the handshake ends, which must happen within `timeout`.
    pub(crate) fn start_tls(
        &mut self,
        session: TlsSession,
        timeout: Duration,
    ) -> Result<(), crate::error::StartTlsError> {
        use crate::error::StartTlsError;
        if self.tls.is_some() || self.in_flight.is_some() {
            return Err(StartTlsError::AlreadyTls);
        }
        if !self.may_send() || !self.may_recv() {
            return Err(StartTlsError::NotOpen);
        }
        if !self.sink.is_empty() {
            let hwm = self.sink.high_water_mark();
            let plain = std::mem::replace(&mut self.sink, Sink::with_high_water_mark(hwm));
            self.plain_prefix = Some(Box::new(plain));
        }
        self.tls = Some(Box::new(session));
        self.tls_info = None;
        // Called from a handler: the input that dispatched it is this instant's nearest.
        self.handshake_deadline = Some(self.idle_last_seen() + timeout);
        Ok(())
    }

    /// TLS only: ciphertext held while paused waits to be decrypted and reading is no longer
    /// paused. The adapter need not act: [`poll_timeout`](Self::poll_timeout) is due at once,
    /// and the driver's `handle_timeout` delivers it.
    pub fn has_held_input(&self) -> bool {
        !self.paused && !self.is_closed() && self.tls.as_ref().is_some_and(|t| t.holds_input())
    }

    /// The IO task is going away with the connection open (its runtime shut down): close now
    /// with [`CloseError::RuntimeShutdown`].
    pub fn handle_task_dropped(&mut self) {
        self.close_with(Some(CloseError::RuntimeShutdown), CloseAction::Graceful);
    }

    /// The one transition into `Closed`: queues `Close` (last), drops buffers and timers.
    fn close_with(&mut self, error: Option<CloseError>, action: CloseAction) {
        if self.is_closed() {
            return;
        }
        let error = match error {
            None if self.truncated => Some(CloseError::TlsTruncated),
            error => error,
        };
        self.phase = Phase::Closed(action);
        self.end_after_end_event = false;
        self.sink.clear();
        self.sink.shrink();
        self.idle.disarm();
        self.linger = Linger::Off;
        self.handshake_deadline = None;
        self.events.push_back(Event::Close(error));
    }
}
