//! A WebSocket echo server: async-tungstenite over sansock's stream view (`listen_stream`, one
//! `SocketStream` per connection, used directly as its `futures_io` stream), on any runtime.
//! `ws_echo [--host H] [--port P] [--runtime R] [--log]`; prints `listening on ADDR` first.

use async_tungstenite::tungstenite::{Error, Message};
use clap::Parser;
use futures_util::StreamExt;

use sansock_core::ListenOptions;
use sansock_io::{Runtime, SocketStream};

/// A WebSocket echo server over plain TCP: every text or binary message comes back as it was
/// sent. The first line printed is `listening on ADDR`; connect to `ws://ADDR/`.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    common: sansock_examples::Common,
    #[command(flatten)]
    listen: sansock_examples::Listen,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = sansock_examples::run_on_selected_runtime!(&cli.common, serve(cli.listen)) {
        sansock_examples::fail(e);
    }
}

async fn serve<R: Runtime>(listen: sansock_examples::Listen) -> Result<(), String> {
    let listener = sansock_io::listen_stream::<R>(ListenOptions::tcp(listen.host, listen.port))
        .await
        .map_err(|e| e.to_string())?;
    println!("listening on {}", listener.listener().local_addr());
    loop {
        let stream = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        // One task per connection. A failed handshake or a client that vanishes without a
        // closing handshake ends that connection only.
        sansock_io::context::spawn::<R, _>(async move {
            let _ = echo(stream).await;
        });
    }
}

/// Answers the opening handshake, then sends every data message back. Pings get their pong
/// and a Close its reply from tungstenite itself (flushed by the next read or write).
async fn echo(stream: SocketStream) -> Result<(), Error> {
    let mut ws = async_tungstenite::accept_async(stream).await?;
    while let Some(message) = ws.next().await {
        match message? {
            message @ (Message::Text(_) | Message::Binary(_)) => ws.send(message).await?,
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {}
        }
    }
    Ok(())
}
