//! TLS scenarios over real loopback sockets, on every adapter. Certificates come from rcgen
//! at test time (`sansock_core::test_certs`).

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sansock_core::test_certs::{TestPki, SERVER_NEXT_SERIAL, SERVER_SERIAL};
use sansock_core::tls::{
    ClientTlsOptions, Pem, ServerTlsOptions, TlsConfigError, TlsError, TlsVersion,
};
use sansock_core::{ConnectError, ConnectOptions, ListenError, ListenOptions, SocketHandle};

use crate::recorder::{echo, quiet, recorder, Data, Ev, Log, Logs};
use crate::stream::{hashing_sink, hashing_source, Tally};
use crate::{port_of, wait_until, Adapter};
use sansock_io::Listener;

const T: Duration = Duration::from_secs(20);

/// The test PKI, generated once per process.
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(TestPki::generate)
}

fn server_opts() -> ServerTlsOptions {
    ServerTlsOptions::new(
        pki().server.key_pem.as_str(),
        pki().server.cert_pem.as_str(),
    )
}

fn trusting() -> ClientTlsOptions {
    ClientTlsOptions::new().ca(pki().ca_pem.as_str())
}

async fn tls_server<A: Adapter>(
    tls: ServerTlsOptions,
    handler: Arc<dyn sansock_core::Handler<Data = Data>>,
) -> (Listener<A::Runtime, Data>, Arc<Logs>) {
    let logs = Logs::new();
    let l = A::listen(
        ListenOptions::tcp("127.0.0.1", 0)
            .tls(tls)
            .data_with(logs.factory()),
        handler,
    )
    .await
    .expect("tls listen");
    (l, logs)
}

async fn tls_client<A: Adapter>(
    port: u16,
    host: &str,
    tls: ClientTlsOptions,
    handler: Arc<dyn sansock_core::Handler<Data = Data>>,
) -> (SocketHandle<Data>, Arc<Log>) {
    let log = Arc::new(Log::default());
    let s = A::connect(
        ConnectOptions::tcp(host, port).tls(tls).data(log.clone()),
        handler,
    )
    .await
    .expect("tls connect");
    (s, log)
}

fn hello() -> Arc<dyn sansock_core::Handler<Data = Data>> {
    recorder(|ev, s| {
        if let Ev::Open = ev {
            // Before the handshake: queued, sent once it completes.
            s.write(b"hello tls").unwrap();
        }
    })
}

pub async fn tls_trusted_handshake_and_echo<A: Adapter>() {
    let (l, logs) = tls_server::<A>(server_opts(), echo()).await;
    let (c, clog) = tls_client::<A>(port_of(&l), "localhost", trusting(), hello()).await;
    wait_until::<A>("echo over TLS", T, || clog.received() == b"hello tls").await;
    let slog = logs.get(0).unwrap();
    assert_eq!(clog.trace(), ["open", "handshake", "data"]);
    assert_eq!(slog.trace(), ["open", "handshake", "data"]);
    let info = c.tls_info().expect("negotiated");
    assert_eq!(info.version, Some(TlsVersion::Tls13));
    assert!(info.authorized);
    assert_eq!(info.server_name.as_deref(), Some("localhost"));
    // end() sends close_notify after pending data; both sides close cleanly.
    c.write(b"!").unwrap();
    c.end();
    wait_until::<A>("both closed", T, || clog.is_closed() && slog.is_closed()).await;
    assert_eq!(slog.trace(), ["open", "handshake", "data", "end", "close"]);
    assert_eq!(slog.received(), b"hello tls!");
    assert_eq!(clog.close_error(), Some(None));
    l.stop(true);
}

/// A second connection with the same `ClientTlsOptions` value resumes the first one's session
/// (the options keep one rustls configuration and its session cache).
pub async fn tls_session_resumption<A: Adapter>() {
    let (l, _logs) = tls_server::<A>(server_opts(), echo()).await;
    let client = trusting();
    let mut reused = Vec::new();
    for _ in 0..2 {
        let (c, clog) = tls_client::<A>(port_of(&l), "localhost", client.clone(), hello()).await;
        // The echo comes after the server's session tickets.
        wait_until::<A>("echo over TLS", T, || clog.received() == b"hello tls").await;
        let info = c.tls_info().unwrap();
        assert!(info.authorized);
        reused.push(info.session_reused);
        c.end();
        wait_until::<A>("closed", T, || clog.is_closed()).await;
    }
    assert_eq!(reused, [false, true]);
    l.stop(true);
}

