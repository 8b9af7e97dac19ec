//! A long-running echo server: `echo [--host H] [--port P] [--runtime R] [--log]`, over TLS
//! with `--tls-cert PEM --tls-key PEM` or `--tls-self-signed [--ca-out PATH]`, offering
//! `--alpn PROTO` (repeatable). Prints `listening on ADDR` first; `echo --help` says the rest.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

use sansock_core::tls::{Pem, ServerTlsOptions};
use sansock_core::{Handler, ListenOptions, Socket};
use sansock_io::Runtime;

/// Echoes every byte, with end-to-end backpressure: `write` takes every byte, and once the
/// send buffer reaches the high-water mark the socket stops reading until `drain` (which
/// resumes it), so a client that sends without reading is slowed down, never cut short.
struct Echo;

impl Handler for Echo {
    type Data = ();

    fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
        if socket.write(bytes).is_ok_and(|s| s.is_backpressured()) {
            socket.pause_until_drain();
        }
    }
}

/// An echo server with end-to-end backpressure, over TCP or TLS. The first line printed is
/// `listening on ADDR`.
#[derive(Parser, Debug)]
#[command(group(clap::ArgGroup::new("tls").args(["tls_cert", "tls_self_signed"])))]
struct Cli {
    #[command(flatten)]
    common: sansock_examples::Common,
    #[command(flatten)]
    listen: sansock_examples::Listen,
    /// Serve TLS with this certificate chain (PEM file, leaf first); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM file) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve TLS with a certificate for localhost and 127.0.0.1 generated at start (kept in
    /// memory only). Clients must trust it as their CA: it is printed after the `listening on`
    /// line, or written to --ca-out.
    #[arg(long)]
    tls_self_signed: bool,
    /// With --tls-self-signed: write the certificate (PEM) to PATH instead of printing it. The
    /// file is yours: echo does not remove it.
    #[arg(long, value_name = "PATH", requires = "tls_self_signed")]
    ca_out: Option<PathBuf>,
    /// Offer this ALPN protocol (repeat for several, most preferred first); needs TLS.
    #[arg(long = "alpn", value_name = "PROTO", requires = "tls")]
    alpn: Vec<String>,
}

fn main() {
    let cli = Cli::parse();
    let common = cli.common.clone();
    if let Err(e) = sansock_examples::run_on_selected_runtime!(&common, serve(cli)) {
        sansock_examples::fail(e);
    }
}

/// A certificate generated for `--tls-self-signed` (PEM), and where it goes once the server
/// listens: to `--ca-out`, or printed.
struct SelfSigned {
    pem: String,
    ca_out: Option<PathBuf>,
}

async fn serve<R: Runtime>(cli: Cli) -> Result<(), String> {
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
        options = options.tls(tls.alpn(&cli.alpn));
    }
    let listener = sansock_io::listen::<R, _>(options, Arc::new(Echo))
        .await
        .map_err(|e| e.to_string())?;
    println!("listening on {}", listener.local_addr());
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
    sansock_io::context::idle::<R>().await;
    Ok(())
}
