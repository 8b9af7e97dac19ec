//! A server and a client in one process on loopback: they exchange a few messages and print
//! every handler call as it happens, then exit: `demo [--runtime R] [--log]`.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use sansock_core::{CloseError, ConnectOptions, Handler, ListenOptions, Socket};
use sansock_io::Runtime;

/// The server: greets each client, answers each line in upper case, says goodbye on "quit".
struct Server;

impl Handler for Server {
    /// How many lines this connection sent.
    type Data = u32;

    fn open(&self, socket: &mut Socket<'_, u32>) {
        println!("server  open    from {}", socket.remote_addr());
        // `write` takes every byte; an error (the socket ended or closed) also reaches `close`.
        socket.write(b"welcome\n").ok();
    }

    fn data(&self, socket: &mut Socket<'_, u32>, bytes: &[u8]) {
        // The line count and the writer at once (`data_mut()` and `write()` would conflict).
        let (lines, out) = socket.parts();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            *lines += 1;
            println!(
                "server  data    {:?} (line {lines})",
                String::from_utf8_lossy(line)
            );
            if line == b"quit" {
                out.end_with(b"bye\n").ok();
                return;
            }
            let mut reply = line.to_ascii_uppercase();
            reply.push(b'\n');
            // Backpressure: above the high-water mark, read no more until the peer catches up.
            if out.write(&reply).is_ok_and(|s| s.is_backpressured()) {
                out.pause_until_drain();
            }
        }
    }

    fn end(&self, _: &mut Socket<'_, u32>) {
        println!("server  end");
    }

    fn close(&self, socket: &mut Socket<'_, u32>, error: Option<&CloseError>) {
        println!(
            "server  close   after {} lines, error: {error:?}",
            socket.data()
        );
    }
}

/// The client: sends three lines, one at each server reply.
struct Client;

impl Handler for Client {
    /// Lines still to send.
    type Data = Vec<&'static str>;

    fn open(&self, _: &mut Socket<'_, Self::Data>) {
        println!("client  open");
    }

    fn data(&self, socket: &mut Socket<'_, Self::Data>, bytes: &[u8]) {
        for line in String::from_utf8_lossy(bytes).lines() {
            println!("client  data    {line:?}");
            if let Some(next) = socket.data_mut().pop() {
                println!("client  write   {next:?}");
                socket.write(format!("{next}\n").as_bytes()).ok();
            }
        }
    }

    fn end(&self, _: &mut Socket<'_, Self::Data>) {
        println!("client  end");
    }

    fn close(&self, _: &mut Socket<'_, Self::Data>, error: Option<&CloseError>) {
        println!("client  close   error: {error:?}");
    }
}

/// A sansock server and client in one process on loopback: they exchange a few lines and
/// print every handler call as it happens, then the demo exits.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    common: sansock_examples::Common,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = sansock_examples::run_on_selected_runtime!(&cli.common, demo()) {
        sansock_examples::fail(e);
    }
}

async fn demo<R: Runtime>() -> Result<(), String> {
    let listener = sansock_io::listen::<R, _>(
        ListenOptions::tcp("127.0.0.1", 0).data(0u32),
        Arc::new(Server),
    )
    .await
    .map_err(|e| format!("listen: {e}"))?;
    println!("listening on {}", listener.local_addr());
    let lines = vec!["quit", "sans-io sockets", "hello"];
    let port = listener.port().ok_or("the listener has no port")?;
    let _client = sansock_io::connect::<R, _>(
        ConnectOptions::tcp("127.0.0.1", port).data(lines),
        Arc::new(Client),
    )
    .await
    .map_err(|e| format!("connect: {e}"))?;
    // Both sockets close once the conversation ends; the listener stays referenced.
    listener.set_ref(false);
    let finished = R::timeout(Duration::from_secs(10), sansock_io::context::idle::<R>()).await;
    listener.stop(true);
    if finished.is_none() {
        return Err("the demo did not finish within 10 s".into());
    }
    println!("done");
    Ok(())
}
