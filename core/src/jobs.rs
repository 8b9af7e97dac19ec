//! Work taken out of a connection so that it runs without it (and without the driver's lock):
//! a [`Transmit`] (the writes and, for TLS, the encryption of one IO-loop turn) and a
//! [`TlsReceive`] (the decryption of what was read).

use std::io::{self, IoSlice};

use crate::sink::Sink;
use crate::tls::session::{TlsEvent, TlsSession};

/// Most slices handed to one vectored write (Linux's `IOV_MAX` is 1024; a few dozen is plenty).
const MAX_IO_SLICES: usize = 64;

/// The send buffer (and TLS session) of a connection while it is being written out; from
/// [`Connection::begin_transmit`](crate::Connection::begin_transmit), back through
/// [`Connection::finish_transmit`](crate::Connection::finish_transmit).
#[derive(Debug)]
pub struct Transmit {
    /// Plain bytes written before a STARTTLS upgrade: they go out as they are, first.
    plain_prefix: Option<Box<Sink>>,
    sink: Sink,
    tls: Option<Box<TlsSession>>,
    /// The connection is flushing toward its FIN: TLS sends close_notify once all is sent.
    flushing: bool,
    outcome: Outcome,
}

/// What [`Transmit::run`] did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) written: usize,
    pub(crate) blocked: bool,
    pub(crate) error: Option<io::Error>,
}

impl Transmit {
    pub(crate) fn new(
        plain_prefix: Option<Box<Sink>>,
        sink: Sink,
        tls: Option<Box<TlsSession>>,
        flushing: bool,
    ) -> Self {
        Transmit {
            plain_prefix,
            sink,
            tls,
            flushing,
            outcome: Outcome::default(),
        }
    }

    /// The plain prefix left (if any), the send buffer, the session and what happened.
    #[allow(clippy::type_complexity)]
    pub(crate) fn into_parts(self) -> (Option<Box<Sink>>, Sink, Option<Box<TlsSession>>, Outcome) {
        (self.plain_prefix, self.sink, self.tls, self.outcome)
    }

    /// Writes through `write` (one vectored write per call; `None` means it would block) until
    /// everything is written, it would block, or it fails: buffered plaintext for TCP;
    /// for TLS, ciphertext, encrypting buffered plaintext first once the handshake is done.
    pub fn run(&mut self, mut write: impl FnMut(&[IoSlice<'_>]) -> Option<io::Result<usize>>) {
        if let Some(prefix) = self.plain_prefix.as_deref_mut() {
            match run_plain(prefix, &mut write, &mut self.outcome.written) {
                Ok(false) => self.plain_prefix = None,
                Ok(true) => {
                    self.outcome.blocked = true;
                    return;
                }
                Err(e) => {
                    self.outcome.error = Some(e);
                    return;
                }
            }
        }
        let result = match self.tls.as_deref_mut() {
            None => run_plain(&mut self.sink, &mut write, &mut self.outcome.written),
            Some(tls) => run_tls(
                tls,
                &mut self.sink,
                self.flushing,
                &mut write,
                &mut self.outcome.written,
            ),
        };
        match result {
            Ok(blocked) => self.outcome.blocked = blocked,
            Err(e) => self.outcome.error = Some(e),
        }
    }
}

fn run_plain(
    sink: &mut Sink,
    write: &mut impl FnMut(&[IoSlice<'_>]) -> Option<io::Result<usize>>,
    written: &mut usize,
) -> io::Result<bool> {
    loop {
        let result = {
            let mut slices = [IoSlice::new(&[]); MAX_IO_SLICES];
            let n = sink.io_slices(&mut slices);
            if n == 0 {
                return Ok(false);
            }
            write(&slices[..n])
        };
        match result {
            None => return Ok(true),
            Some(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Some(Ok(n)) => {
                sink.consume(n);
                *written += n;
            }
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Some(Err(e)) => return Err(e),
        }
    }
}

fn run_tls(
    tls: &mut TlsSession,
    sink: &mut Sink,
    flushing: bool,
    write: &mut dyn FnMut(&[IoSlice<'_>]) -> Option<io::Result<usize>>,
    written: &mut usize,
) -> io::Result<bool> {
    loop {
        if !tls.is_handshaking() && !tls.is_failed() {
            tls.encrypt_from(sink, sink.high_water_mark());
            if flushing && sink.is_empty() {
                tls.send_close_notify();
            }
        }
        if !tls.wants_write() {
            return Ok(false);
        }
        if tls.flush(write, written)? {
            return Ok(true);
        }
        if sink.is_empty() || tls.is_handshaking() || tls.is_failed() {
            return Ok(false);
        }
    }
}

/// A TLS session taken out of its connection to decrypt what was read; from
/// [`Connection::begin_receive_tls`](crate::Connection::begin_receive_tls), back through
/// [`Connection::finish_receive_tls`](crate::Connection::finish_receive_tls).
#[derive(Debug)]
pub struct TlsReceive {
    tls: Box<TlsSession>,
    plaintext: usize,
    event: Option<TlsEvent>,
    /// Call again even if the input is used up (plaintext or an event waits).
    again: bool,
}

impl TlsReceive {
    pub(crate) fn new(tls: Box<TlsSession>) -> Self {
        TlsReceive {
            tls,
            plaintext: 0,
            event: None,
            again: false,
        }
    }

    /// The session, the plaintext length, the event and whether to call again.
    pub(crate) fn into_parts(self) -> (Box<TlsSession>, usize, Option<TlsEvent>, bool) {
        (self.tls, self.plaintext, self.event, self.again)
    }

    /// Feeds ciphertext from `input` (advancing it; records are decrypted in place, so its
    /// contents change) and decrypts into `out`.
    pub fn run(&mut self, input: &mut &mut [u8], out: &mut [u8]) {
        let (n, event) = self.tls.receive(input, out);
        // Decrypted bytes may wait behind an event (a record right after the handshake), and
        // held records behind a full `out`.
        self.again = n == out.len() || event.is_some() || self.tls.holds_input();
        self.plaintext = n;
        self.event = event;
    }
}
