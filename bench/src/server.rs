//! The servers under test: sansock on any adapter (its handler API, or its stream view: each
//! accepted `SocketStream` echoed by the baseline's own read/`write_all` loop), and a plain
//! hand-written echo on the same runtime as the baseline. Every variant speaks the same
//! protocol: it sends back every byte it
//! reads; with `--workload five-writes` it sends each read back as five writes (one per fifth),
//! with `one-write` (the same as `echo`) as one. With `--cert PATH --key PATH` the same echo
//! runs over TLS (sansock's `tls` listen option; tokio-rustls for the tokio baseline, the only
//! TLS baseline).

use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use sansock_core::tls::{Pem, ServerTlsOptions};
use sansock_core::{Handler, ListenOptions, Socket};
use sansock_io::{Runtime, SocketStream};

use crate::args::ServerArgs;

/// Data events (sansock `data` calls, baseline reads returning bytes) so far.
static EVENTS: AtomicU64 = AtomicU64::new(0);

/// The server implementation under test (`--impl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    /// sansock's handler API (`listen` with the [`Echo`] handler).
    Sansock,
    /// sansock's stream view (`listen_stream`, a task per `SocketStream`).
    Stream,
    /// The hand-written echo on the runtime's own sockets.
    Baseline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Echo,
    FiveWrites,
}

impl Workload {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "echo" | "one-write" => Some(Workload::Echo),
            "five-writes" => Some(Workload::FiveWrites),
            _ => None,
        }
    }
}

/// `bytes` in five consecutive parts (fewer, when shorter than five bytes), none empty.
fn fifths(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let len = bytes.len();
    (0..5)
        .map(move |i| &bytes[len * i / 5..len * (i + 1) / 5])
        .filter(|p| !p.is_empty())
}

pub fn main(args: &ServerArgs) {
    let (imp, runtime) = (args.imp.clone(), args.runtime.clone());
    let Some(workload) = Workload::parse(&args.workload) else {
        eprintln!(
            "unknown --workload {}: expected echo, five-writes or one-write",
            args.workload
        );
        std::process::exit(2);
    };
    let (port, host, hwm) = (args.port, args.host.clone(), args.high_water_mark);
    let tls = match (args.cert.clone(), args.key.clone()) {
        (Some(cert), Some(key)) => Some(crate::tls::CertFiles { cert, key }),
        (None, None) => None,
        _ => {
            eprintln!("--cert and --key go together");
            std::process::exit(2);
        }
    };
    let tls = tls.as_ref();
    spawn_control_thread();
    let imp = match imp.as_str() {
        "sansock" => Impl::Sansock,
        "sansock-stream" => Impl::Stream,
        "baseline" => Impl::Baseline,
        other => {
            eprintln!("unknown --impl {other}: expected sansock, sansock-stream or baseline");
            std::process::exit(2);
        }
    };
    if tls.is_some() && imp == Impl::Baseline && !runtime.starts_with("tokio") {
        eprintln!("the TLS baseline exists for tokio only (tokio-rustls)");
        std::process::exit(2);
    }
    match runtime.as_str() {
        "tokio" | "tokio-current-thread" => {
            let mut builder = if runtime == "tokio" {
                tokio::runtime::Builder::new_multi_thread()
            } else {
                tokio::runtime::Builder::new_current_thread()
            };
            let rt = builder.enable_all().build().expect("tokio runtime");
            rt.block_on(async {
                if imp == Impl::Sansock {
                    serve_sansock::<sansock_tokio::Tokio>(&host, port, workload, hwm, tls).await
                } else if imp == Impl::Stream {
                    let spawn = |stream, workload| {
                        tokio::spawn(baseline::tokio_echo(stream, workload, false));
                    };
                    serve_stream::<sansock_tokio::Tokio>(&host, port, workload, hwm, tls, spawn)
                        .await
                } else if let Some(tls) = tls {
                    let config = crate::tls::server_config(tls).unwrap_or_else(|e| {
                        eprintln!("TLS configuration: {e}");
                        std::process::exit(1)
                    });
                    baseline::tokio_tls(bind(&host, port), workload, config).await
                } else {
                    baseline::tokio(bind(&host, port), workload).await
                }
            })
        }
        "smol" => smol::block_on(async {
            if imp == Impl::Sansock {
                serve_sansock::<sansock_smol::Smol>(&host, port, workload, hwm, tls).await
            } else if imp == Impl::Stream {
                let spawn = |stream, workload| {
                    smol::spawn(baseline::futures_echo(stream, workload)).detach();
                };
                serve_stream::<sansock_smol::Smol>(&host, port, workload, hwm, tls, spawn).await
            } else {
                baseline::smol(bind(&host, port), workload).await
            }
        }),
        "async-std" => async_std::task::block_on(async {
            if imp == Impl::Sansock {
                serve_sansock::<sansock_async_std::AsyncStd>(&host, port, workload, hwm, tls).await
            } else if imp == Impl::Stream {
                let spawn = |stream, workload| {
                    async_std::task::spawn(baseline::futures_echo(stream, workload));
                };
                serve_stream::<sansock_async_std::AsyncStd>(&host, port, workload, hwm, tls, spawn)
                    .await
            } else {
                baseline::async_std(bind(&host, port), workload).await
            }
        }),
        other => {
            eprintln!("unknown --runtime {other}: expected tokio, tokio-current-thread, smol or async-std");
            std::process::exit(2);
        }
    }
}

