//! Typed errors: one small enum per operation, each convertible to [`std::io::Error`].

use std::io;

/// The OS's own message for an error code ("Address not available (os error 99)"), or the
/// kind's description when there is no code.
fn os_message(kind: io::ErrorKind, code: Option<i32>) -> String {
    match code {
        Some(code) => io::Error::from_raw_os_error(code).to_string(),
        None => kind.to_string(),
    }
}

/// Why a [`write`](crate::Socket::write) (or `end` with data) was refused. No byte of a refused
/// write is sent.
///
/// A write that is merely backpressured is not an error: `write` takes every byte and returns
/// [`WriteStatus::Backpressured`](crate::WriteStatus::Backpressured) (`try_write` returns a
/// short count), and `drain` fires once everything buffered is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Taking the bytes would have put more than `limit` bytes in the send buffer (the
    /// socket's `max_buffered`): the peer is not reading. The socket is now closed with
    /// [`CloseError::BufferLimit`], after `error` ran with [`SocketError::BufferLimit`].
    #[error(
        "send buffer limit: {refused} bytes refused with {buffered} already buffered \
         (max_buffered {limit}); the socket is closed"
    )]
    BufferLimit {
        /// Bytes buffered when the write came.
        buffered: usize,
        /// Bytes the refused write offered (none of them is sent).
        refused: usize,
        /// The socket's `max_buffered`.
        limit: usize,
    },
    /// The write side was closed by `end`, `shutdown` or `close` (or by the peer's FIN when
    /// `allow_half_open` is off); nothing more can be sent.
    #[error("socket write side has ended")]
    Ended,
    /// The socket is closed.
    #[error("socket is closed")]
    Closed,
}

impl From<WriteError> for io::Error {
    fn from(e: WriteError) -> Self {
        let kind = match e {
            WriteError::Ended => io::ErrorKind::BrokenPipe,
            WriteError::Closed => io::ErrorKind::NotConnected,
            WriteError::BufferLimit { .. } => io::ErrorKind::OutOfMemory,
        };
        io::Error::new(kind, e)
    }
}

/// Why a socket closed, passed to the `close` handler (`None` there means a clean close).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseError {
    /// The peer reset the connection (ECONNRESET).
    #[error("connection reset by peer")]
    Reset,
    /// The peer had already closed when we wrote (EPIPE).
    #[error("broken pipe")]
    BrokenPipe,
    /// The operating system timed the connection out (for example TCP keep-alive).
    #[error("connection timed out")]
    TimedOut,
    /// A handler panicked; the socket was closed after its `error` handler ran.
    #[error("a handler panicked: {0}")]
    HandlerPanicked(String),
    /// A write would have buffered more than `max_buffered` bytes (the peer stopped reading):
    /// the write was refused, buffered bytes were dropped and the connection reset.
    #[error(
        "send buffer limit: a write of {refused} bytes refused with {buffered} buffered \
         (max_buffered {limit}); buffered bytes dropped"
    )]
    BufferLimit {
        /// Bytes buffered (and dropped) when the write came.
        buffered: usize,
        /// Bytes the refused write offered.
        refused: usize,
        /// The socket's `max_buffered`.
        limit: usize,
    },
    /// TLS: the peer closed the TCP connection without sending `close_notify` first. Every
    /// byte it sent was delivered, but it may have meant to send more (a truncation attack
    /// looks the same). Many clients close this way; protocols that frame their own messages
    /// (HTTP with a length) can treat it as a clean close.
    #[error("TLS peer closed without close_notify (possible truncation)")]
    TlsTruncated,
    /// The socket's IO task was dropped while it was open: its runtime shut down. The OS
    /// socket was closed; bytes still buffered were not sent.
    #[error("the runtime shut down with the socket open")]
    RuntimeShutdown,
    /// Any other IO failure, with the OS error code when there was one.
    #[error("io error: {}", os_message(*kind, *code))]
    Io {
        /// The error's kind.
        kind: io::ErrorKind,
        /// The raw OS error code, if any.
        code: Option<i32>,
    },
}

