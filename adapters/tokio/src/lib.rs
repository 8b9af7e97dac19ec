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

mod io_loop;
mod listener;
mod stream;

use std::sync::Arc;
use std::time::Instant;

pub use listener::{listen, listen_shared, Listener};
use sansock_core::{report_connect_error, Driver, RefCounter, SocketAddrs};
pub use sansock_core::{
    Addr, Bytes, CloseError, ConnectError, ConnectOptions, Endpoint, Handler, ListenError,
    ListenOptions, Socket, SocketError, SocketHandle, WriteError,
};
use tokio::net::{TcpStream, UnixStream};

use crate::stream::Stream;

/// Referenced listeners and sockets of this adapter (Bun's "keeps the process alive").
pub(crate) static REFS: RefCounter = RefCounter::new();

/// Resolves once no referenced listener or socket is left: the equivalent of a Bun process
/// exiting on its own. `unref` (`set_ref(false)`) opts a listener or socket out.
pub async fn idle() {
    REFS.idle().await
}

/// How many referenced listeners and sockets exist now.
pub fn referenced_count() -> usize {
    REFS.count()
}

/// Connects to `options.endpoint` and runs `handler` on the socket (Bun's `Bun.connect`).
///
/// `open` runs before this returns. On failure `connect_error` runs once (never `open` or
/// `close`) and the same error is returned.
pub async fn connect<H: Handler>(
    options: ConnectOptions<H::Data>,
    handler: H,
) -> Result<SocketHandle<H::Data>, ConnectError> {
    connect_shared(options, Arc::new(handler)).await
}

/// [`connect`] with an already shared handler set (reuse one for many clients).
pub async fn connect_shared<D: Send + 'static>(
    mut options: ConnectOptions<D>,
    handler: Arc<dyn Handler<Data = D>>,
) -> Result<SocketHandle<D>, ConnectError> {
    let endpoint = options.endpoint.clone();
    let connected = match options.validate() {
        Err(e) => Err(e),
        Ok(()) => match options.timeout {
            Some(limit) => match tokio::time::timeout(limit, open_stream(&endpoint)).await {
                Ok(r) => r,
                Err(_) => Err(ConnectError::TimedOut {
                    target: options.endpoint.to_string(),
                }),
            },
            None => open_stream(&endpoint).await,
        },
    };
    let (stream, addrs) = match connected {
        Ok(c) => c,
        Err(e) => {
            report_connect_error(&*handler, &mut options.data, &e);
            return Err(e);
        }
    };
    sansock_net::configure_stream(&stream, options.nodelay);
    let config = options.connection_config();
    let mut driver = Driver::connected(handler, config, addrs, options.data, Instant::now(), &REFS);
    driver.dispatch();
    let handle = driver.handle();
    tokio::spawn(io_loop::run(stream, driver));
    Ok(handle)
}

async fn open_stream(endpoint: &Endpoint) -> Result<(Stream, SocketAddrs), ConnectError> {
    let target = endpoint.to_string();
    match endpoint {
        Endpoint::Unix(path) => {
            let s = UnixStream::connect(path)
                .await
                .map_err(|e| ConnectError::from_io(&e, &path.display().to_string()))?;
            let addrs = SocketAddrs {
                local: Addr::Unix(None),
                remote: Addr::Unix(Some(path.clone())),
            };
            Ok((Stream::Unix(s), addrs))
        }
        Endpoint::Tcp { port, .. } => {
            let host = endpoint.host().unwrap_or_default();
            let addrs: Vec<_> = match sansock_net::literal_ip(host) {
                Some(ip) => vec![(ip, *port).into()],
                None => tokio::net::lookup_host((host, *port))
                    .await
                    .map(|it| it.collect())
                    .unwrap_or_default(),
            };
            if addrs.is_empty() {
                return Err(ConnectError::HostNotFound {
                    host: host.to_owned(),
                });
            }
            let mut last = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(s) => {
                        let addrs = SocketAddrs {
                            local: s.local_addr().map(Addr::Ip).unwrap_or(Addr::Unix(None)),
                            remote: Addr::Ip(addr),
                        };
                        return Ok((Stream::Tcp(s), addrs));
                    }
                    Err(e) => last = Some(ConnectError::from_io(&e, &target)),
                }
            }
            Err(last.unwrap_or(ConnectError::HostNotFound {
                host: host.to_owned(),
            }))
        }
    }
}
