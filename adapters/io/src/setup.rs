//! Socket setup through socket2: binding listeners with Bun's options, classifying errors,
//! applying socket options. Nothing here waits on IO; every function is a handful of
//! non-blocking syscalls.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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

/// Parses `host` as an IP literal; `localhost` is 127.0.0.1, as in Bun. Brackets are IPv6
/// syntax: `[::1]` is an IPv6 literal, `[127.0.0.1]` or `[localhost]` is none. Returns `None`
/// for a name that needs resolving.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
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
    bind_unix_with(path, backlog, Socket::listen)
}

/// [`bind_unix`] with the step after `bind` given (tests inject a failing one).
fn bind_unix_with(
    path: &Path,
    backlog: u32,
    listen: impl FnOnce(&Socket, i32) -> io::Result<()>,
) -> Result<std::os::unix::net::UnixListener, ListenError> {
    let target = path.display().to_string();
    let err = |e: io::Error| ListenError::from_io(&e, &target);
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(err)?;
    let addr = SockAddr::unix(path).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    // Never unlink before binding: a path in use (a live or stale socket file) is the caller's
    // to resolve.
    socket.bind(&addr).map_err(err)?;
    // The file is ours from here: a failure leaves no socket file behind.
    if let Err(e) = listen(&socket, backlog.min(i32::MAX as u32) as i32) {
        drop(socket);
        let _ = std::fs::remove_file(path);
        return Err(err(e));
    }
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
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// How long the accept loop waits before accepting again after `failures` failed accepts in a
/// row (1 for the first), the last one `err`. Out of descriptors or memory: 5 ms doubling to
/// 1 s (only closing sockets frees what an accept needs). Any other error (a connection
/// aborted before we took it, a transient kernel error): 1 ms doubling to 100 ms, so a
/// listener whose every accept fails never spins a core. The loop resets the count on success.
pub fn accept_backoff(err: &io::Error, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(10);
    let (first, cap) = if is_resource_exhaustion(err) {
        (Duration::from_millis(5), Duration::from_secs(1))
    } else {
        (Duration::from_millis(1), Duration::from_millis(100))
    };
    (first * (1u32 << doublings)).min(cap)
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
    fn brackets_are_ipv6_only() {
        assert_eq!(literal_ip("[::1]"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(literal_ip("[127.0.0.1]"), None);
        assert_eq!(literal_ip("[localhost]"), None);
        assert_eq!(literal_ip("[]"), None);
    }

    #[test]
    fn errno_values_are_the_platforms() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(errno)));
        }
        assert!(!is_resource_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }

    #[test]
    fn max_unix_path_is_the_platforms() {
        // `sun_path` holds the path and its NUL.
        let sun_path = std::mem::size_of::<libc::sockaddr_un>()
            - std::mem::offset_of!(libc::sockaddr_un, sun_path);
        assert_eq!(sansock_core::MAX_UNIX_PATH, sun_path - 1);
        // And the kernel agrees: the longest path binds, one byte more cannot be expressed.
        let dir = std::env::temp_dir().join(format!("sansock-max-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = format!("{}/", dir.display());
        let fill = sansock_core::MAX_UNIX_PATH - prefix.len();
        let longest = std::path::PathBuf::from(prefix.clone() + &"x".repeat(fill));
        let bound = bind_unix(&longest, 1);
        let _ = std::fs::remove_file(&longest);
        let _ = std::fs::remove_dir(&dir);
        bound.unwrap();
        assert!(SockAddr::unix(prefix + &"x".repeat(fill + 1)).is_err());
    }

    #[test]
    fn backoff_on_exhaustion_grows_from_5_ms_and_caps_at_1_s() {
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(accept_backoff(&emfile, 1), Duration::from_millis(5));
        assert_eq!(accept_backoff(&emfile, 2), Duration::from_millis(10));
        assert_eq!(accept_backoff(&emfile, 30), Duration::from_secs(1));
        assert_eq!(accept_backoff(&emfile, u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn backoff_on_any_other_error_grows_from_1_ms_and_caps_at_100_ms() {
        for e in [
            io::Error::from_raw_os_error(libc::ECONNABORTED),
            io::Error::from_raw_os_error(libc::EPROTO),
            io::Error::other("not an OS error"),
        ] {
            assert_eq!(accept_backoff(&e, 1), Duration::from_millis(1), "{e}");
            assert_eq!(accept_backoff(&e, 2), Duration::from_millis(2), "{e}");
            assert_eq!(accept_backoff(&e, 8), Duration::from_millis(100), "{e}");
            assert_eq!(accept_backoff(&e, u32::MAX), Duration::from_millis(100));
        }
    }

    #[test]
    fn a_failure_after_bind_removes_the_socket_file() {
        let path = std::env::temp_dir().join(format!("sansock-bind-fail-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let result = bind_unix_with(&path, 1, |socket, _| {
            // The file exists once bound; then listen fails.
            assert!(path.exists());
            assert!(socket.local_addr().is_ok());
            Err(io::Error::from_raw_os_error(libc::EADDRINUSE))
        });
        let exists = path.exists();
        let _ = std::fs::remove_file(&path);
        assert!(
            matches!(result, Err(ListenError::AddrInUse { .. })),
            "{result:?}"
        );
        assert!(!exists, "the socket file was left behind");
        // The ordinary path still binds and keeps its file.
        let listener = bind_unix(&path, 1).unwrap();
        assert!(path.exists());
        drop(listener);
        let _ = std::fs::remove_file(&path);
    }
}