impl CloseError {
    /// Classifies an IO error from a read, write or shutdown on the socket.
    pub fn from_io(err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => CloseError::Reset,
            io::ErrorKind::BrokenPipe => CloseError::BrokenPipe,
            io::ErrorKind::TimedOut => CloseError::TimedOut,
            kind => CloseError::Io {
                kind,
                code: err.raw_os_error(),
            },
        }
    }

    /// The [`io::ErrorKind`] closest to this error.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            CloseError::Reset => io::ErrorKind::ConnectionReset,
            CloseError::BrokenPipe => io::ErrorKind::BrokenPipe,
            CloseError::TimedOut => io::ErrorKind::TimedOut,
            CloseError::HandlerPanicked(_) | CloseError::RuntimeShutdown => io::ErrorKind::Other,
            CloseError::BufferLimit { .. } => io::ErrorKind::OutOfMemory,
            CloseError::TlsTruncated => io::ErrorKind::UnexpectedEof,
            CloseError::Io { kind, .. } => *kind,
        }
    }
}

impl From<CloseError> for io::Error {
    fn from(e: CloseError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

/// An error reported to the `error` handler. The socket is closed right after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// The named handler panicked with the given message.
    #[error("the `{handler}` handler panicked: {message}")]
    HandlerPanicked {
        /// Which handler (`"open"`, `"data"`, ...).
        handler: &'static str,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// The TLS session failed after its handshake (a bad record, say).
    #[error("TLS failure: {0}")]
    Tls(crate::tls::TlsError),
    /// A write would have buffered more than `max_buffered` bytes; see
    /// [`CloseError::BufferLimit`], which follows.
    #[error(
        "send buffer limit: a write of {refused} bytes refused with {buffered} buffered \
         (max_buffered {limit})"
    )]
    BufferLimit {
        /// Bytes buffered when the write came.
        buffered: usize,
        /// Bytes the refused write offered.
        refused: usize,
        /// The socket's `max_buffered`.
        limit: usize,
    },
}

impl From<SocketError> for io::Error {
    fn from(e: SocketError) -> Self {
        io::Error::other(e)
    }
}

/// Why a STARTTLS upgrade (`Socket::start_tls_server` / `start_tls_client`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartTlsError {
    /// The socket already speaks TLS.
    #[error("the socket already speaks TLS")]
    AlreadyTls,
    /// The socket is closing or closed, or its peer has ended: nothing to secure.
    #[error("the socket is not open in both directions")]
    NotOpen,
    /// A TLS session could not be started with the given configuration.
    #[error("cannot start a TLS session: {0}")]
    Session(crate::tls::TlsError),
}

impl From<StartTlsError> for io::Error {
    fn from(e: StartTlsError) -> Self {
        let kind = match e {
            StartTlsError::AlreadyTls | StartTlsError::Session(_) => io::ErrorKind::InvalidInput,
            StartTlsError::NotOpen => io::ErrorKind::NotConnected,
        };
        io::Error::new(kind, e)
    }
}

