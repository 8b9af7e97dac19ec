//! Bun-style TCP and Unix sockets on smol: `listen` and `connect` with one shared set of
//! handlers, driven by the sans-IO [`sansock_core`]. Sockets run on smol's global executor and
//! the async-io reactor.
//!
//! ```no_run
//! use sansock_smol::{connect, listen, ConnectOptions, Handler, ListenOptions, Socket};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = ();
//!     fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
//!         let _ = socket.write(bytes);
//!     }
//! }
//!
//! smol::block_on(async {
//!     let listener = listen(ListenOptions::tcp("127.0.0.1", 0), Echo).await.unwrap();
//!     println!("listening on {}", listener.local_addr());
//!     sansock_smol::idle().await;
//! });
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
