//! A long-running echo server:
//! `echo [--runtime tokio|tokio-current-thread|smol|async-std] [--host H] [--port P]`. Prints `listening on ADDR` first.

use std::sync::Arc;

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

fn main() {
    sansock_examples::run_on_selected_runtime!(serve);
}

async fn serve<R: Runtime>() {
    let host = sansock_examples::flag("host").unwrap_or_else(|| "127.0.0.1".to_owned());
    let port: u16 = sansock_examples::flag("port").map_or(0, |p| p.parse().expect("--port"));
    let mut options = ListenOptions::tcp(host, port);
    let mut ca_note = None;
    if let (Some(cert), Some(key)) = (
        sansock_examples::flag("tls-cert"),
        sansock_examples::flag("tls-key"),
    ) {
        options = options.tls(ServerTlsOptions::new(Pem::file(key), Pem::file(cert)));
    } else if std::env::args().any(|a| a == "--tls-self-signed") {
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("params");
        let cert = params.self_signed(&key).expect("self-signed certificate");
        let path = std::env::temp_dir().join(format!("sansock-echo-ca-{}.pem", std::process::id()));
        std::fs::write(&path, cert.pem()).expect("write the CA PEM");
        ca_note = Some(path);
        options = options.tls(ServerTlsOptions::new(key.serialize_pem(), cert.pem()));
    }
    let listener = sansock_io::listen::<R, _>(options, Arc::new(Echo))
        .await
        .unwrap_or_else(|e| {
            eprintln!("echo: {e}");
            std::process::exit(1)
        });
    println!("listening on {}", listener.local_addr());
    if let Some(path) = ca_note {
        println!(
            "TLS: self-signed certificate (trust it as the CA) written to {}",
            path.display()
        );
    }
    R::refs().idle().await;
}