/// Answers `stats` lines on stdin with the counters; exits when stdin closes, so a server
/// never outlives the orchestrator that started it.
fn spawn_control_thread() {
    std::thread::spawn(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "stats" {
                let (allocs, live_bytes, live_blocks) = crate::alloc::counters();
                let events = EVENTS.load(Relaxed);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "stats allocs={allocs} live_bytes={live_bytes} live_blocks={live_blocks} events={events}"
                );
                let _ = out.flush();
            }
        }
        std::process::exit(0);
    });
}

fn announce(addr: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

fn bind(host: &str, port: u16) -> TcpListener {
    let listener = TcpListener::bind((host, port)).unwrap_or_else(|e| {
        eprintln!("error: bind {host}:{port}: {e}");
        std::process::exit(1)
    });
    listener.set_nonblocking(true).expect("non-blocking");
    let addr: SocketAddr = listener.local_addr().expect("local address");
    announce(addr);
    listener
}

// ----- sansock -----

/// Echo with end-to-end backpressure, as `examples/src/bin/echo.rs`: `write` takes every byte,
/// and once the send buffer reaches the high-water mark the socket stops reading until
/// `drain` resumes it.
struct Echo {
    workload: Workload,
}

fn send(socket: &mut Socket<'_, ()>, bytes: &[u8]) {
    if socket.write(bytes).is_ok_and(|s| s.is_backpressured()) {
        socket.pause_until_drain();
    }
}

impl Handler for Echo {
    type Data = ();

    fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
        EVENTS.fetch_add(1, Relaxed);
        match self.workload {
            Workload::Echo => send(socket, bytes),
            Workload::FiveWrites => {
                for part in fifths(bytes) {
                    send(socket, part);
                }
            }
        }
    }
}

/// sansock's listen options for `--host`, `--port`, `--high-water-mark` and `--cert/--key`.
fn listen_options(
    host: &str,
    port: u16,
    high_water_mark: Option<usize>,
    tls: Option<&crate::tls::CertFiles>,
) -> ListenOptions<()> {
    let mut options = ListenOptions::tcp(host.to_owned(), port);
    if let Some(bytes) = high_water_mark {
        options = options.high_water_mark(bytes);
    }
    if let Some(files) = tls {
        // Session tickets are on by default.
        options = options.tls(ServerTlsOptions::new(
            Pem::file(&files.key),
            Pem::file(&files.cert),
        ));
    }
    options
}

async fn serve_sansock<R: Runtime>(
    host: &str,
    port: u16,
    workload: Workload,
    high_water_mark: Option<usize>,
    tls: Option<&crate::tls::CertFiles>,
) {
    let options = listen_options(host, port, high_water_mark, tls);
    let listener = sansock_io::listen::<R, _>(options, Arc::new(Echo { workload }))
        .await
        .unwrap_or_else(|e| {
            eprintln!("error: listen: {e}");
            std::process::exit(1)
        });
    announce(listener.local_addr());
    std::future::pending::<()>().await;
}

