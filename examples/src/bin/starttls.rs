//! A STARTTLS line server in the shape of SMTP: `starttls [--host H] [--port P] --ca-out PATH`.
//!
//! It greets with `220`, answers `EHLO` with `250-..`/`250 STARTTLS`, and on `STARTTLS`
//! replies `220 Ready to start TLS` in plain text and upgrades the socket in place
//! (`Socket::start_tls_server`). After the handshake it answers every line with `250 LINE`, and
//! `QUIT` with `221` and an end. Try it with `openssl s_client -starttls smtp -connect
//! 127.0.0.1:PORT -CAfile PATH`. The certificate is self-signed for localhost and 127.0.0.1,
//! generated at start and written to `--ca-out` for the client to trust.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

use sansock_core::tls::{ServerTls, ServerTlsOptions};
use sansock_core::{Handler, ListenOptions, Socket};
use sansock_io::Runtime;

/// One SMTP-like session's state: the partial line, and whether TLS is on.
#[derive(Default)]
struct Session {
    partial: Vec<u8>,
    secure: bool,
}

struct StartTls {
    tls: ServerTls,
}

impl StartTls {
    fn reply(&self, socket: &mut Socket<'_, Session>, line: &str) {
        let secure = socket.data().secure;
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let reply = match (secure, verb.as_str()) {
            (_, "QUIT") => {
                socket.end_with(b"221 Bye\r\n").ok();
                return;
            }
            (false, "EHLO") => "250-sansock\r\n250 STARTTLS\r\n".to_owned(),
            (false, "STARTTLS") => {
                // The reply is written before the upgrade, so it goes out in plain text first.
                socket.write(b"220 Ready to start TLS\r\n").ok();
                if let Err(e) = socket.start_tls_server(&self.tls) {
                    eprintln!("starttls: upgrade refused: {e}");
                    socket.close();
                }
                socket.data_mut().secure = true;
                return;
            }
            (false, _) => "530 Must issue a STARTTLS command first\r\n".to_owned(),
            (true, _) => format!("250 {line}\r\n"),
        };
        socket.write(reply.as_bytes()).ok();
    }
}

impl Handler for StartTls {
    type Data = Session;

    fn open(&self, socket: &mut Socket<'_, Session>) {
        socket.write(b"220 sansock ESMTP ready\r\n").ok();
    }

    fn data(&self, socket: &mut Socket<'_, Session>, bytes: &[u8]) {
        socket.data_mut().partial.extend_from_slice(bytes);
        while let Some(end) = socket.data().partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = socket.data_mut().partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
            self.reply(socket, &line);
        }
        // A client must not pipeline past STARTTLS; a line longer than this is not SMTP.
        if socket.data().partial.len() > 4096 {
            socket.end_with(b"500 Line too long\r\n").ok();
        }
    }

    fn handshake(
        &self,
        _: &mut Socket<'_, Session>,
        success: bool,
        error: Option<&sansock_core::tls::TlsError>,
    ) {
        if !success {
            eprintln!("starttls: handshake failed: {error:?}");
        }
    }
}

/// A STARTTLS server shaped like SMTP (greeting, EHLO, STARTTLS, then TLS). The first line
/// printed is `listening on ADDR`.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    common: sansock_examples::Common,
    #[command(flatten)]
    listen: sansock_examples::Listen,
    /// Where to write the self-signed certificate (PEM) clients must trust as their CA.
    #[arg(long, value_name = "PATH")]
    ca_out: PathBuf,
}

fn main() {
    let cli = Cli::parse();
    let common = cli.common.clone();
    if let Err(e) = sansock_examples::run_on_selected_runtime!(&common, serve(cli)) {
        sansock_examples::fail(e);
    }
}

async fn serve<R: Runtime>(cli: Cli) -> Result<(), String> {
    let (key, cert) = sansock_examples::self_signed_certificate()
        .map_err(|e| format!("generating a certificate: {e}"))?;
    let tls = ServerTlsOptions::new(key, cert.clone())
        .build(&|path| std::fs::read(path))
        .map_err(|e| e.to_string())?;
    let options = ListenOptions::tcp(cli.listen.host, cli.listen.port).data_with(Session::default);
    let listener = sansock_io::listen::<R, _>(options, Arc::new(StartTls { tls }))
        .await
        .map_err(|e| e.to_string())?;
    std::fs::write(&cli.ca_out, cert)
        .map_err(|e| format!("--ca-out {}: {e}", cli.ca_out.display()))?;
    println!("listening on {}", listener.local_addr());
    sansock_io::context::idle::<R>().await;
    Ok(())
}
