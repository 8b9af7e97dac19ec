//! tokio as a sansock [`Runtime`]: the only tokio-specific code of this adapter.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sansock_core::{Addr, RefCounter, SocketAddrs};
use sansock_io::setup::BoundListener;
use sansock_io::{Acceptor, Runtime, Timer, Transport};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

static DEFAULT_REFS: LazyLock<Arc<RefCounter>> = LazyLock::new(|| Arc::new(RefCounter::new()));

/// The tokio runtime (current-thread or multi-thread: whichever runs the calling task).
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

#[doc(hidden)]
/// A connected tokio TCP or Unix stream.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix.
    Unix(UnixStream),
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl Transport for Stream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        let r = match self {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, &mut rb),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, &mut rb),
        };
        r.map_ok(|()| rb.filled().len())
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
/// A tokio TCP or Unix listener.
#[derive(Debug)]
pub enum Listening {
    /// TCP.
    Tcp(TcpListener),
    /// Unix, with the bound path.
    Unix(UnixListener, Addr),
}

impl Acceptor for Listening {
    type Stream = Stream;
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Stream, SocketAddrs)>> {
        match self {
            Listening::Tcp(l) => l.poll_accept(cx).map_ok(|(s, remote)| {
                let local = s.local_addr().map(Addr::Ip).unwrap_or(Addr::Unix(None));
                let addrs = SocketAddrs {
                    local,
                    remote: Addr::Ip(remote),
                };
                (Stream::Tcp(s), addrs)
            }),
            Listening::Unix(l, local) => l.poll_accept(cx).map_ok(|(s, _)| {
                let addrs = SocketAddrs {
                    local: local.clone(),
                    remote: Addr::Unix(None),
                };
                (Stream::Unix(s), addrs)
            }),
        }
    }
}

#[doc(hidden)]
/// A tokio sleep that can be moved.
#[derive(Debug)]
pub struct Sleep(Pin<Box<tokio::time::Sleep>>);

impl Timer for Sleep {
    fn at(deadline: Instant) -> Self {
        Sleep(Box::pin(tokio::time::sleep_until(deadline.into())))
    }
    fn reset(&mut self, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl Runtime for Tokio {
    type Stream = Stream;
    type Acceptor = Listening;
    type Timer = Sleep;

    fn default_refs() -> &'static Arc<RefCounter> {
        &DEFAULT_REFS
    }
    fn block_on<F: Future>(context: Arc<RefCounter>, future: F) -> F::Output {
        // Every worker thread runs in `context`, so tasks spawned with `tokio::spawn` count
        // there too.
        let on_start = context.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .on_thread_start(move || {
                sansock_io::context::set_thread_context(Some(on_start.clone()))
            })
            .on_thread_stop(|| sansock_io::context::set_thread_context(None))
            .build()
            .expect("building a tokio runtime");
        let mut slot = Some(context);
        sansock_io::context::enter(&mut slot, || runtime.block_on(future))
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
        tokio::spawn(future);
    }
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }
    fn acceptor(listener: BoundListener) -> io::Result<Listening> {
        Ok(match listener {
            BoundListener::Tcp(l) => Listening::Tcp(TcpListener::from_std(l)?),
            BoundListener::Unix(l) => {
                let path = l.local_addr()?.as_pathname().map(Path::to_path_buf);
                Listening::Unix(UnixListener::from_std(l)?, Addr::Unix(path))
            }
        })
    }
    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
    async fn connect_tcp(addr: SocketAddr) -> io::Result<Stream> {
        TcpStream::connect(addr).await.map(Stream::Tcp)
    }
    async fn connect_unix(path: &Path) -> io::Result<Stream> {
        UnixStream::connect(path).await.map(Stream::Unix)
    }
    async fn timeout<F: Future + Send>(limit: Duration, future: F) -> Option<F::Output> {
        tokio::time::timeout(limit, future).await.ok()
    }
}
