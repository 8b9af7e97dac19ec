//! smol (async-io) as a sansock [`Runtime`]: the only smol-specific code of this adapter.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use sansock_core::{Addr, RefCounter, SocketAddrs};
use sansock_io::setup::BoundListener;
use sansock_io::{Acceptor, Runtime, Timer, Transport};
use smol::io::{AsyncRead, AsyncWrite};
use smol::Async;

static DEFAULT_REFS: LazyLock<Arc<RefCounter>> = LazyLock::new(|| Arc::new(RefCounter::new()));

/// The smol runtime: tasks on smol's global executor, IO on the async-io reactor.
#[derive(Debug, Clone, Copy)]
pub struct Smol;

#[doc(hidden)]
/// A connected TCP or Unix stream on the async-io reactor.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(Async<TcpStream>),
    /// Unix.
    Unix(Async<UnixStream>),
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.get_ref().as_fd(),
            Stream::Unix(s) => s.get_ref().as_fd(),
        }
    }
}

impl Transport for Stream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }
}

#[doc(hidden)]
/// A TCP or Unix listener on the async-io reactor.
#[derive(Debug)]
pub enum Listening {
    /// TCP.
    Tcp(Async<TcpListener>),
    /// Unix, with the bound path.
    Unix(Async<UnixListener>, Addr),
}

/// Polls readability, then accepts without blocking; spurious wake-ups loop.
fn poll_accept_with<L, T>(
    listener: &Async<L>,
    cx: &mut Context<'_>,
    accept: impl Fn(&L) -> io::Result<T>,
) -> Poll<io::Result<T>>
where
    L: AsFd,
{
    loop {
        match accept(listener.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready!(listener.poll_readable(cx))?;
            }
            r => return Poll::Ready(r),
        }
    }
}

impl Acceptor for Listening {
    type Stream = Stream;
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Stream, SocketAddrs)>> {
        match self {
            Listening::Tcp(l) => {
                let (s, remote) = ready!(poll_accept_with(l, cx, TcpListener::accept))?;
                let addrs = SocketAddrs {
                    local: s.local_addr().map(Addr::Ip).unwrap_or(Addr::Unix(None)),
                    remote: Addr::Ip(remote),
                };
                Poll::Ready(Async::new(s).map(|s| (Stream::Tcp(s), addrs)))
            }
            Listening::Unix(l, local) => {
                let (s, _) = ready!(poll_accept_with(l, cx, UnixListener::accept))?;
                let addrs = SocketAddrs {
                    local: local.clone(),
                    remote: Addr::Unix(None),
                };
                Poll::Ready(Async::new(s).map(|s| (Stream::Unix(s), addrs)))
            }
        }
    }
}

#[doc(hidden)]
/// An async-io timer.
#[derive(Debug)]
pub struct AsyncIoTimer(smol::Timer);

impl Timer for AsyncIoTimer {
    fn at(deadline: Instant) -> Self {
        AsyncIoTimer(smol::Timer::at(deadline))
    }
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

#[doc(hidden)]
/// Registers a bound std listener with the async-io reactor.
pub fn acceptor(listener: BoundListener) -> io::Result<Listening> {
    Ok(match listener {
        BoundListener::Tcp(l) => Listening::Tcp(Async::new(l)?),
        BoundListener::Unix(l) => {
            let path = l.local_addr()?.as_pathname().map(Path::to_path_buf);
            Listening::Unix(Async::new(l)?, Addr::Unix(path))
        }
    })
}

#[doc(hidden)]
/// Connects a TCP stream on the async-io reactor.
pub async fn connect_tcp(addr: SocketAddr) -> io::Result<Stream> {
    Async::<TcpStream>::connect(addr).await.map(Stream::Tcp)
}

#[doc(hidden)]
/// Connects a Unix stream on the async-io reactor.
pub async fn connect_unix(path: &Path) -> io::Result<Stream> {
    Async::<UnixStream>::connect(path).await.map(Stream::Unix)
}

#[doc(hidden)]
/// Runs `future` with a time limit on an async-io timer.
pub async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    smol::future::or(async { Some(future.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}

impl Runtime for Smol {
    type Stream = Stream;
    type Acceptor = Listening;
    type Timer = AsyncIoTimer;

    fn default_refs() -> &'static Arc<RefCounter> {
        &DEFAULT_REFS
    }
    fn block_on<F: Future>(context: Arc<RefCounter>, future: F) -> F::Output {
        // smol's global executor threads are not ours to set up: sansock's own tasks carry the
        // context instead (see `sansock_io::context`).
        let mut slot = Some(context);
        sansock_io::context::enter(&mut slot, || smol::block_on(future))
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
        smol::spawn(future).detach();
    }
    async fn sleep(duration: Duration) {
        smol::Timer::after(duration).await;
    }
    fn acceptor(listener: BoundListener) -> io::Result<Listening> {
        acceptor(listener)
    }
    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        smol::net::resolve((host, port)).await
    }
    fn connect_tcp(addr: SocketAddr) -> impl Future<Output = io::Result<Stream>> + Send {
        connect_tcp(addr)
    }
    fn connect_unix(path: &Path) -> impl Future<Output = io::Result<Stream>> + Send {
        connect_unix(path)
    }
    fn timeout<F: Future + Send>(
        limit: Duration,
        future: F,
    ) -> impl Future<Output = Option<F::Output>> + Send {
        timeout(limit, future)
    }
}
