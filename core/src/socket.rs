//! The socket as handlers and handles see it, and the state they share with the IO task.
//!
//! The connection sits behind one mutex that is only ever held for the length of a single
//! operation, never while a handler runs. A handler of one socket can therefore write to any
//! other socket (a chat broadcast) without lock-order deadlocks.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;

use crate::addr::SocketAddrs;
use crate::connection::{Connection, WriteStatus};
use crate::error::WriteError;
use crate::handler::Handler;
use crate::listener::ListenerShared;
use crate::refs::RefGuard;

/// A socket option the IO task applies to the OS socket (the core cannot touch it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketOption {
    /// `TCP_NODELAY`.
    NoDelay(bool),
    /// `SO_KEEPALIVE`, with the idle time before the first probe when enabled.
    KeepAlive(Option<Duration>),
}

pub(crate) struct SharedState<D> {
    pub(crate) conn: Connection,
    pub(crate) handler: Arc<dyn Handler<Data = D>>,
    /// The IO task's waker, woken when a handle changes something the task must act on.
    pub(crate) waker: Option<Waker>,
    pub(crate) options: Vec<SocketOption>,
    pub(crate) ref_guard: Option<RefGuard>,
    /// Open [`SocketHandle::cork`] scopes: the IO task writes nothing while any is open.
    pub(crate) corks: usize,
}

/// What a socket's handles, handlers and IO task share.
pub(crate) struct Shared<D> {
    pub(crate) state: Mutex<SharedState<D>>,
    pub(crate) addrs: SocketAddrs,
    /// The listener that accepted this socket, and its id there.
    pub(crate) listener: Option<(Weak<ListenerShared<D>>, u64)>,
}

impl<D> Shared<D> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SharedState<D>> {
        // No code panics while holding this lock, but be robust if it ever does.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `op` on the state, then wakes the IO task if asked (writes from outside a dispatch
    /// must be flushed by it).
    fn with<R>(&self, wake: bool, op: impl FnOnce(&mut SharedState<D>) -> R) -> R {
        let mut state = self.lock();
        let r = op(&mut state);
        let waker = if wake { state.waker.clone() } else { None };
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
        r
    }
}

