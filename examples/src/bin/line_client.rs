//! A line-protocol client with a timeout:
//! `line_client --connect HOST:PORT [--timeout-ms 2000] [--runtime R] [--log] LINE...`.
//!
//! Sends each LINE, waits for one reply line per request, prints it, and gives up (exit 1) if
//! the server stays silent for the timeout, or the connection fails. Try it against `echo`
//! or `chat`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use sansock_examples::HostPort;

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

/// Sends each LINE to a line-protocol server, waits for one reply line per request and prints
/// it; exits 1 if the connection fails or the server stays silent for the timeout.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    common: sansock_examples::Common,
    /// The server to connect to.
    #[arg(long, value_name = "HOST:PORT", value_parser = sansock_examples::host_port)]
    connect: HostPort,
    /// How long to wait for each reply, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u64,
    /// The lines to send, in order.
    #[arg(value_name = "LINE")]
    lines: Vec<String>,
}

fn main() {
    let cli = Cli::parse();
    let timeout = Duration::from_millis(cli.timeout_ms);
    let result = sansock_examples::run_on_selected_runtime!(
        &cli.common,
        run(cli.connect, timeout, cli.lines)
    );
    if let Err(e) = result {
        sansock_examples::fail(e);
    }
}

async fn run<R: Runtime>(
    target: HostPort,
    timeout: Duration,
    mut lines: Vec<String>,
) -> Result<(), String> {
    lines.reverse();
    let outcome = Arc::new(Mutex::new(None));
    let session = Session {
        to_send: lines,
        partial: Vec::new(),
        outcome: outcome.clone(),
    };
    let options = ConnectOptions::tcp(target.host.clone(), target.port).data(session);
    sansock_io::connect::<R, _>(options, Arc::new(LineClient { timeout }))
        .await
        .map_err(|e| format!("connect {target}: {e}"))?;
    sansock_io::context::idle::<R>().await;
    let result = outcome.lock().unwrap().take();
    result.unwrap_or_else(|| Err("the connection closed without an outcome".into()))
}
