//! The TLS side of the benchmark: certificates generated at the start of a run, the rustls
//! configurations of the load generator and of the hand-written tokio-rustls baseline, and
//! the client side of the TLS workloads (handshakes, resumption, streaming, idle).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{self, mark, Metrics, Probe, StreamPattern};
use crate::hash::Hasher;

/// The name every TLS client verifies and sends as SNI.
pub const SERVER_NAME: &str = "localhost";

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A self-signed ECDSA P-256 certificate for `localhost` and 127.0.0.1, made with rcgen.
pub fn generate_p256(dir: &Path) -> Result<CertFiles, String> {
    let names = vec![SERVER_NAME.to_owned(), "127.0.0.1".to_owned()];
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| format!("rcgen: {e}"))?;
    let files = CertFiles {
        cert: dir.join("p256-cert.pem"),
        key: dir.join("p256-key.pem"),
    };
    std::fs::write(&files.cert, ck.cert.pem()).map_err(|e| format!("write cert: {e}"))?;
    std::fs::write(&files.key, ck.signing_key.serialize_pem())
        .map_err(|e| format!("write key: {e}"))?;
    Ok(files)
}

/// A self-signed RSA-2048 certificate for `localhost` and 127.0.0.1, made with the `openssl`
/// command (ring cannot generate RSA keys). `CA:FALSE` because `openssl req -x509` marks the
/// certificate as a CA by default, which webpki refuses as a server's certificate.
pub fn generate_rsa2048(dir: &Path) -> Result<CertFiles, String> {
    let files = CertFiles {
        cert: dir.join("rsa2048-cert.pem"),
        key: dir.join("rsa2048-key.pem"),
    };
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(&files.key)
        .arg("-out")
        .arg(&files.cert)
        .args(["-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("RSA certificate: cannot run `openssl` ({e}); install it"))?;
    if !out.status.success() {
        return Err(format!(
            "RSA certificate: openssl failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(files)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
}

/// The load generator's configuration: trusts exactly `cert`; TLS 1.3 and 1.2 (ring), with
/// session resumption on (rustls's default in-memory cache) or off.
pub fn client_config(cert: &Path, resumption: bool) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for c in certificates(cert)? {
        roots.add(c).map_err(io::Error::other)?;
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resumption {
        config.resumption = Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// The tokio-rustls baseline's configuration: rustls's ring defaults (TLS 1.3 and 1.2), with
/// stateless session tickets as sansock issues them.
pub fn server_config(files: &CertFiles) -> io::Result<Arc<ServerConfig>> {
    let chain = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| io::Error::other(format!("{}: {e}", files.key.display())))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(io::Error::other)?;
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(io::Error::other)?;
    Ok(Arc::new(config))
}

fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).expect("valid DNS name")
}

/// Full or resumed handshakes, `concurrency` loops at once for `measure` after `warm`: TCP
/// connect (from a spread of loopback source addresses, as churn), handshake, one 1-byte
/// round trip, close_notify and FIN, drop. With `resumption`, each loop has its own copy of
/// `config` with its own default in-memory session cache, and the sample fails unless at
/// least 90 % of the measured handshakes resumed (resumption silently off must not look
/// fast). Not one cache shared by all loops: rustls's keeps at most 8 TLS 1.3 tickets per
/// server name, and with sansock on smol and async-std (handshakes completing in bursts) 16
/// loops run it dry although every handshake brings 2 tickets: only 52-57 % resumed there,
/// 98-100 % elsewhere.
pub async fn handshakes(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    resumption: bool,
    concurrency: usize,
    warm: Duration,
    measure: Duration,
    probe: &mut dyn Probe,
) -> io::Result<Metrics> {
    let count = Arc::new(AtomicU64::new(0));
    let resumed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let last_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..concurrency)
        .map(|k| {
            let (count, resumed, errors, stop) =
                (count.clone(), resumed.clone(), errors.clone(), stop.clone());
            let last_error = last_error.clone();
            let connector = tokio_rustls::TlsConnector::from(if resumption {
                let mut own = (*config).clone();
                own.resumption = Resumption::default();
                Arc::new(own)
            } else {
                config.clone()
            });
            tokio::spawn(async move {
                let mut n = k;
                while !stop.load(Relaxed) {
                    let i = n;
                    n += concurrency;
                    let once = async {
                        let tcp = client::connect_spread(addr, i).await?;
                        // The client's Finished and its request are two writes: without
                        // TCP_NODELAY the second waits for the server's delayed ACK.
                        tcp.set_nodelay(true)?;
                        let mut tls = connector.connect(server_name(), tcp).await?;
                        tls.write_all(b"x").await?;
                        tls.flush().await?;
                        let mut b = [0u8; 1];
                        tls.read_exact(&mut b).await?;
                        let kind = tls.get_ref().1.handshake_kind();
                        // close_notify, then FIN; the server may already be gone.
                        let _ = tls.shutdown().await;
                        io::Result::Ok(kind == Some(HandshakeKind::Resumed))
                    };
                    let once = tokio::time::timeout(Duration::from_secs(10), once);
                    match once
                        .await
                        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
                    {
                        Ok(r) => {
                            if r {
                                resumed.fetch_add(1, Relaxed);
                            }
                            count.fetch_add(1, Relaxed);
                        }
                        Err(e) => {
                            errors.fetch_add(1, Relaxed);
                            *last_error.lock().expect("lock") = Some(e.to_string());
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(warm).await;
    let a = mark(probe);
    let (c0, r0) = (count.load(Relaxed), resumed.load(Relaxed));
    tokio::time::sleep(measure).await;
    let (c1, r1) = (count.load(Relaxed), resumed.load(Relaxed));
    let b = mark(probe);
    stop.store(true, Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let ops = (c1 - c0) as f64;
    if ops == 0.0 {
        let why = last_error.lock().expect("lock").clone().unwrap_or_default();
        return Err(io::Error::other(format!("no handshake completed: {why}")));
    }
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let mut m = vec![
        ("ops_per_s", ops / secs),
        ("cpu_us_per_op", (b.cpu - a.cpu) * 1e6 / ops),
        ("server_cpu_util", (b.cpu - a.cpu) / secs),
        ("client_cpu_util", (b.client_cpu - a.client_cpu) / secs),
        ("errors", errors.load(Relaxed) as f64),
    ];
    let fraction = (r1 - r0) as f64 / ops;
    if resumption && fraction < 0.9 {
        return Err(io::Error::other(format!(
            "only {:.1} % of the handshakes resumed (at least 90 % expected)",
            fraction * 100.0
        )));
    }
    m.push(("resumed_fraction", fraction));
    Ok(m)
}

/// Streams the pattern through the echo server on one TLS connection and checks the hash of
/// what comes back. The load generator must not be the bottleneck, so this client is lean:
/// two threads over one blocking socket share a rustls connection behind a mutex; the writer
/// encrypts 64 KiB chunks and sends each as one write, the reader receives up to 256 KiB per
/// call and decrypts everything it got (tokio-rustls reads one record per call).
pub fn stream(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    pattern: &Arc<StreamPattern>,
    expected: u64,
    probe: &mut dyn Probe,
) -> io::Result<Metrics> {
    let mut tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut conn =
        rustls::ClientConnection::new(config, server_name()).map_err(io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    let conn = Arc::new(std::sync::Mutex::new(conn));
    let mut writer_tcp = tcp.try_clone()?;
    let mut reader_tcp = tcp;
    let a = mark(probe);
    let (p, wconn) = (pattern.clone(), conn.clone());
    let w = std::thread::spawn(move || -> io::Result<()> {
        let mut chunks = p.chunks();
        let mut out = Vec::with_capacity(80 * 1024);
        while let Some(c) = chunks.next_chunk() {
            {
                let mut conn = wconn.lock().unwrap();
                conn.writer().write_all(c)?;
                while conn.wants_write() {
                    conn.write_tls(&mut out)?;
                }
            }
            writer_tcp.write_all(&out)?;
            out.clear();
        }
        Ok(())
    });
    let mut h = Hasher::default();
    let mut buf = vec![0u8; 256 * 1024];
    let mut plain = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while received < pattern.total {
        if std::time::Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "TLS stream timed out after {received} bytes"
            )));
        }
        let n = reader_tcp.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut input = &buf[..n];
        let mut conn = conn.lock().unwrap();
        while !input.is_empty() {
            conn.read_tls(&mut input)?;
            conn.process_new_packets().map_err(io::Error::other)?;
            loop {
                match conn.reader().read(&mut plain) {
                    Ok(0) => break,
                    Ok(k) => {
                        h.update(&plain[..k]);
                        received += k as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let b = mark(probe);
    w.join()
        .map_err(|_| io::Error::other("writer panicked"))??;
    let secs = b.at.duration_since(a.at).as_secs_f64();
    client::stream_metrics(pattern, expected, received, h.finish(), &a, &b, secs)
}

/// Opens `conns` TLS connections (blocking rustls), each with a full handshake and one 1-byte
/// round trip, holds them all open, and reports the server's RSS and heap growth per
/// connection.
pub fn idle(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    conns: usize,
    probe: &mut dyn Probe,
) -> io::Result<Metrics> {
    let open_one = || -> io::Result<rustls::StreamOwned<rustls::ClientConnection, _>> {
        let tcp = std::net::TcpStream::connect(addr)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let conn = rustls::ClientConnection::new(config.clone(), server_name())
            .map_err(io::Error::other)?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(b"x")?;
        s.flush()?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        Ok(s)
    };
    client::idle_with(conns, probe, open_one)
}
