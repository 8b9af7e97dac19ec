//! Bun's `tls` options and their rustls configurations.
//!
//! PEM comes as text, bytes, a file or a list of these ([`Pem`]). Reading files is IO, so
//! building a configuration takes the file reader as an argument: adapters pass
//! `std::fs::read`; the core never touches the file system.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::capture::{RecordingKeyLog, RecordingResolver};
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

/// The key log a configuration gets: it keeps each connection's exporter secret, and with
/// `to_file` also writes every secret to the file named by `SSLKEYLOGFILE` (opened now).
pub(crate) fn key_log(to_file: bool) -> Arc<RecordingKeyLog> {
    let file = to_file.then(|| Arc::new(rustls::KeyLogFile::new()) as Arc<dyn rustls::KeyLog>);
    Arc::new(RecordingKeyLog(file))
}

/// The documentation shared by both `key_log` options.
macro_rules! key_log_doc {
    () => {
        "Writes the session secrets of every connection to the file named by the \
         `SSLKEYLOGFILE` environment variable (NSS key log format, for Wireshark), read when the \
         configuration is built; nothing is written when it is unset. Off by default.\n\n\
         **Dangerous**: anyone who can read that file can decrypt the traffic, past and \
         future. For debugging only; never enable it in production."
    };
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

/// A rustls configuration given whole (`from_rustls`); equal only to itself (the same `Arc`).
#[derive(Clone)]
pub(crate) struct Given<T>(pub(crate) Arc<T>);

impl<T> PartialEq for Given<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Eq for Given<T> {}

impl<T> std::fmt::Debug for Given<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Given(..)")
    }
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
    #[doc = key_log_doc!()]
    pub key_log: bool,
    /// A whole rustls configuration, from [`from_rustls`](Self::from_rustls).
    given: Option<Given<ServerConfig>>,
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
            key_log: false,
            given: None,
        }
    }

    /// Serves with a rustls configuration built by hand: a FIPS crypto provider, a custom
    /// certificate resolver, other protocol versions or suites. The configuration decides
    /// everything about TLS: [`key`](Self::key), [`cert`](Self::cert) (left empty),
    /// [`sni`](Self::sni), [`ca`](Self::ca), [`request_cert`](Self::request_cert),
    /// [`alpn`](Self::alpn), [`session_tickets`](Self::session_tickets) and
    /// [`key_log`](Self::key_log) do not apply (set `config.key_log` instead); only
    /// [`handshake_timeout`](Self::handshake_timeout) does. `tls_info()` still reports the SNI
    /// name (the configuration's resolver is wrapped to record it), and exporters work with
    /// TLS 1.3 (its key log is wrapped too). `authorized` is true on the server whenever the
    /// client presented a certificate that the configuration's verifier accepted.
    pub fn from_rustls(config: Arc<ServerConfig>) -> Self {
        ServerTlsOptions {
            given: Some(Given(config)),
            ..Self::new(Pem::List(Vec::new()), Pem::List(Vec::new()))
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
    /// See [`key_log`](Self::key_log) (the field): **dangerous**, for debugging only.
    pub fn key_log(mut self, on: bool) -> Self {
        self.key_log = on;
        self
    }

    /// Builds the rustls configuration, reading PEM files with `read`.
    pub fn build(&self, read: ReadFile<'_>) -> Result<ServerTls, TlsConfigError> {
        if let Some(Given(given)) = &self.given {
            let mut config = (**given).clone();
            config.cert_resolver = Arc::new(RecordingResolver(config.cert_resolver.clone()));
            config.key_log = Arc::new(RecordingKeyLog(Some(config.key_log.clone())));
            return Ok(ServerTls {
                config: Arc::new(config),
                handshake_timeout: self.handshake_timeout,
            });
        }
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
        let resolver = Arc::new(SniResolver { default, by_name });
        let mut config = builder.with_cert_resolver(Arc::new(RecordingResolver(resolver)));
        config.alpn_protocols = self.alpn.clone();
        config.key_log = key_log(self.key_log);
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

impl ServerTls {
    /// How long a handshake may take.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
}

/// Client-side TLS options (Bun's `tls` on `connect`).
///
/// With no `ca`, the server is verified against Mozilla's root store (`webpki-roots`, the same
/// roots Bun uses); a `ca` replaces them.
///
/// **Session resumption**: an options value builds its rustls configuration once, at its first
/// `connect`, and keeps it; its clones share it. Every connection made with the same value (or a
/// clone) shares that configuration's session cache, so a second connection to a server resumes
/// the first one's session (an abbreviated handshake, [`TlsInfo::session_reused`]). Setting
/// [`server_name`](Self::server_name) or [`handshake_timeout`](Self::handshake_timeout) on a
/// clone keeps sharing; the other builder methods give the value a configuration of its own,
/// and assigning a field directly rebuilds it at the next `connect`. PEM files ([`Pem::File`])
/// are read at that build, not at every `connect`: to pick up a changed file, use a new options
/// value. Two values built separately share nothing (to connect without resumption, build a new
/// value per connection).
///
/// [`TlsInfo::session_reused`]: super::TlsInfo::session_reused
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
    #[doc = key_log_doc!()]
    pub key_log: bool,
    /// A whole rustls configuration, from [`from_rustls`](Self::from_rustls).
    given: Option<Given<ClientConfig>>,
    /// The configuration built from these options, shared by clones.
    built: BuiltClientConfig,
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
            key_log: false,
            given: None,
            built: BuiltClientConfig::default(),
        }
    }
}