/// The operations common to [`Socket`] and [`SocketHandle`]; `WAKE` says whether the IO task
/// must be woken to act (it need not be from inside its own handlers: it flushes after them).
macro_rules! socket_ops {
    ($wake:expr) => {
        /// Takes every byte of `data` for sending and says whether the send buffer is now at or
        /// above the high-water mark ([`WriteStatus::Backpressured`]: stop producing until
        /// `drain`, for example with [`pause_until_drain`](Self::pause_until_drain)). Ignoring
        /// the status loses nothing. Every write made during one dispatch goes out in one
        /// vectored write.
        ///
        /// Errors (nothing of `data` is taken): the socket [`Ended`](WriteError::Ended) or
        /// [`Closed`](WriteError::Closed), or taking `data` would put more than `max_buffered`
        /// bytes in the buffer ([`BufferLimit`](WriteError::BufferLimit)): the socket then
        /// closes, `error` and `close` say why, and the peer sees a reset.
        pub fn write(&self, data: &[u8]) -> Result<WriteStatus, WriteError> {
            self.log_refused(self.shared().with($wake, |s| s.conn.write(data)))
        }

        /// Like [`write`](Self::write) for an owned buffer: large chunks are queued without a
        /// copy.
        pub fn write_bytes(&self, data: Bytes) -> Result<WriteStatus, WriteError> {
            self.log_refused(self.shared().with($wake, |s| s.conn.write_bytes(data)))
        }

        /// Bun's `write`: takes as much of `data` as fits under the high-water mark and returns
        /// how much (`Ok(0)` when full). Keep the rest yourself and write it on `drain`, which
        /// a short count arms. For callers that manage their own queue; most code wants
        /// [`write`](Self::write).
        pub fn try_write(&self, data: &[u8]) -> Result<usize, WriteError> {
            self.log_refused(self.shared().with($wake, |s| s.conn.try_write(data)))
        }

        /// Writes all of `data` (as [`write`](Self::write)), then [`end`](Self::end)s. The
        /// socket ends even when the write is refused.
        pub fn end_with(&self, data: &[u8]) -> Result<(), WriteError> {
            let written = self.shared().with($wake, |s| {
                // End even when the write is refused (already ended, say): `end` must still
                // arm the linger. Found by the `connection` fuzz target.
                let written = s.conn.write(data);
                s.conn.end();
                written
            });
            self.log_refused(written).map(|_| ())
        }

        /// A refused write is logged (at debug: the caller has the typed error too), so code
        /// that drops the result still leaves a trace of the bytes that went nowhere.
        fn log_refused<T>(&self, r: Result<T, WriteError>) -> Result<T, WriteError> {
            if let Err(e @ (WriteError::Ended | WriteError::Closed)) = &r {
                tracing::debug!(remote = %self.shared().addrs.remote, error = %e, "write refused");
            }
            r
        }

        /// Asks for a `drain` once everything buffered is written (at the next flush if nothing
        /// is buffered): a flush that waits until the OS took every byte.
        pub fn request_drain(&self) {
            self.shared().with(true, |s| s.conn.request_drain())
        }

        /// Stops delivering `data` until `drain` fires (reading resumes by itself just before
        /// it): what to do when [`write`](Self::write) returns
        /// [`WriteStatus::Backpressured`]. `drain` fires once everything buffered is written
        /// (at the next flush if nothing is).
        pub fn pause_until_drain(&self) {
            self.shared().with($wake, |s| s.conn.pause_until_drain())
        }

        /// Graceful end: every accepted byte is flushed, then FIN; incoming data is still
        /// delivered until the peer's FIN (bounded by the end linger), then the socket closes.
        /// Unlike Bun, nothing accepted is dropped.
        pub fn end(&self) {
            self.shared().with($wake, |s| s.conn.end())
        }

        /// Half-close: flush, send FIN, keep reading until the peer's FIN.
        pub fn shutdown(&self) {
            self.shared().with($wake, |s| s.conn.shutdown())
        }

        /// Flush, send FIN and close without waiting for the peer.
        pub fn close(&self) {
            self.shared().with($wake, |s| s.conn.close())
        }

        /// Reset the connection now (`SO_LINGER` 0); buffered bytes are dropped.
        pub fn terminate(&self) {
            self.shared().with($wake, |s| s.conn.terminate())
        }

        /// Stop delivering `data` until [`resume`](Self::resume).
        pub fn pause(&self) {
            self.shared().with($wake, |s| s.conn.pause())
        }

        /// Resume delivering `data`.
        pub fn resume(&self) {
            self.shared().with($wake, |s| s.conn.resume())
        }

        /// Arms the idle timeout (zero disarms): `timeout` fires once after `duration` with no
        /// reads or writes, and the socket stays open.
        pub fn set_timeout(&self, duration: Duration) {
            self.shared().with($wake, |s| s.conn.set_timeout(duration))
        }

        /// Asks the IO task to write what is buffered now. Inside handlers this is implied:
        /// the task flushes once the dispatch returns.
        pub fn flush(&self) {
            self.shared().with(true, |_| ())
        }

        /// Replaces this socket's handlers; the next event goes to `handler`.
        pub fn reload(&self, handler: Arc<dyn Handler<Data = D>>) {
            self.shared().with(false, |s| s.handler = handler)
        }

        /// Sets `TCP_NODELAY` (on by default: sansock coalesces writes itself). Applied by the
        /// IO task; a no-op on Unix sockets.
        pub fn set_nodelay(&self, nodelay: bool) {
            self.shared().with(true, |s| {
                s.options
                    .push(crate::socket::SocketOption::NoDelay(nodelay))
            })
        }

        /// Enables TCP keep-alive with the given idle time before the first probe, or disables
        /// it with `None`. Applied by the IO task.
        pub fn set_keepalive(&self, idle: Option<Duration>) {
            self.shared().with(true, |s| {
                s.options.push(crate::socket::SocketOption::KeepAlive(idle))
            })
        }

        /// `ref()` (`true`): this socket keeps [`idle`](crate::RefCounter::idle) waiting while
        /// open; `unref()` (`false`) opts out.
        pub fn set_ref(&self, referenced: bool) {
            self.shared().with(false, |s| {
                if let Some(g) = s.ref_guard.as_mut() {
                    g.set_ref(referenced)
                }
            })
        }

        /// Bytes accepted and not yet written to the OS.
        pub fn buffered_amount(&self) -> usize {
            self.shared().lock().conn.buffered_amount()
        }

        /// Total bytes accepted by writes (Bun's `bytesWritten`).
        pub fn bytes_written(&self) -> u64 {
            self.shared().lock().conn.bytes_accepted()
        }

        /// Whether the socket is closed.
        pub fn is_closed(&self) -> bool {
            self.shared().lock().conn.is_closed()
        }

        /// What the TLS handshake negotiated (ALPN, version, cipher suite, SNI name, peer
        /// certificates); `None` for plain TCP or before the handshake completes.
        pub fn tls_info(&self) -> Option<std::sync::Arc<crate::tls::TlsInfo>> {
            self.shared().lock().conn.tls_info().cloned()
        }

        /// `len` bytes of keying material exported from the TLS session for `label` and
        /// `context` (RFC 5705 / RFC 8446 section 7.5 exporters; Bun's `exportKeyingMaterial`):
        /// both ends get the same bytes, for binding an application protocol to this session.
        /// After the handshake, and from TLS 1.3 sessions only ([`ExportError::Unsupported`]
        /// over TLS 1.2). With TLS 1.3 no context and an empty one give the same bytes.
        ///
        /// [`ExportError::Unsupported`]: crate::tls::ExportError::Unsupported
        pub fn export_keying_material(
            &self,
            label: &[u8],
            context: Option<&[u8]>,
            len: usize,
        ) -> Result<Vec<u8>, crate::tls::ExportError> {
            self.shared()
                .lock()
                .conn
                .export_keying_material(label, context, len)
        }

        /// Whether writes are still accepted (not ended, not closed).
        pub fn is_writable(&self) -> bool {
            self.shared().lock().conn.may_send()
        }

        /// Our address.
        pub fn local_addr(&self) -> &crate::Addr {
            &self.shared().addrs.local
        }

        /// The peer's address.
        pub fn remote_addr(&self) -> &crate::Addr {
            &self.shared().addrs.remote
        }
    };
}

