//! TLS errors: configuration problems and handshake or verification failures.

use std::io;

/// Why a TLS handshake failed, or why a peer certificate was not trusted (reported with a
/// successful handshake when `reject_unauthorized` is off).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate chain does not lead to a trusted root (includes self-signed).
    #[error("certificate issuer is unknown (untrusted chain)")]
    UnknownIssuer,
    /// The certificate is not valid for the name connected to.
    #[error("certificate is not valid for the requested server name")]
    NameMismatch,
    /// The certificate has expired.
    #[error("certificate has expired")]
    Expired,
    /// The certificate is not valid yet.
    #[error("certificate is not valid yet")]
    NotValidYet,
    /// The certificate was revoked.
    #[error("certificate was revoked")]
    Revoked,
    /// A signature in the chain is invalid.
    #[error("certificate signature is invalid")]
    BadSignature,
    /// Any other certificate problem.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// The peer presented no certificate where one was required (mutual TLS).
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
    /// The peer sent a fatal alert (for example it rejected our certificate).
    #[error("the peer sent a fatal alert: {0}")]
    PeerAlert(String),
    /// The peer sent bytes that are not valid TLS (plain text to a TLS port, say).
    #[error("TLS protocol error: {0}")]
    Protocol(String),
    /// The peers share no protocol version, cipher suite or ALPN protocol.
    #[error("the peers are incompatible: {0}")]
    Incompatible(String),
    /// The handshake did not finish within the handshake timeout.
    #[error("the TLS handshake timed out")]
    HandshakeTimeout,
    /// The peer closed the connection before the handshake finished.
    #[error("the peer closed the connection during the TLS handshake")]
    ClosedDuringHandshake,
    /// Any other TLS failure.
    #[error("TLS error: {0}")]
    Other(String),
}

impl TlsError {
    /// Classifies a rustls error.
    #[cfg(feature = "tls")]
    pub fn from_rustls(error: &rustls::Error) -> Self {
        use rustls::{CertificateError as C, Error as E};
        match error {
            E::InvalidCertificate(c) => match c {
                C::UnknownIssuer => TlsError::UnknownIssuer,
                C::NotValidForName | C::NotValidForNameContext { .. } => TlsError::NameMismatch,
                C::Expired | C::ExpiredContext { .. } => TlsError::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => TlsError::NotValidYet,
                C::Revoked => TlsError::Revoked,
                C::BadSignature => TlsError::BadSignature,
                other => TlsError::InvalidCertificate(format!("{other:?}")),
            },
            E::NoCertificatesPresented => TlsError::NoPeerCertificate,
            E::AlertReceived(alert) => TlsError::PeerAlert(format!("{alert:?}")),
            E::InvalidMessage(m) => TlsError::Protocol(format!("{m:?}")),
            E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
                TlsError::Protocol(error.to_string())
            }
            E::PeerMisbehaved(m) => TlsError::Protocol(format!("{m:?}")),
            E::PeerIncompatible(m) => TlsError::Incompatible(format!("{m:?}")),
            E::NoApplicationProtocol => TlsError::Incompatible(error.to_string()),
            other => TlsError::Other(other.to_string()),
        }
    }
}

impl From<TlsError> for io::Error {
    fn from(e: TlsError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Why keying material could not be exported
/// ([`SocketHandle::export_keying_material`](crate::SocketHandle::export_keying_material)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The socket is plain TCP.
    #[error("not a TLS socket")]
    NotTls,
    /// The TLS handshake has not completed (or failed).
    #[error("the TLS handshake has not completed")]
    HandshakeNotDone,
    /// The session's protocol version has no exporter here: sansock exports from TLS 1.3
    /// sessions only.
    #[error("keying material export is not supported over {version}")]
    Unsupported {
        /// The negotiated version.
        version: super::TlsVersion,
    },
    /// The requested length is zero or more than the exporter can produce (255 hash lengths).
    #[error("cannot export {len} bytes of keying material")]
    InvalidLength {
        /// The requested length.
        len: usize,
    },
    /// The label is longer than TLS allows (249 bytes).
    #[error("exporter label too long ({len} bytes)")]
    InvalidLabel {
        /// The label's length.
        len: usize,
    },
}

impl From<ExportError> for io::Error {
    fn from(e: ExportError) -> Self {
        let kind = match e {
            ExportError::NotTls | ExportError::HandshakeNotDone => io::ErrorKind::NotConnected,
            ExportError::Unsupported { .. } => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

/// A TLS option that cannot be used, naming the field and the problem. Returned by `listen` and
/// `connect` before any socket is opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// No PEM block of the expected kind was found.
    #[error(
        "tls.{field}: no PEM {expected} block found{}",
        path_hint(.looks_like_path.as_deref())
    )]
    NoPemBlock {
        /// The option (`key`, `cert`, `ca`, ...).
        field: &'static str,
        /// What was looked for (`CERTIFICATE`, `PRIVATE KEY`).
        expected: &'static str,
        /// The PEM text given, when it looks like a file path instead (`"key.pem"`,
        /// `"/etc/ssl/cert.crt"`): a string is PEM *text*; a file is [`Pem::file`]. The message
        /// then says so.
        ///
        /// [`Pem::file`]: super::Pem::file
        looks_like_path: Option<String>,
    },
    /// The PEM was malformed.
    #[error("tls.{field}: malformed PEM: {reason}")]
    BadPem {
        /// The option.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A PEM file could not be read.
    #[error("tls.{field}: cannot read {path}: {kind}")]
    Unreadable {
        /// The option.
        field: &'static str,
        /// The file.
        path: String,
        /// The IO error's kind.
        kind: io::ErrorKind,
    },
    /// An empty list was given.
    #[error("tls.{field}: empty list")]
    EmptyList {
        /// The option.
        field: &'static str,
    },
    /// The private key cannot be used (unsupported algorithm or malformed).
    #[error("tls.{field}: unusable private key: {reason}")]
    BadKey {
        /// The option.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The private key does not match the certificate.
    #[error("tls.{field}: the private key does not match the certificate")]
    KeyMismatch {
        /// The option.
        field: &'static str,
    },
    /// A certificate in `ca` could not be used as a trust anchor.
    #[error("tls.{field}: unusable certificate: {reason}")]
    BadCertificate {
        /// The option.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// `key` and `cert` must come together.
    #[error("tls.{field} is required with tls.{with}")]
    Missing {
        /// The missing option.
        field: &'static str,
        /// The option that requires it.
        with: &'static str,
    },
    /// The server name is not a valid DNS name or IP address.
    #[error("tls.server_name: invalid name {name:?}")]
    InvalidServerName {
        /// The name.
        name: String,
    },
    /// rustls refused the configuration.
    #[error("tls: {0}")]
    Rustls(String),
}

/// The end of [`TlsConfigError::NoPemBlock`]'s message when the text looked like a path.
fn path_hint(looks_like_path: Option<&str>) -> String {
    match looks_like_path {
        Some(path) => format!(
            "; {path:?} looks like a file path, but strings are PEM text: \
             use Pem::file({path:?}) to read the file"
        ),
        None => String::new(),
    }
}

impl From<TlsConfigError> for io::Error {
    fn from(e: TlsConfigError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}