async fn expect_rejection<A: Adapter>(
    cert: &sansock_core::test_certs::Pair,
    host: &str,
    want: TlsError,
) {
    let opts = ServerTlsOptions::new(cert.key_pem.as_str(), cert.cert_pem.as_str());
    let (l, logs) = tls_server::<A>(opts.clone(), echo()).await;
    // reject_unauthorized on: handshake(false, reason), no data, closed.
    let (_c, clog) = tls_client::<A>(port_of(&l), host, trusting(), hello()).await;
    wait_until::<A>("client closed", T, || clog.is_closed()).await;
    assert_eq!(clog.trace(), ["open", "handshake", "close"], "{want}");
    let slog = logs.get(0).unwrap();
    wait_until::<A>("server closed", T, || slog.is_closed()).await;
    assert_eq!(slog.trace(), ["open", "handshake", "close"]);
    assert!(
        slog.received().is_empty(),
        "no application data after a rejection"
    );
    // reject_unauthorized off: the connection proceeds and the reason is reported.
    let (c, clog) = tls_client::<A>(
        port_of(&l),
        host,
        trusting().reject_unauthorized(false),
        hello(),
    )
    .await;
    wait_until::<A>("echo despite the bad certificate", T, || {
        clog.received() == b"hello tls"
    })
    .await;
    let info = c.tls_info().unwrap();
    assert!(!info.authorized);
    assert_eq!(info.authorization_error, Some(want));
    l.stop(true);
}

pub async fn tls_rejections_with_and_without_reject_unauthorized<A: Adapter>() {
    expect_rejection::<A>(&pki().self_signed, "localhost", TlsError::UnknownIssuer).await;
    expect_rejection::<A>(&pki().wrong_name, "localhost", TlsError::NameMismatch).await;
    expect_rejection::<A>(&pki().expired, "127.0.0.1", TlsError::Expired).await;
}

pub async fn tls_sni_selects_certificate<A: Adapter>() {
    let opts = server_opts().sni(
        "other.test",
        pki().sni_other.key_pem.as_str(),
        pki().sni_other.cert_pem.as_str(),
    );
    let (l, logs) = tls_server::<A>(opts, echo()).await;
    let (c, clog) = tls_client::<A>(
        port_of(&l),
        "127.0.0.1",
        trusting().server_name("other.test"),
        hello(),
    )
    .await;
    wait_until::<A>("echo", T, || clog.received() == b"hello tls").await;
    assert!(c.tls_info().unwrap().authorized);
    let slog = logs.get(0).unwrap();
    let _ = slog;
    let server_side = l.sockets().pop().unwrap();
    assert_eq!(
        server_side.tls_info().unwrap().server_name.as_deref(),
        Some("other.test")
    );
    // Without SNI for it, the default certificate (localhost) is served.
    let (c2, clog2) = tls_client::<A>(port_of(&l), "localhost", trusting(), hello()).await;
    wait_until::<A>("echo", T, || clog2.received() == b"hello tls").await;
    assert_ne!(
        c2.tls_info().unwrap().peer_certificates[0],
        c.tls_info().unwrap().peer_certificates[0]
    );
    l.stop(true);
}

pub async fn tls_mutual_accepted_and_refused<A: Adapter>() {
    let opts = server_opts().ca(pki().ca_pem.as_str()).request_cert(true);
    let (l, logs) = tls_server::<A>(opts, echo()).await;
    let good = trusting().client_cert(
        pki().client.cert_pem.as_str(),
        pki().client.key_pem.as_str(),
    );
    let (_c, clog) = tls_client::<A>(port_of(&l), "localhost", good, hello()).await;
    wait_until::<A>("mTLS echo", T, || clog.received() == b"hello tls").await;
    assert!(logs.get(0).unwrap().trace().contains(&"handshake"));
    let bad = trusting().client_cert(
        pki().untrusted_client.cert_pem.as_str(),
        pki().untrusted_client.key_pem.as_str(),
    );
    let (_c2, clog2) = tls_client::<A>(port_of(&l), "localhost", bad, hello()).await;
    wait_until::<A>("refused client closed", T, || clog2.is_closed()).await;
    wait_until::<A>("second accept", T, || logs.len() == 2).await;
    let slog2 = logs.get(1).unwrap();
    wait_until::<A>("server side closed", T, || slog2.is_closed()).await;
    assert!(slog2.received().is_empty());
    assert!(clog2.received().is_empty());
    l.stop(true);
}

