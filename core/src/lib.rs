//! The sans-IO core of sansock: every rule of a Bun-style TCP socket, with no IO.
//!
//! `sansock-core` holds pure state machines. It never opens a socket, reads a clock, spawns a
//! thread or depends on an async runtime; the adapters (`sansock-tokio`, ...) move bytes and
//! readiness between the OS and this crate. Lifecycle, ordering, backpressure, half-close and
//! timeouts are decided here, once, and tested deterministically in memory.
//!
//! # Layers
//!
//! - [`Connection`]: one connection as a plain `&mut` state machine (inputs `handle_*`, user
//!   operations, outputs `poll_*`). No handlers, no locks.
//! - [`Driver`]: what an adapter's IO task owns for one socket. It wraps the connection in a
//!   small shared state (so [`SocketHandle`]s can write from anywhere), owns the user data and
//!   runs the [`Handler`] for each event, catching panics.
//! - [`ListenerShared`]: a listener's live sockets, `stop`, `reload`, `set_tls` and ref/unref.
//! - [`Sink`]: the send buffer with a high-water mark, also usable on its own.
//!
//! # The driving contract (how to write an adapter)
//!
//! **Creating.** For an accepted socket call [`ListenerShared::accept`]`(now, addrs, data)`; it
//! returns `None` if the listener was stopped (drop the socket). For a connected client call
//! [`Driver::connected`]. Either way `Open` is queued: call [`Driver::dispatch`] to run `open`.
//! For a failed connect, call [`report_connect_error`] instead; never create a driver.
//!
//! **One turn of the IO loop**, repeated until [`Driver::close_action`] is `Some`:
//! 1. `now = Instant::now()`; [`Driver::handle_timeout`]`(now)`. Time only enters as these
//!    arguments; the core never reads a clock. (This call also delivers TLS data that was
//!    read while the socket was paused, once it is resumed: its deadline is then due at once.)
//! 2. While [`Driver::interest`]`().read` and the socket is readable: read into a buffer (it
//!    may be shared by every socket of the thread: the core never keeps it) and call
//!    [`Driver::handle_read`]`(now, &mut buf[..n])` (TLS records are decrypted inside it, so the
//!    buffer's contents change); on `n == 0` call [`Driver::handle_eof`]; on an
//!    error call [`Driver::handle_io_error`]. Cap the reads per turn so one busy socket cannot
//!    starve the others.
//! 3. [`Driver::transmit`]`(now, write)`: the core hands `write` slices of every buffered byte
//!    (everything written during the dispatches of this turn: automatic corking) for one
//!    vectored write (a plain `send` when there is one slice, as always for TLS); `write`
//!    returns `None` when the socket would block. Then if
//!    [`Driver::poll_fin`]`(now)` is true, shut down the write side (send FIN).
//! 4. Apply [`Driver::take_options`] (`TCP_NODELAY`, keep-alive) to the OS socket.
//! 5. If [`Driver::close_action`] is `Some`, drop the socket (with `SO_LINGER` 0 first for
//!    [`CloseAction::Reset`]) and end the task.
//! 6. Otherwise [`Driver::register_waker`]`(cx.waker())` and wait until one of: readable (if
//!    `interest.read`), writable (if `interest.write`), `interest.deadline`, or the waker is
//!    woken (a handle wrote, or the listener was stopped).
//!
//! Every input dispatches the events it causes before returning, in order: `open` first,
//! `close` exactly once and last, nothing after it. Handlers run with no lock held, so a
//! handler may write to any other socket.
//!
//! **Runtime shutdown.** If the IO task is dropped with the socket open (its runtime shut
//! down), dropping the [`Driver`] closes the socket with [`CloseError::RuntimeShutdown`]: `close`
//! runs once, the listener forgets the socket, and its reference is released.
//!
//! **Listeners.** The accept task polls [`ListenerShared::poll_stopped`] next to its accept;
//! once stopped it closes the OS listener. [`ListenerShared::stop`]`(true)` asks every live
//! socket to close; `reload` swaps the handlers of live and future sockets; `set_tls` swaps the
//! TLS configuration of future ones (live connections keep theirs).
//! [`RefCounter`] counts referenced listeners and sockets; `idle()` resolves when none is left.
//!
//! # The write contract: every byte, or a typed error
//!
//! [`Socket::write`] takes **every** byte it is given, or none with a [`WriteError`]; it
//! never takes part of a write. Its [`WriteStatus`] says whether the send buffer is now at or
//! above the high-water mark (256 KiB by default): if it is, stop producing until `drain`, most
//! simply with [`Socket::pause_until_drain`], which stops reading and resumes it right before
//! `drain` runs:
//!
//! ```
//! # use sansock_core::{Handler, Socket};
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = ();
//!     fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
//!         if socket.write(bytes).is_ok_and(|s| s.is_backpressured()) {
//!             socket.pause_until_drain();
//!         }
//!     }
//! }
//! ```
//!
//! Code that ignores the status loses nothing: the buffer keeps growing, up to the hard
//! ceiling `max_buffered` (16 MiB by default, per listener or connect). A write that would
//! cross it is refused whole, `error` runs with [`SocketError::BufferLimit`], the socket closes
//! with [`CloseError::BufferLimit`] (also logged through `tracing`), and the peer sees a reset,
//! not a clean end: a program never ends with `close(None)` after bytes went missing. Writes
//! after `end()` or on a closed socket return [`WriteError::Ended`] / [`WriteError::Closed`].
//!
//! Why this design: Node's `write` takes everything and returns a flag, and programs written
//! for it are correct by default; Bun's returns a count that programs routinely drop (`let _ =`
//! then cuts replies silently). Taking everything makes the first program correct; the ceiling
//! keeps memory bounded when a peer never reads, and fails loudly instead of silently. Bun's
//! exact semantics stay available as [`Socket::try_write`], which takes what fits under the
//! high-water mark and returns the count, for callers that manage their own queue.
//!
//! A handler that keeps state while writing uses [`Socket::parts`], which gives the data and
//! the socket's operations together (`data_mut()` and `write()` do not borrow-check at once).
//!
//! # Where sansock differs from Bun 1.4 (and why)
//!
//! - **`write` takes every byte.** Bun writes straight to the kernel and returns how much it
//!   took (0 once the kernel is full); the caller must keep the rest. sansock buffers all of it
//!   (see the write contract above), sends every byte it took, and fires `drain` once
//!   everything buffered has been written after the buffer reached the high-water mark.
//!   `try_write` is Bun's `write`.
//! - **TLS truncation is visible.** A TLS peer that closes TCP without `close_notify` after
//!   the handshake ends with `close(Some(CloseError::TlsTruncated))`, not a clean close.
//! - **Automatic corking.** All writes made during one dispatch go out in one vectored write.
//! - **`end()` is graceful.** Bun's `end()` on plain TCP closes at once (and drops unsent data);
//!   sansock flushes, sends FIN, keeps delivering data until the peer's FIN (at most the end
//!   linger, 10 s by default) and then closes. `close()` flushes and closes without waiting.
//! - **`end` fires on every peer FIN** (once), also after our own `shutdown()`; Bun skips it
//!   there.
//! - **The idle timeout is Node's.** Bun sweeps timeouts every 4 s and ignores IO; sansock's
//!   timeout is precise to the millisecond, is pushed back by reads and writes, fires once
//!   per arm and never closes the socket.
//! - **A panicking handler closes its socket** (after `error`), including in `data`, where Bun
//!   keeps the socket open; a socket whose handler is broken should not keep serving.
//! - **`stop(true)` is asynchronous**: each socket flushes and closes on its own task, so
//!   `close` handlers run after `stop` returns, not inside it.
//!
//! # Example: driving a connection by hand
//!
//! ```
//! use std::time::Instant;
//! use sansock_core::{Connection, ConnectionConfig, Event, WriteStatus};
//! let now = Instant::now();
//! let mut conn = Connection::new(ConnectionConfig::default(), now);
//! assert_eq!(conn.poll_event(), Some(Event::Open));
//! assert_eq!(conn.write(b"hello"), Ok(WriteStatus::Ready));
//! let mut slices = [std::io::IoSlice::new(&[]); 8];
//! let n = conn.io_slices(&mut slices);
//! assert_eq!(&*slices[0], b"hello");
//! let _ = n;
//! conn.handle_written(now, 5); // the OS took all five bytes
//! conn.handle_eof(now);        // the peer sent FIN
//! assert_eq!(conn.poll_event(), Some(Event::End));
//! assert_eq!(conn.poll_event(), None); // half-open off: our side now ends
//! assert!(conn.poll_fin(now));         // adapter: shutdown(Write)
//! assert_eq!(conn.poll_event(), Some(Event::Close(None)));
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod addr;
mod connection;
mod driver;
mod error;
pub mod framing;
mod handler;
mod jobs;
mod listener;
mod options;
mod refs;
mod sink;
mod socket;
mod timer;
pub mod tls;

pub use addr::{Addr, SocketAddrs};
pub use connection::{
    CloseAction, Connection, ConnectionConfig, Event, WriteStatus, DEFAULT_END_LINGER,
    DEFAULT_MAX_BUFFERED,
};
pub use driver::{report_connect_error, Driver, Interest};
pub use error::{CloseError, ConnectError, ListenError, SocketError, StartTlsError, WriteError};
pub use handler::Handler;
pub use jobs::{TlsReceive, Transmit};
pub use listener::ListenerShared;
pub use options::{ConnectOptions, DataFactory, Endpoint, ListenOptions, MAX_UNIX_PATH};
pub use refs::{total_referenced, Idle, RefCounter, RefGuard};
pub use sink::{Sink, DEFAULT_HIGH_WATER_MARK};
pub use socket::{Corked, Socket, SocketHandle, SocketOption, SocketRef};

pub use bytes::Bytes;

#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "sim")]
pub mod test_certs;
