//! `listen`: the user's listener handle and the accept loop, for any [`Runtime`].

use std::future::poll_fn;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;

use sansock_core::{
    Addr, DataFactory, Endpoint, Handler, ListenError, ListenOptions, ListenerShared, SocketHandle,
};

use crate::io_loop;
use crate::runtime::{Acceptor, Runtime};
use crate::setup::{self, BoundListener};

struct Inner<R: Runtime, D> {
    shared: Arc<ListenerShared<D>>,
    /// Taken (and so closed) by `stop`, synchronously: connects are refused once it returns.
    acceptor: Mutex<Option<R::Acceptor>>,
    local: Addr,
    hostname: Option<String>,
    unix_path: Option<PathBuf>,
}

/// A listening socket (Bun's `TCPSocketListener`). Dropping this handle does not stop it:
/// like Bun's, a listener serves until [`stop`](Self::stop)ped. Clone it freely.
pub struct Listener<R: Runtime, D> {
    inner: Arc<Inner<R, D>>,
    _runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime, D> Clone for Listener<R, D> {
    fn clone(&self) -> Self {
        Listener {
            inner: self.inner.clone(),
            _runtime: PhantomData,
        }
    }
}

impl<R: Runtime, D> std::fmt::Debug for Listener<R, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("local", &self.inner.local)
            .finish()
    }
}

impl<R: Runtime, D: Send + 'static> Listener<R, D> {
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
    pub fn unix_path(&self) -> Option<&Path> {
        self.inner.unix_path.as_deref()
    }

    /// Stops accepting at once (new connects are refused when this returns) and removes a Unix
    /// socket file. With `close_active`, every live socket flushes what it accepted and closes
    /// (asynchronously: their `close` handlers run on their own tasks). Calling it again is
    /// allowed; a later `stop(true)` closes sockets still open.
    pub fn stop(&self, close_active: bool) {
        self.inner.shared.stop(close_active);
        let acceptor = self
            .inner
            .acceptor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if acceptor.is_some() {
            drop(acceptor);
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

    /// `ref()` (`true`) / `unref()` (`false`): whether this listener keeps the adapter's
    /// `idle()` waiting. Its sockets hold their own refs.
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

/// Listens on `options.endpoint` and serves every accepted socket with `handler`.
pub async fn listen<R: Runtime, D: Send + 'static>(
    options: ListenOptions<D>,
    handler: Arc<dyn Handler<Data = D>>,
) -> Result<Listener<R, D>, ListenError> {
    options.validate()?;
    // Bad TLS options fail here, before anything is bound: never a listener whose every
    // handshake fails.
    let tls = match &options.tls {
        Some(tls) => Some(tls.build(&|path| std::fs::read(path))?),
        None => None,
    };
    let addrs = resolve::<R>(&options.endpoint).await?;
    let bound = setup::bind(&options, &addrs)?;
    let target = options.endpoint.to_string();
    let io_err = |e: std::io::Error| ListenError::from_io(&e, &target);
    let unix_path = match &options.endpoint {
        Endpoint::Unix(p) => Some(p.clone()),
        Endpoint::Tcp { .. } => None,
    };
    let local = match &bound {
        BoundListener::Tcp(l) => Addr::Ip(l.local_addr().map_err(io_err)?),
        BoundListener::Unix(_) => Addr::Unix(unix_path.clone()),
    };
    let acceptor = R::acceptor(bound).map_err(io_err)?;
    let inner = Arc::new(Inner::<R, D> {
        shared: ListenerShared::new(handler, options.connection_config(), R::refs(), tls),
        acceptor: Mutex::new(Some(acceptor)),
        hostname: options.endpoint.host().map(str::to_owned),
        unix_path,
        local,
    });
    R::spawn(accept_loop::<R, D>(
        inner.clone(),
        options.data.clone(),
        options.nodelay,
    ));
    Ok(Listener {
        inner,
        _runtime: PhantomData,
    })
}

async fn resolve<R: Runtime>(endpoint: &Endpoint) -> Result<Vec<SocketAddr>, ListenError> {
    let Endpoint::Tcp { port, .. } = endpoint else {
        return Ok(Vec::new());
    };
    let host = endpoint.host().unwrap_or_default();
    if let Some(ip) = setup::literal_ip(host) {
        return Ok(vec![(ip, *port).into()]);
    }
    match R::resolve(host, *port).await {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        _ => Err(ListenError::HostNotFound {
            host: host.to_owned(),
        }),
    }
}

async fn accept_loop<R: Runtime, D: Send + 'static>(
    inner: Arc<Inner<R, D>>,
    data: DataFactory<D>,
    nodelay: bool,
) {
    let mut exhausted = 0u32;
    loop {
        let accepted = poll_fn(|cx| {
            if inner.shared.poll_stopped(cx).is_ready() {
                return Poll::Ready(None);
            }
            let acceptor = inner.acceptor.lock().unwrap_or_else(|e| e.into_inner());
            match acceptor.as_ref() {
                None => Poll::Ready(None),
                Some(a) => a.poll_accept(cx).map(Some),
            }
        })
        .await;
        match accepted {
            None => return,
            Some(Ok((stream, addrs))) => {
                exhausted = 0;
                setup::configure_stream(&stream, nodelay);
                if let Some(driver) = inner.shared.accept(Instant::now(), addrs, data()) {
                    R::spawn(io_loop::run::<D, R::Stream, R::Timer>(stream, driver));
                }
            }
            Some(Err(e)) if setup::is_resource_exhaustion(&e) => {
                // Out of descriptors: keep serving the sockets we have, retry later.
                tracing::warn!(error = %e, "accept failed; backing off");
                R::sleep(setup::accept_backoff(exhausted)).await;
                exhausted += 1;
            }
            Some(Err(e)) => tracing::debug!(error = %e, "accept failed"),
        }
    }
}
