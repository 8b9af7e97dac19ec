//! A line server on the framing helper: `upper [--host H] [--port P] [--max-line BYTES]`
//! answers every line with the same line in upper case. A line longer than `--max-line` gets
//! an error line and the connection ends: memory per connection is bounded by one line. Try it
//! with `nc 127.0.0.1 PORT`.

use std::sync::Arc;

use clap::Parser;

use sansock_core::framing::Lines;
use sansock_core::{Handler, ListenOptions, Socket};
use sansock_io::Runtime;

struct Upper;

impl Handler for Upper {
    type Data = Lines;

    fn data(&self, socket: &mut Socket<'_, Lines>, bytes: &[u8]) {
        let (lines, out) = socket.parts();
        let mut backpressured = false;
        // Whole lines come straight out of `bytes`; only one cut by a read is copied.
        let fed = lines.feed(bytes, |line| {
            let mut reply = line.to_ascii_uppercase();
            reply.push(b'\n');
            backpressured |= out.write(&reply).is_ok_and(|s| s.is_backpressured());
        });
        match fed {
            Err(e) => {
                out.end_with(format!("error: {e}\n").as_bytes()).ok();
            }
            Ok(()) if backpressured => out.pause_until_drain(),
            Ok(()) => {}
        }
    }
}

/// A line server that answers every line in upper case. The first line printed is
/// `listening on ADDR`.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    common: sansock_examples::Common,
    #[command(flatten)]
    listen: sansock_examples::Listen,
    /// The longest line accepted, in bytes (without its line ending).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    max_line: usize,
}

fn main() {
    let cli = Cli::parse();
    let common = cli.common.clone();
    if let Err(e) = sansock_examples::run_on_selected_runtime!(&common, serve(cli)) {
        sansock_examples::fail(e);
    }
}

async fn serve<R: Runtime>(cli: Cli) -> Result<(), String> {
    let max = cli.max_line;
    let options =
        ListenOptions::tcp(cli.listen.host, cli.listen.port).data_with(move || Lines::new(max));
    let listener = sansock_io::listen::<R, _>(options, Arc::new(Upper))
        .await
        .map_err(|e| e.to_string())?;
    println!("listening on {}", listener.local_addr());
    sansock_io::context::idle::<R>().await;
    Ok(())
}
