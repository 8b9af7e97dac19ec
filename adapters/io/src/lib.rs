//! The runtime-neutral half of every sansock adapter.
//!
//! An adapter implements the small [`Runtime`] trait (spawn, sleep, timers, how to register a
//! socket with its reactor, connect, resolve) and re-exports [`listen`], [`connect`] and
//! [`Listener`] for it. Everything else is here, once: binding with Bun's listen options
//! (socket2), the accept loop with back-off when descriptors run out, and the IO loop that
//! moves bytes and readiness between the OS and the core's [`Driver`](sansock_core::Driver).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod connect;
pub mod context;
pub mod io_loop;
mod listener;
mod runtime;
pub mod setup;
pub mod stream;

pub use connect::connect;
pub use context::RunOutput;
pub use listener::{listen, Listener};
pub use runtime::{Acceptor, Runtime, Timer, Transport};
pub use stream::{connect_stream, listen_stream, SocketStream, StreamListener};

/// Expands to an adapter's public entry points for `$runtime` (a [`Runtime`]): `Listener<D>`,
/// `listen`, `listen_shared`, `connect`, `connect_shared`, `idle` and `referenced_count`, so
/// every adapter offers the same API and only its runtime differs.
#[macro_export]
macro_rules! adapter_api {
    ($runtime:ty) => {
        /// TLS options and results (Bun's `tls`), from the core.
        pub use $crate::__core::tls;

        pub use $crate::__core::{
            Addr, Bytes, CloseError, ConnectError, ConnectOptions, Corked, Endpoint, Handler,
            ListenError, ListenOptions, Sink, Socket, SocketError, SocketHandle, SocketRef,
            WriteError, WriteStatus,
        };

        /// A listening socket on this runtime; see `sansock_io::Listener` for its methods.
        pub type Listener<D> = $crate::Listener<$runtime, D>;

        /// Listens on `options.endpoint` and serves every accepted socket with `handler` (Bun's
        /// `Bun.listen`). Must be called inside the adapter's runtime.
        pub async fn listen<H: $crate::__core::Handler>(
            options: $crate::__core::ListenOptions<H::Data>,
            handler: H,
        ) -> Result<Listener<H::Data>, $crate::__core::ListenError> {
            listen_shared(options, ::std::sync::Arc::new(handler)).await
        }

        /// `listen` with an already shared handler set.
        pub async fn listen_shared<D: Send + 'static>(
            options: $crate::__core::ListenOptions<D>,
            handler: ::std::sync::Arc<dyn $crate::__core::Handler<Data = D>>,
        ) -> Result<Listener<D>, $crate::__core::ListenError> {
            $crate::listen::<$runtime, D>(options, handler).await
        }

        /// Connects to `options.endpoint` and runs `handler` on the socket (Bun's `Bun.connect`).
        ///
        /// `open` runs before this returns. On failure `connect_error` runs once (never `open` or
        /// `close`) and the same error is returned.
        pub async fn connect<H: $crate::__core::Handler>(
            options: $crate::__core::ConnectOptions<H::Data>,
            handler: H,
        ) -> Result<$crate::__core::SocketHandle<H::Data>, $crate::__core::ConnectError> {
            connect_shared(options, ::std::sync::Arc::new(handler)).await
        }

        /// `connect` with an already shared handler set (reuse one for many clients).
        pub async fn connect_shared<D: Send + 'static>(
            options: $crate::__core::ConnectOptions<D>,
            handler: ::std::sync::Arc<dyn $crate::__core::Handler<Data = D>>,
        ) -> Result<$crate::__core::SocketHandle<D>, $crate::__core::ConnectError> {
            $crate::connect::<$runtime, D>(options, handler).await
        }

        /// Resolves once no referenced listener or socket is left in the current context (the
        /// enclosing [`run`], or this adapter's default outside one): the equivalent of a Bun
        /// process exiting on its own. `set_ref(false)` opts a listener or socket out. Logs a
        /// warning when it finds nothing of its own while other adapters or runtimes hold
        /// sockets (a runtime switch made in one place only).
        pub async fn idle() {
            $crate::context::idle::<$runtime>().await
        }

        /// How many referenced listeners and sockets exist now in the current context.
        pub fn referenced_count() -> usize {
            $crate::context::refs::<$runtime>().count()
        }

        /// Runs `main` on a runtime built for it, then waits until nothing it referenced is left
        /// (unless `main` returned an `Err`): a Bun process. The program's whole entry point,
        /// the same on every adapter, so that switching runtime is one `use` line:
        ///
        /// ```ignore
        /// use sansock_tokio as sansock; // or sansock_smol, sansock_async_std
        /// fn main() -> Result<(), Box<dyn std::error::Error>> {
        ///     sansock::run(async {
        ///         let listener = sansock::listen(sansock::ListenOptions::tcp("127.0.0.1", 0), Echo).await?;
        ///         println!("listening on {}", listener.local_addr());
        ///         Ok(())
        ///     })
        /// }
        /// ```
        ///
        /// Everything `main` starts counts in a context of its own: two `run`s (two runtimes,
        /// tests side by side) never wait for each other's sockets.
        pub fn run<F: ::std::future::Future>(main: F) -> F::Output
        where
            F::Output: $crate::RunOutput,
        {
            $crate::context::run::<$runtime, F>(main)
        }

        /// A connection as an async byte stream (`futures_io::AsyncRead + AsyncWrite`, and
        /// tokio's traits on the tokio adapter), for protocol crates such as hyper.
        pub use $crate::SocketStream;

        /// A listener handing out [`SocketStream`]s.
        pub type StreamListener = $crate::StreamListener<$runtime>;

        /// Listens like [`listen`], each connection a [`SocketStream`] taken with
        /// `accept().await`. Half-close is on.
        pub async fn listen_stream(
            options: $crate::__core::ListenOptions<()>,
        ) -> Result<StreamListener, $crate::__core::ListenError> {
            $crate::listen_stream::<$runtime>(options).await
        }

        /// Connects like [`connect`], as a [`SocketStream`]. Half-close is on.
        pub async fn connect_stream(
            options: $crate::__core::ConnectOptions<()>,
        ) -> Result<SocketStream, $crate::__core::ConnectError> {
            $crate::connect_stream::<$runtime>(options).await
        }

        /// Spawns a task on this adapter's runtime in the current ref-counting context (sockets
        /// it makes count where the caller's do, so [`idle`] and [`run`] wait for them).
        pub fn spawn<F: ::std::future::Future<Output = ()> + Send + 'static>(future: F) {
            $crate::context::spawn::<$runtime, F>(future)
        }
    };
}

#[doc(hidden)]
pub use sansock_core as __core;