/// The socket as a handler sees it: the operations of [`SocketHandle`] plus the typed user
/// data.
pub struct Socket<'a, D> {
    pub(crate) shared: &'a Arc<Shared<D>>,
    pub(crate) data: &'a mut D,
}

impl<D: Send + 'static> Socket<'_, D> {
    fn shared(&self) -> &Shared<D> {
        self.shared
    }

    socket_ops!(false);

    /// The socket's user data.
    pub fn data(&self) -> &D {
        self.data
    }

    /// The socket's user data, mutably.
    pub fn data_mut(&mut self) -> &mut D {
        self.data
    }

    /// Replaces the user data, returning the old value.
    pub fn set_data(&mut self, data: D) -> D {
        std::mem::replace(self.data, data)
    }

    /// The user data and the socket's operations at once, so a handler can update its state
    /// while writing (`data_mut` and `write` together do not borrow-check):
    ///
    /// ```
    /// # use sansock_core::{Handler, Socket};
    /// struct Counter;
    /// impl Handler for Counter {
    ///     type Data = u64; // lines seen
    ///     fn data(&self, socket: &mut Socket<'_, u64>, bytes: &[u8]) {
    ///         let (lines, out) = socket.parts();
    ///         for _ in bytes.iter().filter(|&&b| b == b'\n') {
    ///             *lines += 1;
    ///             if out.write(format!("{lines}\n").as_bytes()).is_err() {
    ///                 return; // closed: `close` tells why
    ///             }
    ///         }
    ///     }
    /// }
    /// ```
    pub fn parts(&mut self) -> (&mut D, SocketRef<'_, D>) {
        (
            &mut *self.data,
            SocketRef {
                shared: self.shared,
            },
        )
    }

    /// A cloneable, `Send` handle to this socket, usable outside handlers.
    pub fn handle(&self) -> SocketHandle<D> {
        SocketHandle {
            shared: self.shared.clone(),
        }
    }

