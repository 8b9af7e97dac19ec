//! Bun-style TCP and Unix sockets on tokio: `listen` and `connect` with one shared set of
//! handlers, driven by the sans-IO [`sansock_core`].
//!
//! ```
//! use sansock_tokio::{connect, listen, ConnectOptions, Handler, ListenOptions, Socket};
//!
//! /// The server: echoes every byte (buffered, flushed once the handler returns).
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = ();
//!     fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
//!         let _ = socket.write(bytes);
//!     }
//! }
//!
//! /// The client: says hello, checks the echo, ends.
//! struct Hello;
//! impl Handler for Hello {
//!     type Data = Vec<u8>; // what came back
//!     fn open(&self, socket: &mut Socket<'_, Vec<u8>>) {
//!         let _ = socket.write(b"hello");
//!     }
//!     fn data(&self, socket: &mut Socket<'_, Vec<u8>>, bytes: &[u8]) {
//!         socket.data_mut().extend_from_slice(bytes);
//!         if socket.data().len() == 5 {
//!             socket.end();
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
