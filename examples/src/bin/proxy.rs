//! A TCP proxy with end-to-end backpressure:
//! `proxy --upstream HOST:PORT [--runtime R] [--host H] [--port P] [--log]`.
//!
//! Each accepted client gets its own upstream connection. Every byte read on one side is
//! written to the other; once the other side's send buffer reaches the high-water mark, the
//! side that sent them stops reading until the other drains, so memory per connection stays
//! bounded (two high-water marks plus two reads) however fast either end sends.

use std::sync::{Arc, OnceLock};

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

fn main() {
    sansock_examples::run_on_selected_runtime!(serve);
}

async fn serve<R: Runtime>() {
    let host = sansock_examples::flag("host").unwrap_or_else(|| "127.0.0.1".to_owned());
    let port: u16 = sansock_examples::flag("port").map_or(0, |p| p.parse().expect("--port"));
    let upstream = sansock_examples::flag("upstream").expect("--upstream HOST:PORT");
    let (up_host, up_port) = upstream.rsplit_once(':').expect("--upstream HOST:PORT");
    let (up_host, up_port) = (
        up_host.to_owned(),
        up_port.parse::<u16>().expect("upstream port"),
    );
    let upstream_handlers: Arc<dyn Handler<Data = Pipe>> = Arc::new(Relay { connect: None });
    let connect: ConnectUpstream = Box::new(move |client, client_peer, pipe| {
        let (host, handlers) = (up_host.clone(), upstream_handlers.clone());
        R::spawn(async move {
            let options = ConnectOptions::tcp(host, up_port)
                .allow_half_open(true)
                .data(pipe);
            match sansock_io::connect::<R, _>(options, handlers).await {
                Ok(up) => {
                    let _ = client_peer.set(up);
                    client.resume();
                }
                Err(e) => {
                    eprintln!("proxy: upstream connect failed: {e}");
                    client.close();
                }
            }
        });
    });
    let options = ListenOptions::tcp(host, port)
        .allow_half_open(true)
        .data_with(Pipe::default);
    let listener = sansock_io::listen::<R, _>(
        options,
        Arc::new(Relay {
            connect: Some(connect),
        }),
    )
    .await
    .expect("listen");
    println!("listening on {}", listener.local_addr());
    R::refs().idle().await;
}
