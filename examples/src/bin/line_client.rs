//! A line-protocol client with a timeout:
//! `line_client --connect HOST:PORT [--timeout-ms 2000] [--runtime R] LINE...`.
//!
//! Sends each LINE, waits for one reply line per request, prints it, and gives up (exit 1) if
//! the server stays silent for the timeout. Try it against `echo` or `chat`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sansock_core::{CloseError, ConnectOptions, Handler, Socket};
use sansock_io::Runtime;

/// Per-connection state: lines still to send, the partial reply, the outcome.
struct Session {
    to_send: Vec<String>,
    partial: Vec<u8>,
    outcome: Arc<Mutex<Option<Result<(), String>>>>,
}

struct LineClient {
    timeout: Duration,
}

impl LineClient {
    fn send_next(&self, socket: &mut Socket<'_, Session>) {
        match socket.data_mut().to_send.pop() {
            Some(line) => {
                if let Err(e) = socket.write(format!("{line}\n").as_bytes()) {
                    *socket.data().outcome.lock().unwrap() = Some(Err(e.to_string()));
                    return;
                }
                socket.set_timeout(self.timeout);
            }
            None => {
                *socket.data().outcome.lock().unwrap() = Some(Ok(()));
                socket.end();
            }
        }
    }
}

impl Handler for LineClient {
    type Data = Session;

    fn open(&self, socket: &mut Socket<'_, Session>) {
        self.send_next(socket);
    }

    fn data(&self, socket: &mut Socket<'_, Session>, bytes: &[u8]) {
        socket.data_mut().partial.extend_from_slice(bytes);
        while let Some(pos) = socket.data().partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = socket.data_mut().partial.drain(..=pos).collect();
            println!("< {}", String::from_utf8_lossy(&line).trim_end());
            self.send_next(socket);
        }
    }

    fn timeout(&self, socket: &mut Socket<'_, Session>) {
        *socket.data().outcome.lock().unwrap() =
            Some(Err(format!("no reply within {:?}", self.timeout)));
        socket.terminate();
    }

    fn close(&self, socket: &mut Socket<'_, Session>, error: Option<&CloseError>) {
        let mut outcome = socket.data().outcome.lock().unwrap();
        if outcome.is_none() {
            *outcome = Some(Err(format!("closed early: {error:?}")));
        }
    }
}

fn main() {
    let ok = sansock_examples::run_on_selected_runtime!(run);
    std::process::exit(if ok { 0 } else { 1 });
}

async fn run<R: Runtime>() -> bool {
    let target = sansock_examples::flag("connect").expect("--connect HOST:PORT");
    let (host, port) = target.rsplit_once(':').expect("--connect HOST:PORT");
    let timeout = Duration::from_millis(
        sansock_examples::flag("timeout-ms").map_or(2000, |t| t.parse().expect("--timeout-ms")),
    );
    // Positional arguments (not flags or flag values) are the lines to send.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut lines = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i].starts_with("--") {
            i += if args[i].contains('=') || args[i] == "--log" {
                1
            } else {
                2
            };
        } else {
            lines.push(args[i].clone());
            i += 1;
        }
    }
    lines.reverse();
    let outcome = Arc::new(Mutex::new(None));
    let session = Session {
        to_send: lines,
        partial: Vec::new(),
        outcome: outcome.clone(),
    };
    let options = ConnectOptions::tcp(host, port.parse().expect("port")).data(session);
    if let Err(e) = sansock_io::connect::<R, _>(options, Arc::new(LineClient { timeout })).await {
        eprintln!("line_client: {e}");
        return false;
    }
    R::refs().idle().await;
    let result = outcome.lock().unwrap().take();
    match result {
        Some(Ok(())) => true,
        Some(Err(e)) => {
            eprintln!("line_client: {e}");
            false
        }
        None => false,
    }
}
