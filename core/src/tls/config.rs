//! Bun's `tls` options and their rustls configurations.
//!
//! PEM comes as text, bytes, a file or a list of these ([`Pem`]). Reading files is IO, so
//! building a configuration takes the file reader as an argument: adapters pass
//! `std::fs::read`; the core never touches the file system.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::error::TlsConfigError;
use super::verify::RecordingVerifier;

/// How long a TLS handshake may take by default before the connection is dropped.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a PEM file; adapters pass `std::fs::read`.
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> io::Result<Vec<u8>>;

/// PEM input: a string, bytes, a file, or a list of these (Bun's `string | Buffer | BunFile |
/// Array`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    /// PEM text.
    Text(String),
    /// PEM bytes.
    Bytes(Vec<u8>),
    /// A PEM file, read when the listener or connection is set up.
    File(PathBuf),
    /// Several sources, in order.
    List(Vec<Pem>),
}

impl Pem {
    /// A PEM file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Pem::File(path.into())
    }

    fn blobs(
        &self,
        field: &'static str,
        read: ReadFile<'_>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), TlsConfigError> {
        match self {
            Pem::Text(s) => out.push(s.as_bytes().to_vec()),
            Pem::Bytes(b) => out.push(b.clone()),
            Pem::File(path) => out.push(read(path).map_err(|e| TlsConfigError::Unreadable {
                field,
                path: path.display().to_string(),
                kind: e.kind(),
            })?),
            Pem::List(list) if list.is_empty() => return Err(TlsConfigError::EmptyList { field }),
            Pem::List(list) => {
                for p in list {
                    p.blobs(field, read, out)?;
                }
            }
        }
        Ok(())
    }

    /// Every certificate, in order.
    fn certificates(
        &self,
        field: &'static str,
        read: ReadFile<'_>,
    ) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
        let mut blobs = Vec::new();
        self.blobs(field, read, &mut blobs)?;
        let mut certs = Vec::new();
        for blob in &blobs {
            for cert in CertificateDer::pem_slice_iter(blob) {
                certs.push(cert.map_err(|e| TlsConfigError::BadPem {
                    field,
                    reason: e.to_string(),
                })?);
            }
        }
        if certs.is_empty() {
            return Err(TlsConfigError::NoPemBlock {
                field,
                expected: "CERTIFICATE",
                looks_like_path: self.path_given_as_text(),
            });
        }
        Ok(certs)
    }

    /// The first private key.
    fn private_key(
        &self,
        field: &'static str,
        read: ReadFile<'_>,
    ) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
        let mut blobs = Vec::new();
        self.blobs(field, read, &mut blobs)?;
        for blob in &blobs {
            match PrivateKeyDer::from_pem_slice(blob) {
                Ok(key) => return Ok(key),
                Err(rustls::pki_types::pem::Error::NoItemsFound) => continue,
                Err(e) => {
                    return Err(TlsConfigError::BadPem {
                        field,
                        reason: e.to_string(),
                    })
                }
            }
        }
        Err(TlsConfigError::NoPemBlock {
            field,
            expected: "PRIVATE KEY",
            looks_like_path: self.path_given_as_text(),
        })
    }

    /// The first text (or bytes) source that looks like a file path rather than PEM, as in
    /// `ServerTlsOptions::new("key.pem", "cert.pem")`: short, one line, no `-----BEGIN`, and
    /// ending in a certificate or key file extension or containing a path separator.
    fn path_given_as_text(&self) -> Option<String> {
        let text = match self {
            Pem::Text(s) => s.as_str(),
            Pem::Bytes(b) => std::str::from_utf8(b).ok()?,
            Pem::File(_) => return None,
            Pem::List(list) => return list.iter().find_map(Pem::path_given_as_text),
        };
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let looks_like_path = !text.is_empty()
            && text.len() <= 1024
            && !text.contains(['\n', '\r'])
            && !text.contains("-----BEGIN")
            && ([".pem", ".crt", ".key", ".cer"]
                .iter()
                .any(|ext| lower.ends_with(ext))
                || text.contains(['/', '\\']));
        looks_like_path.then(|| text.to_owned())
    }
}