/// The rustls configuration a [`ClientTlsOptions`] value built, with a copy of the options it
/// was built from: reused while the options still equal that copy. Clones share it (and so
/// the configuration's session cache). It is a cache, not content: it never makes two options
/// values unequal.
#[derive(Clone, Default)]
struct BuiltClientConfig(Arc<Mutex<Option<Built>>>);

struct Built {
    from: ClientTlsOptions,
    config: Arc<ClientConfig>,
    verifier: Option<Arc<RecordingVerifier>>,
}

impl PartialEq for BuiltClientConfig {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for BuiltClientConfig {}

impl std::fmt::Debug for BuiltClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BuiltClientConfig(..)")
    }
}

impl ClientTlsOptions {
    /// TLS verified against Mozilla's roots.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects with a rustls configuration built by hand: a FIPS crypto provider, the
    /// platform's verifier (`rustls-platform-verifier`), a client certificate resolver, other
    /// protocol versions or suites. The configuration decides everything about TLS:
    /// [`ca`](Self::ca), [`client_cert`](Self::client_cert), [`alpn`](Self::alpn),
    /// [`reject_unauthorized`](Self::reject_unauthorized) and [`key_log`](Self::key_log) do not
    /// apply (its verifier decides, and a certificate it refuses fails the handshake; set
    /// `config.key_log` instead); [`server_name`](Self::server_name) and
    /// [`handshake_timeout`](Self::handshake_timeout) do. Its session cache
    /// (`config.resumption`) is used as is, so connections resume as it allows. `authorized` is
    /// true whenever the handshake succeeds, and `authorization_error` is always `None`.
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        ClientTlsOptions {
            given: Some(Given(config)),
            ..Self::default()
        }
    }
    /// Trust exactly these roots.
    pub fn ca(mut self, ca: impl Into<Pem>) -> Self {
        self.built = BuiltClientConfig::default();
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
        self.built = BuiltClientConfig::default();
        self.cert = Some(cert.into());
        self.key = Some(key.into());
        self
    }
    /// ALPN protocols, in preference order.
    pub fn alpn<P: AsRef<[u8]>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.built = BuiltClientConfig::default();
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }
    /// See [`reject_unauthorized`](Self::reject_unauthorized).
    pub fn reject_unauthorized(mut self, on: bool) -> Self {
        self.built = BuiltClientConfig::default();
        self.reject_unauthorized = on;
        self
    }
    /// The handshake timeout.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// See [`key_log`](Self::key_log) (the field): **dangerous**, for debugging only.
    pub fn key_log(mut self, on: bool) -> Self {
        self.built = BuiltClientConfig::default();
        self.key_log = on;
        self
    }

    /// The configuration for a connection to `host`, reading PEM files with `read`. The rustls
    /// configuration is built once per options value and its clones, then reused while the
    /// options are unchanged, so connections resume sessions (see [`ClientTlsOptions`]).
    pub fn build(&self, host: &str, read: ReadFile<'_>) -> Result<ClientTls, TlsConfigError> {
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
        let mut built = self.built.0.lock().unwrap_or_else(|e| e.into_inner());
        let reusable = built.as_ref().is_some_and(|b| b.from.same_config(self));
        if !reusable {
            let (config, verifier) = self.build_config(read)?;
            *built = Some(Built {
                from: ClientTlsOptions {
                    built: BuiltClientConfig::default(),
                    ..self.clone()
                },
                config,
                verifier,
            });
        }
        let built = built.as_ref().expect("built above");
        Ok(ClientTls {
            config: built.config.clone(),
            server_name,
            handshake_timeout: self.handshake_timeout,
            verifier: built.verifier.clone(),
        })
    }

    /// Whether `other` gives the same rustls configuration (the server name and handshake
    /// timeout are per connection).
    fn same_config(&self, other: &Self) -> bool {
        let ClientTlsOptions {
            ca,
            server_name: _,
            cert,
            key,
            alpn,
            reject_unauthorized,
            handshake_timeout: _,
            key_log,
            given,
            built: _,
        } = self;
        *ca == other.ca
            && *cert == other.cert
            && *key == other.key
            && *alpn == other.alpn
            && *reject_unauthorized == other.reject_unauthorized
            && *key_log == other.key_log
            && *given == other.given
    }

    /// Builds a new rustls configuration (with rustls' default in-memory session cache).
    fn build_config(
        &self,
        read: ReadFile<'_>,
    ) -> Result<(Arc<ClientConfig>, Option<Arc<RecordingVerifier>>), TlsConfigError> {
        if let Some(Given(given)) = &self.given {
            let mut config = (**given).clone();
            config.key_log = Arc::new(RecordingKeyLog(Some(config.key_log.clone())));
            return Ok((Arc::new(config), None));
        }
        let provider = provider();
        let roots = match &self.ca {
            Some(ca) => root_store(ca, "ca", read)?,
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
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
        config.key_log = key_log(self.key_log);
        Ok((Arc::new(config), Some(verifier)))
    }
}

