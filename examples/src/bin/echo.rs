//! A long-running echo server: `echo [--host H] [--port P] [--runtime R] [--log]`, over TLS
//! with `--tls-cert PEM --tls-key PEM` or `--tls-self-signed [--ca-out PATH]`, offering
//! `--alpn PROTO` (repeatable). Prints `listening on ADDR` first; `echo --help` says the rest.

use std::sync::Arc;

use clap::Parser;

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
struct Cli {
    #[command(flatten)]
    common: sansock_examples::Common,
    #[command(flatten)]
    listen: sansock_examples::Listen,
    #[command(flatten)]
    tls: sansock_examples::TlsFlags,
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

async fn serve<R: Runtime>(cli: Cli) -> Result<(), String> {
    let mut options = ListenOptions::tcp(cli.listen.host, cli.listen.port);
    let (tls, self_signed) = cli.tls.server_options()?;
    if let Some(tls) = tls {
        options = options.tls(tls.alpn(&cli.alpn));
    }
    let listener = sansock_io::listen::<R, _>(options, Arc::new(Echo))
        .await
        .map_err(|e| e.to_string())?;
    println!("listening on {}", listener.local_addr());
    if let Some(certificate) = self_signed {
        certificate.publish()?;
    }
    sansock_io::context::idle::<R>().await;
    Ok(())
}