pub async fn tls_alpn<A: Adapter>() {
    let (l, _logs) = tls_server::<A>(server_opts().alpn(["h2", "http/1.1"]), echo()).await;
    let (c, clog) = tls_client::<A>(
        port_of(&l),
        "localhost",
        trusting().alpn(["http/1.1"]),
        hello(),
    )
    .await;
    wait_until::<A>("echo", T, || clog.received() == b"hello tls").await;
    assert_eq!(
        c.tls_info().unwrap().alpn_protocol.as_deref(),
        Some(&b"http/1.1"[..])
    );
    l.stop(true);
}

pub async fn tls_256_mib_with_sha256_and_backpressure<A: Adapter>() {
    const TOTAL: u64 = 256 << 20;
    let pattern: Arc<Vec<u8>> = Arc::new(
        (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect(),
    );
    let (received, sent) = (Tally::new(), Tally::new());
    let (l, logs) = tls_server::<A>(server_opts(), hashing_sink(received.clone())).await;
    let source = hashing_source(TOTAL, pattern, sent.clone());
    let (_c, clog) = tls_client::<A>(port_of(&l), "localhost", trusting(), source).await;
    wait_until::<A>("256 MiB over TLS", Duration::from_secs(50), || {
        clog.is_closed()
    })
    .await;
    let slog = logs.get(0).unwrap();
    wait_until::<A>("server closed", T, || slog.is_closed()).await;
    assert_eq!(received.bytes(), TOTAL);
    assert!(
        clog.count("drain") > 0,
        "the writer was backpressured and drained"
    );
    assert_eq!(sent.digest(), received.digest());
    l.stop(true);
}

pub async fn tls_handshake_timeout_and_garbage<A: Adapter>() {
    let (l, logs) = tls_server::<A>(
        server_opts().handshake_timeout(Duration::from_millis(300)),
        echo(),
    )
    .await;
    let port = port_of(&l);
    // A silent client is dropped by the handshake timeout.
    let silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    wait_until::<A>("accepted", T, || logs.len() == 1).await;
    let slog = logs.get(0).unwrap();
    wait_until::<A>("timed out", T, || slog.is_closed()).await;
    assert_eq!(slog.trace(), ["open", "handshake", "close"]);
    drop(silent);
    // Plain text to the TLS port: that socket fails its handshake; the listener is fine.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_until::<A>("accepted", T, || logs.len() == 2).await;
    let slog2 = logs.get(1).unwrap();
    wait_until::<A>("garbage closed", T, || slog2.is_closed()).await;
    assert_eq!(slog2.trace(), ["open", "handshake", "close"]);
    let (_c, clog) = tls_client::<A>(port, "localhost", trusting(), hello()).await;
    wait_until::<A>("a real client still served", T, || {
        clog.received() == b"hello tls"
    })
    .await;
    l.stop(true);
}

pub async fn tls_bad_configuration_is_typed<A: Adapter>() {
    let bad = ServerTlsOptions::new(
        pki().client.key_pem.as_str(),
        pki().server.cert_pem.as_str(),
    );
    let e = A::listen(
        ListenOptions::tcp("127.0.0.1", 0)
            .tls(bad)
            .data_with(|| Arc::new(Log::default())),
        quiet(),
    )
    .await
    .expect_err("mismatched key");
    assert_eq!(
        e,
        ListenError::TlsConfig(TlsConfigError::KeyMismatch { field: "key" })
    );
    let missing = ServerTlsOptions::new(
        Pem::file("/nonexistent/key.pem"),
        pki().server.cert_pem.as_str(),
    );
    let e = A::listen(
        ListenOptions::tcp("127.0.0.1", 0)
            .tls(missing)
            .data_with(|| Arc::new(Log::default())),
        quiet(),
    )
    .await
    .expect_err("missing file");
    assert!(
        matches!(
            e,
            ListenError::TlsConfig(TlsConfigError::Unreadable { field: "key", .. })
        ),
        "{e}"
    );
    let log = Arc::new(Log::default());
    let e = A::connect(
        ConnectOptions::tcp("localhost", 1)
            .tls(ClientTlsOptions::new().ca("nope"))
            .data(log.clone()),
        quiet(),
    )
    .await
    .expect_err("bad ca");
    assert!(
        matches!(
            e,
            ConnectError::TlsConfig(TlsConfigError::NoPemBlock { field: "ca", .. })
        ),
        "{e}"
    );
    assert_eq!(log.trace(), ["connect_error"]);
}

/// The DER of a PEM certificate.
fn der_of(pem: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("a PEM certificate");
    pem.contents
}

/// The serial number of a DER certificate.
fn serial_of(der: &[u8]) -> u64 {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("an X.509 certificate");
    let raw = cert.tbs_certificate.raw_serial();
    let raw = raw.strip_prefix(&[0]).unwrap_or(raw);
    assert!(raw.len() <= 8, "serial {raw:02x?} is not a u64");
    raw.iter().fold(0, |n, &b| n << 8 | u64::from(b))
}

/// Certificate rotation without a restart (Node's `setSecureContext`): after `set_tls`, new
/// handshakes get the new certificate (its serial number read from the leaf the client was
/// served) and a connection made before keeps working on the old one. Bad options and a
/// plain listener change nothing.
pub async fn tls_set_tls_rotates_certificates_for_new_connections<A: Adapter>() {
    let next = &pki().server_next;
    let (l, logs) = tls_server::<A>(server_opts(), echo()).await;
    let port = port_of(&l);
    // One client options value throughout: its session cache must not resume the old session.
    let client = trusting();
    let (c1, clog1) = tls_client::<A>(port, "localhost", client.clone(), hello()).await;
    wait_until::<A>("echo over TLS", T, || clog1.received() == b"hello tls").await;
    let old_leaf = c1.tls_info().unwrap().peer_certificates[0].clone();
    assert_eq!(old_leaf, der_of(&pki().server.cert_pem));
    assert_eq!(serial_of(&old_leaf), SERVER_SERIAL);

    // Options that cannot be used: a typed error, and the old certificate still served.
    let mismatched = ServerTlsOptions::new(pki().client.key_pem.as_str(), next.cert_pem.as_str());
    assert_eq!(
        l.set_tls(mismatched),
        Err(ListenError::TlsConfig(TlsConfigError::KeyMismatch {
            field: "key"
        }))
    );
    let missing = ServerTlsOptions::new(Pem::file("/nonexistent/key.pem"), next.cert_pem.as_str());
    let e = l.set_tls(missing).unwrap_err();
    assert!(
        matches!(
            e,
            ListenError::TlsConfig(TlsConfigError::Unreadable { field: "key", .. })
        ),
        "{e}"
    );
    let (c, clog) = tls_client::<A>(port, "localhost", trusting(), hello()).await;
    wait_until::<A>("echo after refused options", T, || {
        clog.received() == b"hello tls"
    })
    .await;
    assert_eq!(c.tls_info().unwrap().peer_certificates[0], old_leaf);
    c.end();

    // The rotation, from files as `listen` reads them.
    let key = temp_file("next-key.pem", &next.key_pem);
    let cert = temp_file("next-cert.pem", &next.cert_pem);
    l.set_tls(ServerTlsOptions::new(Pem::file(&key), Pem::file(&cert)))
        .unwrap();
    let (c2, clog2) = tls_client::<A>(port, "localhost", client.clone(), hello()).await;
    wait_until::<A>("echo after the rotation", T, || {
        clog2.received() == b"hello tls"
    })
    .await;
    let info = c2.tls_info().unwrap();
    assert!(info.authorized, "{:?}", info.authorization_error);
    assert_eq!(serial_of(&info.peer_certificates[0]), SERVER_NEXT_SERIAL);
    assert_eq!(info.peer_certificates[0], der_of(&next.cert_pem));
    assert!(
        !info.session_reused,
        "resumed a session of the old certificate"
    );

    // The first connection is untouched: open, on the old certificate, and still echoing.
    c1.write(b" again").unwrap();
    wait_until::<A>("echo on the first connection", T, || {
        clog1.received() == b"hello tls again"
    })
    .await;
    assert_eq!(c1.tls_info().unwrap().peer_certificates[0], old_leaf);
    assert!(!clog1.is_closed() && !logs.get(0).unwrap().is_closed());
    l.stop(true);

    // A plain listener refuses, and stays plain.
    let plain = A::listen(
        ListenOptions::tcp("127.0.0.1", 0).data_with(|| Arc::new(Log::default())),
        quiet(),
    )
    .await
    .expect("plain listen");
    assert_eq!(plain.set_tls(server_opts()), Err(ListenError::NotTls));
    plain.stop(true);
}

/// Fails the test when the `openssl` command is missing: an interop test that cannot run
/// must not pass.
fn require_openssl() {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the TLS interop tests need the `openssl` command; install it (`.ci/run` does)"
    );
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sansock-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Runs `f` on a plain thread and waits for its result without blocking the runtime.
async fn off_runtime<A: Adapter, R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let slot = Arc::new(Mutex::new(None));
    let s2 = slot.clone();
    std::thread::spawn(move || *s2.lock().unwrap() = Some(f()));
    wait_until::<A>("the helper thread finished", T, || {
        slot.lock().unwrap().is_some()
    })
    .await;
    let r = slot.lock().unwrap().take().unwrap();
    r
}

