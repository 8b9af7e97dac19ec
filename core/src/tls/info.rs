//! What a TLS handshake negotiated.

use super::error::TlsError;

/// What a TLS socket negotiated, readable after its handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The ALPN protocol agreed on, if any.
    pub alpn_protocol: Option<Vec<u8>>,
    /// `"TLSv1.3"` or `"TLSv1.2"`.
    pub version: Option<String>,
    /// The cipher suite, e.g. `"TLS13_AES_256_GCM_SHA384"`.
    pub cipher_suite: Option<String>,
    /// The SNI name the client asked for (server side) or sent (client side).
    pub server_name: Option<String>,
    /// The peer's certificate chain as DER, leaf first (empty when it sent none).
    pub peer_certificates: Vec<Vec<u8>>,
    /// Whether the peer's certificate was verified (client side: the server's; server side:
    /// the client's, with `request_cert`).
    pub authorized: bool,
    /// Why the peer's certificate was not trusted, when `reject_unauthorized` was off.
    pub authorization_error: Option<TlsError>,
}
