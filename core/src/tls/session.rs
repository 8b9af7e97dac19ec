//! One connection's rustls state, fed ciphertext from memory and drained into memory.
//!
//! This drives rustls' *unbuffered* API: the session owns no buffer while it is idle. After the
//! handshake, records are decrypted in place in the adapter's read buffer; only a record cut
//! off at the end of a read is copied into `incoming` (and during the handshake, which rustls
//! may need to see whole, every record goes through `incoming`). Outgoing ciphertext collects
//! in `outgoing` until the adapter writes it. Both buffers are taken from, and given back to,
//! a small per-thread pool, so a streaming socket reuses the same two allocations while
//! thousands of idle sockets hold none (rustls' buffered `Connection` keeps a 4 KiB read
//! buffer per socket forever).

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::crypto::tls13::{HkdfExpander, OkmBlock};
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};

use super::capture::{self, Captured};
use super::config::{ClientTls, ServerTls};
use super::error::{ExportError, TlsError};
use super::verify::RecordingVerifier;
use super::{CipherSuite, TlsInfo, TlsVersion};
use crate::sink::Sink;

/// The least ciphertext the session may hold before it stops encrypting (the connection's
/// high-water mark sets the limit; this keeps one full record possible under a tiny one).
const MIN_SENDABLE: usize = 20 * 1024;

/// Largest plaintext of one TLS record: a record is decrypted only when this much room is left.
const MAX_PLAINTEXT: usize = 16 * 1024;

/// Plaintext encrypted per `encrypt` call (four full records).
const ENCRYPT_CHUNK: usize = 4 * MAX_PLAINTEXT;

/// Largest record (header plus the largest ciphertext TLS 1.2 allows) taken in one piece.
const MAX_RECORD: usize = 5 + MAX_PLAINTEXT + 2048;

/// Buffers kept per thread (per pool) for reuse, and the largest one worth keeping.
const POOL_SLOTS: usize = 4;
const POOL_MAX_CAPACITY: usize = 512 * 1024;

/// The two per-thread pools: read-side buffers (`incoming`, `stash`), which are used from
/// empty, and write-side ones (`outgoing`), which keep their initialised length so that
/// encrypting into them never zeroes memory again.
#[derive(Debug, Clone, Copy)]
enum Pool {
    Read = 0,
    Write = 1,
}

thread_local! {
    static POOLS: RefCell<[Vec<Vec<u8>>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// A buffer from this thread's `pool`, possibly with capacity: empty from the read pool;
/// from the write pool its length is how much of it is initialised (contents are stale).
fn pooled(pool: Pool) -> Vec<u8> {
    let mut buf = POOLS
        .with_borrow_mut(|p| p[pool as usize].pop())
        .unwrap_or_default();
    if let Pool::Read = pool {
        buf.clear();
    }
    buf
}

/// Returns `buf`'s allocation to this thread's `pool` (or frees it).
fn release(pool: Pool, buf: &mut Vec<u8>) {
    let buf = std::mem::take(buf);
    if buf.capacity() == 0 || buf.capacity() > POOL_MAX_CAPACITY {
        return;
    }
    POOLS.with_borrow_mut(|p| {
        let p = &mut p[pool as usize];
        if p.len() < POOL_SLOTS {
            p.push(buf);
        }
    });
}

/// What feeding ciphertext produced, besides plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlsEvent {
    /// The handshake completed.
    HandshakeDone(Arc<TlsInfo>),
    /// The handshake failed.
    HandshakeFailed(TlsError),
    /// The session failed after the handshake.
    Fatal(TlsError),
    /// The peer sent close_notify: its side is finished.
    PeerClosed,
}

/// The rustls connection of either side.
enum Unbuffered {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

impl Unbuffered {
    fn common(&self) -> &rustls::CommonState {
        match self {
            Unbuffered::Server(c) => c,
            Unbuffered::Client(c) => c,
        }
    }

    /// One `process_tls_records` over `buf`, handled: how many bytes to discard, and whether
    /// to go on.
    fn process(&mut self, buf: &mut [u8], io: &mut Io<'_, '_>) -> (usize, Flow) {
        match self {
            Unbuffered::Server(c) => handle(c.process_tls_records(buf), io),
            Unbuffered::Client(c) => handle(c.process_tls_records(buf), io),
        }
    }

    fn is_server(&self) -> bool {
        matches!(self, Unbuffered::Server(_))
    }
}

/// Where decrypted plaintext goes during one [`TlsSession::drive`].
struct PlainOut<'a> {
    buf: &'a mut [u8],
    filled: usize,
}

/// Ciphertext waiting to be written: `buf[start..end]`. `buf` stays initialised to its whole
/// length (also in the pool), so encrypting into it never zeroes memory first.
#[derive(Default)]
struct OutBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl OutBuf {
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            release(Pool::Write, &mut self.buf);
        }
    }

    /// Appends what `write` puts into a slice of at least `want` bytes, growing the buffer
    /// when `write` reports it needs more.
    fn append_with<E>(
        &mut self,
        mut want: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
        required: impl Fn(&E) -> Option<usize>,
    ) -> Result<usize, E> {
        if self.buf.capacity() == 0 {
            self.buf = pooled(Pool::Write);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            if self.buf.len() < self.end + want {
                self.buf.resize(self.end + want, 0);
            }
            match write(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) => match required(&e) {
                    Some(size) if size > want => want = size,
                    _ => return Err(e),
                },
            }
        }
    }
}

