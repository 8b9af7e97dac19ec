//! Listener bookkeeping: the live sockets, stop, reload, ref/unref and the TLS configuration
//! for new connections. The adapter owns the OS listener and asks this type whether to keep
//! accepting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::addr::SocketAddrs;
use crate::connection::ConnectionConfig;
use crate::driver::Driver;
use crate::error::ListenError;
use crate::handler::Handler;
use crate::refs::{RefCounter, RefGuard};
use crate::socket::{Shared, SocketHandle};
use crate::tls::session::TlsSession;
use crate::tls::ServerTls;

struct ListenerState<D> {
    stopped: bool,
    handler: Arc<dyn Handler<Data = D>>,
    sockets: HashMap<u64, Arc<Shared<D>>>,
    next_id: u64,
    accept_waker: Option<Waker>,
    ref_guard: RefGuard,
}

/// The state of one listener shared by its accept task and its user-facing handle.
pub struct ListenerShared<D> {
    state: Mutex<ListenerState<D>>,
    config: ConnectionConfig,
    refs: Arc<RefCounter>,
    /// The configuration new connections handshake with; `None` for a plain listener (which
    /// stays plain). [`set_tls`](Self::set_tls) swaps it; each accept clones the current one
    /// (an `Arc`), so a connection keeps the configuration it was accepted with.
    tls: Option<Mutex<ServerTls>>,
}

impl<D: Send + 'static> ListenerShared<D> {
    /// A listening listener with the given handlers and per-socket settings. It is referenced
    /// (counted by `refs`) until stopped or unref'd.
    pub fn new(
        handler: Arc<dyn Handler<Data = D>>,
        config: ConnectionConfig,
        refs: &Arc<RefCounter>,
        tls: Option<ServerTls>,
    ) -> Arc<Self> {
        Arc::new(ListenerShared {
            state: Mutex::new(ListenerState {
                stopped: false,
                handler,
                sockets: HashMap::new(),
                next_id: 0,
                accept_waker: None,
                ref_guard: refs.acquire(),
            }),
            config,
            refs: refs.clone(),
            tls: tls.map(Mutex::new),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ListenerState<D>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an accepted connection and returns its driver (with `Open` queued; for a TLS
    /// listener the handshake starts), or `None` if the listener was stopped meanwhile (drop
    /// the connection).
    pub fn accept(
        self: &Arc<Self>,
        now: Instant,
        addrs: SocketAddrs,
        data: D,
    ) -> Option<Driver<D>> {
        // The current configuration, cloned so that no lock is held while the session is made.
        let tls = self
            .tls
            .as_ref()
            .map(|current| current.lock().unwrap_or_else(|e| e.into_inner()).clone());
        let mut state = self.lock();
        if state.stopped {
            return None;
        }
        let tls = match &tls {
            None => None,
            Some(tls) => match TlsSession::server(tls) {
                Ok(session) => Some((session, tls.handshake_timeout())),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a TLS session; dropping connection");
                    return None;
                }
            },
        };
        let id = state.next_id;
        state.next_id += 1;
        let driver = Driver::from_parts(
            state.handler.clone(),
            self.config.clone(),
            addrs,
            data,
            now,
            &self.refs,
            Some((Arc::downgrade(self), id)),
            tls,
        );
        state.sockets.insert(id, driver.handle().shared);
        Some(driver)
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().sockets.remove(&id);
    }

    /// Stops accepting (the adapter closes the OS listener when it sees this). With
    /// `close_active`, every live socket also flushes and closes. Calling it again is allowed:
    /// a later `stop(true)` closes sockets still open.
    pub fn stop(&self, close_active: bool) {
        let (waker, sockets) = {
            let mut state = self.lock();
            state.stopped = true;
            state.ref_guard.set_ref(false);
            let sockets: Vec<_> = if close_active {
                state.sockets.values().cloned().collect()
            } else {
                Vec::new()
            };
            (state.accept_waker.take(), sockets)
        };
        if let Some(w) = waker {
            w.wake();
        }
        for shared in sockets {
            SocketHandle { shared }.close();
        }
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Ready once stopped; otherwise stores the accept task's waker.
    pub fn poll_stopped(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.stopped {
            return Poll::Ready(());
        }
        match &state.accept_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.accept_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Replaces the handlers of every live socket at once and of every future one.
    pub fn reload(&self, handler: Arc<dyn Handler<Data = D>>) {
        let sockets: Vec<_> = {
            let mut state = self.lock();
            state.handler = handler.clone();
            state.sockets.values().cloned().collect()
        };
        for shared in sockets {
            SocketHandle { shared }.reload(handler.clone());
        }
    }

    /// Replaces the TLS configuration (certificates, SNI names, ALPN, ...) for every connection
    /// accepted from now on: Node's `server.setSecureContext`, for certificate rotation without
    /// a restart. Live connections, and handshakes already started, keep the configuration
    /// they were accepted with. A configuration built from options has its own ticket keys and
    /// session cache, so sessions from the old one do not resume under the new one: every new
    /// handshake is a full one, with the new certificate. A listener started without TLS
    /// refuses with [`ListenError::NotTls`] and stays plain.
    pub fn set_tls(&self, tls: ServerTls) -> Result<(), ListenError> {
        let current = self.tls.as_ref().ok_or(ListenError::NotTls)?;
        *current.lock().unwrap_or_else(|e| e.into_inner()) = tls;
        Ok(())
    }

    /// `ref()` / `unref()` for the listener itself (its sockets hold their own refs).
    pub fn set_ref(&self, referenced: bool) {
        let mut state = self.lock();
        if !state.stopped {
            state.ref_guard.set_ref(referenced);
        }
    }

    /// Handles to the live sockets.
    pub fn sockets(&self) -> Vec<SocketHandle<D>> {
        self.lock()
            .sockets
            .values()
            .map(|shared| SocketHandle {
                shared: shared.clone(),
            })
            .collect()
    }

    /// How many accepted sockets are open.
    pub fn connection_count(&self) -> usize {
        self.lock().sockets.len()
    }
}
