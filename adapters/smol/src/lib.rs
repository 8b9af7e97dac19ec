//! Bun-style TCP and Unix sockets on smol: `listen` and `connect` with one shared set of
//! handlers, driven by the sans-IO [`sansock_core`]. Sockets run on smol's global executor and
//! the async-io reactor.
//!
//! ```
//! use sansock_smol::{connect, listen, ConnectOptions, Handler, ListenOptions, Socket};
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
//! smol::block_on(async {
//! let listener = listen(ListenOptions::tcp("127.0.0.1", 0), Echo).await?;
//! let port = listener.port().unwrap();
//! connect(ConnectOptions::tcp("127.0.0.1", port).data(Vec::new()), Hello).await?;
//! // Like a Bun process: wait until nothing referenced is left (the unref'd listener
//! // does not count), then stop the listener.
//! listener.set_ref(false);
//! sansock_smol::idle().await;
//! listener.stop(true);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod runtime;

pub use runtime::{AsyncIoTimer, Listening, Smol, Stream};
pub use sansock_core::{
    Addr, Bytes, CloseError, ConnectError, ConnectOptions, Endpoint, Handler, ListenError,
    ListenOptions, Socket, SocketError, SocketHandle, WriteError,
};

/// The runtime-neutral pieces, for crates built on this one (the async-std adapter).
pub mod reactor {
    pub use crate::runtime::{acceptor, connect_tcp, connect_unix, timeout};
}

sansock_io::adapter_api!(Smol);