/// Everything one `process_tls_records` result may touch besides the rustls connection.
struct Io<'a, 'b> {
    outgoing: &'a mut OutBuf,
    /// Plaintext that did not fit the caller's buffer (only when there was none).
    stash: &'a mut Vec<u8>,
    plain: Option<&'a mut PlainOut<'b>>,
    source: Option<Source<'a>>,
    /// Most ciphertext `outgoing` may hold before encrypting stops.
    limit: usize,
    want_close_notify: bool,
    close_notify_sent: bool,
    peer_closed: bool,
    error: Option<rustls::Error>,
}

/// Plaintext to encrypt: the connection's send buffer, or a write's bytes taken directly.
enum Source<'a> {
    Sink(&'a mut Sink),
    Slice { bytes: &'a [u8], taken: usize },
}

impl Source<'_> {
    fn next(&self) -> &[u8] {
        match self {
            Source::Sink(sink) => sink.first_slice(),
            Source::Slice { bytes, taken } => &bytes[*taken..],
        }
    }

    fn consume(&mut self, n: usize) {
        match self {
            Source::Sink(sink) => sink.consume(n),
            Source::Slice { taken, .. } => *taken += n,
        }
    }
}

/// What to do after handling one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

fn encode_required(e: &EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

fn encrypt_required(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

/// Continues after `result`, or records it as the session's error (`what` failed) and stops.
fn go_on<T, E: std::fmt::Display>(io: &mut Io<'_, '_>, result: Result<T, E>, what: &str) -> Flow {
    match result {
        Ok(_) => Flow::Continue,
        Err(e) => {
            io.error = Some(rustls::Error::General(format!("{what}: {e}")));
            Flow::Stop
        }
    }
}

/// Handles one result of `process_tls_records`; returns how many bytes of the incoming
/// buffer to discard and whether to go on.
fn handle<Data>(status: UnbufferedStatus<'_, '_, Data>, io: &mut Io<'_, '_>) -> (usize, Flow) {
    let discard = status.discard;
    let state = match status.state {
        Ok(state) => state,
        Err(e) => {
            io.error = Some(e);
            return (discard, Flow::Stop);
        }
    };
    let flow = match state {
        ConnectionState::ReadTraffic(mut traffic) => {
            while let Some(record) = traffic.next_record() {
                let payload = match record {
                    Ok(record) => record.payload,
                    Err(e) => {
                        io.error = Some(e);
                        return (discard, Flow::Stop);
                    }
                };
                match io.plain.as_deref_mut() {
                    Some(out)
                        if io.stash.is_empty() && out.buf.len() - out.filled >= payload.len() =>
                    {
                        out.buf[out.filled..out.filled + payload.len()].copy_from_slice(payload);
                        out.filled += payload.len();
                    }
                    _ => io.stash.extend_from_slice(payload),
                }
            }
            Flow::Continue
        }
        ConnectionState::EncodeTlsData(mut data) => {
            let encoded = io
                .outgoing
                .append_with(1024, |buf| data.encode(buf), encode_required);
            go_on(io, encoded, "encoding a record")
        }
        // The bytes stay in `outgoing` until the adapter writes them; that is our transmit.
        ConnectionState::TransmitTlsData(data) => {
            data.done();
            Flow::Continue
        }
        ConnectionState::WriteTraffic(mut traffic) => {
            let room = io.limit.saturating_sub(io.outgoing.len());
            match io.source.as_mut() {
                Some(source) if !source.next().is_empty() && room > 0 => {
                    let plain = source.next();
                    let take = plain.len().min(ENCRYPT_CHUNK).min(room);
                    let want = take + (take / MAX_PLAINTEXT + 1) * 64;
                    let encrypted = io.outgoing.append_with(
                        want,
                        |buf| traffic.encrypt(&plain[..take], buf),
                        encrypt_required,
                    );
                    if encrypted.is_ok() {
                        source.consume(take);
                    }
                    go_on(io, encrypted, "encrypting")
                }
                _ if io.want_close_notify && !io.close_notify_sent => {
                    io.close_notify_sent = true;
                    let queued = io.outgoing.append_with(
                        64,
                        |buf| traffic.queue_close_notify(buf),
                        encrypt_required,
                    );
                    go_on(io, queued, "close_notify")
                }
                _ => Flow::Stop,
            }
        }
        ConnectionState::PeerClosed => {
            io.peer_closed = true;
            Flow::Continue
        }
        ConnectionState::BlockedHandshake | ConnectionState::Closed => Flow::Stop,
        // Early data is never enabled; anything else is new in rustls and unknown to us.
        _ => {
            io.error = Some(rustls::Error::General("unexpected TLS state".into()));
            Flow::Stop
        }
    };
    (discard, flow)
}

/// Runs rustls over `buf` until it stops (needs input, room, or failed); returns how many
/// bytes at the front of `buf` it is done with (the caller must drop them before the next
/// call over the same bytes).
fn run(conn: &mut Unbuffered, mut buf: &mut [u8], io: &mut Io<'_, '_>) -> usize {
    let mut done = 0;
    loop {
        // A record is decrypted only when its plaintext fits.
        if io
            .plain
            .as_deref()
            .is_some_and(|p| p.buf.len() - p.filled < MAX_PLAINTEXT)
        {
            return done;
        }
        let (discard, flow) = conn.process(buf, io);
        done += discard;
        buf = &mut std::mem::take(&mut buf)[discard..];
        if flow == Flow::Stop || io.error.is_some() {
            return done;
        }
    }
}

/// Runs `f`, containing a panic when `after_close_notify`: rustls 0.23 sends a fatal alert for
/// a record it cannot deframe or decrypt even after our close_notify, and debug-asserts that no
/// alert follows a close_notify (rustls/rustls#959), so in debug builds one bad record from the
/// peer after our `end()`/`shutdown()` would panic the IO loop. Found by the `tls_session` fuzz
/// target. `None` when it panicked: the session then fails.
fn contain<T>(after_close_notify: bool, f: impl FnOnce() -> T) -> Option<T> {
    if after_close_notify {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
    } else {
        Some(f())
    }
}

fn bad_record_after_close_notify() -> rustls::Error {
    rustls::Error::General("the peer sent a bad record after our close_notify".into())
}

/// A TLS session in one of its phases.
pub(crate) struct TlsSession {
    conn: Unbuffered,
    /// Ciphertext not yet processed: an incomplete record (or the records of one handshake
    /// message rustls is joining). Empty, without an allocation, between records.
    incoming: Vec<u8>,
    /// Ciphertext not yet written.
    outgoing: OutBuf,
    /// Decrypted plaintext that arrived when there was nowhere to put it.
    stash: Vec<u8>,
    /// `incoming` holds ciphertext read while the connection was paused, complete records
    /// included: decrypt it before anything read later.
    held: bool,
    /// Client side: the verifier and the name it verifies, to say after the handshake why the
    /// server's certificate was not trusted (with `reject_unauthorized` off).
    verifier: Option<(Arc<RecordingVerifier>, ServerName<'static>)>,
    handshaking: bool,
    /// Failed: write out the pending alert, then close; read nothing more.
    failed: bool,
    want_close_notify: bool,
    close_notify_sent: bool,
    peer_closed: bool,
    /// Reported by `receive` before anything else.
    event: Option<TlsEvent>,
    /// The name the client asked for (server: recorded by the certificate resolver) or
    /// connects to, and the exporter secret (recorded by the key log).
    captured: Captured,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("is_server", &self.conn.is_server())
            .field("handshaking", &self.handshaking)
            .field("failed", &self.failed)
            .finish()
    }
}

/// Where [`TlsSession::drive`] takes ciphertext from.
enum Input<'s, 'a> {
    /// `incoming` (during the handshake, or to finish a record cut off by a read).
    Incoming,
    /// The caller's read buffer, decrypted in place; advanced past what was processed.
    Read(&'s mut &'a mut [u8]),
}

impl TlsSession {
    pub(crate) fn server(tls: &ServerTls) -> Result<Self, TlsError> {
        let conn = UnbufferedServerConnection::new(tls.config.clone())
            .map_err(|e| TlsError::from_rustls(&e))?;
        Ok(Self::new(Unbuffered::Server(conn), None, None))
    }

    pub(crate) fn client(tls: &ClientTls) -> Result<Self, TlsError> {
        let conn = UnbufferedClientConnection::new(tls.config.clone(), tls.server_name.clone())
            .map_err(|e| TlsError::from_rustls(&e))?;
        let sni = Some(tls.server_name.to_str().into_owned());
        let verifier = tls
            .verifier
            .clone()
            .map(|verifier| (verifier, tls.server_name.clone()));
        let mut session = Self::new(Unbuffered::Client(conn), verifier, sni);
        // The ClientHello, ready to be written.
        let _ = session.drive(Input::Incoming, None, None);
        Ok(session)
    }

    fn new(
        conn: Unbuffered,
        verifier: Option<(Arc<RecordingVerifier>, ServerName<'static>)>,
        sni: Option<String>,
    ) -> Self {
        TlsSession {
            conn,
            incoming: Vec::new(),
            outgoing: OutBuf::default(),
            stash: Vec::new(),
            held: false,
            verifier,
            handshaking: true,
            failed: false,
            want_close_notify: false,
            close_notify_sent: false,
            peer_closed: false,
            event: None,
            captured: Captured {
                sni,
                exporter_secret: None,
            },
        }
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.handshaking && !self.failed
    }

    pub(crate) fn is_failed(&self) -> bool {
        self.failed
    }

    /// Whether encrypted bytes wait to be written.
    pub(crate) fn wants_write(&self) -> bool {
        self.outgoing.len() > 0
    }

    /// Encrypted bytes waiting to be written.
    pub(crate) fn pending_ciphertext(&self) -> usize {
        self.outgoing.len()
    }

    pub(crate) fn close_notify_sent(&self) -> bool {
        self.close_notify_sent
    }

    /// Keeps the rest of `input` undecrypted (the connection is paused): it is decrypted,
    /// before anything read later, once `receive` is called again.
    pub(crate) fn hold(&mut self, input: &mut &mut [u8]) {
        if input.is_empty() || self.failed || self.peer_closed {
            return;
        }
        if self.incoming.capacity() == 0 {
            self.incoming = pooled(Pool::Read);
        }
        self.incoming.extend_from_slice(input);
        *input = &mut [];
        self.held = true;
    }

    /// Whether held ciphertext (or plaintext that found no room) waits to be delivered.
    pub(crate) fn holds_input(&self) -> bool {
        (self.held || !self.stash.is_empty()) && !self.failed
    }

    /// Runs rustls over `input` until it needs more (or room): decrypts into `plain`, encrypts
    /// from `sink`, collects records to send into `outgoing`, and turns what happened into
    /// `self.event`.
    fn drive(
        &mut self,
        input: Input<'_, '_>,
        plain: Option<&mut PlainOut<'_>>,
        source: Option<(Source<'_>, usize)>,
    ) -> usize {
        if self.failed {
            return 0;
        }
        let (source, limit) = match source {
            Some((source, limit)) => (Some(source), limit.max(MIN_SENDABLE)),
            None => (None, 0),
        };
        let mut io = Io {
            outgoing: &mut self.outgoing,
            stash: &mut self.stash,
            plain,
            source,
            limit,
            want_close_notify: self.want_close_notify,
            close_notify_sent: self.close_notify_sent,
            peer_closed: false,
            error: None,
        };
        let conn = &mut self.conn;
        let incoming = &mut self.incoming;
        let run = |io: &mut Io<'_, '_>| match input {
            Input::Incoming => {
                let done = run(conn, incoming, io);
                incoming.drain(..done.min(incoming.len()));
            }
            Input::Read(read) => {
                let done = run(conn, read, io);
                let rest = &mut std::mem::take(read)[done..];
                *read = rest;
            }
        };
        if self.handshaking {
            // The configuration's callbacks record this connection's SNI name and secrets.
            capture::during(&mut self.captured, || run(&mut io));
        } else if contain(self.close_notify_sent, || run(&mut io)).is_none() {
            io.error = Some(bad_record_after_close_notify());
        }
        let (close_notify_sent, peer_closed, error) =
            (io.close_notify_sent, io.peer_closed, io.error);
        let taken = match io.source {
            Some(Source::Slice { taken, .. }) => taken,
            _ => 0,
        };
        self.close_notify_sent = close_notify_sent;
        if let Some(e) = error {
            self.on_error(&e);
            return taken;
        }
        if peer_closed && !self.peer_closed {
            self.peer_closed = true;
            if self.handshaking {
                self.on_error(&rustls::Error::HandshakeNotComplete);
                return taken;
            }
            self.event.get_or_insert(TlsEvent::PeerClosed);
        }
        if self.handshaking && !self.conn.common().is_handshaking() {
            self.handshaking = false;
            let info = Arc::new(self.info());
            self.event = Some(TlsEvent::HandshakeDone(info));
        }
        if self.incoming.is_empty() {
            release(Pool::Read, &mut self.incoming);
        }
        taken
    }

    /// The session failed: record the event and collect the alert rustls queued for the peer.
    fn on_error(&mut self, error: &rustls::Error) {
        let error = match error {
            rustls::Error::HandshakeNotComplete => TlsError::ClosedDuringHandshake,
            e => TlsError::from_rustls(e),
        };
        let event = self.failure(error);
        self.event.get_or_insert(event);
        release(Pool::Read, &mut self.stash);
        if self.close_notify_sent {
            // No alert may follow our close_notify (and rustls' state may be mid-panic).
            self.incoming = Vec::new();
            self.failed = true;
            return;
        }
        // rustls queued its alert. Only queued records are taken: another call once the queue
        // is empty would process the offending bytes again.
        let mut io = Io {
            outgoing: &mut self.outgoing,
            stash: &mut self.stash,
            plain: None,
            source: None,
            limit: 0,
            want_close_notify: false,
            close_notify_sent: true,
            peer_closed: false,
            error: None,
        };
        for _ in 0..8 {
            if !self.conn.common().wants_write() {
                break;
            }
            let _ = self.conn.process(&mut [], &mut io);
        }
        self.incoming = Vec::new();
        self.failed = true;
    }

    /// Feeds ciphertext from `input` (advancing it; it is decrypted in place) and decrypts
    /// into `out`; returns the plaintext length and at most one event. Stops when `out` has no
    /// room for another record, `input` is used up, or something happened that the
    /// connection must act on first.
    pub(crate) fn receive(
        &mut self,
        input: &mut &mut [u8],
        out: &mut [u8],
    ) -> (usize, Option<TlsEvent>) {
        let mut plain = PlainOut {
            buf: out,
            filled: 0,
        };
        // Plaintext that had nowhere to go earlier comes first.
        if !self.stash.is_empty() {
            let n = self.stash.len().min(plain.buf.len());
            plain.buf[..n].copy_from_slice(&self.stash[..n]);
            self.stash.drain(..n);
            plain.filled = n;
            if self.stash.is_empty() {
                release(Pool::Read, &mut self.stash);
            } else {
                return (n, None);
            }
        }
        if self.held && self.event.is_none() {
            // What was held while paused: complete records are decrypted now; an incomplete
            // one at the end waits for the next read, as usual.
            let before = self.incoming.len();
            let _ = self.drive(Input::Incoming, Some(&mut plain), None);
            self.held = self.incoming.len() < before && self.record_start() > 0;
        }
        loop {
            if let Some(event) = self.event.take() {
                return (plain.filled, Some(event));
            }
            if self.failed || self.peer_closed {
                // Nothing more is read from a failed or finished session.
                *input = &mut [];
                return (plain.filled, None);
            }
            if input.is_empty() || plain.buf.len() - plain.filled < MAX_PLAINTEXT {
                return (plain.filled, None);
            }
            if self.handshaking || !self.incoming.is_empty() {
                self.take_record(input);
                let _ = self.drive(Input::Incoming, Some(&mut plain), None);
            } else {
                let _ = self.drive(Input::Read(input), Some(&mut plain), None);
                if !input.is_empty()
                    && self.event.is_none()
                    && !self.failed
                    && plain.buf.len() - plain.filled >= MAX_PLAINTEXT
                {
                    // rustls stopped for more input: what is left is an incomplete record
                    // (with any records rustls keeps for joining); it waits in `incoming`.
                    if self.incoming.capacity() == 0 {
                        self.incoming = pooled(Pool::Read);
                    }
                    self.incoming.extend_from_slice(input);
                    *input = &mut [];
                }
            }
        }
    }

    /// Moves the rest of the record being assembled from `input` into `incoming` (its header
    /// first, then as much of its body as `input` has).
    fn take_record(&mut self, input: &mut &mut [u8]) {
        if self.incoming.capacity() == 0 {
            self.incoming = pooled(Pool::Read);
        }
        // rustls may keep complete records at the front (fragments of one handshake message
        // it is joining); only the incomplete one at the end is being assembled.
        let start = self.record_start();
        let header_missing = (start + 5).saturating_sub(self.incoming.len());
        let n = header_missing.min(input.len());
        self.incoming.extend_from_slice(&input[..n]);
        *input = &mut std::mem::take(input)[n..];
        if self.incoming.len() < start + 5 {
            return;
        }
        let len = record_len(&self.incoming[start..]).min(MAX_RECORD);
        let n = (start + len)
            .saturating_sub(self.incoming.len())
            .min(input.len());
        self.incoming.extend_from_slice(&input[..n]);
        *input = &mut std::mem::take(input)[n..];
    }

    /// Where the first incomplete record of `incoming` starts (its length if none is).
    fn record_start(&self) -> usize {
        let mut at = 0;
        while self.incoming.len() - at >= 5 {
            let len = record_len(&self.incoming[at..]);
            if self.incoming.len() - at < len {
                break;
            }
            at += len;
        }
        at
    }

    fn failure(&self, error: TlsError) -> TlsEvent {
        if self.handshaking {
            TlsEvent::HandshakeFailed(error)
        } else {
            TlsEvent::Fatal(error)
        }
    }

    /// Marks the session failed without a TLS error from the peer (timeout, early close).
    pub(crate) fn fail(&mut self) {
        self.failed = true;
        self.incoming = Vec::new();
        release(Pool::Read, &mut self.stash);
    }

    fn info(&self) -> TlsInfo {
        let common = self.conn.common();
        let chain = common.peer_certificates().unwrap_or_default();
        let authorization_error = self
            .verifier
            .as_ref()
            .and_then(|(verifier, name)| verifier.check(chain, name));
        let peer_certificates: Vec<Vec<u8>> = chain.iter().map(|c| c.as_ref().to_vec()).collect();
        let authorized = authorization_error.is_none()
            && (!self.conn.is_server() || !peer_certificates.is_empty());
        TlsInfo {
            alpn_protocol: common.alpn_protocol().map(<[u8]>::to_vec),
            version: common.protocol_version().and_then(TlsVersion::from_rustls),
            cipher_suite: common
                .negotiated_cipher_suite()
                .map(|s| CipherSuite::from_id(s.suite().into())),
            server_name: self.captured.sni.clone(),
            peer_certificates,
            authorized,
            authorization_error,
            session_reused: common.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        }
    }

    /// Keying material exported from the session (RFC 5705, RFC 8446 section 7.5): `len` bytes
    /// for `label` and `context`. TLS 1.3 only (rustls' unbuffered connection has no exporter,
    /// so this derives it from the exporter secret its key log hands over; TLS 1.2's needs the
    /// handshake randoms, which it does not).
    pub(crate) fn export_keying_material(
        &self,
        label: &[u8],
        context: Option<&[u8]>,
        len: usize,
    ) -> Result<Vec<u8>, ExportError> {
        if self.handshaking {
            return Err(ExportError::HandshakeNotDone);
        }
        let suite = match self.conn.common().negotiated_cipher_suite() {
            Some(rustls::SupportedCipherSuite::Tls13(suite)) => suite,
            Some(rustls::SupportedCipherSuite::Tls12(_)) => {
                return Err(ExportError::Unsupported {
                    version: TlsVersion::Tls12,
                })
            }
            None => return Err(ExportError::HandshakeNotDone),
        };
        let secret = self
            .captured
            .exporter_secret
            .as_deref()
            .ok_or(ExportError::HandshakeNotDone)?;
        export_tls13(suite, secret, label, context, len)
    }

    /// Encrypts plaintext from `sink` while less than `limit` bytes of ciphertext wait.
    pub(crate) fn encrypt_from(&mut self, sink: &mut Sink, limit: usize) {
        if !sink.is_empty() && self.outgoing.len() < limit.max(MIN_SENDABLE) {
            let _ = self.drive(Input::Incoming, None, Some((Source::Sink(sink), limit)));
        }
    }

    /// Encrypts a prefix of `bytes` right away, while less than `limit` bytes of ciphertext
    /// wait, and returns its length: a large write skips the send buffer (one copy less).
    /// Only for an established session whose send buffer is empty, so the order of bytes is
    /// kept.
    pub(crate) fn encrypt_direct(&mut self, bytes: &[u8], limit: usize) -> usize {
        if self.is_handshaking()
            || self.failed
            || self.want_close_notify
            || self.outgoing.len() >= limit.max(MIN_SENDABLE)
        {
            return 0;
        }
        self.drive(
            Input::Incoming,
            None,
            Some((Source::Slice { bytes, taken: 0 }, limit)),
        )
    }

    /// Queues close_notify (once).
    pub(crate) fn send_close_notify(&mut self) {
        if !self.want_close_notify && !self.failed {
            self.want_close_notify = true;
            let _ = self.drive(Input::Incoming, None, None);
        }
    }

    /// Writes pending ciphertext through `write`; `Ok(true)` if it would block.
    pub(crate) fn flush(
        &mut self,
        write: &mut dyn FnMut(&[IoSlice<'_>]) -> Option<io::Result<usize>>,
        written: &mut usize,
    ) -> io::Result<bool> {
        while self.outgoing.len() > 0 {
            match write(&[IoSlice::new(self.outgoing.pending())]) {
                None => return Ok(true),
                Some(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Some(Ok(n)) => {
                    self.outgoing.consume(n);
                    *written += n;
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) => return Err(e),
            }
        }
        Ok(false)
    }
}

/// The TLS 1.3 exporter (RFC 8446 section 7.5) of a session with `suite` and exporter master
/// `secret`: Derive-Secret(secret, label, "") expanded with label "exporter" and Hash(context).
fn export_tls13(
    suite: &rustls::Tls13CipherSuite,
    secret: &OkmBlock,
    label: &[u8],
    context: Option<&[u8]>,
    len: usize,
) -> Result<Vec<u8>, ExportError> {
    let hash = suite.common.hash_provider;
    let hkdf = suite.hkdf_provider;
    if len == 0 || len > 255 * hash.output_len() {
        return Err(ExportError::InvalidLength { len });
    }
    let empty_hash = hash.hash(&[]);
    let mut derived = [0u8; OkmBlock::MAX_LEN];
    let derived = &mut derived[..hash.output_len()];
    expand_label(
        &*hkdf.expander_for_okm(secret),
        label,
        empty_hash.as_ref(),
        derived,
    )?;
    let expander = hkdf.expander_for_okm(&OkmBlock::new(derived));
    derived.fill(0);
    let context_hash = hash.hash(context.unwrap_or_default());
    let mut out = vec![0; len];
    expand_label(&*expander, b"exporter", context_hash.as_ref(), &mut out)?;
    Ok(out)
}

/// HKDF-Expand-Label (RFC 8446 section 7.1) into `out`.
fn expand_label(
    expander: &dyn HkdfExpander,
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<(), ExportError> {
    const PREFIX: &[u8] = b"tls13 ";
    let too_long = ExportError::InvalidLength { len: out.len() };
    let length = u16::try_from(out.len()).map_err(|_| too_long.clone())?;
    let label_len = u8::try_from(PREFIX.len() + label.len())
        .map_err(|_| ExportError::InvalidLabel { len: label.len() })?;
    let context_len = u8::try_from(context.len()).map_err(|_| too_long.clone())?;
    let info: [&[u8]; 6] = [
        &length.to_be_bytes(),
        &[label_len],
        PREFIX,
        label,
        &[context_len],
        context,
    ];
    expander.expand_slice(&info, out).map_err(|_| too_long)
}

/// The length of the record whose 5-byte header starts `bytes`.
fn record_len(bytes: &[u8]) -> usize {
    5 + usize::from(u16::from_be_bytes([bytes[3], bytes[4]]))
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use std::io;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConnection};

    use super::*;
    use crate::test_certs::TestPki;
    use crate::tls::ServerTlsOptions;

    fn no_files(_: &std::path::Path) -> io::Result<Vec<u8>> {
        Err(io::ErrorKind::NotFound.into())
    }

    /// Moves records from `from` to `to`, and lets `to` process them with `slot` lent.
    fn pump(from: &mut Connection, to: &mut Connection, slot: &mut Captured) {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire).unwrap();
        }
        let mut wire = &wire[..];
        while !wire.is_empty() {
            to.read_tls(&mut wire).unwrap();
        }
        capture::during(slot, || to.process_new_packets().unwrap());
    }

    /// Our exporter, from the secret our key log captured, equals rustls' own (buffered
    /// connections have one) for every TLS 1.3 suite, label, context and length.
    #[test]
    fn the_tls13_exporter_matches_rustls() {
        let pki = TestPki::generate();
        let server =
            ServerTlsOptions::new(pki.server.key_pem.as_str(), pki.server.cert_pem.as_str())
                .build(&no_files)
                .unwrap();
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let mut tested = 0;
        for suite in rustls::crypto::ring::ALL_CIPHER_SUITES {
            let Some(tls13) = suite.tls13() else { continue };
            let mut provider = rustls::crypto::ring::default_provider();
            provider.cipher_suites = vec![*suite];
            let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.key_log = crate::tls::config::key_log(false);
            let name = ServerName::try_from("localhost").unwrap();
            let mut c = Connection::from(ClientConnection::new(Arc::new(config), name).unwrap());
            let mut s = Connection::from(ServerConnection::new(server.config.clone()).unwrap());
            let (mut cc, mut sc) = (Captured::default(), Captured::default());
            for _ in 0..4 {
                pump(&mut c, &mut s, &mut sc);
                pump(&mut s, &mut c, &mut cc);
            }
            assert!(!c.is_handshaking() && !s.is_handshaking());
            assert_eq!(c.negotiated_cipher_suite(), Some(*suite));
            for (label, context, len) in [
                (&b"EXPORTER-test"[..], None, 32),
                (b"EXPORTER-test", Some(&b""[..]), 32),
                (b"EXPORTER-other", Some(&b"context"[..]), 1),
                (b"", Some(&[7u8; 300][..]), 1000),
            ] {
                let theirs = c
                    .export_keying_material(vec![0; len], label, context)
                    .unwrap();
                for captured in [&cc, &sc] {
                    let secret = captured.exporter_secret.as_deref().unwrap();
                    let ours = export_tls13(tls13, secret, label, context, len).unwrap();
                    assert_eq!(ours, theirs, "{:?} {label:?}", suite.suite());
                }
            }
            tested += 1;
        }
        assert_eq!(tested, 3, "every TLS 1.3 suite");
    }

    /// The server records the SNI name from the certificate resolver, so a ClientHello
    /// fragmented over many records (here 64-byte ones: the name is not in the first) and
    /// read one byte at a time still reports it.
    #[test]
    fn sni_from_a_client_hello_fragmented_over_records() {
        use crate::sim::{sim_write, Pair, PairConfig, Seen, Side, SimHandler};
        use crate::tls::{ClientTls, ClientTlsOptions};

        let pki = TestPki::generate();
        let server =
            ServerTlsOptions::new(pki.server.key_pem.as_str(), pki.server.cert_pem.as_str())
                .sni(
                    "other.test",
                    pki.sni_other.key_pem.as_str(),
                    pki.sni_other.cert_pem.as_str(),
                )
                .build(&no_files)
                .unwrap();
        let client = ClientTlsOptions::new()
            .ca(pki.ca_pem.as_str())
            .build("other.test", &no_files)
            .unwrap();
        let mut config = (*client.config).clone();
        config.max_fragment_size = Some(64);
        let client = ClientTls {
            config: Arc::new(config),
            ..client
        };
        let hello = SimHandler::new(|seen, s| {
            if *seen == Seen::Open {
                sim_write(s, b"hello").unwrap();
            }
        });
        let echo = SimHandler::new(|seen, s| {
            if let Seen::Data(bytes) = seen {
                let _ = sim_write(s, bytes);
            }
        });
        let mut p = Pair::with_tls(PairConfig::default(), Some((server, client)), echo, hello);
        p.read_chunk = 1;
        p.run_for(100_000);
        p.check().unwrap();
        assert_eq!(p.end(Side::Client).log().received, b"hello");
        let info = p.end(Side::Server).handle().tls_info().unwrap();
        assert_eq!(info.server_name.as_deref(), Some("other.test"));
    }
}