/// A client configuration for one connection: the options' shared rustls configuration (and
/// session cache) with the name to connect to.
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) handshake_timeout: Duration,
    /// `None` with a configuration from [`ClientTlsOptions::from_rustls`].
    pub(crate) verifier: Option<Arc<RecordingVerifier>>,
}

impl ClientTls {
    /// How long a handshake may take.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
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

    /// Hand-built rustls configurations work end to end: theirs decide (ALPN, versions), and
    /// SNI, resumption and exporters still work.
    #[cfg(feature = "sim")]
    #[test]
    fn configurations_from_rustls_work_end_to_end() {
        use crate::sim::{sim_write, Pair, PairConfig, Seen, Side, SimHandler};
        use crate::tls::{CipherSuite, ExportError, TlsVersion};

        let pki = crate::test_certs::TestPki::generate();
        let chain = Pem::from(pki.server.cert_pem.as_str())
            .certificates("cert", &no_files)
            .unwrap();
        let key = Pem::from(pki.server.key_pem.as_str())
            .private_key("key", &no_files)
            .unwrap();
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec()];
        let server = ServerTlsOptions::from_rustls(Arc::new(server))
            .build(&no_files)
            .unwrap();
        let roots = Arc::new(root_store(&Pem::from(pki.ca_pem.as_str()), "ca", &no_files).unwrap());
        let client_config = |versions: &[&'static rustls::SupportedProtocolVersion]| {
            let mut config = ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec()];
            Arc::new(config)
        };
        let connect = |client: &ClientTlsOptions| {
            let hello = SimHandler::new(|seen, s| {
                if *seen == Seen::Open {
                    sim_write(s, b"hello").unwrap();
                }
            });
            let echo = SimHandler::new(|seen, s| {
                if let Seen::Data(bytes) = seen {
                    let _ = sim_write(s, bytes);
                }
            });
            let tls = (
                server.clone(),
                client.build("localhost", &no_files).unwrap(),
            );
            let mut p = Pair::with_tls(PairConfig::default(), Some(tls), echo, hello);
            p.run();
            p.check().unwrap();
            assert_eq!(p.end(Side::Client).log().received, b"hello");
            p
        };
        let info = |p: &Pair, side| p.end(side).handle().tls_info().unwrap();
        let export = |p: &Pair, side| {
            p.end(side)
                .handle()
                .export_keying_material(b"EXPORTER-test", None, 32)
        };

        let client = ClientTlsOptions::from_rustls(client_config(&[&rustls::version::TLS13]));
        let p = connect(&client);
        let ci = info(&p, Side::Client);
        assert_eq!(ci.alpn_protocol.as_deref(), Some(&b"h2"[..]));
        assert_eq!(ci.version, Some(TlsVersion::Tls13));
        assert!(ci.authorized && ci.authorization_error.is_none());
        assert!(!ci.session_reused);
        let si = info(&p, Side::Server);
        assert_eq!(si.server_name.as_deref(), Some("localhost"));
        assert_eq!(si.alpn_protocol.as_deref(), Some(&b"h2"[..]));
        assert_eq!(
            export(&p, Side::Client).unwrap(),
            export(&p, Side::Server).unwrap()
        );
        let again = connect(&client);
        assert!(info(&again, Side::Client).session_reused);
        assert!(info(&again, Side::Server).session_reused);

        // TLS 1.2, which a hand-built configuration may ask for: no exporter.
        let client = ClientTlsOptions::from_rustls(client_config(&[&rustls::version::TLS12]));
        let p = connect(&client);
        let ci = info(&p, Side::Client);
        assert_eq!(ci.version, Some(TlsVersion::Tls12));
        assert_eq!(ci.version.unwrap().to_string(), "TLSv1.2");
        assert_eq!(
            ci.cipher_suite,
            Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
        );
        assert_eq!(
            export(&p, Side::Client),
            Err(ExportError::Unsupported {
                version: TlsVersion::Tls12
            })
        );
    }
}
