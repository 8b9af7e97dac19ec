//! An HTTP/1.1 server: hyper's server connection over sansock's stream view on tokio
//! (`listen_stream`, one `SocketStream` per connection), over TLS with `--tls-cert PEM
//! --tls-key PEM` or `--tls-self-signed [--ca-out PATH]` (ALPN `http/1.1`), or plain.
//! Prints `listening on ADDR` first; `http --help` says the rest.
//!
//! Routes: `GET /` answers `hello from sansock`; `GET /bytes/N` streams N bytes of a fixed
//! pattern (byte `i` is `i % 251`) in 64 KiB chunks, so a 100 MB body never sits in memory.

use std::convert::Infallible;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use sansock_examples::Rt;
use sansock_tokio::tls::{Pem, ServerTlsOptions};
use sansock_tokio::{listen_stream, ListenOptions};

/// The size of each body chunk of `/bytes/N`.
const CHUNK: u64 = 64 * 1024;

/// An HTTP/1.1 server (hyper) over sansock TCP or TLS streams, on tokio only (`--runtime tokio`
/// or `tokio-current-thread`). The first line printed is `listening on ADDR`. Routes: `GET /`
/// and `GET /bytes/N` (N bytes, byte i being i % 251).
#[derive(Parser, Debug)]
#[command(name = "http")]
#[command(group(clap::ArgGroup::new("tls").args(["tls_cert", "tls_self_signed"])))]
struct Cli {
    #[command(flatten)]
    common: sansock_examples::Common,
    #[command(flatten)]
    listen: sansock_examples::Listen,
    /// Serve HTTPS with this certificate chain (PEM file, leaf first); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM file) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate for localhost and 127.0.0.1 generated at start (kept in
    /// memory only). Clients must trust it as their CA: it is printed after the `listening on`
    /// line, or written to --ca-out.
    #[arg(long)]
    tls_self_signed: bool,
    /// With --tls-self-signed: write the certificate (PEM) to PATH instead of printing it. The
    /// file is yours: http does not remove it.
    #[arg(long, value_name = "PATH", requires = "tls_self_signed")]
    ca_out: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let mut runtime = match cli.common.runtime {
        Rt::Tokio => tokio::runtime::Builder::new_multi_thread(),
        Rt::TokioCurrentThread => tokio::runtime::Builder::new_current_thread(),
        Rt::Smol | Rt::AsyncStd => Cli::command()
            .error(
                clap::error::ErrorKind::InvalidValue,
                "http runs on tokio only: --runtime tokio or tokio-current-thread",
            )
            .exit(),
    };
    sansock_examples::init_logging(&cli.common);
    let runtime = runtime
        .enable_all()
        .build()
        .unwrap_or_else(|e| sansock_examples::fail(format_args!("tokio runtime: {e}")));
    if let Err(e) = runtime.block_on(serve(cli)) {
        sansock_examples::fail(e);
    }
}

/// A certificate generated for `--tls-self-signed` (PEM), and where it goes once the server
/// listens: to `--ca-out`, or printed.
struct SelfSigned {
    pem: String,
    ca_out: Option<PathBuf>,
}

async fn serve(cli: Cli) -> Result<(), String> {
    let mut options = ListenOptions::tcp(cli.listen.host, cli.listen.port);
    let mut self_signed = None;
    let tls = if let (Some(cert), Some(key)) = (cli.tls_cert, cli.tls_key) {
        Some(ServerTlsOptions::new(Pem::file(key), Pem::file(cert)))
    } else if cli.tls_self_signed {
        let (key, cert) = sansock_examples::self_signed_certificate()
            .map_err(|e| format!("generating a self-signed certificate: {e}"))?;
        self_signed = Some(SelfSigned {
            pem: cert.clone(),
            ca_out: cli.ca_out,
        });
        Some(ServerTlsOptions::new(key, cert))
    } else {
        None
    };
    if let Some(tls) = tls {
        options = options.tls(tls.alpn(["http/1.1"]));
    }
    let listener = listen_stream(options).await.map_err(|e| e.to_string())?;
    println!("listening on {}", listener.listener().local_addr());
    // Written only now, so a server that failed to start leaves no file behind.
    match self_signed {
        Some(SelfSigned {
            pem,
            ca_out: Some(path),
        }) => {
            std::fs::write(&path, pem).map_err(|e| format!("--ca-out {}: {e}", path.display()))?;
            println!(
                "TLS: self-signed certificate (trust it as the CA) written to {}",
                path.display()
            );
        }
        Some(SelfSigned { pem, ca_out: None }) => print!(
            "TLS: self-signed certificate (trust it as the CA; --ca-out PATH saves it to a file):\n{pem}"
        ),
        None => {}
    }
    loop {
        let stream = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        // One task per connection; hyper keeps it alive for as many requests as the client
        // sends. A client that goes away mid-response is that connection's business only.
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(route))
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
