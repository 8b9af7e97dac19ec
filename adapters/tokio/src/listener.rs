//! `listen`: the accept loop and the user's listener handle.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;

use sansock_core::{
    Addr, DataFactory, Endpoint, Handler, ListenError, ListenOptions, ListenerShared, SocketAddrs,
    SocketHandle,
};
use sansock_net::BoundListener;
use tokio::net::{TcpListener, UnixListener};

use crate::io_loop;
use crate::stream::Stream;
use crate::REFS;

enum OsListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

struct Inner<D> {
    shared: Arc<ListenerShared<D>>,
    /// Taken (and so closed) by `stop`, synchronously: connects are refused once it returns.
    os: Mutex<Option<OsListener>>,
    local: Addr,
    hostname: Option<String>,
    unix_path: Option<PathBuf>,
}

/// A listening socket (Bun's `TCPSocketListener`). Dropping this handle does not stop it:
/// like Bun's, a listener serves until [`stop`](Self::stop)ped. Clone it freely.
pub struct Listener<D> {
    inner: Arc<Inner<D>>,
}

impl<D> Clone for Listener<D> {
    fn clone(&self) -> Self {
        Listener {
            inner: self.inner.clone(),
        }
    }
}

impl<D: Send + 'static> Listener<D> {
    /// The bound address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> &Addr {
        &self.inner.local
    }

    /// The bound port, for TCP listeners.
    pub fn port(&self) -> Option<u16> {
        self.inner.local.port()
    }

    /// The host name as given to `listen`, for TCP listeners.
    pub fn hostname(&self) -> Option<&str> {
        self.inner.hostname.as_deref()
    }

    /// The socket path, for Unix listeners.
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        self.inner.unix_path.as_deref()
    }

    /// Stops accepting at once (new connects are refused when this returns) and removes a Unix
    /// socket file. With `close_active`, every live socket flushes what it accepted and closes
    /// (asynchronously: their `close` handlers run on their own tasks). Calling it again is
    /// allowed; a later `stop(true)` closes sockets still open.
    pub fn stop(&self, close_active: bool) {
        self.inner.shared.stop(close_active);
        let was_listening = self
            .inner
            .os
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some();
        if was_listening {
            if let Some(path) = &self.inner.unix_path {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.shared.is_stopped()
    }

    /// Replaces the handlers of every live socket at once, and of every future one.
    pub fn reload<H: Handler<Data = D>>(&self, handler: H) {
        self.inner.shared.reload(Arc::new(handler));
    }

    /// [`reload`](Self::reload) with an already shared handler set.
    pub fn reload_shared(&self, handler: Arc<dyn Handler<Data = D>>) {
        self.inner.shared.reload(handler);
    }

    /// `ref()` (`true`) / `unref()` (`false`): whether this listener keeps
    /// [`idle`](crate::idle) waiting. Its sockets hold their own refs.
    pub fn set_ref(&self, referenced: bool) {
        self.inner.shared.set_ref(referenced);
    }

    /// How many accepted sockets are open.
    pub fn connection_count(&self) -> usize {
        self.inner.shared.connection_count()
    }

    /// Handles to the accepted sockets that are open.
    pub fn sockets(&self) -> Vec<SocketHandle<D>> {
        self.inner.shared.sockets()
    }
}

/// Listens on `options.endpoint` and serves every accepted socket with `handler` (Bun's
/// `Bun.listen`). Must be called inside a tokio runtime.
pub async fn listen<H: Handler>(
    options: ListenOptions<H::Data>,
    handler: H,
) -> Result<Listener<H::Data>, ListenError> {
    listen_shared(options, Arc::new(handler)).await
}

/// [`listen`] with an already shared handler set.
pub async fn listen_shared<D: Send + 'static>(
    options: ListenOptions<D>,
    handler: Arc<dyn Handler<Data = D>>,
) -> Result<Listener<D>, ListenError> {
    options.validate()?;
    let addrs = resolve(&options.endpoint).await?;
    let bound = sansock_net::bind(&options, &addrs)?;
    let target = options.endpoint.to_string();
    let io_err = |e: std::io::Error| ListenError::from_io(&e, &target);
    let (os, local) = match bound {
        BoundListener::Tcp(l) => {
            let local = Addr::Ip(l.local_addr().map_err(io_err)?);
            (
                OsListener::Tcp(TcpListener::from_std(l).map_err(io_err)?),
                local,
            )
        }
        BoundListener::Unix(l) => {
            let path = match &options.endpoint {
                Endpoint::Unix(p) => Some(p.clone()),
                Endpoint::Tcp { .. } => None,
            };
            (
                OsListener::Unix(UnixListener::from_std(l).map_err(io_err)?),
                Addr::Unix(path),
            )
        }
    };
    let shared = ListenerShared::new(handler, options.connection_config(), &REFS);
    let inner = Arc::new(Inner {
        shared,
        os: Mutex::new(Some(os)),
        hostname: options.endpoint.host().map(str::to_owned),
        unix_path: match &options.endpoint {
            Endpoint::Unix(p) => Some(p.clone()),
            Endpoint::Tcp { .. } => None,
        },
        local,
    });
    tokio::spawn(accept_loop(
        inner.clone(),
        options.data.clone(),
        options.nodelay,
    ));
    Ok(Listener { inner })
}

