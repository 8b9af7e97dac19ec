//! Bun-style TCP and Unix sockets on async-std.
//!
//! async-std is discontinued upstream (its maintainers point to smol). This adapter is kept
//! deliberately thin: async-std runs on the same async-io reactor as smol, so it reuses
//! `sansock-smol`'s streams, listeners and timers and only swaps in async-std's task spawner.
//! It passes the same conformance suite as every other adapter. New code should prefer
//! `sansock-smol` or `sansock-tokio`.
//!
//! ```
//! use sansock_async_std::{connect, listen, ConnectOptions, Handler, ListenOptions, Socket};
//!
//! /// The server: echoes every byte. `write` takes all of it (sent in one write once the
//! /// handler returns); past the high-water mark, reading stops until the client catches up.
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = ();
//!     fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
//!         if socket.write(bytes).is_ok_and(|s| s.is_backpressured()) {
//!             socket.pause_until_drain();
//!         }
//!     }
//! }
//!
//! /// The client: says hello, checks the echo, ends.
//! struct Hello;
//! impl Handler for Hello {
//!     type Data = Vec<u8>; // what came back
//!     fn open(&self, socket: &mut Socket<'_, Vec<u8>>) {
//!         // An error here (the socket closed) also reaches `close`, with the reason.
//!         socket.write(b"hello").ok();
//!     }
//!     fn data(&self, socket: &mut Socket<'_, Vec<u8>>, bytes: &[u8]) {
//!         // `parts()`: the per-socket data and the writer at once.
//!         let (echoed, out) = socket.parts();
//!         echoed.extend_from_slice(bytes);
//!         if echoed.len() == 5 {
//!             out.end();
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! async_std::task::block_on(async {
//! let listener = listen(ListenOptions::tcp("127.0.0.1", 0), Echo).await?;
//! let port = listener.port().unwrap();
//! connect(ConnectOptions::tcp("127.0.0.1", port).data(Vec::new()), Hello).await?;
//! // Like a Bun process: wait until nothing referenced is left (the unref'd listener
//! // does not count), then stop the listener.
//! listener.set_ref(false);
//! sansock_async_std::idle().await;
//! listener.stop(true);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use sansock_core::RefCounter;
pub use sansock_core::{
    Addr, Bytes, CloseError, ConnectError, ConnectOptions, Endpoint, Handler, ListenError,
    ListenOptions, Socket, SocketError, SocketHandle, WriteError,
};
use sansock_io::setup::BoundListener;
use sansock_io::Runtime;
use sansock_smol::reactor;

static REFS: RefCounter = RefCounter::new();

/// The async-std runtime: async-std tasks, async-io reactor.
#[derive(Debug, Clone, Copy)]
pub struct AsyncStd;

impl Runtime for AsyncStd {
    type Stream = sansock_smol::Stream;
    type Acceptor = sansock_smol::Listening;
    type Timer = sansock_smol::AsyncIoTimer;

    fn refs() -> &'static RefCounter {
        &REFS
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
        async_std::task::spawn(future);
    }
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send {
        async_std::task::sleep(duration)
    }
    fn acceptor(listener: BoundListener) -> io::Result<Self::Acceptor> {
        reactor::acceptor(listener)
    }
    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        use async_std::net::ToSocketAddrs;
        Ok((host, port).to_socket_addrs().await?.collect())
    }
    fn connect_tcp(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        reactor::connect_tcp(addr)
    }
    fn connect_unix(path: &Path) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        reactor::connect_unix(path)
    }
    async fn timeout<F: Future + Send>(limit: Duration, future: F) -> Option<F::Output> {
        async_std::future::timeout(limit, future).await.ok()
    }
}

sansock_io::adapter_api!(AsyncStd);
