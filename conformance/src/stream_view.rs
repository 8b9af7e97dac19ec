//! The stream view (`SocketStream`: `AsyncRead + AsyncWrite`) on real sockets: exact bytes,
//! backpressure through a slow reader, half-close, reset and timeout.

use std::io::{ErrorKind, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use sansock_core::{ConnectOptions, ListenOptions};
use sansock_io::{connect_stream, listen_stream, SocketStream, StreamListener};

use crate::scenarios::pattern;
use crate::{wait_until, Adapter};

const T: Duration = Duration::from_secs(20);

async fn stream_server<A: Adapter>() -> (StreamListener<A::Runtime>, u16) {
    let l = listen_stream::<A::Runtime>(ListenOptions::tcp("127.0.0.1", 0))
        .await
        .expect("listen_stream");
    let port = l.listener().port().unwrap();
    (l, port)
}

async fn stream_client<A: Adapter>(port: u16) -> SocketStream {
    connect_stream::<A::Runtime>(ConnectOptions::tcp("127.0.0.1", port))
        .await
        .expect("connect_stream")
}

/// Reads `stream` to its end.
async fn read_all(stream: &mut SocketStream) -> std::io::Result<Vec<u8>> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await?;
    Ok(all)
}

pub async fn stream_echo_16_mib_exact<A: Adapter>() {
    let (l, port) = stream_server::<A>().await;
    let l = Arc::new(l);
    let l2 = l.clone();
    A::spawn(async move {
        let mut s = l2.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).await.unwrap();
        }
        s.close().await.unwrap();
    });
    let data = Arc::new(pattern(16 << 20, 11));
    let mut reader = stream_client::<A>(port).await;
    let mut writer = reader.clone();
    let d2 = data.clone();
    A::spawn(async move {
        for chunk in d2.chunks(100_000) {
            writer.write_all(chunk).await.unwrap();
        }
        writer.flush().await.unwrap();
        writer.close().await.unwrap();
    });
    let back = read_all(&mut reader).await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == *data, "the echo differs");
    l.stop(true);
}

pub async fn stream_slow_reader_bounds_its_buffer<A: Adapter>() {
    let (l, port) = stream_server::<A>().await;
    let data = Arc::new(pattern(8 << 20, 5));
    let d2 = data.clone();
    let done = Arc::new(Mutex::new(None));
    let done2 = done.clone();
    std::thread::spawn(move || {
        let r = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_write_timeout(Some(Duration::from_secs(30)))?;
            s.write_all(&d2)
        });
        *done2.lock().unwrap() = Some(r.map_err(|e| e.kind()));
    });
    let mut s = l.accept().await.unwrap();
    // The application does not read: the stream stops reading at its limit, so the client's
    // writes stall in the kernel instead of growing our memory.
    A::sleep(Duration::from_millis(300)).await;
    let held = s.buffered_inbound();
    assert!(
        held <= sansock_io::stream::READ_LIMIT + 64 * 1024,
        "buffered {held} bytes for a reader that does not read"
    );
    assert!(
        done.lock().unwrap().is_none(),
        "8 MiB fit without backpressure"
    );
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got).await.unwrap();
    assert!(got == *data);
    wait_until::<A>("the client finished", T, || done.lock().unwrap().is_some()).await;
    assert_eq!(done.lock().unwrap().clone(), Some(Ok(())));
    l.stop(true);
}

pub async fn stream_half_close_then_reply<A: Adapter>() {
    let (l, port) = stream_server::<A>().await;
    let l = Arc::new(l);
    let l2 = l.clone();
    A::spawn(async move {
        let mut s = l2.accept().await.unwrap();
        let question = read_all(&mut s).await.unwrap();
        assert_eq!(question, b"question?");
        s.write_all(b"answer").await.unwrap();
        s.close().await.unwrap();
    });
    let mut c = stream_client::<A>(port).await;
    c.write_all(b"question?").await.unwrap();
    c.close().await.unwrap(); // our FIN; reading goes on
    assert_eq!(read_all(&mut c).await.unwrap(), b"answer");
    l.stop(true);
}

pub async fn stream_reset_is_connection_reset<A: Adapter>() {
    let (l, port) = stream_server::<A>().await;
    let c = stream_client::<A>(port).await;
    let mut s = l.accept().await.unwrap();
    c.handle().terminate();
    let mut buf = [0u8; 16];
    let err = s.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    let err = s.write_all(b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    l.stop(true);
}

pub async fn stream_timeout_fails_a_pending_read_only<A: Adapter>() {
    let (l, port) = stream_server::<A>().await;
    let mut c = stream_client::<A>(port).await;
    let mut s = l.accept().await.unwrap();
    s.set_timeout(Duration::from_millis(200));
    let mut buf = [0u8; 16];
    let err = s.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    // The socket lives on.
    s.set_timeout(Duration::ZERO);
    c.write_all(b"late").await.unwrap();
    let mut got = [0u8; 4];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"late");
    l.stop(true);
}
