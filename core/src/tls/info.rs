//! What a TLS handshake negotiated.

use std::fmt;

use super::error::TlsError;

/// What a TLS socket negotiated, readable after its handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The ALPN protocol agreed on, if any.
    pub alpn_protocol: Option<Vec<u8>>,
    /// The protocol version (Bun's `getTLSVersion()`; displays as `"TLSv1.3"`).
    pub version: Option<TlsVersion>,
    /// The cipher suite (Bun's `getCipher()`; displays as its IANA name, e.g.
    /// `"TLS_AES_256_GCM_SHA384"`).
    pub cipher_suite: Option<CipherSuite>,
    /// The SNI name the client asked for (server side) or sent (client side).
    pub server_name: Option<String>,
    /// The peer's certificate chain as DER, leaf first (empty when it sent none).
    pub peer_certificates: Vec<Vec<u8>>,
    /// Whether the peer's certificate was verified (client side: the server's; server side:
    /// the client's, with `request_cert`).
    pub authorized: bool,
    /// Why the peer's certificate was not trusted, when `reject_unauthorized` was off.
    pub authorization_error: Option<TlsError>,
    /// Whether the handshake resumed an earlier session (an abbreviated handshake; Bun's
    /// `isSessionReused()`). A client resumes when it connects again with the same
    /// `ClientTlsOptions` value (or a clone); a resumed session keeps the first one's peer
    /// certificates and verification result.
    pub session_reused: bool,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl TlsVersion {
    /// The name Bun and OpenSSL use: `"TLSv1.2"` or `"TLSv1.3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }

    #[cfg(feature = "tls")]
    pub(crate) fn from_rustls(version: rustls::ProtocolVersion) -> Option<Self> {
        match version {
            rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TLS cipher suite, by its IANA code point.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CipherSuite(u16);

impl CipherSuite {
    /// TLS 1.3 `TLS_AES_128_GCM_SHA256`.
    pub const TLS_AES_128_GCM_SHA256: Self = CipherSuite(0x1301);
    /// TLS 1.3 `TLS_AES_256_GCM_SHA384`.
    pub const TLS_AES_256_GCM_SHA384: Self = CipherSuite(0x1302);
    /// TLS 1.3 `TLS_CHACHA20_POLY1305_SHA256`.
    pub const TLS_CHACHA20_POLY1305_SHA256: Self = CipherSuite(0x1303);
    /// TLS 1.2 `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    pub const TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: Self = CipherSuite(0xc02b);
    /// TLS 1.2 `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`.
    pub const TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: Self = CipherSuite(0xc02c);
    /// TLS 1.2 `TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256`.
    pub const TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: Self = CipherSuite(0xcca9);
    /// TLS 1.2 `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
    pub const TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: Self = CipherSuite(0xc02f);
    /// TLS 1.2 `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`.
    pub const TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: Self = CipherSuite(0xc030);
    /// TLS 1.2 `TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256`.
    pub const TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: Self = CipherSuite(0xcca8);

    /// The suite with IANA code point `id`.
    pub const fn from_id(id: u16) -> Self {
        CipherSuite(id)
    }

    /// Its IANA code point (`0x1302` for `TLS_AES_256_GCM_SHA384`).
    pub const fn id(self) -> u16 {
        self.0
    }

    /// Its IANA name (Bun's `getCipher().standardName`), or `"unknown"` for a code point
    /// without one here.
    pub fn as_str(self) -> &'static str {
        match self.0 {
            0x1301 => "TLS_AES_128_GCM_SHA256",
            0x1302 => "TLS_AES_256_GCM_SHA384",
            0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
            0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            _ => "unknown",
        }
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            "unknown" => write!(f, "unknown (0x{:04x})", self.0),
            name => f.write_str(name),
        }
    }
}

impl fmt::Debug for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CipherSuite({self})")
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[test]
    fn names_match_rustls_code_points() {
        use rustls::CipherSuite as R;
        for (ours, theirs) in [
            (
                CipherSuite::TLS_AES_128_GCM_SHA256,
                R::TLS13_AES_128_GCM_SHA256,
            ),
            (
                CipherSuite::TLS_AES_256_GCM_SHA384,
                R::TLS13_AES_256_GCM_SHA384,
            ),
            (
                CipherSuite::TLS_CHACHA20_POLY1305_SHA256,
                R::TLS13_CHACHA20_POLY1305_SHA256,
            ),
            (
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                R::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ),
            (
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                R::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ),
            (
                CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                R::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
            (
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                R::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ),
            (
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                R::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ),
            (
                CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                R::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
        ] {
            assert_eq!(ours.id(), u16::from(theirs));
            // rustls spells TLS 1.3 suites `TLS13_*`; IANA spells them `TLS_*`.
            let rustls_name = theirs.as_str().unwrap().replace("TLS13_", "TLS_");
            assert_eq!(ours.as_str(), rustls_name);
        }
        // Every suite the ring provider offers has a name.
        for suite in rustls::crypto::ring::ALL_CIPHER_SUITES {
            let id = u16::from(suite.suite());
            assert_ne!(CipherSuite::from_id(id).as_str(), "unknown", "0x{id:04x}");
        }
        assert_eq!(CipherSuite::from_id(0xffff).to_string(), "unknown (0xffff)");
        assert_eq!(TlsVersion::Tls13.to_string(), "TLSv1.3");
        assert_eq!(TlsVersion::Tls12.to_string(), "TLSv1.2");
    }
}
