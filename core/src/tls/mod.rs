//! TLS through rustls (ring provider), driven from memory inside the core: the adapters move
//! ciphertext exactly as they move plain bytes, and never see rustls.
//!
//! - [`config`]: Bun's `tls` options ([`ServerTlsOptions`], [`ClientTlsOptions`]) with PEM from
//!   a string, bytes, a file or a list, built into rustls configurations with typed errors.
//! - [`TlsError`]: why a handshake failed or a certificate was not trusted;
//!   [`TlsConfigError`]: why options could not be used.
//! - [`TlsInfo`]: what a handshake negotiated ([`TlsVersion`], [`CipherSuite`], SNI name,
//!   resumption); [`ExportError`]: why keying material could not be exported.
//! - `session`: one connection's rustls state, fed and drained by [`Connection`](crate::Connection).
//! - `capture`: what rustls tells the shared configuration's callbacks about one connection
//!   (its SNI name, its exporter secret).

//!
//! Without the `tls` cargo feature (on by default) rustls is not compiled: the option types
//! below exist but have no values, so no TLS listener or connection can be made.

#[cfg(feature = "tls")]
mod capture;
#[cfg(feature = "tls")]
pub mod config;
#[cfg(not(feature = "tls"))]
#[path = "disabled/config.rs"]
pub mod config;
mod error;
mod info;
#[cfg(feature = "tls")]
pub(crate) mod session;
#[cfg(not(feature = "tls"))]
#[path = "disabled/session.rs"]
pub(crate) mod session;
#[cfg(feature = "tls")]
mod verify;

pub use config::{ClientTls, ClientTlsOptions, Pem, ServerTls, ServerTlsOptions, SniCert};
pub use error::{ExportError, TlsConfigError, TlsError};
pub use info::{CipherSuite, TlsInfo, TlsVersion};
