//! A socket as an async byte stream: `futures_io::AsyncRead + AsyncWrite` (and tokio's traits
//! with the `tokio` feature), for protocol crates written against streams (hyper, codecs,
//! WebSocket libraries), with sansock's TLS, limits, timeouts and corking underneath.
//!
//! A stream socket is an ordinary sansock socket whose handlers feed a bounded inbound buffer
//! and wake the reader and the writer:
//! - **reading**: `data` appends to the buffer; past [`READ_LIMIT`] the socket is paused, and
//!   reading below half of it resumes it, so a slow reader holds the peer back through TCP;
//! - **writing**: `poll_write` takes the whole buffer (sansock's write contract) and, once the
//!   send buffer reaches the high-water mark, the next `poll_write` waits for `drain`;
//!   `poll_flush` waits until the OS took every byte; `poll_close` is `end()` (flush, FIN);
//! - **errors**: a reset is `ConnectionReset`, the idle timeout (`set_timeout`) `TimedOut` on
//!   a pending read, a TLS truncation `UnexpectedEof`, other closes their `io::ErrorKind`.
//!
//! Half-close is on (`allow_half_open`): reading the end of the stream leaves the write side
//! open, as with a `TcpStream`. Dropping the last clone of a stream closes the socket
//! (gracefully: what was written is flushed first).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use sansock_core::{
    Addr, CloseError, ConnectError, ConnectOptions, Handler, ListenError, ListenOptions, Socket,
    SocketHandle,
};

use crate::listener::Listener;
use crate::runtime::Runtime;

/// Bytes a stream buffers from the peer before it stops reading until the application reads.
pub const READ_LIMIT: usize = 256 * 1024;

/// Once emptied, an inbound buffer larger than this is released.
const RETAIN_INBOUND: usize = 16 * 1024;

/// Accepted streams waiting for `accept()`; beyond this, new connections are closed.
const ACCEPT_QUEUE: usize = 1024;

#[derive(Default)]
struct State {
    /// Received bytes; `inbound[read..]` is not read yet. One buffer, reused: a steady stream
    /// of small messages allocates nothing per `data` event.
    inbound: Vec<u8>,
    read: usize,
    inbound_len: usize,
    paused: bool,
    eof: bool,
    closed: bool,
    error: Option<(io::ErrorKind, String)>,
    /// A write reached the high-water mark: the next waits for `drain`.
    backpressured: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl State {
    fn wake_reader(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
    }
    fn wake_writer(&mut self) {
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
    fn io_error(&self) -> Option<io::Error> {
        self.error
            .as_ref()
            .map(|(kind, text)| io::Error::new(*kind, text.clone()))
    }
}

/// The per-socket data of a stream socket (shared with its [`SocketStream`]).
#[derive(Default, Clone)]
pub struct StreamData(Arc<Mutex<State>>);

impl StreamData {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct AcceptQueue {
    queue: Mutex<(VecDeque<SocketStream>, Vec<Waker>)>,
}

/// The handlers behind every stream socket.
struct StreamHandler {
    accepted: Option<Arc<AcceptQueue>>,
}

impl Handler for StreamHandler {
    type Data = StreamData;

    fn open(&self, socket: &mut Socket<'_, StreamData>) {
        let Some(accepted) = &self.accepted else {
            return;
        };
        let stream = SocketStream::new(socket.data().clone(), socket.handle());
        let mut queue = accepted.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.0.len() >= ACCEPT_QUEUE {
            tracing::warn!("stream accept queue full; closing the new connection");
            drop(queue);
            drop(stream); // closes it
            return;
        }
        queue.0.push_back(stream);
        for w in queue.1.drain(..) {
            w.wake();
        }
    }

    fn data(&self, socket: &mut Socket<'_, StreamData>, bytes: &[u8]) {
        let data = socket.data().clone();
        let mut st = data.lock();
        if st.read > 0 && st.read >= st.inbound_len {
            // Drop what was read once it outweighs what was not (amortised: each byte moves
            // at most once), so the buffer stays bounded by about twice the unread bytes.
            let read = st.read;
            st.inbound.drain(..read);
            st.read = 0;
        }
        st.inbound.extend_from_slice(bytes);
        st.inbound_len += bytes.len();
        if st.inbound_len >= READ_LIMIT && !st.paused {
            st.paused = true;
            socket.pause();
        }
        st.wake_reader();
    }

    fn drain(&self, socket: &mut Socket<'_, StreamData>) {
        let mut st = socket.data().lock();
        st.backpressured = false;
        st.wake_writer();
    }

    fn end(&self, socket: &mut Socket<'_, StreamData>) {
        let mut st = socket.data().lock();
        st.eof = true;
        st.wake_reader();
    }

    fn timeout(&self, socket: &mut Socket<'_, StreamData>) {
        let mut st = socket.data().lock();
        if st.read_waker.is_some() && st.error.is_none() {
            // A read is waiting: it fails, as a socket read timeout would. The socket stays.
            let w = st.read_waker.take();
            st.error = Some((io::ErrorKind::TimedOut, "idle timeout".into()));
            drop(st);
            if let Some(w) = w {
                w.wake();
            }
        }
    }

    fn close(&self, socket: &mut Socket<'_, StreamData>, error: Option<&CloseError>) {
        let mut st = socket.data().lock();
        st.closed = true;
        if let Some(e) = error {
            let kind = match e {
                CloseError::TlsTruncated => io::ErrorKind::UnexpectedEof,
                e => e.kind(),
            };
            st.error.get_or_insert((kind, e.to_string()));
        }
        st.wake_reader();
        st.wake_writer();
    }
}

struct Inner {
    data: StreamData,
    handle: SocketHandle<StreamData>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.handle.close();
    }
}

/// A socket as an async byte stream. Clone it to read and write from two tasks (both clones
/// are the same stream); the socket closes when the last clone is dropped.
#[derive(Clone)]
pub struct SocketStream {
    inner: Arc<Inner>,
    /// `poll_close` sent our FIN.
    ended: bool,
}

impl std::fmt::Debug for SocketStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketStream")
            .field("handle", &self.inner.handle)
            .finish()
    }
}

