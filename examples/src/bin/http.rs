//! An HTTP/1.1 server: hyper's server connection over sansock's stream view (`listen_stream`,
//! one `SocketStream` per connection) on any runtime (`--runtime`), over TLS with
//! `--tls-cert PEM --tls-key PEM` or `--tls-self-signed [--ca-out PATH]` (ALPN `http/1.1`), or
//! plain. Prints `listening on ADDR` first; `http --help` says the rest.
//!
//! hyper reads and writes through its own traits (`hyper::rt::Read` / `Write`); [`HyperIo`]
//! bridges them from the `futures-io` traits that `SocketStream` implements on every adapter,
//! without `unsafe`: it reads into a buffer of its own and copies into hyper's. HTTP/1 needs no
//! executor from hyper; each connection is a task of the selected runtime.
//!
//! Routes: `GET /` answers `hello from sansock`; `GET /bytes/N` streams N bytes of a fixed
//! pattern (byte `i` is `i % 251`) in 64 KiB chunks, so a 100 MB body never sits in memory.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use clap::Parser;
use futures_io::{AsyncRead, AsyncWrite};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::rt::ReadBufCursor;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};

use sansock_core::ListenOptions;
use sansock_io::Runtime;

/// The size of each body chunk of `/bytes/N`.
const CHUNK: u64 = 64 * 1024;

/// The size of the buffer each connection reads into before hyper copies from it.
const READ_BUF: usize = 16 * 1024;

/// An HTTP/1.1 server (hyper) over sansock TCP or TLS streams, on any runtime (`--runtime`).
/// The first line printed is `listening on ADDR`. Routes: `GET /` and `GET /bytes/N` (N bytes,
/// byte i being i % 251).
#[derive(Parser, Debug)]
#[command(name = "http")]
struct Cli {
    #[command(flatten)]
    common: sansock_examples::Common,
    #[command(flatten)]
    listen: sansock_examples::Listen,
    #[command(flatten)]
    tls: sansock_examples::TlsFlags,
}

fn main() {
    let cli = Cli::parse();
    let common = cli.common.clone();
    if let Err(e) = sansock_examples::run_on_selected_runtime!(&common, serve(cli)) {
        sansock_examples::fail(e);
    }
}

/// A `futures-io` stream seen through hyper's I/O traits. Reads go through a buffer of its own
/// (safe code cannot hand hyper's uninitialised buffer to `AsyncRead`), then are copied into
/// hyper's; writes, flushes and shutdown pass straight through.
struct HyperIo<T> {
    inner: T,
    buf: Box<[u8]>,
}

impl<T> HyperIo<T> {
    fn new(inner: T) -> Self {
        HyperIo {
            inner,
            buf: vec![0; READ_BUF].into_boxed_slice(),
        }
    }
}

impl<T: AsyncRead + Unpin> hyper::rt::Read for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let len = buf.remaining().min(this.buf.len());
        let n = ready!(Pin::new(&mut this.inner).poll_read(cx, &mut this.buf[..len]))?;
        buf.put_slice(&this.buf[..n]);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

async fn serve<R: Runtime>(cli: Cli) -> Result<(), String> {
    let mut options = ListenOptions::tcp(cli.listen.host, cli.listen.port);
    let (tls, self_signed) = cli.tls.server_options()?;
    if let Some(tls) = tls {
        options = options.tls(tls.alpn(["http/1.1"]));
    }
    let listener = sansock_io::listen_stream::<R>(options)
        .await
        .map_err(|e| e.to_string())?;
    println!("listening on {}", listener.listener().local_addr());
    if let Some(certificate) = self_signed {
        certificate.publish()?;
    }
    loop {
        let stream = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        // One task per connection; hyper keeps it alive for as many requests as the client
        // sends. A client that goes away mid-response is that connection's business only.
        sansock_io::context::spawn::<R, _>(async move {
            let _ = http1::Builder::new()
                .serve_connection(HyperIo::new(stream), service_fn(route))
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

async fn route(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path();
    let response = match (request.method(), path) {
        (&Method::GET, "/") => text(StatusCode::OK, "hello from sansock\n"),
        (&Method::GET, _) if path.starts_with("/bytes/") => {
            match path["/bytes/".len()..].parse::<u64>() {
                Ok(len) => pattern_response(len),
                Err(_) => text(StatusCode::BAD_REQUEST, "expected /bytes/N, N a number\n"),
            }
        }
        (_, "/") => text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `len` bytes of the pattern, made one chunk at a time as hyper asks for the next.
fn pattern_response(len: u64) -> Response<Body> {
    let chunks = (0..len).step_by(CHUNK as usize).map(move |offset| {
        let end = (offset + CHUNK).min(len);
        Ok(Frame::data(pattern(offset, end)))
    });
    let mut response = Response::new(StreamBody::new(futures_util::stream::iter(chunks)).boxed());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// Bytes `start..end` of the pattern: byte `i` is `i % 251` (a prime, so the pattern does not
/// line up with power-of-two chunk or buffer sizes).
fn pattern(start: u64, end: u64) -> Bytes {
    (start..end).map(|i| (i % 251) as u8).collect()
}
