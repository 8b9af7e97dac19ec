//! Bun-style TCP and Unix sockets on smol: `listen` and `connect` with one shared set of
//! handlers, driven by the sans-IO [`sansock_core`]. Sockets run on smol's global executor and
//! the async-io reactor.
//!
//! ```
//! use sansock_smol::{connect, listen, ConnectOptions, Handler, ListenOptions, Socket};
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
