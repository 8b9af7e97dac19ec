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

mod capture;
pub mod config;
mod error;
mod info;
pub(crate) mod session;
mod verify;

pub use config::{ClientTls, ClientTlsOptions, Pem, ServerTls, ServerTlsOptions, SniCert};
pub use error::{ExportError, TlsConfigError, TlsError};
pub use info::{CipherSuite, TlsInfo, TlsVersion};
