//! Bun-style TCP and Unix sockets on tokio: `listen` and `connect` with one shared set of
//! handlers, driven by the sans-IO [`sansock_core`].
//!
//! ```no_run
//! use sansock_tokio::{listen, connect, Handler, ListenOptions, ConnectOptions, Socket};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = ();
//!     fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
//!         let _ = socket.write(bytes); // buffered; flushed once this dispatch returns
//!     }
//! }
//!
//! struct Client;
//! impl Handler for Client {
//!     type Data = ();
//!     fn open(&self, socket: &mut Socket<'_, ()>) {
//!         let _ = socket.write(b"hello");
//!     }
//!     fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
//!         println!("echoed: {}", String::from_utf8_lossy(bytes));
//!         socket.end();
//!     }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = listen(ListenOptions::tcp("127.0.0.1", 0), Echo).await?;
//! let port = listener.port().unwrap();
//! connect(ConnectOptions::tcp("127.0.0.1", port), Client).await?;
//! sansock_tokio::idle().await; // until nothing referenced is left... after:
//! listener.stop(true);
//! # Ok(()) }
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
