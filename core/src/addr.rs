//! Socket addresses: IP or Unix.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The address of one end of a socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Addr {
    /// An IPv4 or IPv6 address and port.
    Ip(SocketAddr),
    /// A Unix socket; `None` for an unnamed one (the client end, usually).
    Unix(Option<PathBuf>),
}

impl Addr {
    /// The IP address and port, when this is an IP socket.
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            Addr::Ip(a) => Some(*a),
            Addr::Unix(_) => None,
        }
    }

    /// The port, when this is an IP socket.
    pub fn port(&self) -> Option<u16> {
        self.ip().map(|a| a.port())
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Ip(a) => a.fmt(f),
            Addr::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            Addr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

impl From<SocketAddr> for Addr {
    fn from(a: SocketAddr) -> Self {
        Addr::Ip(a)
    }
}

/// Both ends of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketAddrs {
    /// Our end.
    pub local: Addr,
    /// The peer's end.
    pub remote: Addr,
}
