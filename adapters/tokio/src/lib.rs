//! Bun-style TCP and Unix sockets on tokio: `listen` and `connect` with one shared set of
//! handlers, driven by the sans-IO [`sansock_core`].
//!
//! ```
//! use sansock_tokio::{connect, listen, ConnectOptions, Handler, ListenOptions, Socket};
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
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = listen(ListenOptions::tcp("127.0.0.1", 0), Echo).await?;
//! let port = listener.port().unwrap();
//! connect(ConnectOptions::tcp("127.0.0.1", port).data(Vec::new()), Hello).await?;
//! // Like a Bun process: wait until nothing referenced is left (the unref'd listener
//! // does not count), then stop the listener.
//! listener.set_ref(false);
//! sansock_tokio::idle().await;
//! listener.stop(true);
//! # Ok(())
//! # }
//! ```
//!
//! Works on the current-thread and the multi-thread runtime. See [`sansock_core`] for the
//! semantics of every handler and socket operation, and where they differ from Bun.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod runtime;

pub use runtime::Tokio;
pub use sansock_core::{
    Addr, Bytes, CloseError, ConnectError, ConnectOptions, Endpoint, Handler, ListenError,
    ListenOptions, Socket, SocketError, SocketHandle, WriteError,
};

sansock_io::adapter_api!(Tokio);
