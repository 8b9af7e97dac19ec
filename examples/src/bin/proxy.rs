//! A TCP proxy with end-to-end backpressure:
//! `proxy --upstream HOST:PORT [--host H] [--port P] [--runtime R] [--log]`.
//!
//! Each accepted client gets its own upstream connection. Every byte read on one side is
//! written to the other; once the other side's send buffer reaches the high-water mark, the
//! side that sent them stops reading until the other drains, so memory per connection stays
//! bounded (two high-water marks plus two reads) however fast either end sends.

use std::sync::{Arc, OnceLock};

use clap::Parser;
use sansock_examples::HostPort;

use sansock_core::{CloseError, ConnectOptions, Handler, ListenOptions, Socket, SocketHandle};
use sansock_io::Runtime;

/// One end of a proxied connection.
#[derive(Default)]
struct Pipe {
    /// The other end (for a client: set once the upstream connect succeeded).
    peer: Arc<OnceLock<SocketHandle<Pipe>>>,
}

fn relay_data(socket: &mut Socket<'_, Pipe>, bytes: &[u8]) {
    let Some(peer) = socket.data().peer.get().cloned() else {
        return;
    };
    // Pause before writing: the peer's `drain` (maybe on another thread) resumes us, and it
    // can only fire after a write that reported backpressure, so it never comes before this.
    socket.pause();
    match peer.write(bytes) {
        Ok(status) if status.is_backpressured() => {} // stay paused until the peer drains
        Ok(_) => socket.resume(),
        Err(_) => socket.close(), // the other side is gone; its `close` ends this one
    }
}

fn relay_drain(socket: &mut Socket<'_, Pipe>) {
    if let Some(peer) = socket.data().peer.get() {
        peer.resume();
    }
}

fn relay_finish(socket: &mut Socket<'_, Pipe>) {
    if let Some(peer) = socket.data().peer.get() {
        peer.end();
    }
}

/// Starts the upstream connection for a client (runtime-specific, so a boxed closure).
type ConnectUpstream =
    Box<dyn Fn(SocketHandle<Pipe>, Arc<OnceLock<SocketHandle<Pipe>>>, Pipe) + Send + Sync>;

/// Both sides relay. The client side (with `connect`) also pauses the client in `open` and
/// connects upstream; the upstream side has nothing to do there.
struct Relay {
    connect: Option<ConnectUpstream>,
}

impl Handler for Relay {
    type Data = Pipe;
    fn open(&self, socket: &mut Socket<'_, Pipe>) {
        let Some(connect) = &self.connect else { return };
        socket.pause();
        let upstream = Pipe {
            peer: Arc::new(OnceLock::from(socket.handle())),
        };
        connect(socket.handle(), socket.data().peer.clone(), upstream);
    }
    fn data(&self, socket: &mut Socket<'_, Pipe>, bytes: &[u8]) {
        relay_data(socket, bytes)
    }
    fn drain(&self, socket: &mut Socket<'_, Pipe>) {
        relay_drain(socket)
    }
    fn end(&self, socket: &mut Socket<'_, Pipe>) {
        relay_finish(socket)
    }
    fn close(&self, socket: &mut Socket<'_, Pipe>, _: Option<&CloseError>) {
        relay_finish(socket)
    }
}

/// A TCP proxy with end-to-end backpressure: each client accepted gets its own connection to
/// the upstream server. The first line printed is `listening on ADDR`.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    common: sansock_examples::Common,
    #[command(flatten)]
    listen: sansock_examples::Listen,
    /// The server to relay to.
    #[arg(long, value_name = "HOST:PORT", value_parser = sansock_examples::host_port)]
    upstream: HostPort,
}

fn main() {
    let cli = Cli::parse();
    let result =
        sansock_examples::run_on_selected_runtime!(&cli.common, serve(cli.listen, cli.upstream));
    if let Err(e) = result {
        sansock_examples::fail(e);
    }
}

async fn serve<R: Runtime>(
    listen: sansock_examples::Listen,
    upstream: HostPort,
) -> Result<(), String> {
    let upstream_handlers: Arc<dyn Handler<Data = Pipe>> = Arc::new(Relay { connect: None });
    let connect: ConnectUpstream = Box::new(move |client, client_peer, pipe| {
        let (upstream, handlers) = (upstream.clone(), upstream_handlers.clone());
        R::spawn(async move {
            let options = ConnectOptions::tcp(upstream.host.clone(), upstream.port)
                .allow_half_open(true)
                .data(pipe);
            match sansock_io::connect::<R, _>(options, handlers).await {
                Ok(up) => {
                    let _ = client_peer.set(up);
                    client.resume();
                }
                Err(e) => {
                    // One client's failure: the proxy goes on serving the others.
                    eprintln!("proxy: upstream {upstream}: {e}; closing the client");
                    client.close();
                }
            }
        });
    });
    let options = ListenOptions::tcp(listen.host, listen.port)
        .allow_half_open(true)
        .data_with(Pipe::default);
    let listener = sansock_io::listen::<R, _>(
        options,
        Arc::new(Relay {
            connect: Some(connect),
        }),
    )
    .await
    .map_err(|e| e.to_string())?;
    println!("listening on {}", listener.local_addr());
    sansock_io::context::idle::<R>().await;
    Ok(())
}