/// Why a client connect failed; passed to `connect_error` and returned by `connect`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Nothing listens there (ECONNREFUSED).
    #[error("connection refused by {target}")]
    Refused {
        /// What was connected to (`host:port` or a Unix path).
        target: String,
    },
    /// The host name did not resolve to any address.
    #[error("host not found: {host}")]
    HostNotFound {
        /// The host name as given.
        host: String,
    },
    /// The Unix socket path does not exist (ENOENT).
    #[error("unix socket path not found: {path}")]
    PathNotFound {
        /// The path as given.
        path: String,
    },
    /// The connect did not complete in time.
    #[error("connect to {target} timed out")]
    TimedOut {
        /// What was connected to.
        target: String,
    },
    /// The options were invalid (the named field and the problem).
    #[error("invalid connect option `{field}`: {problem}")]
    InvalidOption {
        /// The option's name.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The TLS options cannot be used.
    #[error(transparent)]
    TlsConfig(#[from] crate::tls::TlsConfigError),
    /// Any other IO failure.
    #[error("connect to {target} failed: {}", os_message(*kind, *code))]
    Io {
        /// What was connected to.
        target: String,
        /// The error's kind.
        kind: io::ErrorKind,
        /// The raw OS error code, if any.
        code: Option<i32>,
    },
}

impl ConnectError {
    /// Classifies the IO error of a failed connect to `target`.
    pub fn from_io(err: &io::Error, target: &str) -> Self {
        let target = target.to_owned();
        match err.kind() {
            io::ErrorKind::ConnectionRefused => ConnectError::Refused { target },
            io::ErrorKind::NotFound => ConnectError::PathNotFound { path: target },
            io::ErrorKind::TimedOut => ConnectError::TimedOut { target },
            kind => ConnectError::Io {
                target,
                kind,
                code: err.raw_os_error(),
            },
        }
    }

    /// The [`io::ErrorKind`] closest to this error.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            ConnectError::Refused { .. } => io::ErrorKind::ConnectionRefused,
            ConnectError::HostNotFound { .. } | ConnectError::PathNotFound { .. } => {
                io::ErrorKind::NotFound
            }
            ConnectError::TimedOut { .. } => io::ErrorKind::TimedOut,
            ConnectError::InvalidOption { .. } | ConnectError::TlsConfig(_) => {
                io::ErrorKind::InvalidInput
            }
            ConnectError::Io { kind, .. } => *kind,
        }
    }
}

impl From<ConnectError> for io::Error {
    fn from(e: ConnectError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

/// Why `listen` failed, or why a listener's `set_tls` changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The address (or Unix path) is already in use (EADDRINUSE). A Unix path is never
    /// unlinked for you.
    #[error("address in use: {target}")]
    AddrInUse {
        /// The address or path.
        target: String,
    },
    /// The host name did not resolve.
    #[error("host not found: {host}")]
    HostNotFound {
        /// The host name as given.
        host: String,
    },
    /// The options were invalid (the named field and the problem).
    #[error("invalid listen option `{field}`: {problem}")]
    InvalidOption {
        /// The option's name.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The TLS options cannot be used.
    #[error(transparent)]
    TlsConfig(#[from] crate::tls::TlsConfigError),
    /// `set_tls` on a listener that was started without TLS: a live listener keeps the protocol
    /// it was started with (nothing was changed).
    #[error("the listener does not use TLS; its certificates cannot be replaced")]
    NotTls,
    /// Any other IO failure while binding or listening.
    #[error("listen on {target} failed: {}", os_message(*kind, *code))]
    Io {
        /// The address or path.
        target: String,
        /// The error's kind.
        kind: io::ErrorKind,
        /// The raw OS error code, if any.
        code: Option<i32>,
    },
}

impl ListenError {
    /// Classifies the IO error of a failed bind or listen on `target`.
    pub fn from_io(err: &io::Error, target: &str) -> Self {
        let target = target.to_owned();
        match err.kind() {
            io::ErrorKind::AddrInUse => ListenError::AddrInUse { target },
            kind => ListenError::Io {
                target,
                kind,
                code: err.raw_os_error(),
            },
        }
    }

    /// The [`io::ErrorKind`] closest to this error.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            ListenError::AddrInUse { .. } => io::ErrorKind::AddrInUse,
            ListenError::HostNotFound { .. } => io::ErrorKind::NotFound,
            ListenError::InvalidOption { .. } | ListenError::TlsConfig(_) => {
                io::ErrorKind::InvalidInput
            }
            ListenError::NotTls => io::ErrorKind::Unsupported,
            ListenError::Io { kind, .. } => *kind,
        }
    }
}

impl From<ListenError> for io::Error {
    fn from(e: ListenError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_print_the_os_message() {
        let e = ListenError::from_io(&io::Error::from_raw_os_error(99), "10.9.9.9:80");
        let text = e.to_string();
        assert!(text.contains("(os error 99)"), "{text}");
        assert!(!text.contains("Some("), "{text}");
        let e = CloseError::Io {
            kind: io::ErrorKind::Other,
            code: None,
        };
        assert_eq!(e.to_string(), "io error: other error");
    }
}