async fn resolve(endpoint: &Endpoint) -> Result<Vec<SocketAddr>, ListenError> {
    let Endpoint::Tcp { port, .. } = endpoint else {
        return Ok(Vec::new());
    };
    let host = endpoint.host().unwrap_or_default();
    if let Some(ip) = sansock_net::literal_ip(host) {
        return Ok(vec![(ip, *port).into()]);
    }
    match tokio::net::lookup_host((host, *port)).await {
        Ok(addrs) => Ok(addrs.collect()),
        Err(_) => Err(ListenError::HostNotFound {
            host: host.to_owned(),
        }),
    }
}

async fn accept_loop<D: Send + 'static>(inner: Arc<Inner<D>>, data: DataFactory<D>, nodelay: bool) {
    let mut exhausted = 0u32;
    loop {
        let accepted = poll_fn(|cx| {
            if inner.shared.poll_stopped(cx).is_ready() {
                return Poll::Ready(None);
            }
            let os = inner.os.lock().unwrap_or_else(|e| e.into_inner());
            match os.as_ref() {
                None => Poll::Ready(None),
                Some(OsListener::Tcp(l)) => l.poll_accept(cx).map(|r| {
                    Some(r.map(|(s, peer)| {
                        let local = s.local_addr().map(Addr::Ip).unwrap_or(Addr::Unix(None));
                        (
                            Stream::Tcp(s),
                            SocketAddrs {
                                local,
                                remote: Addr::Ip(peer),
                            },
                        )
                    }))
                }),
                Some(OsListener::Unix(l)) => l.poll_accept(cx).map(|r| {
                    Some(r.map(|(s, _)| {
                        let addrs = SocketAddrs {
                            local: inner.local.clone(),
                            remote: Addr::Unix(None),
                        };
                        (Stream::Unix(s), addrs)
                    }))
                }),
            }
        })
        .await;
        match accepted {
            None => return,
            Some(Ok((stream, addrs))) => {
                exhausted = 0;
                sansock_net::configure_stream(&stream, nodelay);
                if let Some(driver) = inner.shared.accept(Instant::now(), addrs, data()) {
                    tokio::spawn(io_loop::run(stream, driver));
                }
            }
            Some(Err(e)) if sansock_net::is_resource_exhaustion(&e) => {
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(sansock_net::accept_backoff(exhausted)).await;
                exhausted += 1;
            }
            Some(Err(e)) => tracing::debug!(error = %e, "accept failed"),
        }
    }
}
