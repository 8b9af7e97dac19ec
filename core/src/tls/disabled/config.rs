//! Without the `tls` feature: the TLS option types exist, so code naming them compiles, but
//! none can be made (they have no values). Enable the `tls` feature (on by default) for TLS.

use std::path::Path;
use std::time::Duration;

use crate::tls::TlsConfigError;

/// PEM input (TLS is compiled out: enable the `tls` feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {}

/// A certificate for an SNI name (TLS is compiled out: enable the `tls` feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SniCert {}

/// Server TLS options (TLS is compiled out: enable the `tls` feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTlsOptions {}

/// Client TLS options (TLS is compiled out: enable the `tls` feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientTlsOptions {}

/// A built server configuration (TLS is compiled out: enable the `tls` feature).
#[derive(Debug, Clone)]
pub enum ServerTls {}

/// A built client configuration (TLS is compiled out: enable the `tls` feature).
#[derive(Debug, Clone)]
pub enum ClientTls {}

impl ServerTlsOptions {
    /// Never called: no value of this type exists.
    pub fn build(
        &self,
        _: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<ServerTls, TlsConfigError> {
        match *self {}
    }
}

impl ClientTlsOptions {
    /// Never called: no value of this type exists.
    pub fn build(
        &self,
        _: &str,
        _: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<ClientTls, TlsConfigError> {
        match *self {}
    }
}

impl ServerTls {
    pub(crate) fn handshake_timeout(&self) -> Duration {
        match *self {}
    }
}

impl ClientTls {
    pub(crate) fn handshake_timeout(&self) -> Duration {
        match *self {}
    }
}
