//! Bun-style TCP and TLS sockets on smol: [`listen`] and [`connect`] with one shared set of
//! handlers per listener, typed per-socket data, honest backpressure and automatic corking,
//! driven by the sans-IO [`sansock_core`]. Sockets run as tasks on smol's global executor, their
//! IO on the async-io reactor.
//!
//! ```toml
//! [dependencies]
//! sansock-smol = "0.1"
//! smol = "2"
//! ```
//!
//! # One program, any runtime
//!
//! Every sansock adapter has the same API, [`run`] included: it builds the runtime, runs your
//! program, then waits until nothing referenced is left (a Bun process), counting only what
//! that program started. Written against an alias, a program changes runtime by one line:
//!
//! ```no_run
//! use sansock_smol as sansock; // `use sansock_tokio as sansock;` is the whole switch
//! # struct Echo;
//! # impl sansock::Handler for Echo { type Data = (); }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     sansock::run(async {
//!         let listener = sansock::listen(sansock::ListenOptions::tcp("127.0.0.1", 7000), Echo).await?;
//!         println!("listening on {}", listener.local_addr());
//!         Ok(()) // then serves until the listener is stopped
//!     })
//! }
//! ```
//!
//! In a runtime you build yourself, call [`listen`] and [`connect`] as below and [`idle`] where a
//! Bun process would exit.
//!
//! # A server and a client
//!
//! A [`Handler`] is Bun's `socket: { open, data, drain, ... }` object: implement the events you
//! need, the others do nothing. One value serves every socket of a listener; per-socket state is
//! its `Data` type.
//!
//! ```
//! use sansock_smol::{connect, listen, ConnectOptions, Handler, ListenOptions, Socket};
//!
//! /// The server: echoes every byte.
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = ();
//!     fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
//!         // `write` takes every byte (sent in one write once the handler returns). Past the
//!         // high-water mark, stop reading until the client has caught up: `drain` resumes.
//!         if socket.write(bytes).is_ok_and(|s| s.is_backpressured()) {
//!             socket.pause_until_drain();
//!         }
//!     }
//! }
//!
//! /// The client: says hello, collects the echo, ends.
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
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     smol::block_on(async {
//!         let listener = listen(ListenOptions::tcp("127.0.0.1", 0), Echo).await?;
//!         let port = listener.port().unwrap();
//!         connect(ConnectOptions::tcp("127.0.0.1", port).data(Vec::new()), Hello).await?;
//!         // Like a Bun process: wait until nothing referenced is left (the unref'd listener does
//!         // not count), then stop the listener.
//!         listener.set_ref(false);
//!         sansock_smol::idle().await;
//!         listener.stop(true);
//!         Ok(())
//!     })
//! }
//! ```
//!
//! # Backpressure: the write contract
//!
//! [`Socket::write`] takes **every** byte or none (with a [`WriteError`]): there is no short
//! write to keep track of. It says whether the send buffer reached the high-water mark (256 KiB
//! by default, `.high_water_mark(n)` on the options): if
//! [`is_backpressured()`](sansock_core::WriteStatus::is_backpressured), stop producing until
//! [`drain`](Handler::drain). A socket that relays what it reads calls
//! [`Socket::pause_until_drain`], as `Echo` above does; a producer returns and continues in
//! `drain`:
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use sansock_smol::{connect, listen, ConnectOptions, Handler, ListenOptions, Socket};
//!
//! const TOTAL: usize = 8 << 20; // 8 MiB
//!
//! /// Sends `Data` more bytes, never more than the high-water mark ahead of the peer.
//! struct Producer;
//! impl Producer {
//!     fn produce(&self, socket: &mut Socket<'_, usize>) {
//!         let chunk = [b'x'; 16 * 1024];
//!         loop {
//!             let (left, out) = socket.parts();
//!             if *left == 0 {
//!                 out.end(); // graceful: everything written is flushed first
//!                 return;
//!             }
//!             let n = chunk.len().min(*left);
//!             *left -= n;
//!             match out.write(&chunk[..n]) {
//!                 Ok(status) if status.is_backpressured() => return, // `drain` calls us again
//!                 Ok(_) => {}
//!                 Err(_) => return, // ended or closed: `close` says why
//!             }
//!         }
//!     }
//! }
//! impl Handler for Producer {
//!     type Data = usize; // bytes left to send
//!     fn open(&self, socket: &mut Socket<'_, usize>) {
//!         self.produce(socket);
//!     }
//!     fn drain(&self, socket: &mut Socket<'_, usize>) {
//!         self.produce(socket);
//!     }
//! }
//!
//! /// Counts what arrives.
//! struct Counter(Arc<AtomicUsize>);
//! impl Handler for Counter {
//!     type Data = ();
//!     fn data(&self, _socket: &mut Socket<'_, ()>, bytes: &[u8]) {
//!         self.0.fetch_add(bytes.len(), Ordering::Relaxed);
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # smol::block_on(async {
//! let listener = listen(ListenOptions::tcp("127.0.0.1", 0).data(TOTAL), Producer).await?;
//! let received = Arc::new(AtomicUsize::new(0));
//! let options = ConnectOptions::tcp("127.0.0.1", listener.port().unwrap());
//! connect(options, Counter(received.clone())).await?;
//! listener.set_ref(false);
//! sansock_smol::idle().await;
//! assert_eq!(received.load(Ordering::Relaxed), TOTAL);
//! # Ok(())
//! # })
//! # }
//! ```
//!
//! Ignoring the status loses nothing: the buffer grows, up to `max_buffered` (16 MiB by default,
//! `.max_buffered(n)`). A write that would cross it is refused whole, and the socket closes with
//! [`CloseError::BufferLimit`] and a reset to the peer, never a clean end after a silent cut.
//! Bun's own `write` (take what fits, return the count) is [`Socket::try_write`]. The full
//! contract is in [`sansock_core`'s docs](sansock_core#the-write-contract-every-byte-or-a-typed-error).
//!
//! # TLS
//!
//! TLS runs inside the core on rustls: options from [`tls`], set with `.tls(..)` on the listen
//! or connect options. Keys and certificates are [`Pem`](tls::Pem) text, bytes or files
//! ([`Pem::file`](tls::Pem::file)); a bad option is a typed
//! [`TlsConfigError`](tls::TlsConfigError) from `listen` / `connect`. Here with a certificate
//! generated for the test:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use sansock_smol::tls::{ClientTlsOptions, ServerTlsOptions, TlsError};
//! use sansock_smol::{connect, listen, ConnectOptions, Handler, ListenOptions, Socket};
//!
//! /// The server: greets and ends. Writes made before the handshake is done are queued.
//! struct Greeter;
//! impl Handler for Greeter {
//!     type Data = ();
//!     fn open(&self, socket: &mut Socket<'_, ()>) {
//!         socket.end_with(b"hello over TLS").ok();
//!     }
//! }
//!
//! /// The client: reports the handshake, keeps what it reads.
//! struct Reader(Arc<Mutex<Vec<u8>>>);
//! impl Handler for Reader {
//!     type Data = ();
//!     fn handshake(&self, socket: &mut Socket<'_, ()>, success: bool, error: Option<&TlsError>) {
//!         // Once per socket, failures included: an untrusted server gives `success == false`
//!         // and the reason (`TlsError::UnknownIssuer`, ...), and the socket closes.
//!         if !success {
//!             eprintln!("TLS handshake failed: {error:?}");
//!         } else if let Some(info) = socket.tls_info() {
//!             println!("{:?}, ALPN {:?}", info.version.map(|v| v.to_string()), info.alpn_protocol); // TLSv1.3, h2
//!         }
//!     }
//!     fn data(&self, _socket: &mut Socket<'_, ()>, bytes: &[u8]) {
//!         self.0.lock().unwrap().extend_from_slice(bytes);
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # smol::block_on(async {
//! // A self-signed certificate for `localhost`; a real server would pass
//! // `Pem::file("key.pem"), Pem::file("cert.pem")`.
//! let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
//! let (key, cert) = (generated.signing_key.serialize_pem(), generated.cert.pem());
//!
//! let tls = ServerTlsOptions::new(key, cert.clone()).alpn(["h2", "http/1.1"]);
//! let listener = listen(ListenOptions::tcp("127.0.0.1", 0).tls(tls), Greeter).await?;
//!
//! // The client trusts Mozilla's roots by default; here, exactly our certificate.
//! let tls = ClientTlsOptions::new().ca(cert).server_name("localhost").alpn(["h2"]);
//! let received = Arc::new(Mutex::new(Vec::new()));
//! let options = ConnectOptions::tcp("127.0.0.1", listener.port().unwrap()).tls(tls);
//! connect(options, Reader(received.clone())).await?;
//! listener.set_ref(false);
//! sansock_smol::idle().await;
//! assert_eq!(received.lock().unwrap().as_slice(), b"hello over TLS");
//! # Ok(())
//! # })
//! # }
//! ```
//!
//! # Coming from Bun
//!
//! | Bun | sansock-smol |
//! |---|---|
//! | `Bun.listen({hostname, port, socket, data})` | `listen(ListenOptions::tcp(host, port).data(d), handler).await` |
//! | `Bun.connect({hostname, port, socket, data})` | `connect(ConnectOptions::tcp(host, port).data(d), handler).await` |
//! | `socket: { open, data, drain, end, close, error, ... }` | `impl Handler for T`, every method optional |
//! | `socket.data` | `type Data`; `socket.data_mut()`, `socket.parts()` |
//! | `socket.write(buf)` (returns a count) | `socket.write(buf)` takes every byte; the count-returning one is `try_write` |
//! | `tls: { key, cert, ca }` | `.tls(ServerTlsOptions::new(key, cert))`, `.tls(ClientTlsOptions::new().ca(ca))` |
//! | `listener.stop(true)`, `ref()` / `unref()` | `listener.stop(true)`, `set_ref(bool)` |
//! | the process stays alive while something is referenced | `sansock_smol::idle().await` |
//!
//! Every option, event and member, with each difference from Bun and why, is in
//! [MIGRATING-FROM-BUN.md](https://github.com/sansock/sansock/blob/main/MIGRATING-FROM-BUN.md);
//! the semantics of every handler and socket operation are in [`sansock_core`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod runtime;

pub use runtime::{AsyncIoTimer, Listening, Smol, Stream};

/// The runtime-neutral pieces, for crates built on this one (the async-std adapter).
#[doc(hidden)]
pub mod reactor {
    pub use crate::runtime::{acceptor, connect_tcp, connect_unix, timeout};
}

sansock_io::adapter_api!(Smol);
