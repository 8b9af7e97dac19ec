//! One connection's rustls state, fed ciphertext from memory and drained into memory.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use super::config::{ClientTls, ServerTls};
use super::error::TlsError;
use super::verify::RecordingVerifier;
use super::TlsInfo;
use crate::sink::Sink;

/// Ciphertext rustls may hold before the core stops handing it plaintext: enough for several
/// full records per vectored write, small enough to keep memory per socket bounded.
const SENDABLE_LIMIT: usize = 64 * 1024;

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

/// A TLS session in one of its phases.
pub(crate) struct TlsSession {
    conn: rustls::Connection,
    verifier: Option<Arc<RecordingVerifier>>,
    is_server: bool,
    handshaking: bool,
    /// Failed: write out the pending alert, then close; read nothing more.
    failed: bool,
    close_notify_sent: bool,
    peer_closed: bool,
    sni: Option<String>,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("is_server", &self.is_server)
            .field("handshaking", &self.handshaking)
            .field("failed", &self.failed)
            .finish()
    }
}

impl TlsSession {
    pub(crate) fn server(tls: &ServerTls) -> Result<Self, TlsError> {
        let conn = rustls::ServerConnection::new(tls.config.clone())
            .map_err(|e| TlsError::from_rustls(&e))?;
        Ok(Self::new(conn.into(), None, true, None))
    }

    pub(crate) fn client(tls: &ClientTls) -> Result<Self, TlsError> {
        let conn = rustls::ClientConnection::new(tls.config.clone(), tls.server_name.clone())
            .map_err(|e| TlsError::from_rustls(&e))?;
        let sni = Some(tls.server_name.to_str().into_owned());
        Ok(Self::new(
            conn.into(),
            Some(tls.verifier.clone()),
            false,
            sni,
        ))
    }

    fn new(
        mut conn: rustls::Connection,
        verifier: Option<Arc<RecordingVerifier>>,
        is_server: bool,
        sni: Option<String>,
    ) -> Self {
        conn.set_buffer_limit(Some(SENDABLE_LIMIT));
        TlsSession {
            conn,
            verifier,
            is_server,
            handshaking: true,
            failed: false,
            close_notify_sent: false,
            peer_closed: false,
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
        self.conn.wants_write()
    }

    pub(crate) fn close_notify_sent(&self) -> bool {
        self.close_notify_sent
    }

    /// Feeds ciphertext from `input` (advancing it) and decrypts into `out`; returns the
    /// plaintext length and at most one event. Stops when `out` is full, `input` is used up,
    /// or something happened that the connection must act on first.
    pub(crate) fn receive(
        &mut self,
        input: &mut &[u8],
        out: &mut [u8],
    ) -> (usize, Option<TlsEvent>) {
        let mut filled = 0;
        loop {
            if self.failed || self.peer_closed {
                // Nothing more is read from a failed or finished session.
                *input = &[];
                return (filled, None);
            }
            // Drain decrypted bytes first: rustls refuses input while its plaintext is full.
            match self.conn.reader().read(&mut out[filled..]) {
                Ok(0) if filled < out.len() => {
                    self.peer_closed = true;
                    return (filled, Some(TlsEvent::PeerClosed));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {}
            }
            if filled == out.len() || input.is_empty() {
                return (filled, None);
            }
            match self.conn.read_tls(input) {
                Ok(_) => {}
                Err(e) => {
                    self.failed = true;
                    let error = TlsError::Protocol(e.to_string());
                    return (filled, Some(self.failure(error)));
                }
            }
            if let Err(e) = self.conn.process_new_packets() {
                self.failed = true;
                let error = TlsError::from_rustls(&e);
                return (filled, Some(self.failure(error)));
            }
            if self.handshaking && !self.conn.is_handshaking() {
                self.handshaking = false;
                return (filled, Some(TlsEvent::HandshakeDone(Arc::new(self.info()))));
            }
        }
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
    }

    fn info(&self) -> TlsInfo {
        let authorization_error = self.verifier.as_ref().and_then(|v| v.take_recorded());
        let peer_certificates: Vec<Vec<u8>> = self
            .conn
            .peer_certificates()
            .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
            .unwrap_or_default();
        let authorized =
            authorization_error.is_none() && (!self.is_server || !peer_certificates.is_empty());
        let server_name = match &self.conn {
            rustls::Connection::Server(s) => s.server_name().map(str::to_owned),
            rustls::Connection::Client(_) => self.sni.clone(),
        };
        TlsInfo {
            alpn_protocol: self.conn.alpn_protocol().map(<[u8]>::to_vec),
            version: self.conn.protocol_version().map(|v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
                other => format!("{other:?}"),
            }),
            cipher_suite: self
                .conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite())),
            server_name,
            peer_certificates,
            authorized,
            authorization_error,
        }
    }

    /// Moves plaintext from `sink` into rustls, as much as its ciphertext limit allows.
    pub(crate) fn encrypt_from(&mut self, sink: &mut Sink) {
        while !sink.is_empty() {
            // Zero (or an error) means rustls holds its limit of ciphertext: flush first.
            let n = self
                .conn
                .writer()
                .write(sink.first_slice())
                .unwrap_or_default();
            if n == 0 {
                return;
            }
            sink.consume(n);
        }
    }

    /// Queues close_notify (once).
    pub(crate) fn send_close_notify(&mut self) {
        if !self.close_notify_sent && !self.failed {
            self.close_notify_sent = true;
            self.conn.send_close_notify();
        }
    }

    /// Writes pending ciphertext through `write`; `Ok(true)` if it would block.
    pub(crate) fn flush(
        &mut self,
        write: &mut dyn FnMut(&[IoSlice<'_>]) -> Option<io::Result<usize>>,
        written: &mut usize,
    ) -> io::Result<bool> {
        let mut sink = WriteThrough { write, written };
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut sink) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

/// An `io::Write` over the adapter's vectored write, so rustls writes straight to the socket.
struct WriteThrough<'a, 'b> {
    write: &'a mut dyn FnMut(&[IoSlice<'_>]) -> Option<io::Result<usize>>,
    written: &'b mut usize,
}

impl Write for WriteThrough<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match (self.write)(bufs) {
            None => Err(io::ErrorKind::WouldBlock.into()),
            Some(Ok(0)) => Err(io::ErrorKind::WriteZero.into()),
            Some(Ok(n)) => {
                *self.written += n;
                Ok(n)
            }
            Some(Err(e)) => Err(e),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
