//! The `ws_echo` example (async-tungstenite over sansock streams) against a WebSocket client
//! no one here wrote: Python's `websockets` package sends three text messages and a 1 MiB
//! binary one, checks each comes back unchanged, and closes with a closing handshake the
//! server answers; on every runtime. Every process runs under a timeout; without python3 or
//! `websockets` the test fails (`.ci/run` installs `websockets`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The client: `python3 -c CLIENT PORT`. Prints one `ok ...` line and exits 0, or fails with
/// an assertion (exit 1).
const CLIENT: &str = r#"
import asyncio, sys, time
import websockets

async def main(port):
    async with websockets.connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
        texts = ["hello", "from python", "h\u00e9llo \u2713 " * 100]
        for text in texts:
            await ws.send(text)
            echoed = await ws.recv()
            assert echoed == text, f"sent {text!r}, got {echoed!r}"
        blob = bytes(i * 31 % 251 for i in range(1 << 20))
        await ws.send(blob)
        echoed = await ws.recv()
        assert isinstance(echoed, bytes), f"binary came back as {type(echoed).__name__}"
        assert echoed == blob, f"binary came back different ({len(echoed)} bytes)"
        started = time.monotonic()
        await ws.close()
        closing = time.monotonic() - started
        # Without the server's Close reply, close() waits out its 10 s timeout.
        assert closing < 5, f"the server did not answer the closing handshake ({closing:.1f} s)"
    print(f"ok {len(texts)} texts, {len(blob)} bytes, websockets {websockets.__version__}")

asyncio.run(main(int(sys.argv[1])))
"#;

/// How long one client run may take before the test kills it and fails.
const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn python_websockets_client_gets_every_message_back() {
    let check = Command::new("python3")
        .args(["-c", "import websockets"])
        .output()
        .unwrap_or_else(|e| panic!("python3 is missing ({e}); install it to run this test"));
    assert!(
        check.status.success(),
        "python3 cannot import websockets (.ci/run installs it: python3 -m pip install \
         websockets): {}",
        String::from_utf8_lossy(&check.stderr)
    );
    for runtime in ["tokio", "tokio-current-thread", "smol", "async-std"] {
        let server = Server::start(runtime);
        let out = run_client(server.port);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the Python client failed against --runtime {runtime}: {}\nstdout: {stdout}\n\
             stderr: {stderr}",
            out.status
        );
        assert!(
            stdout.starts_with("ok 3 texts, 1048576 bytes"),
            "--runtime {runtime}: unexpected output {stdout:?}\nstderr: {stderr}"
        );
    }
}

/// The `ws_echo` binary, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(runtime: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ws_echo"))
            .args(["--runtime", runtime, "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the ws_echo example");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = Server { child, port: 0 };
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("ws_echo --runtime {runtime} printed nothing in 20 s"));
        server.port = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|addr| addr.rsplit_once(':'))
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the Python client against `port`, killing it (and failing) after [`LIMIT`].
fn run_client(port: u16) -> Output {
    common::run_within(
        Command::new("python3")
            .args(["-c", CLIENT, &port.to_string()])
            .stdin(Stdio::null()),
        LIMIT,
    )
}
