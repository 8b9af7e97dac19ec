//! The adapter's side of a socket: feed inputs, dispatch events to handlers, drain outputs.

use std::any::Any;
use std::io::{self, IoSlice};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;
use std::time::Instant;

use crate::addr::SocketAddrs;
use crate::connection::{CloseAction, Connection, ConnectionConfig, Event};
use crate::error::ConnectError;
use crate::handler::Handler;
use crate::listener::ListenerShared;
use crate::refs::RefCounter;
use crate::socket::{Shared, SharedState, Socket, SocketHandle, SocketOption};
use crate::tls::session::TlsSession;
use crate::tls::{ClientTls, TlsError};

/// Decrypted bytes handed to one `data` call at most.
const PLAINTEXT_BUFFER: usize = 64 * 1024;

thread_local! {
    static PLAINTEXT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What the IO task should wait for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Read when the socket is readable.
    pub read: bool,
    /// Bytes (or a FIN) are waiting to be written.
    pub write: bool,
    /// Call [`Driver::handle_timeout`] at this instant.
    pub deadline: Option<Instant>,
}

/// Owned by a socket's IO task: it holds the user data and runs the handlers.
///
/// One turn of the IO loop (see the crate docs): `handle_timeout(now)`, then reads
/// (`handle_read` / `handle_eof` / `handle_io_error`), then `transmit` and `poll_fin`, then
/// `take_options`; stop when [`close_action`](Self::close_action) is `Some`; otherwise
/// [`register_waker`](Self::register_waker) and wait for [`interest`](Self::interest).
///
/// Dropping a driver whose socket is still open (its task was dropped: the runtime shut down)
/// closes the socket with [`CloseError::RuntimeShutdown`](crate::CloseError::RuntimeShutdown):
/// `close` runs, the listener forgets the socket and its reference is released, so `idle()`
/// cannot hang on a socket no task serves.
pub struct Driver<D: Send + 'static> {
    shared: Arc<Shared<D>>,
    data: D,
    closed: bool,
}

