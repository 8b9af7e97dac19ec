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
pub mod io_loop;
mod listener;
mod runtime;
pub mod setup;

pub use connect::connect;
pub use listener::{listen, Listener};
pub use runtime::{Acceptor, Runtime, Timer, Transport};

/// Expands to an adapter's public entry points for `$runtime` (a [`Runtime`]): `Listener<D>`,
/// `listen`, `listen_shared`, `connect`, `connect_shared`, `idle` and `referenced_count`, so
/// every adapter offers the same API and only its runtime differs.
#[macro_export]
macro_rules! adapter_api {
    ($runtime:ty) => {
        /// TLS options and results (Bun's `tls`), from the core.
        pub use $crate::__core::tls;

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

        /// Resolves once no referenced listener or socket is left: the equivalent of a Bun process
        /// exiting on its own. `set_ref(false)` opts a listener or socket out.
        pub async fn idle() {
            <$runtime as $crate::Runtime>::refs().idle().await
        }

        /// How many referenced listeners and sockets exist now.
        pub fn referenced_count() -> usize {
            <$runtime as $crate::Runtime>::refs().count()
        }
    };
}

#[doc(hidden)]
pub use sansock_core as __core;