/// The stream view: `listen_stream`, and each accepted [`SocketStream`] handed to `spawn`,
/// which starts the baseline's echo loop on it (a task per connection, a 64 KiB buffer, read
/// then `write_all`, no flush: only the transport differs from the baseline).
async fn serve_stream<R: Runtime>(
    host: &str,
    port: u16,
    workload: Workload,
    high_water_mark: Option<usize>,
    tls: Option<&crate::tls::CertFiles>,
    spawn: impl Fn(SocketStream, Workload),
) {
    let options = listen_options(host, port, high_water_mark, tls);
    let listener = sansock_io::listen_stream::<R>(options)
        .await
        .unwrap_or_else(|e| {
            eprintln!("error: listen: {e}");
            std::process::exit(1)
        });
    announce(listener.listener().local_addr());
    loop {
        match listener.accept().await {
            Ok(stream) => spawn(stream, workload),
            Err(e) => {
                eprintln!("error: accept: {e}");
                std::process::exit(1)
            }
        }
    }
}

// ----- hand-written baselines -----

/// The plain echo servers: a task per connection, a 64 KiB buffer each, read then
/// `write_all` (five `write_all`s for `five-writes`), `TCP_NODELAY` on.
mod baseline {
    use super::{fifths, Workload, EVENTS};
    use std::net::TcpListener;
    use std::sync::atomic::Ordering::Relaxed;

    const BUF: usize = 64 * 1024;

    pub async fn tokio(listener: TcpListener, workload: Workload) {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(tokio_echo(stream, workload, false));
        }
    }

    /// The echo loop of both tokio baselines: read into a 64 KiB buffer, write it back (as
    /// five writes for `five-writes`), flush after each reply when `flush` (TLS); at the end
    /// of the stream, shut down (close_notify over TLS).
    pub async fn tokio_echo<S>(mut stream: S, workload: Workload, flush: bool)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0u8; BUF];
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) => {
                    let _ = stream.shutdown().await;
                    return;
                }
                Err(_) => return,
                Ok(n) => n,
            };
            EVENTS.fetch_add(1, Relaxed);
            let ok = match workload {
                Workload::Echo => stream.write_all(&buf[..n]).await.is_ok(),
                Workload::FiveWrites => {
                    let mut ok = true;
                    for part in fifths(&buf[..n]) {
                        ok &= stream.write_all(part).await.is_ok();
                    }
                    ok
                }
            };
            if !ok || (flush && stream.flush().await.is_err()) {
                return;
            }
        }
    }

    /// The TLS echo: as [`tokio()`], behind a tokio-rustls acceptor; every reply is flushed,
    /// and the end of the client's stream (close_notify) is answered with close_notify.
    pub async fn tokio_tls(
        listener: TcpListener,
        workload: Workload,
        config: std::sync::Arc<rustls::ServerConfig>,
    ) {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(stream).await {
                    tokio_echo(stream, workload, true).await;
                }
            });
        }
    }

    pub async fn smol(listener: TcpListener, workload: Workload) {
        let listener = smol::Async::new(listener).expect("smol listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.get_ref().set_nodelay(true);
            smol::spawn(futures_echo(stream, workload)).detach();
        }
    }

    pub async fn async_std(listener: TcpListener, workload: Workload) {
        let listener = async_std::net::TcpListener::from(listener);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            async_std::task::spawn(futures_echo(stream, workload));
        }
    }

    /// The echo loop of the smol and async-std baselines (both speak `futures-io`), as
    /// [`tokio_echo`] without TLS.
    pub async fn futures_echo<S>(mut stream: S, workload: Workload)
    where
        S: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin,
    {
        use smol::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0u8; BUF];
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            EVENTS.fetch_add(1, Relaxed);
            let ok = match workload {
                Workload::Echo => stream.write_all(&buf[..n]).await.is_ok(),
                Workload::FiveWrites => {
                    let mut ok = true;
                    for part in fifths(&buf[..n]) {
                        ok &= stream.write_all(part).await.is_ok();
                    }
                    ok
                }
            };
            if !ok {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fifths;

    #[test]
    fn fifths_cover_the_bytes_in_order() {
        let parts: Vec<&[u8]> = fifths(b"abcde").collect();
        assert_eq!(parts, [b"a", b"b", b"c", b"d", b"e"]);
        let parts: Vec<&[u8]> = fifths(b"abcdefghijk").collect();
        assert_eq!(parts.len(), 5);
        assert_eq!(parts.concat(), b"abcdefghijk");
        assert_eq!(fifths(b"ab").count(), 2);
    }
}
