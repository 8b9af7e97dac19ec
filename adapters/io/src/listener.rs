//! `listen`: the user's listener handle and the accept loop, for any [`Runtime`].

use std::future::poll_fn;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;

use sansock_core::tls::ServerTlsOptions;
use sansock_core::{
    Addr, DataFactory, Endpoint, Handler, ListenError, ListenOptions, ListenerShared, SocketHandle,
};

use crate::runtime::{Acceptor, Runtime};
use crate::setup::{self, BoundListener};
use crate::{context, io_loop};

struct Inner<R: Runtime, D> {
    shared: Arc<ListenerShared<D>>,
    /// Taken (and so closed) by `stop`, synchronously: connects are refused once it returns.
    acceptor: Mutex<Option<R::Acceptor>>,
    local: Addr,
    hostname: Option<String>,
    unix_path: Option<PathBuf>,
}

impl<R: Runtime, D: Send + 'static> Inner<R, D> {
    /// See [`Listener::stop`].
    fn stop(&self, close_active: bool) {
        self.shared.stop(close_active);
        // Closed and unlinked under the lock: the user's `stop` and the accept loop's (see
        // `StopOnExit`) may race, and whichever loses must not return before the port is
        // closed and the file gone.
        let mut slot = self.acceptor.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(acceptor) = slot.take() {
            drop(acceptor);
            if let Some(path) = &self.unix_path {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The accept loop's hold on its listener, which it stops when the loop ends, however it
/// ends: returning after `stop`, unwinding, or dropped (even before its first poll) because
/// its runtime shut down. A listener nobody accepts for must neither hold its ref (`idle()`
/// would wait forever) nor keep its port bound (clients would hang in the backlog).
struct StopOnExit<R: Runtime, D: Send + 'static>(Arc<Inner<R, D>>);

impl<R: Runtime, D: Send + 'static> Drop for StopOnExit<R, D> {
    fn drop(&mut self) {
        self.0.stop(false);
    }
}

/// A listening socket (Bun's `TCPSocketListener`). Clone it freely.
///
/// **Dropping it does not stop it.** Like Bun's, a listener serves until one of:
/// [`stop`](Self::stop) (through any clone), or the shutdown of the runtime its accept task
/// runs on (dropping a tokio runtime stops its listeners: the port is closed, a Unix socket
/// file removed, its reference released). Its accept task owns what it needs, so a listener
/// whose handles are all gone keeps serving and keeps the `idle()` of its context waiting
/// while it is referenced; keep a handle (or `set_ref(false)`) if you need to stop it later.
#[must_use = "a listener serves until stop(): keep the handle to stop, reload or unref it"]
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
        self.inner.stop(close_active);
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

    /// Replaces this TLS listener's certificates and other TLS options for the connections it
    /// accepts from now on (Node's `server.setSecureContext`): certificate rotation without a
    /// restart. Live connections keep the configuration they were accepted with. PEM files
    /// ([`Pem::File`](sansock_core::tls::Pem::File)) are read now, synchronously, as `listen`
    /// reads them.
    ///
    /// Nothing changes on error: options that cannot be used fail with
    /// [`ListenError::TlsConfig`] (the old certificates keep serving), and a listener started
    /// without TLS refuses with [`ListenError::NotTls`].
    pub fn set_tls(&self, options: ServerTlsOptions) -> Result<(), ListenError> {
        let tls = options.build(&read_pem_file)?;
        self.inner.shared.set_tls(tls)
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
        Some(tls) => Some(tls.build(&read_pem_file)?),
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
        shared: ListenerShared::new(
            handler,
            options.connection_config(),
            &context::refs::<R>(),
            tls,
        ),
        acceptor: Mutex::new(Some(acceptor)),
        hostname: options.endpoint.host().map(str::to_owned),
        unix_path,
        local,
    });
    R::spawn(accept_loop::<R, D>(
        StopOnExit(inner.clone()),
        options.data.clone(),
        options.nodelay,
    ));
    Ok(Listener {
        inner,
        _runtime: PhantomData,
    })
}