    /// STARTTLS, server side (Bun's `upgradeTLS`): from now on this socket speaks TLS as a
    /// server with `tls`. What was written before (the "ready to start TLS" reply) is sent in
    /// plain first; later writes are encrypted once the handshake completes, and `handshake`
    /// fires as for a TLS listener (within `tls`'s handshake timeout). Bytes of the current
    /// `data` call were already delivered as plain text: upgrade where the protocol says the
    /// peer waits (after its STARTTLS command), as SMTP, IMAP and PostgreSQL do.
    pub fn start_tls_server(
        &mut self,
        tls: &crate::tls::ServerTls,
    ) -> Result<(), crate::error::StartTlsError> {
        let session = crate::tls::session::TlsSession::server(tls)
            .map_err(crate::error::StartTlsError::Session)?;
        let timeout = tls.handshake_timeout();
        self.shared.lock().conn.start_tls(session, timeout)
    }

    /// STARTTLS, client side: from now on this socket speaks TLS as a client with `tls`
    /// (its ClientHello goes out after what was written before, in plain). See
    /// [`start_tls_server`](Self::start_tls_server).
    pub fn start_tls_client(
        &mut self,
        tls: &crate::tls::ClientTls,
    ) -> Result<(), crate::error::StartTlsError> {
        let session = crate::tls::session::TlsSession::client(tls)
            .map_err(crate::error::StartTlsError::Session)?;
        let timeout = tls.handshake_timeout();
        self.shared.lock().conn.start_tls(session, timeout)
    }
}

/// The operations of a [`Socket`] without its user data, from [`Socket::parts`].
pub struct SocketRef<'a, D> {
    shared: &'a Arc<Shared<D>>,
}

impl<D: Send + 'static> SocketRef<'_, D> {
    fn shared(&self) -> &Shared<D> {
        self.shared
    }

    socket_ops!(false);

    /// A cloneable, `Send` handle to this socket, usable outside handlers.
    pub fn handle(&self) -> SocketHandle<D> {
        SocketHandle {
            shared: self.shared.clone(),
        }
    }
}

/// A cloneable, `Send` handle to a socket, for use outside its handlers (and from other
/// sockets' handlers). Writes through it follow the same order and backpressure rules as
/// writes from handlers.
pub struct SocketHandle<D> {
    pub(crate) shared: Arc<Shared<D>>,
}

impl<D> Clone for SocketHandle<D> {
    fn clone(&self) -> Self {
        SocketHandle {
            shared: self.shared.clone(),
        }
    }
}

/// Handles are equal when they refer to the same socket.
impl<D> PartialEq for SocketHandle<D> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<D> Eq for SocketHandle<D> {}

impl<D> std::hash::Hash for SocketHandle<D> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.shared), state)
    }
}

impl<D> std::fmt::Debug for SocketHandle<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketHandle")
            .field("local", &self.shared.addrs.local)
            .field("remote", &self.shared.addrs.remote)
            .finish()
    }
}

impl<D: Send + 'static> SocketHandle<D> {
    fn shared(&self) -> &Shared<D> {
        &self.shared
    }

    socket_ops!(true);

    /// Runs `f` with the socket's writes held back: everything written inside goes out in one
    /// vectored write afterwards (an explicit cork scope). No lock is held while `f` runs, so
    /// it may write to this or any other socket (through any handle); the IO task only waits
    /// with its writes until the outermost scope ends (also if `f` panics).
    pub fn cork<R>(&self, f: impl FnOnce(&mut Corked<'_, D>) -> R) -> R {
        self.shared.with(false, |s| s.corks += 1);
        let _uncork = Uncork(&self.shared);
        f(&mut Corked {
            shared: &self.shared,
        })
    }
}

/// Ends a cork scope, on return or unwind: the last one wakes the IO task to flush.
struct Uncork<'a, D>(&'a Shared<D>);

impl<D> Drop for Uncork<'_, D> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.0.lock();
            state.corks -= 1;
            if state.corks == 0 {
                state.waker.clone()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Writes inside a [`SocketHandle::cork`] scope.
pub struct Corked<'a, D> {
    shared: &'a Shared<D>,
}

impl<D> Corked<'_, D> {
    /// As [`SocketHandle::write`].
    pub fn write(&mut self, data: &[u8]) -> Result<WriteStatus, WriteError> {
        self.shared.lock().conn.write(data)
    }

    /// As [`SocketHandle::try_write`].
    pub fn try_write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        self.shared.lock().conn.try_write(data)
    }

    /// Bytes buffered now (the IO task sends nothing until the scope ends, so only writes can
    /// change it).
    pub fn buffered_amount(&self) -> usize {
        self.shared.lock().conn.buffered_amount()
    }
}
