//! The write contract on real sockets: code that ignores `write`'s status delivers every byte
//! or ends with a typed error, and the documented backpressure pattern bounds memory.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sansock_core::{CloseError, Handler, ListenOptions, Socket, SocketError};

use crate::{port_of, wait_until, Adapter};

/// 200,000 lines of 50 bytes: 10 MB, as in the review's reproduction.
const LINES: usize = 200_000;
const LINE: usize = 50;

fn lines() -> Vec<u8> {
    let mut all = Vec::with_capacity(LINES * LINE);
    for i in 0..LINES {
        let line = format!("{i:>10} the quick brown fox jumps over the lazy dog, twice");
        all.extend_from_slice(&line.as_bytes()[..LINE - 1]);
        all.push(b'\n');
    }
    all
}

/// What the README's echo does: write, status ignored. Records how the socket ended.
struct ReadmeEcho {
    closes: Arc<Mutex<Vec<Option<CloseError>>>>,
    errors: Arc<Mutex<Vec<SocketError>>>,
}

impl Handler for ReadmeEcho {
    type Data = ();
    fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
        socket.write(bytes).ok();
    }
    fn error(&self, _: &mut Socket<'_, ()>, error: &SocketError) {
        self.errors.lock().unwrap().push(error.clone());
    }
    fn close(&self, _: &mut Socket<'_, ()>, error: Option<&CloseError>) {
        self.closes.lock().unwrap().push(error.cloned());
    }
}

/// A blocking client on its own thread that sends everything, then half-closes, then reads
/// to the end; the result is what it read, or the IO error that stopped it.
fn send_then_read(
    port: u16,
    payload: Arc<Vec<u8>>,
) -> Arc<Mutex<Option<std::io::Result<Vec<u8>>>>> {
    let result = Arc::new(Mutex::new(None));
    let r2 = result.clone();
    std::thread::spawn(move || {
        let run = || -> std::io::Result<Vec<u8>> {
            // A small fixed receive buffer (no autotuning, which grows to 32 MiB on some
            // machines): the server's replies pile up in its own buffer, not in the kernel's.
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            socket.set_recv_buffer_size(64 * 1024)?;
            socket.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())?;
            let mut s: TcpStream = socket.into();
            s.set_write_timeout(Some(Duration::from_secs(30)))?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            s.write_all(&payload)?;
            s.shutdown(Shutdown::Write)?;
            let mut back = Vec::new();
            s.read_to_end(&mut back)?;
            Ok(back)
        };
        let r = run();
        *r2.lock().unwrap() = Some(r);
    });
    result
}

/// How a README-echo run ended: what the client got, and the server's `close` and `error`.
struct Outcome {
    client: std::io::Result<Vec<u8>>,
    closes: Vec<Option<CloseError>>,
    errors: Vec<SocketError>,
}

/// Serves [`ReadmeEcho`] with `options`, runs [`send_then_read`] with [`lines`] against it,
/// and waits for the server socket to close.
async fn run_readme_echo<A: Adapter>(options: ListenOptions<()>, payload: Arc<Vec<u8>>) -> Outcome {
    let closes = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let handler = ReadmeEcho {
        closes: closes.clone(),
        errors: errors.clone(),
    };
    let l = A::listen(options, Arc::new(handler)).await.unwrap();
    let result = send_then_read(port_of(&l), payload);
    wait_until::<A>("the client finished", Duration::from_secs(50), || {
        result.lock().unwrap().is_some()
    })
    .await;
    wait_until::<A>("the server closed", Duration::from_secs(5), || {
        !closes.lock().unwrap().is_empty()
    })
    .await;
    l.stop(true);
    let client = result.lock().unwrap().take().unwrap();
    let closes = closes.lock().unwrap().clone();
    let errors = errors.lock().unwrap().clone();
    Outcome {
        client,
        closes,
        errors,
    }
}