impl SocketStream {
    fn new(data: StreamData, handle: SocketHandle<StreamData>) -> Self {
        SocketStream {
            inner: Arc::new(Inner { data, handle }),
            ended: false,
        }
    }

    /// The socket under the stream (TLS information, addresses, options...).
    pub fn handle(&self) -> &SocketHandle<StreamData> {
        &self.inner.handle
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> &Addr {
        self.inner.handle.remote_addr()
    }

    /// Our address.
    pub fn local_addr(&self) -> &Addr {
        self.inner.handle.local_addr()
    }

    /// Arms the idle timeout (zero disarms): a read pending that long without traffic fails
    /// with `TimedOut`.
    pub fn set_timeout(&self, duration: Duration) {
        self.inner.handle.set_timeout(duration);
    }

    /// Bytes received and not read yet (at most about [`READ_LIMIT`] plus one read).
    pub fn buffered_inbound(&self) -> usize {
        self.inner.data.lock().inbound_len
    }

    /// Reads into `buf`; `Ok(0)` is the end of the stream.
    pub fn poll_read_bytes(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.inner.data.lock();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if st.inbound_len > 0 {
            let n = st.inbound_len.min(buf.len());
            let start = st.read;
            buf[..n].copy_from_slice(&st.inbound[start..start + n]);
            st.read += n;
            if st.read == st.inbound.len() {
                st.inbound.clear();
                st.read = 0;
                if st.inbound.capacity() > RETAIN_INBOUND {
                    // After a burst, an idle stream keeps no burst-sized buffer.
                    st.inbound = Vec::new();
                }
            }
            st.inbound_len -= n;
            if st.paused && st.inbound_len <= READ_LIMIT / 2 {
                st.paused = false;
                self.inner.handle.resume();
            }
            return Poll::Ready(Ok(n));
        }
        if let Some(e) = st.io_error() {
            if e.kind() == io::ErrorKind::TimedOut {
                // Reported once; the socket lives on.
                st.error = None;
            }
            return Poll::Ready(Err(e));
        }
        if st.eof || st.closed {
            return Poll::Ready(Ok(0));
        }
        st.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Writes all of `buf` (or waits for `drain` first if the last write reached the
    /// high-water mark).
    pub fn poll_write_bytes(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.inner.data.lock();
        if st.closed {
            return Poll::Ready(Err(st
                .io_error()
                .unwrap_or_else(|| io::ErrorKind::BrokenPipe.into())));
        }
        if st.backpressured {
            st.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        // The state lock is held across the write so a `drain` cannot slip in between the
        // write and the flag (it would be lost, and the next write would wait forever).
        match self.inner.handle.write(buf) {
            Ok(status) => {
                st.backpressured = status.is_backpressured();
                Poll::Ready(Ok(buf.len()))
            }
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    /// Waits until the OS took every byte written.
    pub fn poll_flush_bytes(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.inner.data.lock();
        if st.closed {
            return match st.io_error() {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Ready(Ok(())),
            };
        }
        if self.inner.handle.buffered_amount() == 0 || self.ended {
            return Poll::Ready(Ok(()));
        }
        st.backpressured = true;
        st.write_waker = Some(cx.waker().clone());
        self.inner.handle.request_drain();
        Poll::Pending
    }

    /// `end()`: flush what was written, then FIN; reading goes on until the peer's end.
    pub fn poll_close_bytes(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.ended {
            self.ended = true;
            self.inner.handle.end();
        }
        Poll::Ready(Ok(()))
    }
}

impl futures_io::AsyncRead for SocketStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_read_bytes(cx, buf)
    }
}

impl futures_io::AsyncWrite for SocketStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_bytes(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_bytes(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_close_bytes(cx)
    }
}

#[cfg(feature = "tokio")]
impl tokio::io::AsyncRead for SocketStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = std::task::ready!(this.poll_read_bytes(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tokio")]
impl tokio::io::AsyncWrite for SocketStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_bytes(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_bytes(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_close_bytes(cx)
    }
}

/// A listener whose connections are [`SocketStream`]s, taken with [`accept`](Self::accept).
pub struct StreamListener<R: Runtime> {
    listener: Listener<R, StreamData>,
    queue: Arc<AcceptQueue>,
}

impl<R: Runtime> StreamListener<R> {
    /// The next connection (in accept order). Fails once the listener is stopped and every
    /// accepted connection was taken.
    pub async fn accept(&self) -> io::Result<SocketStream> {
        poll_fn(|cx| {
            let mut queue = self.queue.queue.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(stream) = queue.0.pop_front() {
                return Poll::Ready(Ok(stream));
            }
            if self.listener.is_stopped() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the listener is stopped",
                )));
            }
            if !queue.1.iter().any(|w| w.will_wake(cx.waker())) {
                queue.1.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// The listener under the streams (`local_addr`, `port`, `stop`, `set_ref`...).
    pub fn listener(&self) -> &Listener<R, StreamData> {
        &self.listener
    }

    /// Stops accepting (see [`Listener::stop`]); pending `accept`s fail.
    pub fn stop(&self, close_active: bool) {
        self.listener.stop(close_active);
        let wakers =
            std::mem::take(&mut self.queue.queue.lock().unwrap_or_else(|e| e.into_inner()).1);
        for w in wakers {
            w.wake();
        }
    }
}

/// Listens like [`listen`](crate::listen), handing each connection out as a [`SocketStream`]
/// through [`StreamListener::accept`]. Half-close is on for stream sockets.
pub async fn listen_stream<R: Runtime>(
    options: ListenOptions<()>,
) -> Result<StreamListener<R>, ListenError> {
    let queue = Arc::new(AcceptQueue {
        queue: Mutex::new((VecDeque::new(), Vec::new())),
    });
    let handler = Arc::new(StreamHandler {
        accepted: Some(queue.clone()),
    });
    let options = options.allow_half_open(true).data_with(StreamData::default);
    let listener = crate::listen::<R, StreamData>(options, handler).await?;
    Ok(StreamListener { listener, queue })
}

/// Connects like [`connect`](crate::connect), as a [`SocketStream`]. Half-close is on.
pub async fn connect_stream<R: Runtime>(
    options: ConnectOptions<()>,
) -> Result<SocketStream, ConnectError> {
    let data = StreamData::default();
    let options = options.allow_half_open(true).data(data.clone());
    let handle =
        crate::connect::<R, StreamData>(options, Arc::new(StreamHandler { accepted: None }))
            .await?;
    Ok(SocketStream::new(data, handle))
}
