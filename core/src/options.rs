//! `listen` and `connect` options, shared by every adapter (Bun's `SocketOptions`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::connection::{ConnectionConfig, DEFAULT_END_LINGER, DEFAULT_MAX_BUFFERED};
use crate::error::{ConnectError, ListenError};
use crate::sink::DEFAULT_HIGH_WATER_MARK;
use crate::tls::{ClientTlsOptions, ServerTlsOptions};

/// Longest Unix socket path the OS accepts, in bytes without the NUL: `sun_path` is 108 bytes
/// on Linux and Android, 104 on macOS, iOS and the BSDs.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const MAX_UNIX_PATH: usize = 107;
/// Longest Unix socket path the OS accepts, in bytes without the NUL: `sun_path` is 108 bytes
/// on Linux and Android, 104 on macOS, iOS and the BSDs.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const MAX_UNIX_PATH: usize = 103;

/// Where to listen or connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A host name or IP literal, and a port (0 = the OS picks, when listening).
    Tcp {
        /// Host name or IP literal; `[::1]` brackets are accepted.
        host: String,
        /// Port number.
        port: u16,
    },
    /// A Unix socket path.
    Unix(PathBuf),
}

impl Endpoint {
    /// The host with IPv6 brackets removed.
    pub fn host(&self) -> Option<&str> {
        match self {
            Endpoint::Tcp { host, .. } => Some(
                host.strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host),
            ),
            Endpoint::Unix(_) => None,
        }
    }

    /// Checks what can be checked without IO: a non-empty host, a Unix path that is non-empty,
    /// free of NUL bytes and short enough. Returns the problem and the field it is in.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        match self {
            Endpoint::Tcp { host, .. } => {
                if self.host().is_none_or(str::is_empty) {
                    return Err(("host", "must not be empty".into()));
                }
                if host.contains('\0') {
                    return Err(("host", "must not contain NUL bytes".into()));
                }
                // Brackets are IPv6 syntax (`[::1]`, `[fe80::1%eth0]`): around anything else,
                // or unbalanced, they are a mistake, refused before anything is dialled.
                if host.starts_with('[') || host.ends_with(']') {
                    let ipv6 = host
                        .strip_prefix('[')
                        .and_then(|h| h.strip_suffix(']'))
                        .and_then(|h| h.split('%').next())
                        .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok());
                    if !ipv6 {
                        return Err((
                            "host",
                            format!("brackets are only for IPv6 literals, not {host:?}"),
                        ));
                    }
                }
                Ok(())
            }
            Endpoint::Unix(path) => {
                let bytes = path.as_os_str().as_encoded_bytes();
                if bytes.is_empty() {
                    Err(("unix", "path must not be empty".into()))
                } else if bytes.contains(&0) {
                    Err(("unix", "path must not contain NUL bytes".into()))
                } else if bytes.len() > MAX_UNIX_PATH {
                    Err((
                        "unix",
                        format!("path is {} bytes, longer than {MAX_UNIX_PATH}", bytes.len()),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') && !host.starts_with('[') => {
                write!(f, "[{host}]:{port}")
            }
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A factory for each accepted socket's initial user data.
pub type DataFactory<D> = Arc<dyn Fn() -> D + Send + Sync>;

/// Options for `listen` (Bun's `Bun.listen({...})`).
///
/// ```
/// use sansock_core::ListenOptions;
/// let opts = ListenOptions::<()>::tcp("127.0.0.1", 0).allow_half_open(true).backlog(512);
/// assert_eq!(opts.backlog, 512);
/// ```
#[non_exhaustive]
pub struct ListenOptions<D> {
    /// Where to listen.
    pub endpoint: Endpoint,
    /// See [`ConnectionConfig::allow_half_open`].
    pub allow_half_open: bool,
    /// `SO_REUSEPORT`: several listeners share the port.
    pub reuse_port: bool,
    /// `IPV6_V6ONLY` on an IPv6 listener (`::` then refuses IPv4 clients).
    pub ipv6_only: bool,
    /// Refuse to share the address with any other listener (no `SO_REUSEADDR`).
    pub exclusive: bool,
    /// The accept backlog.
    pub backlog: u32,
    /// Per-socket send buffer level at which `write` reports backpressure.
    pub high_water_mark: usize,
    /// Per-socket hard ceiling on the send buffer (16 MiB by default): a write beyond it
    /// closes the socket with `CloseError::BufferLimit`.
    pub max_buffered: usize,
    /// How long `end()` waits for the peer's FIN.
    pub end_linger: Duration,
    /// `TCP_NODELAY` on accepted sockets (default on: sansock coalesces writes itself).
    pub nodelay: bool,
    /// The initial user data of each accepted socket.
    pub data: DataFactory<D>,
    /// TLS: serve every connection over TLS with these settings.
    pub tls: Option<ServerTlsOptions>,
}

impl<D: Default + 'static> ListenOptions<D> {
    /// Listen on `host:port` (port 0: the OS picks; the listener reports the real one).
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Self::new(Endpoint::Tcp {
            host: host.into(),
            port,
        })
    }

    /// Listen on a Unix socket path. A path already in use is an error; `stop` removes the
    /// file.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self::new(Endpoint::Unix(path.into()))
    }

    fn new(endpoint: Endpoint) -> Self {
        ListenOptions {
            endpoint,
            allow_half_open: false,
            reuse_port: false,
            ipv6_only: false,
            exclusive: false,
            backlog: 1024,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            max_buffered: DEFAULT_MAX_BUFFERED,
            end_linger: DEFAULT_END_LINGER,
            nodelay: true,
            data: Arc::new(D::default),
            tls: None,
        }
    }
}

impl ListenOptions<()> {
    /// Every accepted socket starts with a clone of `data` (Bun's `data` option).
    pub fn data<D2: Clone + Send + Sync + 'static>(self, data: D2) -> ListenOptions<D2> {
        self.data_with(move || data.clone())
    }
    /// Every accepted socket starts with `make()`.
    pub fn data_with<D2>(self, make: impl Fn() -> D2 + Send + Sync + 'static) -> ListenOptions<D2> {
        ListenOptions {
            endpoint: self.endpoint,
            allow_half_open: self.allow_half_open,
            reuse_port: self.reuse_port,
            ipv6_only: self.ipv6_only,
            exclusive: self.exclusive,
            backlog: self.backlog,
            high_water_mark: self.high_water_mark,
            max_buffered: self.max_buffered,
            end_linger: self.end_linger,
            nodelay: self.nodelay,
            data: Arc::new(make),
            tls: self.tls,
        }
    }
}