impl From<&str> for Pem {
    fn from(s: &str) -> Self {
        Pem::Text(s.to_owned())
    }
}
impl From<String> for Pem {
    fn from(s: String) -> Self {
        Pem::Text(s)
    }
}
impl From<&[u8]> for Pem {
    fn from(b: &[u8]) -> Self {
        Pem::Bytes(b.to_vec())
    }
}
impl From<Vec<u8>> for Pem {
    fn from(b: Vec<u8>) -> Self {
        Pem::Bytes(b)
    }
}
impl From<&Path> for Pem {
    fn from(p: &Path) -> Self {
        Pem::File(p.to_owned())
    }
}
impl From<PathBuf> for Pem {
    fn from(p: PathBuf) -> Self {
        Pem::File(p)
    }
}
impl From<Vec<Pem>> for Pem {
    fn from(list: Vec<Pem>) -> Self {
        Pem::List(list)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified_key(
    field_key: &'static str,
    field_cert: &'static str,
    key: &Pem,
    cert: &Pem,
    read: ReadFile<'_>,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsConfigError> {
    let chain = cert.certificates(field_cert, read)?;
    let key = key.private_key(field_key, read)?;
    let signing =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsConfigError::BadKey {
                field: field_key,
                reason: e.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(_)) => {
            Err(TlsConfigError::KeyMismatch { field: field_key })
        }
        Err(e) => Err(TlsConfigError::BadCertificate {
            field: field_cert,
            reason: e.to_string(),
        }),
    }
}

fn root_store(
    ca: &Pem,
    field: &'static str,
    read: ReadFile<'_>,
) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in ca.certificates(field, read)? {
        roots
            .add(cert)
            .map_err(|e| TlsConfigError::BadCertificate {
                field,
                reason: e.to_string(),
            })?;
    }
    Ok(roots)
}

/// A certificate served to clients asking for `name` through SNI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniCert {
    /// The server name (case-insensitive, exact match).
    pub name: String,
    /// Its private key.
    pub key: Pem,
    /// Its certificate chain.
    pub cert: Pem,
}

/// Server-side TLS options (Bun's `tls` on `listen`).
///
/// ```
/// use sansock_core::tls::ServerTlsOptions;
/// # let (key_pem, cert_pem) = ("", "");
/// let tls = ServerTlsOptions::new(key_pem, cert_pem).alpn(["h2", "http/1.1"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerTlsOptions {
    /// The default private key.
    pub key: Pem,
    /// The default certificate chain (leaf first).
    pub cert: Pem,
    /// More key/cert pairs, chosen by the SNI name the client sends.
    pub sni: Vec<SniCert>,
    /// Trusted roots for client certificates (with `request_cert`).
    pub ca: Option<Pem>,
    /// Ask clients for a certificate and require a valid one (mutual TLS).
    pub request_cert: bool,
    /// ALPN protocols, in preference order.
    pub alpn: Vec<Vec<u8>>,
    /// How long a handshake may take.
    pub handshake_timeout: Duration,
    /// Issue session tickets so clients can resume (on by default).
    pub session_tickets: bool,
}

