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
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};

use super::config::{ClientTls, ServerTls};
use super::error::TlsError;
use super::verify::RecordingVerifier;
use super::TlsInfo;
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
    verifier: Option<Arc<RecordingVerifier>>,
    handshaking: bool,
    /// Failed: write out the pending alert, then close; read nothing more.
    failed: bool,
    want_close_notify: bool,
    close_notify_sent: bool,
    peer_closed: bool,
    /// Reported by `receive` before anything else.
    event: Option<TlsEvent>,
    /// The name the client asked for (server: read from its ClientHello) or connects to.
    sni: Option<String>,
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
        let mut session = Self::new(Unbuffered::Client(conn), Some(tls.verifier.clone()), sni);
        // The ClientHello, ready to be written.
        let _ = session.drive(Input::Incoming, None, None);
        Ok(session)
    }

    fn new(
        conn: Unbuffered,
        verifier: Option<Arc<RecordingVerifier>>,
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
            sni,
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
        match input {
            Input::Incoming => {
                let done = run(&mut self.conn, &mut self.incoming, &mut io);
                self.incoming.drain(..done.min(self.incoming.len()));
            }
            Input::Read(read) => {
                let done = run(&mut self.conn, read, &mut io);
                let rest = &mut std::mem::take(read)[done..];
                *read = rest;
            }
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
        if self.conn.is_server() && self.handshaking && start == 0 && self.sni.is_none() {
            // A client's first record is its ClientHello.
            self.sni = client_hello_sni(&self.incoming);
        }
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
        let authorization_error = self.verifier.as_ref().and_then(|v| v.take_recorded());
        let peer_certificates: Vec<Vec<u8>> = common
            .peer_certificates()
            .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
            .unwrap_or_default();
        let authorized = authorization_error.is_none()
            && (!self.conn.is_server() || !peer_certificates.is_empty());
        TlsInfo {
            alpn_protocol: common.alpn_protocol().map(<[u8]>::to_vec),
            version: common.protocol_version().map(|v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
                other => format!("{other:?}"),
            }),
            cipher_suite: common
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite())),
            server_name: self.sni.clone(),
            peer_certificates,
            authorized,
            authorization_error,
        }
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

/// The length of the record whose 5-byte header starts `bytes`.
fn record_len(bytes: &[u8]) -> usize {
    5 + usize::from(u16::from_be_bytes([bytes[3], bytes[4]]))
}

/// The host name in a ClientHello's server_name extension, from the first handshake record
/// (`None` when absent, malformed, or not a valid DNS name; rustls ignores those too).
fn client_hello_sni(record: &[u8]) -> Option<String> {
    let mut r = Reader(record);
    // Record header: handshake (22), version, length.
    if r.u8()? != 22 {
        return None;
    }
    r.skip(4)?;
    // Handshake header: client_hello (1), 24-bit length.
    if r.u8()? != 1 {
        return None;
    }
    r.skip(3)?;
    r.skip(2 + 32)?; // legacy_version, random
    let n = usize::from(r.u8()?);
    r.skip(n)?; // session id
    let n = r.u16()?;
    r.skip(n)?; // cipher suites
    let n = usize::from(r.u8()?);
    r.skip(n)?; // compression methods
    let mut extensions = Reader(r.prefixed()?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let body = extensions.prefixed()?;
        if kind != 0 {
            continue;
        }
        let mut list = Reader(body);
        let mut names = Reader(list.prefixed()?);
        while !names.0.is_empty() {
            let name_type = names.u8()?;
            let name = names.prefixed()?;
            if name_type == 0 {
                let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
                return rustls::pki_types::DnsName::try_from(name.as_str())
                    .is_ok()
                    .then_some(name);
            }
        }
        return None;
    }
    None
}

/// A bounds-checked cursor over bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    /// A field with a 16-bit length prefix.
    fn prefixed(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::client_hello_sni;

    #[test]
    fn sni_parser_rejects_truncated_and_foreign_input() {
        assert_eq!(client_hello_sni(b""), None);
        assert_eq!(client_hello_sni(b"GET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(client_hello_sni(&[22, 3, 1, 0, 10, 1, 0, 0]), None);
    }
}