pub async fn tls_interop_openssl_client_to_sansock_server<A: Adapter>() {
    require_openssl();
    // Key and certificate from files: the `Pem::File` path.
    let key = temp_file("server-key.pem", &pki().server.key_pem);
    let cert = temp_file("server-cert.pem", &pki().server.cert_pem);
    let ca = temp_file("ca.pem", &pki().ca_pem);
    let (l, _logs) = tls_server::<A>(
        ServerTlsOptions::new(Pem::file(&key), Pem::file(&cert)),
        echo(),
    )
    .await;
    let port = port_of(&l);
    let out = off_runtime::<A, _>(move || {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-servername",
                "localhost",
            ])
            .args(["-verify_return_error", "-quiet", "-CAfile"])
            .arg(&ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn openssl");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"ping from openssl\n").unwrap();
        let mut buf = vec![0u8; 18];
        let r = child.stdout.take().unwrap().read_exact(&mut buf);
        drop(stdin);
        let _ = child.kill();
        let _ = child.wait();
        r.map(|_| buf)
    })
    .await;
    assert_eq!(out.expect("openssl got the echo"), b"ping from openssl\n");
    l.stop(true);
}

pub async fn tls_interop_sansock_client_to_openssl_server<A: Adapter>() {
    require_openssl();
    let key = temp_file("s-key.pem", &pki().server.key_pem);
    let cert = temp_file("s-cert.pem", &pki().server.cert_pem);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &port.to_string(),
            "-naccept",
            "1",
            "-rev",
            "-key",
        ])
        .arg(&key)
        .arg("-cert")
        .arg(&cert)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl s_server");
    // s_server prints ACCEPT once it listens.
    let mut stdout = server.stdout.take().unwrap();
    let ready = off_runtime::<A, _>(move || {
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"ACCEPT") {
            if stdout.read(&mut byte).unwrap_or(0) == 0 {
                return false;
            }
            seen.push(byte[0]);
        }
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        true
    })
    .await;
    assert!(ready, "openssl s_server did not start");
    let (c, log) = tls_client::<A>(
        port,
        "127.0.0.1",
        trusting().server_name("localhost"),
        recorder(|ev, s| {
            if let Ev::Handshake(true, None) = ev {
                s.write(b"sansock\n").unwrap();
            }
        }),
    )
    .await;
    wait_until::<A>("openssl answered", T, || log.received() == b"kcosnas\n").await;
    assert_eq!(log.trace(), ["open", "handshake", "data"]);
    assert_eq!(c.tls_info().unwrap().version, Some(TlsVersion::Tls13));
    c.end();
    wait_until::<A>("closed", T, || log.is_closed()).await;
    let _ = server.kill();
    let _ = server.wait();
}