impl<D: Send + 'static> Driver<D> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        handler: Arc<dyn Handler<Data = D>>,
        config: ConnectionConfig,
        addrs: SocketAddrs,
        data: D,
        now: Instant,
        refs: &Arc<RefCounter>,
        listener: Option<(std::sync::Weak<ListenerShared<D>>, u64)>,
        tls: Option<(TlsSession, Duration)>,
    ) -> Self {
        let conn = match tls {
            None => Connection::new(config, now),
            Some((session, timeout)) => Connection::with_tls(config, now, session, timeout),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(SharedState {
                conn,
                handler,
                waker: None,
                options: Vec::new(),
                ref_guard: Some(refs.acquire()),
                corks: 0,
            }),
            addrs,
            listener,
        });
        Driver {
            shared,
            data,
            closed: false,
        }
    }

    /// A client socket that just connected; `Open` is queued (call [`dispatch`](Self::dispatch)).
    pub fn connected(
        handler: Arc<dyn Handler<Data = D>>,
        config: ConnectionConfig,
        addrs: SocketAddrs,
        data: D,
        now: Instant,
        refs: &Arc<RefCounter>,
    ) -> Self {
        Self::from_parts(handler, config, addrs, data, now, refs, None, None)
    }

    /// A client TLS socket that just connected: `Open` is queued and the handshake starts.
    #[allow(clippy::too_many_arguments)]
    pub fn connected_tls(
        handler: Arc<dyn Handler<Data = D>>,
        config: ConnectionConfig,
        addrs: SocketAddrs,
        data: D,
        now: Instant,
        refs: &Arc<RefCounter>,
        tls: &ClientTls,
    ) -> Result<Self, (D, TlsError)> {
        match TlsSession::client(tls) {
            Ok(session) => Ok(Self::from_parts(
                handler,
                config,
                addrs,
                data,
                now,
                refs,
                None,
                Some((session, tls.handshake_timeout())),
            )),
            Err(e) => Err((data, e)),
        }
    }

    /// A handle to this socket.
    pub fn handle(&self) -> SocketHandle<D> {
        SocketHandle {
            shared: self.shared.clone(),
        }
    }

    /// The ref counter this socket is counted in (its context: code run for this socket, such
    /// as a `connect` in a handler, counts there too); `None` once it closed.
    pub fn refs(&self) -> Option<Arc<RefCounter>> {
        let state = self.shared.lock();
        state.ref_guard.as_ref().map(|g| g.counter().clone())
    }

    /// Both ends' addresses.
    pub fn addrs(&self) -> &SocketAddrs {
        &self.shared.addrs
    }

    /// Delivers every queued event to the handlers, in order. Nothing is delivered after
    /// `close`.
    pub fn dispatch(&mut self) {
        while !self.closed {
            let (event, handler) = {
                let mut state = self.shared.lock();
                match state.conn.poll_event() {
                    Some(event) => (event, state.handler.clone()),
                    None => return,
                }
            };
            let h = &*handler;
            let addrs = &self.shared.addrs;
            match &event {
                Event::Open => {
                    tracing::debug!(local = %addrs.local, remote = %addrs.remote, "socket opened")
                }
                Event::Close(error) => {
                    tracing::debug!(remote = %addrs.remote, ?error, "socket closed")
                }
                Event::Handshake {
                    success: true,
                    authorization_error,
                } => {
                    tracing::debug!(remote = %addrs.remote, ?authorization_error, "TLS handshake done")
                }
                Event::Handshake {
                    success: false,
                    authorization_error,
                } => {
                    tracing::info!(remote = %addrs.remote, ?authorization_error, "TLS handshake failed")
                }
                Event::Error(error) => {
                    tracing::warn!(remote = %addrs.remote, %error, "socket error")
                }
                Event::Drain => tracing::trace!(remote = %addrs.remote, "drained: writable again"),
                _ => {}
            }
            match event {
                Event::Open => self.call("open", |s| h.open(s)),
                Event::Drain => self.call("drain", |s| h.drain(s)),
                Event::End => self.call("end", |s| h.end(s)),
                Event::Timeout => self.call("timeout", |s| h.timeout(s)),
                Event::Handshake {
                    success,
                    authorization_error,
                } => self.call("handshake", |s| {
                    h.handshake(s, success, authorization_error.as_ref())
                }),
                Event::Error(e) => self.call("error", |s| h.error(s, &e)),
                Event::Close(e) => {
                    self.closed = true;
                    self.call("close", |s| h.close(s, e.as_ref()));
                    self.detach();
                }
            }
        }
    }

    /// Runs one handler, catching a panic: the socket then gets `error` and `close`.
    fn call(&mut self, name: &'static str, f: impl FnOnce(&mut Socket<'_, D>)) {
        let mut socket = Socket {
            shared: &self.shared,
            data: &mut self.data,
        };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(&mut socket))) {
            let message = panic_message(payload.as_ref());
            tracing::warn!(handler = name, %message, "socket handler panicked; closing socket");
            self.shared.lock().conn.handle_panic(name, message);
        }
    }

    /// After `close`: leave the listener's registry and drop the ref.
    fn detach(&mut self) {
        if let Some((listener, id)) = &self.shared.listener {
            if let Some(listener) = listener.upgrade() {
                listener.remove(*id);
            }
        }
        let mut state = self.shared.lock();
        state.ref_guard = None;
        state.waker = None;
    }

    /// Bytes were read at `now`: dispatches pending events, then `data` with `bytes` (for TLS,
    /// with the plaintext they decrypt to, in batches). TLS records are decrypted in place, so
    /// the contents of `bytes` are unspecified afterwards.
    pub fn handle_read(&mut self, now: Instant, bytes: &mut [u8]) {
        self.dispatch();
        if self.shared.lock().conn.is_tls() {
            return self.handle_ciphertext(now, bytes);
        }
        let (deliver, handler) = {
            let mut state = self.shared.lock();
            (
                state.conn.handle_read(now, bytes.len()),
                state.handler.clone(),
            )
        };
        if deliver {
            self.call("data", |s| handler.data(s, bytes));
        }
        self.dispatch();
    }

    fn handle_ciphertext(&mut self, now: Instant, mut input: &mut [u8]) {
        // The plaintext buffer is shared by the thread's sockets, like the adapter's read buffer.
        let mut out = PLAINTEXT.with_borrow_mut(std::mem::take);
        if out.is_empty() {
            out = vec![0; PLAINTEXT_BUFFER];
        }
        loop {
            // Decryption runs without the lock, so writers on other threads do not wait on it.
            let job = self.shared.lock().conn.begin_receive_tls(now, &mut input);
            let (n, again, handler) = {
                let finished = job.map(|mut job| {
                    job.run(&mut input, &mut out);
                    job
                });
                let mut state = self.shared.lock();
                let (n, again) = match finished {
                    Some(job) => state.conn.finish_receive_tls(now, job),
                    None => (0, false),
                };
                (n, again, state.handler.clone())
            };
            // Events first when nothing was decrypted (the handshake precedes its data);
            // otherwise the bytes, then what followed them (end, error).
            if n == 0 {
                self.dispatch();
            } else {
                self.call("data", |s| handler.data(s, &out[..n]));
                self.dispatch();
            }
            if self.closed || (input.is_empty() && !again) {
                break;
            }
        }
        PLAINTEXT.with_borrow_mut(|slot| *slot = out);
    }

    /// A read returned end of stream (the peer's FIN).
    pub fn handle_eof(&mut self, now: Instant) {
        self.shared.lock().conn.handle_eof(now);
        self.dispatch();
    }

    /// A read, write or shutdown failed.
    pub fn handle_io_error(&mut self, now: Instant, error: &io::Error) {
        self.shared.lock().conn.handle_io_error(now, error);
        self.dispatch();
    }

    /// Fires due timers; call at every wake-up with the current time. Also delivers TLS data
    /// held back while the socket was paused, once it is resumed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let held = {
            let mut state = self.shared.lock();
            state.conn.handle_timeout(now);
            state.conn.has_held_input()
        };
        self.dispatch();
        if held && !self.closed {
            self.handle_ciphertext(now, &mut []);
        }
    }

    /// Writes buffered bytes with `write`, one vectored write at a time, until everything is
    /// written or `write` returns `None` (would block). Returns true if it would block.
    /// Dispatches the events that result (`drain`, `close` on error).
    pub fn transmit(
        &mut self,
        now: Instant,
        mut write: impl FnMut(&[IoSlice<'_>]) -> Option<io::Result<usize>>,
    ) -> bool {
        let job = {
            let mut state = self.shared.lock();
            // Inside a `SocketHandle::cork` scope nothing is written; the scope's end wakes us.
            if state.corks > 0 {
                return false;
            }
            state.conn.begin_transmit()
        };
        let Some(mut job) = job else {
            self.dispatch();
            return false;
        };
        // The syscalls and the encryption run without the lock: handles on other threads keep
        // writing (into a fresh buffer, put behind this one when the job is finished).
        job.run(&mut write);
        let blocked = self.shared.lock().conn.finish_transmit(now, job);
        self.dispatch();
        blocked
    }

    /// Returns true once, when the adapter must shut down the write side (send FIN) now.
    pub fn poll_fin(&mut self, now: Instant) -> bool {
        let fin = self.shared.lock().conn.poll_fin(now);
        self.dispatch();
        fin
    }

    /// Socket options requested since the last call, for the adapter to apply.
    pub fn take_options(&mut self) -> Vec<SocketOption> {
        let mut state = self.shared.lock();
        if state.options.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut state.options)
        }
    }

    /// What to wait for next.
    pub fn interest(&self) -> Interest {
        let state = self.shared.lock();
        Interest {
            read: state.conn.wants_read(),
            write: state.conn.wants_write() && state.corks == 0,
            deadline: state.conn.poll_timeout(),
        }
    }

    /// `Some` once the socket is closed and `close` has been dispatched: drop the OS socket
    /// (after `SO_LINGER` 0 for [`CloseAction::Reset`]) and end the task.
    pub fn close_action(&self) -> Option<CloseAction> {
        if !self.closed {
            return None;
        }
        self.shared.lock().conn.close_action()
    }

    /// Stores the waker that handles (and listener `stop`) wake when they need the task.
    pub fn register_waker(&self, waker: &Waker) {
        let mut state = self.shared.lock();
        match &state.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => state.waker = Some(waker.clone()),
        }
    }

    /// The user data.
    pub fn data(&self) -> &D {
        &self.data
    }
}

impl<D: Send + 'static> Drop for Driver<D> {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // The task serving this socket is gone without the socket closing: close it here, so
        // `close` runs exactly once and the listener and ref count let go of it.
        tracing::debug!(remote = %self.shared.addrs.remote, "socket task dropped while open");
        self.shared.lock().conn.handle_task_dropped();
        self.dispatch();
    }
}

/// Reports a failed client connect to `connect_error` (never `open`/`close`), catching a
/// panic in the handler.
pub fn report_connect_error<D: Send + 'static>(
    handler: &dyn Handler<Data = D>,
    data: &mut D,
    error: &ConnectError,
) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| handler.connect_error(data, error))) {
        let message = panic_message(payload.as_ref());
        tracing::warn!(%message, "connect_error handler panicked");
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