/// How `listen` and `set_tls` read PEM files.
fn read_pem_file(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
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

/// Accepts until the listener stops. `listener` is an argument, not a local, so that it is
/// dropped (and the listener stopped) even when the task is dropped before its first poll.
async fn accept_loop<R: Runtime, D: Send + 'static>(
    listener: StopOnExit<R, D>,
    data: DataFactory<D>,
    nodelay: bool,
) {
    let inner = &*listener.0;
    // Failed accepts in a row: each one waits longer before the next try.
    let mut failures = 0u32;
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
                failures = 0;
                setup::configure_stream(&stream, nodelay);
                // The user's factory may panic: that costs this connection (dropped, so the
                // peer sees it close), never the listener.
                let data = match catch_unwind(AssertUnwindSafe(|| data())) {
                    Ok(data) => data,
                    Err(panic) => {
                        tracing::warn!(
                            peer = ?addrs.remote,
                            panic = panic_message(&*panic),
                            "the socket data factory panicked; dropping the connection"
                        );
                        continue;
                    }
                };
                if let Some(driver) = inner.shared.accept(Instant::now(), addrs, data) {
                    R::spawn(io_loop::run::<D, R::Stream, R::Timer>(stream, driver));
                }
            }
            Some(Err(e)) => {
                failures = failures.saturating_add(1);
                let wait = setup::accept_backoff(&e, failures);
                if setup::is_resource_exhaustion(&e) {
                    // Out of descriptors: keep serving the sockets we have, retry later.
                    tracing::warn!(error = %e, ?wait, "accept failed; backing off");
                } else {
                    tracing::debug!(error = %e, ?wait, "accept failed; backing off");
                }
                R::sleep(wait).await;
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::io::{self, IoSlice};
    use std::os::fd::{AsFd, BorrowedFd};
    use std::sync::mpsc;
    use std::task::{Context, Waker};
    use std::time::Duration;

    use sansock_core::{ConnectionConfig, RefCounter, SocketAddrs};

    use super::*;
    use crate::runtime::{Acceptor, Timer, Transport};

    /// A runtime that never runs anything: enough to build a listener's `Inner` and poll its
    /// accept loop by hand.
    struct Stub;

    struct NoStream(std::os::unix::net::UnixStream);

    impl AsFd for NoStream {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.0.as_fd()
        }
    }

    impl Transport for NoStream {
        fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> {
            unreachable!()
        }
        fn poll_write(&mut self, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
            unreachable!()
        }
        fn poll_write_vectored(
            &mut self,
            _: &mut Context<'_>,
            _: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            unreachable!()
        }
    }

    /// An acceptor with nothing to accept, whose close takes 100 ms and says when it starts.
    struct SlowClose(Mutex<Option<mpsc::Sender<()>>>);

    impl Acceptor for SlowClose {
        type Stream = NoStream;
        fn poll_accept(&self, _: &mut Context<'_>) -> Poll<io::Result<(NoStream, SocketAddrs)>> {
            Poll::Pending
        }
    }

    impl Drop for SlowClose {
        fn drop(&mut self) {
            if let Some(closing) = self.0.lock().unwrap().take() {
                let _ = closing.send(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    struct NoTimer;

    impl Timer for NoTimer {
        fn at(_: Instant) -> Self {
            NoTimer
        }
        fn reset(&mut self, _: Instant) {}
        fn poll_elapsed(&mut self, _: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }

    impl Runtime for Stub {
        type Stream = NoStream;
        type Acceptor = SlowClose;
        type Timer = NoTimer;
        fn default_refs() -> &'static Arc<RefCounter> {
            unreachable!("each test passes its own counter")
        }
        fn block_on<F: Future>(_: Arc<RefCounter>, _: F) -> F::Output {
            unreachable!()
        }
        fn spawn<F: Future<Output = ()> + Send + 'static>(_: F) {
            unreachable!()
        }
        fn sleep(_: Duration) -> impl Future<Output = ()> + Send {
            std::future::pending()
        }
        fn acceptor(_: BoundListener) -> io::Result<SlowClose> {
            unreachable!()
        }
        fn resolve(_: &str, _: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send {
            std::future::pending()
        }
        fn connect_tcp(_: SocketAddr) -> impl Future<Output = io::Result<NoStream>> + Send {
            std::future::pending()
        }
        fn connect_unix(_: &Path) -> impl Future<Output = io::Result<NoStream>> + Send {
            std::future::pending()
        }
        async fn timeout<F: Future + Send>(_: Duration, _: F) -> Option<F::Output> {
            None
        }
    }

    struct Quiet;
    impl Handler for Quiet {
        type Data = ();
    }

    /// A Unix listener's `Inner` over a stand-in socket file, counted in `refs`.
    fn unix_inner(
        tag: &str,
        refs: &Arc<RefCounter>,
        closing: mpsc::Sender<()>,
    ) -> (Arc<Inner<Stub, ()>>, PathBuf) {
        let path = std::env::temp_dir().join(format!("sansock-{tag}-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let inner = Arc::new(Inner {
            shared: ListenerShared::new(Arc::new(Quiet), ConnectionConfig::default(), refs, None),
            acceptor: Mutex::new(Some(SlowClose(Mutex::new(Some(closing))))),
            local: Addr::Unix(Some(path.clone())),
            hostname: None,
            unix_path: Some(path.clone()),
        });
        (inner, path)
    }

    #[test]
    fn a_stop_racing_the_accept_loops_returns_once_the_file_is_gone() {
        let refs = Arc::new(RefCounter::new());
        let (closing, started) = mpsc::channel();
        let (inner, path) = unix_inner("stop-race", &refs, closing);
        // The accept loop ends (its hold dropped) and starts closing the acceptor...
        let loop_hold = StopOnExit(inner.clone());
        let loop_exit = std::thread::spawn(move || drop(loop_hold));
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        // ...while the user stops too: when that returns, the file is gone.
        inner.stop(false);
        let exists = path.exists();
        loop_exit.join().unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(!exists, "stop returned before the socket file was removed");
    }

    #[test]
    fn an_accept_loop_dropped_polled_or_not_stops_its_listener() {
        let refs = Arc::new(RefCounter::new());
        for polled in [false, true] {
            let (closing, _started) = mpsc::channel();
            let (inner, path) = unix_inner(&format!("dropped-loop-{polled}"), &refs, closing);
            assert_eq!(refs.count(), 1);
            let data: DataFactory<()> = Arc::new(|| ());
            let mut task = Box::pin(accept_loop(StopOnExit(inner.clone()), data, true));
            if polled {
                let mut cx = Context::from_waker(Waker::noop());
                assert!(task.as_mut().poll(&mut cx).is_pending());
            }
            // The runtime shuts down: the task is dropped.
            drop(task);
            let exists = path.exists();
            let _ = std::fs::remove_file(&path);
            assert_eq!(
                refs.count(),
                0,
                "the listener kept its ref (polled: {polled})"
            );
            assert!(inner.shared.is_stopped());
            assert!(inner.acceptor.lock().unwrap().is_none(), "the port is open");
            assert!(!exists, "the socket file is left (polled: {polled})");
        }
    }
}
