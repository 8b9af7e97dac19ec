//! The handler set: one per listener (or per client connect), shared by all its sockets.

use crate::error::{CloseError, ConnectError, SocketError};
use crate::socket::Socket;
use crate::tls::TlsError;

/// Bun's `socket: { open, data, drain, ... }` as a trait: implement the methods you need; the
/// rest are no-ops. One value serves every socket of a listener; per-socket state lives in
/// [`Handler::Data`], reachable through [`Socket::data_mut`].
///
/// Handlers run on the socket's IO task and must not block. A panic in a handler is caught:
/// that socket gets [`error`](Self::error) and then [`close`](Self::close); other sockets are
/// unaffected.
///
/// ```
/// use sansock_core::{Handler, Socket};
/// struct Echo;
/// impl Handler for Echo {
///     type Data = u64; // bytes echoed on this socket
///     fn data(&self, socket: &mut Socket<'_, u64>, bytes: &[u8]) {
///         let (echoed, out) = socket.parts(); // the data and the writer together
///         match out.write(bytes) {
///             // Every byte is buffered; above the high-water mark, stop reading until the
///             // peer has taken them (`drain` resumes reading by itself).
///             Ok(status) if status.is_backpressured() => out.pause_until_drain(),
///             Ok(_) => {}
///             Err(_) => return, // ended or closed: `close` says why
///         }
///         *echoed += bytes.len() as u64;
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait Handler: Send + Sync + 'static {
    /// The typed per-socket user data (`Bun.listen<SocketData>`).
    type Data: Send + 'static;

    /// The socket opened: accepted (server) or connected (client). Always the first event.
    fn open(&self, socket: &mut Socket<'_, Self::Data>) {}

    /// Bytes arrived. `bytes` borrows a shared read buffer: copy what you keep.
    fn data(&self, socket: &mut Socket<'_, Self::Data>, bytes: &[u8]) {}

    /// A write reported backpressure (or a `try_write` was short, or `pause_until_drain` was
    /// called), and everything buffered has since been written: produce again. Fires once per
    /// episode; after `pause_until_drain`, reading has resumed when it runs.
    fn drain(&self, socket: &mut Socket<'_, Self::Data>) {}

    /// The peer sent FIN. With `allow_half_open` off the socket ends its side once this returns
    /// (writes made here are still sent); with it on, the socket stays writable.
    fn end(&self, socket: &mut Socket<'_, Self::Data>) {}

    /// The idle timeout set with [`Socket::set_timeout`] passed. The socket stays open.
    fn timeout(&self, socket: &mut Socket<'_, Self::Data>) {}

    /// A handler of this socket failed; [`close`](Self::close) follows.
    fn error(&self, socket: &mut Socket<'_, Self::Data>, error: &SocketError) {}

    /// The socket closed: exactly once per opened socket, and nothing fires after it. `error`
    /// is `None` for a clean close.
    fn close(&self, socket: &mut Socket<'_, Self::Data>, error: Option<&CloseError>) {}

    /// TLS sockets only: the handshake finished, once per socket, failures included. With
    /// `success` false the socket closes after this returns (writes are refused). With
    /// `success` true, `authorization_error` says why the peer's certificate was not trusted
    /// when `reject_unauthorized` is off. `open` has already run (at TCP connect).
    fn handshake(
        &self,
        socket: &mut Socket<'_, Self::Data>,
        success: bool,
        authorization_error: Option<&TlsError>,
    ) {
    }

    /// A client connect failed; `open` and `close` never fire for it.
    fn connect_error(&self, data: &mut Self::Data, error: &ConnectError) {}
}
