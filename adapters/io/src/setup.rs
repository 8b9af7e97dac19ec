//! Socket setup through socket2: binding listeners with Bun's options, classifying errors,
//! applying socket options. Nothing here waits on IO; every function is a handful of
//! non-blocking syscalls.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use sansock_core::{Endpoint, ListenError, ListenOptions, SocketOption};
use socket2::{Domain, SockAddr, SockRef, Socket, TcpKeepalive, Type};

/// A listening socket, ready to be handed to a runtime (non-blocking).
#[derive(Debug)]
pub enum BoundListener {
    /// A TCP listener.
    Tcp(std::net::TcpListener),
    /// A Unix socket listener.
    Unix(std::os::unix::net::UnixListener),
}

/// Parses `host` as an IP literal (IPv6 brackets allowed); `localhost` is 127.0.0.1, as in
/// Bun. Returns `None` for a name that needs resolving.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    host.parse().ok()
}

/// Binds and listens with the options' settings. `addrs` are the resolved addresses for a TCP
/// endpoint (the first that binds wins); ignored for a Unix endpoint.
pub fn bind<D>(
    options: &ListenOptions<D>,
    addrs: &[SocketAddr],
) -> Result<BoundListener, ListenError> {
    options.validate()?;
    match &options.endpoint {
        Endpoint::Unix(path) => bind_unix(path, options.backlog).map(BoundListener::Unix),
        Endpoint::Tcp { .. } => {
            let target = options.endpoint.to_string();
            let mut last = None;
            for addr in addrs {
                match bind_tcp(*addr, options) {
                    Ok(l) => return Ok(BoundListener::Tcp(l)),
                    Err(e) => last = Some(e),
                }
            }
            Err(match last {
                Some(e) => ListenError::from_io(&e, &target),
                None => ListenError::HostNotFound {
                    host: options.endpoint.host().unwrap_or_default().to_owned(),
                },
            })
        }
    }
}

fn bind_tcp<D>(addr: SocketAddr, options: &ListenOptions<D>) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(!options.exclusive)?;
    if options.reuse_port && !options.exclusive {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(options.ipv6_only)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(options.backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket.into())
}

fn bind_unix(path: &Path, backlog: u32) -> Result<std::os::unix::net::UnixListener, ListenError> {
    let target = path.display().to_string();
    let err = |e: io::Error| ListenError::from_io(&e, &target);
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(err)?;
    let addr = SockAddr::unix(path).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    // Never unlink: a path in use (a live or stale socket file) is the caller's to resolve.
    socket.bind(&addr).map_err(err)?;
    socket
        .listen(backlog.min(i32::MAX as u32) as i32)
        .map_err(err)?;
    Ok(socket.into())
}

/// Settings every new connection gets: non-blocking, and `TCP_NODELAY` when asked (ignored
/// on Unix sockets).
pub fn configure_stream(fd: &impl AsFd, nodelay: bool) {
    let sock = SockRef::from(fd);
    if nodelay {
        let _ = sock.set_tcp_nodelay(true);
    }
}

/// Applies a socket option requested through a socket handle. Errors are logged: a handle's
/// setter cannot report them after the fact, and they only happen on closed or non-TCP
/// sockets.
pub fn apply_option(fd: &impl AsFd, option: SocketOption) {
    let sock = SockRef::from(fd);
    let result = match option {
        SocketOption::NoDelay(on) => sock.set_tcp_nodelay(on),
        SocketOption::KeepAlive(None) => sock.set_keepalive(false),
        SocketOption::KeepAlive(Some(idle)) => {
            let idle = idle.max(Duration::from_secs(1));
            sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))
        }
        _ => Ok(()),
    };
    if let Err(e) = result {
        tracing::debug!(?option, error = %e, "socket option not applied");
    }
}

/// The local address of a connected TCP socket.
pub fn local_addr(fd: &impl AsFd) -> Option<sansock_core::Addr> {
    SockRef::from(fd)
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(sansock_core::Addr::Ip)
}

/// Half-closes: sends FIN.
pub fn shutdown_write(fd: &impl AsFd) -> io::Result<()> {
    match SockRef::from(fd).shutdown(std::net::Shutdown::Write) {
        // The peer is already gone; the read side reports it.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        r => r,
    }
}

/// Arms a reset: the close that follows sends RST instead of FIN (`SO_LINGER` 0).
pub fn reset_on_close(fd: &impl AsFd) {
    let _ = SockRef::from(fd).set_linger(Some(Duration::ZERO));
}

/// Whether an accept error means the process or system ran out of descriptors or memory: the
/// accept loop should back off and retry rather than fail.
pub fn is_resource_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc_errno::EMFILE | libc_errno::ENFILE | libc_errno::ENOBUFS | libc_errno::ENOMEM)
    )
}

/// The errno values we classify, without a libc dependency (Linux values).
mod libc_errno {
    pub const EMFILE: i32 = 24;
    pub const ENFILE: i32 = 23;
    pub const ENOBUFS: i32 = 105;
    pub const ENOMEM: i32 = 12;
}

/// How long to wait before accepting again after `attempt` resource-exhaustion errors in a
/// row: 5 ms doubling to 1 s.
pub fn accept_backoff(attempt: u32) -> Duration {
    Duration::from_millis(5u64 << attempt.min(8)).min(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_ips() {
        assert_eq!(
            literal_ip("127.0.0.1"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(literal_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal_ip("::1"), Some("::1".parse().unwrap()));
        assert_eq!(
            literal_ip("LocalHost"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(literal_ip("example.com"), None);
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(accept_backoff(0), Duration::from_millis(5));
        assert_eq!(accept_backoff(1), Duration::from_millis(10));
        assert_eq!(accept_backoff(30), Duration::from_secs(1));
    }
}