impl ServerTlsOptions {
    /// A server key and certificate chain. A string is PEM *text*: to read files, pass
    /// [`Pem::file`]`("key.pem")` (a string that looks like a path fails with a
    /// [`TlsConfigError::NoPemBlock`] that says so).
    pub fn new(key: impl Into<Pem>, cert: impl Into<Pem>) -> Self {
        ServerTlsOptions {
            key: key.into(),
            cert: cert.into(),
            sni: Vec::new(),
            ca: None,
            request_cert: false,
            alpn: Vec::new(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            session_tickets: true,
        }
    }
    /// Adds a certificate for SNI name `name`.
    pub fn sni(
        mut self,
        name: impl Into<String>,
        key: impl Into<Pem>,
        cert: impl Into<Pem>,
    ) -> Self {
        self.sni.push(SniCert {
            name: name.into(),
            key: key.into(),
            cert: cert.into(),
        });
        self
    }
    /// Trusted roots for client certificates.
    pub fn ca(mut self, ca: impl Into<Pem>) -> Self {
        self.ca = Some(ca.into());
        self
    }
    /// Requires a valid client certificate (needs [`ca`](Self::ca)).
    pub fn request_cert(mut self, on: bool) -> Self {
        self.request_cert = on;
        self
    }
    /// ALPN protocols, in preference order.
    pub fn alpn<P: AsRef<[u8]>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }
    /// The handshake timeout.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// Session tickets on or off.
    pub fn session_tickets(mut self, on: bool) -> Self {
        self.session_tickets = on;
        self
    }

    /// Builds the rustls configuration, reading PEM files with `read`.
    pub fn build(&self, read: ReadFile<'_>) -> Result<ServerTls, TlsConfigError> {
        let provider = provider();
        let default = certified_key("key", "cert", &self.key, &self.cert, read, &provider)?;
        let mut by_name = HashMap::new();
        for sni in &self.sni {
            let key = certified_key("sni.key", "sni.cert", &sni.key, &sni.cert, read, &provider)?;
            by_name.insert(sni.name.to_ascii_lowercase(), key);
        }
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
        let builder = if self.request_cert {
            let ca = self.ca.as_ref().ok_or(TlsConfigError::Missing {
                field: "ca",
                with: "request_cert",
            })?;
            let roots = Arc::new(root_store(ca, "ca", read)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_cert_resolver(Arc::new(SniResolver { default, by_name }));
        config.alpn_protocols = self.alpn.clone();
        if self.session_tickets {
            config.ticketer = rustls::crypto::ring::Ticketer::new()
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
        }
        Ok(ServerTls {
            config: Arc::new(config),
            handshake_timeout: self.handshake_timeout,
        })
    }
}

/// Picks the certificate by SNI name, falling back to the default.
#[derive(Debug)]
struct SniResolver {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello
            .server_name()
            .and_then(|name| self.by_name.get(&name.to_ascii_lowercase()));
        Some(chosen.unwrap_or(&self.default).clone())
    }
}

/// A built server configuration, shared by every connection of a listener.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) handshake_timeout: Duration,
}

/// Client-side TLS options (Bun's `tls` on `connect`).
///
/// With no `ca`, the server is verified against Mozilla's root store (`webpki-roots`, the same
/// roots Bun uses); a `ca` replaces them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientTlsOptions {
    /// Trusted roots; `None` means Mozilla's.
    pub ca: Option<Pem>,
    /// The name to verify and send as SNI; defaults to the host connected to.
    pub server_name: Option<String>,
    /// A client certificate chain, for mutual TLS.
    pub cert: Option<Pem>,
    /// The client certificate's private key.
    pub key: Option<Pem>,
    /// ALPN protocols, in preference order.
    pub alpn: Vec<Vec<u8>>,
    /// Refuse a server whose certificate does not verify (default `true`). **Setting it to
    /// `false` is dangerous**: anyone on the path can impersonate the server. The connection
    /// then proceeds and `handshake` still reports why the certificate was not trusted.
    pub reject_unauthorized: bool,
    /// How long a handshake may take.
    pub handshake_timeout: Duration,
}

