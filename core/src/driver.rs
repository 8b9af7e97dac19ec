//! The adapter's side of a socket: feed inputs, dispatch events to handlers, drain outputs.

use std::any::Any;
use std::io::{self, IoSlice};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Instant;

use crate::addr::SocketAddrs;
use crate::connection::{CloseAction, Connection, ConnectionConfig, Event};
use crate::error::ConnectError;
use crate::handler::Handler;
use crate::listener::ListenerShared;
use crate::refs::RefCounter;
use crate::socket::{Shared, SharedState, Socket, SocketHandle, SocketOption};

/// Most slices handed to one vectored write (Linux's `IOV_MAX` is 1024; a few dozen is plenty).
const MAX_IO_SLICES: usize = 64;

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
pub struct Driver<D> {
    shared: Arc<Shared<D>>,
    data: D,
    closed: bool,
}

impl<D: Send + 'static> Driver<D> {
    pub(crate) fn from_parts(
        handler: Arc<dyn Handler<Data = D>>,
        config: ConnectionConfig,
        addrs: SocketAddrs,
        data: D,
        now: Instant,
        refs: &'static RefCounter,
        listener: Option<(std::sync::Weak<ListenerShared<D>>, u64)>,
    ) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(SharedState {
                conn: Connection::new(config, now),
                handler,
                waker: None,
                options: Vec::new(),
                ref_guard: Some(refs.acquire()),
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
        refs: &'static RefCounter,
    ) -> Self {
        Self::from_parts(handler, config, addrs, data, now, refs, None)
    }

    /// A handle to this socket.
    pub fn handle(&self) -> SocketHandle<D> {
        SocketHandle {
            shared: self.shared.clone(),
        }
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
            match event {
                Event::Open => self.call("open", |s| h.open(s)),
                Event::Drain => self.call("drain", |s| h.drain(s)),
                Event::End => self.call("end", |s| h.end(s)),
                Event::Timeout => self.call("timeout", |s| h.timeout(s)),
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

    /// Bytes were read at `now`: dispatches pending events, then `data` with `bytes`.
    pub fn handle_read(&mut self, now: Instant, bytes: &[u8]) {
        self.dispatch();
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

    /// Fires due timers; call at every wake-up with the current time.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.shared.lock().conn.handle_timeout(now);
        self.dispatch();
    }

    /// Writes buffered bytes with `write`, one vectored write at a time, until everything is
    /// written or `write` returns `None` (would block). Returns true if it would block.
    /// Dispatches the events that result (`drain`, `close` on error).
    pub fn transmit(
        &mut self,
        now: Instant,
        mut write: impl FnMut(&[IoSlice<'_>]) -> Option<io::Result<usize>>,
    ) -> bool {
        let blocked = {
            let mut state = self.shared.lock();
            loop {
                let result = {
                    let mut slices = [IoSlice::new(&[]); MAX_IO_SLICES];
                    let n = state.conn.io_slices(&mut slices);
                    if n == 0 {
                        break false;
                    }
                    write(&slices[..n])
                };
                match result {
                    None => break true,
                    Some(Ok(0)) => {
                        let e = io::Error::from(io::ErrorKind::WriteZero);
                        state.conn.handle_io_error(now, &e);
                        break false;
                    }
                    Some(Ok(n)) => state.conn.handle_written(now, n),
                    Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Some(Err(e)) => {
                        state.conn.handle_io_error(now, &e);
                        break false;
                    }
                }
            }
        };
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
            write: state.conn.wants_write(),
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