pub async fn readme_echo_delivers_every_byte_to_a_client_that_reads_last<A: Adapter>() {
    let payload = Arc::new(lines());
    let out = run_readme_echo::<A>(ListenOptions::tcp("127.0.0.1", 0), payload.clone()).await;
    let back = out.client.expect("client IO");
    println!(
        "README echo, status ignored: the client got {} of {} bytes back; server close: {:?}",
        back.len(),
        payload.len(),
        out.closes
    );
    assert_eq!(back.len(), payload.len(), "every byte comes back");
    assert!(back == *payload, "in order");
    assert_eq!(out.closes, [None]);
    assert!(out.errors.is_empty());
}

pub async fn ignored_backpressure_past_max_buffered_ends_with_a_typed_error<A: Adapter>() {
    let payload = Arc::new(lines());
    let options = ListenOptions::tcp("127.0.0.1", 0).max_buffered(1 << 20);
    let out = run_readme_echo::<A>(options, payload.clone()).await;
    println!(
        "README echo with max_buffered 1 MiB: client {:?}; server error {:?}, close {:?}",
        out.client.as_ref().map(Vec::len).map_err(|e| e.to_string()),
        out.errors,
        out.closes
    );
    // Never a clean end after a silent cut: the server says why, the client sees a reset.
    assert!(
        out.client.is_err(),
        "the client got a clean end with {} of {} bytes",
        out.client.map(|b| b.len()).unwrap_or(0),
        payload.len()
    );
    assert!(
        matches!(
            out.closes[..],
            [Some(CloseError::BufferLimit { limit, refused, buffered })]
                if limit == 1 << 20 && buffered + refused > limit
        ),
        "{:?}",
        out.closes
    );
    assert!(matches!(out.errors[..], [SocketError::BufferLimit { .. }]));
}

/// The documented pattern: write, and on backpressure stop reading until `drain`.
struct PacedEcho {
    most_buffered: Arc<AtomicUsize>,
}

impl Handler for PacedEcho {
    type Data = ();
    fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
        if socket.write(bytes).is_ok_and(|s| s.is_backpressured()) {
            socket.pause_until_drain();
        }
        self.most_buffered
            .fetch_max(socket.buffered_amount(), Ordering::SeqCst);
    }
}

pub async fn paced_echo_bounds_its_buffer_and_delivers_every_byte<A: Adapter>() {
    const HWM: usize = 64 * 1024;
    let most_buffered = Arc::new(AtomicUsize::new(0));
    let l = A::listen(
        ListenOptions::tcp("127.0.0.1", 0).high_water_mark(HWM),
        Arc::new(PacedEcho {
            most_buffered: most_buffered.clone(),
        }),
    )
    .await
    .unwrap();
    let payload = Arc::new(lines());
    let port = port_of(&l);
    // A client that reads while it writes (a paced server would otherwise stall a client that
    // only reads at the end: that is backpressure working).
    let result = Arc::new(Mutex::new(None));
    let (r2, p2) = (result.clone(), payload.clone());
    std::thread::spawn(move || {
        let run = || -> std::io::Result<Vec<u8>> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            s.set_write_timeout(Some(Duration::from_secs(30)))?;
            let mut w = s.try_clone()?;
            let writer = std::thread::spawn(move || {
                let r = w.write_all(&p2);
                let _ = w.shutdown(Shutdown::Write);
                r
            });
            let mut back = Vec::new();
            s.read_to_end(&mut back)?;
            writer.join().expect("writer thread")?;
            Ok(back)
        };
        let r = run();
        *r2.lock().unwrap() = Some(r);
    });
    wait_until::<A>("the client finished", Duration::from_secs(50), || {
        result.lock().unwrap().is_some()
    })
    .await;
    let back = result.lock().unwrap().take().unwrap().expect("client IO");
    assert!(
        back == *payload,
        "{} of {} bytes",
        back.len(),
        payload.len()
    );
    // At most one read (64 KiB) beyond the mark before reading stops.
    let most = most_buffered.load(Ordering::SeqCst);
    assert!(most <= HWM + 64 * 1024, "buffered up to {most} bytes");
    l.stop(true);
}
