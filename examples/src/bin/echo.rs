//! A long-running echo server:
//! `echo [--runtime tokio|tokio-current-thread|smol|async-std] [--host H] [--port P]`. Prints `listening on ADDR` first.

use std::sync::Arc;

use sansock_core::{Handler, ListenOptions, Socket};
use sansock_io::Runtime;

/// Echoes every byte, with end-to-end backpressure: when the send buffer is full it keeps
/// the rest and stops reading until `drain`.
struct Echo;

impl Handler for Echo {
    /// Bytes read but not yet accepted for sending (at most one read's worth).
    type Data = Vec<u8>;

    fn data(&self, socket: &mut Socket<'_, Vec<u8>>, bytes: &[u8]) {
        let n = socket.write(bytes).unwrap_or(bytes.len());
        if n < bytes.len() {
            socket.data_mut().extend_from_slice(&bytes[n..]);
            socket.pause();
        }
    }

    fn drain(&self, socket: &mut Socket<'_, Vec<u8>>) {
        let pending = std::mem::take(socket.data_mut());
        let n = socket.write(&pending).unwrap_or(pending.len());
        if n < pending.len() {
            *socket.data_mut() = pending[n..].to_vec();
        } else {
            socket.resume();
        }
    }
}

fn main() {
    sansock_examples::run_on_selected_runtime!(serve);
}

async fn serve<R: Runtime>() {
    let host = sansock_examples::flag("host").unwrap_or_else(|| "127.0.0.1".to_owned());
    let port: u16 = sansock_examples::flag("port").map_or(0, |p| p.parse().expect("--port"));
    let listener = sansock_io::listen::<R, _>(ListenOptions::tcp(host, port), Arc::new(Echo))
        .await
        .unwrap_or_else(|e| {
            eprintln!("echo: {e}");
            std::process::exit(1)
        });
    println!("listening on {}", listener.local_addr());
    R::refs().idle().await;
}