impl Default for ClientTlsOptions {
    fn default() -> Self {
        ClientTlsOptions {
            ca: None,
            server_name: None,
            cert: None,
            key: None,
            alpn: Vec::new(),
            reject_unauthorized: true,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl ClientTlsOptions {
    /// TLS verified against Mozilla's roots.
    pub fn new() -> Self {
        Self::default()
    }
    /// Trust exactly these roots.
    pub fn ca(mut self, ca: impl Into<Pem>) -> Self {
        self.ca = Some(ca.into());
        self
    }
    /// Verify and send this name instead of the host.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }
    /// A client certificate and key (mutual TLS).
    pub fn client_cert(mut self, cert: impl Into<Pem>, key: impl Into<Pem>) -> Self {
        self.cert = Some(cert.into());
        self.key = Some(key.into());
        self
    }
    /// ALPN protocols, in preference order.
    pub fn alpn<P: AsRef<[u8]>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }
    /// See [`reject_unauthorized`](Self::reject_unauthorized).
    pub fn reject_unauthorized(mut self, on: bool) -> Self {
        self.reject_unauthorized = on;
        self
    }
    /// The handshake timeout.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Builds the configuration for a connection to `host`, reading PEM files with `read`.
    pub fn build(&self, host: &str, read: ReadFile<'_>) -> Result<ClientTls, TlsConfigError> {
        let provider = provider();
        let roots = match &self.ca {
            Some(ca) => root_store(ca, "ca", read)?,
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        let server_name = ServerName::try_from(name.to_owned()).map_err(|_| {
            TlsConfigError::InvalidServerName {
                name: name.to_owned(),
            }
        })?;
        let verifier = Arc::new(RecordingVerifier::new(
            Arc::new(roots),
            provider.clone(),
            self.reject_unauthorized,
        )?);
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone());
        let mut config = match (&self.cert, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(TlsConfigError::Missing {
                    field: "key",
                    with: "cert",
                })
            }
            (None, Some(_)) => {
                return Err(TlsConfigError::Missing {
                    field: "cert",
                    with: "key",
                })
            }
            (Some(cert), Some(key)) => {
                let certified = certified_key("key", "cert", key, cert, read, &provider)?;
                builder
                    .with_client_auth_cert(certified.cert.clone(), key.private_key("key", read)?)
                    .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
            }
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(ClientTls {
            config: Arc::new(config),
            server_name,
            handshake_timeout: self.handshake_timeout,
            verifier,
        })
    }
}

/// A built client configuration for one connection.
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) verifier: Arc<RecordingVerifier>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(_: &Path) -> io::Result<Vec<u8>> {
        Err(io::ErrorKind::NotFound.into())
    }

    #[test]
    fn a_path_given_as_pem_text_hints_at_pem_file() {
        let e = ServerTlsOptions::new("key.pem", "cert.pem")
            .build(&no_files)
            .unwrap_err();
        assert_eq!(
            e,
            TlsConfigError::NoPemBlock {
                field: "cert",
                expected: "CERTIFICATE",
                looks_like_path: Some("cert.pem".to_owned()),
            }
        );
        assert!(
            e.to_string().contains(r#"use Pem::file("cert.pem")"#),
            "{e}"
        );
        let e = Pem::from("/etc/ssl/private/server")
            .private_key("key", &no_files)
            .unwrap_err();
        assert!(
            matches!(
                &e,
                TlsConfigError::NoPemBlock { field: "key", looks_like_path: Some(p), .. }
                    if p == "/etc/ssl/private/server"
            ),
            "{e}"
        );
        let listed = Pem::List(vec![
            Pem::Text("garbage".into()),
            Pem::from(&b"ca.CRT\n"[..]),
        ]);
        assert_eq!(listed.path_given_as_text().as_deref(), Some("ca.CRT"));
    }

    #[test]
    fn pem_text_that_is_not_a_path_gets_no_hint() {
        for text in [
            "garbage",
            "",
            "-----BEGIN CERTIFICATE-----\nnot/base64.pem\n-----END CERTIFICATE-----\n",
            "two lines\nkey.pem",
        ] {
            let e = Pem::from(text).certificates("ca", &no_files).unwrap_err();
            assert!(
                matches!(
                    e,
                    TlsConfigError::NoPemBlock {
                        looks_like_path: None,
                        ..
                    }
                ) | matches!(e, TlsConfigError::BadPem { .. }),
                "{text:?}: {e}"
            );
            assert!(!e.to_string().contains("Pem::file"), "{text:?}: {e}");
        }
        assert_eq!(Pem::file("key.pem").path_given_as_text(), None);
    }
}
