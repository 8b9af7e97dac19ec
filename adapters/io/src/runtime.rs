//! The few things that differ between async runtimes, as traits. An adapter implements
//! [`Runtime`] and gets `listen`, `connect`, the listener handle and the IO loop from this crate.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sansock_core::{RefCounter, SocketAddrs};

use crate::setup::BoundListener;

/// A connected, non-blocking TCP or Unix stream registered with the runtime's reactor.
pub trait Transport: AsFd + Send + 'static {
    /// Reads into `buf`; `Ok(0)` is end of stream. Registers for readability when pending.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// One write of one buffer (a `send`, which costs the kernel less than a one-slice
    /// `writev`). Registers for writability when pending.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    /// One vectored write. Registers for writability when pending.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
}

/// A listening socket registered with the runtime's reactor.
pub trait Acceptor: Send + Sync + 'static {
    /// The stream type of accepted connections.
    type Stream: Transport;
    /// Accepts one connection, with both ends' addresses.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Stream, SocketAddrs)>>;
}

/// A resettable timer.
pub trait Timer: Send + Unpin + 'static {
    /// A timer firing at `deadline`.
    fn at(deadline: Instant) -> Self;
    /// Moves the deadline.
    fn reset(&mut self, deadline: Instant);
    /// Ready once the deadline passed; registers the waker otherwise.
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// An async runtime, as sansock needs it.
pub trait Runtime: Send + Sync + 'static {
    /// Connected streams.
    type Stream: Transport;
    /// Listening sockets.
    type Acceptor: Acceptor<Stream = Self::Stream>;
    /// Timers.
    type Timer: Timer;

    /// The adapter's ref counter for code outside any `run` context (see [`crate::context`]).
    fn default_refs() -> &'static Arc<RefCounter>;
    /// Runs `future` to completion on a runtime built for it (the adapter's `run`), with
    /// `context` as the ref-counting context of the threads that run its tasks, where the
    /// runtime lets the adapter say so (tokio: every worker thread).
    fn block_on<F: Future>(context: Arc<RefCounter>, future: F) -> F::Output;
    /// Spawns a task.
    fn spawn<F: Future<Output = ()> + Send + 'static>(future: F);
    /// Sleeps.
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send;
    /// Registers a bound std listener with the reactor.
    fn acceptor(listener: BoundListener) -> io::Result<Self::Acceptor>;
    /// Resolves a host name (IP literals never get here).
    fn resolve(host: &str, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;
    /// Connects a TCP stream.
    fn connect_tcp(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Connects a Unix stream.
    fn connect_unix(
        path: &std::path::Path,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Runs `future` with a time limit; `None` when it ran out.
    fn timeout<F: Future + Send>(
        limit: Duration,
        future: F,
    ) -> impl Future<Output = Option<F::Output>> + Send;
}