impl<D> ListenOptions<D> {
    /// Sets [`allow_half_open`](Self::allow_half_open).
    pub fn allow_half_open(mut self, on: bool) -> Self {
        self.allow_half_open = on;
        self
    }
    /// Sets [`reuse_port`](Self::reuse_port).
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }
    /// Sets [`ipv6_only`](Self::ipv6_only).
    pub fn ipv6_only(mut self, on: bool) -> Self {
        self.ipv6_only = on;
        self
    }
    /// Sets [`exclusive`](Self::exclusive).
    pub fn exclusive(mut self, on: bool) -> Self {
        self.exclusive = on;
        self
    }
    /// Sets [`backlog`](Self::backlog).
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }
    /// Sets [`high_water_mark`](Self::high_water_mark).
    pub fn high_water_mark(mut self, bytes: usize) -> Self {
        self.high_water_mark = bytes.max(1);
        self
    }
    /// Sets [`max_buffered`](Self::max_buffered) (raised to the high-water mark if below it).
    pub fn max_buffered(mut self, bytes: usize) -> Self {
        self.max_buffered = bytes.max(1);
        self
    }
    /// Sets [`end_linger`](Self::end_linger).
    pub fn end_linger(mut self, linger: Duration) -> Self {
        self.end_linger = linger;
        self
    }
    /// Sets [`nodelay`](Self::nodelay).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }
    /// Serves TLS (Bun's `tls` option).
    pub fn tls(mut self, tls: ServerTlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }
    /// The per-connection settings these options give.
    pub fn connection_config(&self) -> ConnectionConfig {
        ConnectionConfig::default()
            .high_water_mark(self.high_water_mark)
            .max_buffered(self.max_buffered)
            .allow_half_open(self.allow_half_open)
            .end_linger(self.end_linger)
    }
    /// Checks the options that can be checked without IO.
    pub fn validate(&self) -> Result<(), ListenError> {
        self.endpoint
            .check()
            .map_err(|(field, problem)| ListenError::InvalidOption { field, problem })
    }
}

/// Options for `connect` (Bun's `Bun.connect({...})`).
///
/// ```
/// use sansock_core::ConnectOptions;
/// let opts = ConnectOptions::tcp("localhost", 8080).data(String::from("client-1"));
/// assert_eq!(opts.data, "client-1");
/// ```
#[non_exhaustive]
pub struct ConnectOptions<D> {
    /// Where to connect. Host names resolve; IP literals connect directly.
    pub endpoint: Endpoint,
    /// The socket's user data, visible in `connect_error` too.
    pub data: D,
    /// See [`ConnectionConfig::allow_half_open`].
    pub allow_half_open: bool,
    /// Send buffer level at which `write` reports backpressure.
    pub high_water_mark: usize,
    /// Hard ceiling on the send buffer (16 MiB by default): a write beyond it closes the
    /// socket with `CloseError::BufferLimit`.
    pub max_buffered: usize,
    /// How long `end()` waits for the peer's FIN.
    pub end_linger: Duration,
    /// `TCP_NODELAY` (default on).
    pub nodelay: bool,
    /// Give up connecting after this long (`None`: the OS decides).
    pub timeout: Option<Duration>,
    /// TLS: connect over TLS with these settings.
    pub tls: Option<ClientTlsOptions>,
}

