//! A line-based chat server: every line a client sends goes to every other client, prefixed
//! with the sender's name. The first line a client sends is its name.
//! `chat [--host H] [--port P] [--runtime R] [--log]`.

use std::sync::{Arc, Mutex};

use clap::Parser;

use sansock_core::{CloseError, Handler, ListenOptions, Socket, SocketHandle};
use sansock_io::Runtime;

/// Per-socket data: the name (empty until the first line) and a partial line.
#[derive(Default)]
struct Member {
    name: String,
    partial: Vec<u8>,
}

/// One handler set for every socket; it owns the room.
#[derive(Default)]
struct Chat {
    room: Mutex<Vec<SocketHandle<Member>>>,
}

impl Chat {
    fn broadcast(&self, from: &SocketHandle<Member>, text: &str) {
        let members = self.room.lock().unwrap().clone();
        for member in members.iter().filter(|m| *m != from) {
            // Every member gets every line; one that stops reading is disconnected (with
            // `CloseError::BufferLimit`) once `max_buffered` of lines wait for it.
            member.write(text.as_bytes()).ok();
        }
    }
}

impl Handler for Chat {
    type Data = Member;

    fn open(&self, socket: &mut Socket<'_, Member>) {
        self.room.lock().unwrap().push(socket.handle());
        socket.write(b"name? ").ok();
    }

    fn data(&self, socket: &mut Socket<'_, Member>, bytes: &[u8]) {
        socket.data_mut().partial.extend_from_slice(bytes);
        while let Some(pos) = socket.data().partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = socket.data_mut().partial.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line).trim().to_owned();
            let me = socket.handle();
            if socket.data().name.is_empty() {
                self.broadcast(&me, &format!("* {line} joined\n"));
                socket.data_mut().name = line;
            } else {
                let name = socket.data().name.clone();
                self.broadcast(&me, &format!("{name}: {line}\n"));
            }
        }
    }

    fn close(&self, socket: &mut Socket<'_, Member>, _: Option<&CloseError>) {
        let me = socket.handle();
        self.room.lock().unwrap().retain(|m| *m != me);
        let name = socket.data().name.clone();
        if !name.is_empty() {
            self.broadcast(&me, &format!("* {name} left\n"));
        }
    }
}

/// A line-based chat server: each client's first line is its name, every later line goes to
/// every other client. The first line printed is `listening on ADDR`.
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
    // A member that stops reading is disconnected once 1 MiB of lines waits for it.
    let options = ListenOptions::tcp(listen.host, listen.port).max_buffered(1 << 20);
    let listener = sansock_io::listen::<R, _>(options, Arc::new(Chat::default()))
        .await
        .map_err(|e| e.to_string())?;
    println!("listening on {}", listener.local_addr());
    sansock_io::context::idle::<R>().await;
    Ok(())
}