impl<D: Default> ConnectOptions<D> {
    /// Connect to `host:port`.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Self::new(Endpoint::Tcp {
            host: host.into(),
            port,
        })
    }

    /// Connect to a Unix socket path.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self::new(Endpoint::Unix(path.into()))
    }

    fn new(endpoint: Endpoint) -> Self {
        ConnectOptions {
            endpoint,
            data: D::default(),
            allow_half_open: false,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            max_buffered: DEFAULT_MAX_BUFFERED,
            end_linger: DEFAULT_END_LINGER,
            nodelay: true,
            timeout: None,
            tls: None,
        }
    }
}

impl ConnectOptions<()> {
    /// Sets the socket's user data.
    pub fn data<D2>(self, data: D2) -> ConnectOptions<D2> {
        ConnectOptions {
            endpoint: self.endpoint,
            data,
            allow_half_open: self.allow_half_open,
            high_water_mark: self.high_water_mark,
            max_buffered: self.max_buffered,
            end_linger: self.end_linger,
            nodelay: self.nodelay,
            timeout: self.timeout,
            tls: self.tls,
        }
    }
}

impl<D> ConnectOptions<D> {
    /// Sets [`allow_half_open`](Self::allow_half_open).
    pub fn allow_half_open(mut self, on: bool) -> Self {
        self.allow_half_open = on;
        self
    }
    /// Sets [`high_water_mark`](Self::high_water_mark).
    pub fn high_water_mark(mut self, bytes: usize) -> Self {
        self.high_water_mark = bytes.max(1);
        self
    }
    /// Sets [`max_buffered`](Self::max_buffered) (raised to the high-water mark if below it).
    pub fn max_buffered(mut self, bytes: usize) -> Self {
        self.max_buffered = bytes.max(1);
        self
    }
    /// Sets [`end_linger`](Self::end_linger).
    pub fn end_linger(mut self, linger: Duration) -> Self {
        self.end_linger = linger;
        self
    }
    /// Sets [`nodelay`](Self::nodelay).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }
    /// Sets [`timeout`](Self::timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Connects over TLS (Bun's `tls` option).
    pub fn tls(mut self, tls: ClientTlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }
    /// The per-connection settings these options give.
    pub fn connection_config(&self) -> ConnectionConfig {
        ConnectionConfig::default()
            .high_water_mark(self.high_water_mark)
            .max_buffered(self.max_buffered)
            .allow_half_open(self.allow_half_open)
            .end_linger(self.end_linger)
    }
    /// Checks the options that can be checked without IO.
    pub fn validate(&self) -> Result<(), ConnectError> {
        self.endpoint
            .check()
            .map_err(|(field, problem)| ConnectError::InvalidOption { field, problem })
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;

    fn tcp(host: &str) -> Endpoint {
        Endpoint::Tcp {
            host: host.into(),
            port: 1,
        }
    }

    #[test]
    fn brackets_are_for_ipv6_literals_only() {
        for ok in ["[::1]", "::1", "[fe80::1%eth0]", "127.0.0.1", "localhost"] {
            assert_eq!(tcp(ok).check(), Ok(()), "{ok}");
        }
        for bad in [
            "[127.0.0.1]",
            "[localhost]",
            "[example.com]",
            "[::1",
            "::1]",
            "[[::1]]",
            "[]",
        ] {
            let (field, problem) = tcp(bad).check().expect_err(bad);
            assert_eq!(field, "host", "{bad}");
            assert!(!problem.is_empty());
        }
    }

    #[test]
    fn a_bracketed_ipv4_host_is_an_invalid_option_on_listen_and_connect() {
        let listen = ListenOptions::<()>::tcp("[127.0.0.1]", 0).validate();
        assert!(
            matches!(
                listen,
                Err(ListenError::InvalidOption { field: "host", .. })
            ),
            "{listen:?}"
        );
        let connect = ConnectOptions::<()>::tcp("[127.0.0.1]", 1).validate();
        assert!(
            matches!(
                connect,
                Err(ConnectError::InvalidOption { field: "host", .. })
            ),
            "{connect:?}"
        );
        assert!(ListenOptions::<()>::tcp("[::1]", 0).validate().is_ok());
        assert!(ConnectOptions::<()>::tcp("[::1]", 1).validate().is_ok());
    }

    #[test]
    fn unix_paths_up_to_the_platform_limit_are_accepted() {
        let longest = Endpoint::Unix("x".repeat(MAX_UNIX_PATH).into());
        assert_eq!(longest.check(), Ok(()));
        let longer = Endpoint::Unix("x".repeat(MAX_UNIX_PATH + 1).into());
        assert_eq!(longer.check().map_err(|(f, _)| f), Err("unix"));
    }
}
