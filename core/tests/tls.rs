//! TLS rules over the simulated link: handshake outcomes, verification, SNI, mutual TLS, ALPN,
//! close_notify, timeouts, garbage, and configuration errors. Certificates come from rcgen.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sansock_core::sim::{sim_write, Pair, PairConfig, Seen, Side, SimHandler};
use sansock_core::test_certs::TestPki;
use sansock_core::tls::{
    ClientTls, ClientTlsOptions, ExportError, Pem, ServerTls, ServerTlsOptions, TlsConfigError,
    TlsError, TlsVersion,
};
use sansock_core::ConnectionConfig;

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(TestPki::generate)
}

fn no_files(_: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::ErrorKind::NotFound.into())
}

fn server_tls(opts: ServerTlsOptions) -> ServerTls {
    opts.build(&no_files).expect("server config")
}

fn default_server() -> ServerTlsOptions {
    ServerTlsOptions::new(
        pki().server.key_pem.as_str(),
        pki().server.cert_pem.as_str(),
    )
}

fn client_tls(opts: ClientTlsOptions) -> ClientTls {
    opts.build("localhost", &no_files).expect("client config")
}

fn trusting_client() -> ClientTlsOptions {
    ClientTlsOptions::new().ca(pki().ca_pem.as_str())
}

fn echo() -> Arc<SimHandler> {
    SimHandler::new(|seen, s| {
        if let Seen::Data(bytes) = seen {
            let _ = sim_write(s, bytes);
        }
    })
}

fn hello_client() -> Arc<SimHandler> {
    SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            // Written before the handshake: queued, sent after it.
            sim_write(s, b"hello").unwrap();
        }
    })
}

fn pair(
    server: ServerTlsOptions,
    client: ClientTlsOptions,
    sh: Arc<SimHandler>,
    ch: Arc<SimHandler>,
) -> Pair {
    Pair::with_tls(
        PairConfig::default(),
        Some((server_tls(server), client_tls(client))),
        sh,
        ch,
    )
}

#[test]
fn handshake_then_echo_with_writes_queued_before_it() {
    let mut p = pair(default_server(), trusting_client(), echo(), hello_client());
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Client).trace(), ["open", "handshake", "data"]);
    assert_eq!(p.end(Side::Server).trace(), ["open", "handshake", "data"]);
    assert_eq!(
        p.end(Side::Client).log().events[1],
        Seen::Handshake(true, None)
    );
    assert_eq!(
        p.end(Side::Server).log().events[1],
        Seen::Handshake(true, None)
    );
    assert_eq!(p.end(Side::Client).log().received, b"hello");
    let info = p
        .end(Side::Client)
        .handle()
        .tls_info()
        .expect("info after handshake");
    assert_eq!(info.version, Some(TlsVersion::Tls13));
    assert!(info.authorized);
    assert!(!info.peer_certificates.is_empty());
    assert!(info.cipher_suite.is_some());
}

#[test]
fn end_sends_close_notify_and_both_sides_close() {
    let mut p = pair(default_server(), trusting_client(), echo(), hello_client());
    p.run();
    p.end(Side::Client).handle().end();
    p.run();
    p.check().unwrap();
    assert_eq!(
        p.end(Side::Server).trace(),
        ["open", "handshake", "data", "end", "close"]
    );
    assert_eq!(
        p.end(Side::Client).trace(),
        ["open", "handshake", "data", "end", "close"]
    );
    assert_eq!(
        p.end(Side::Client).log().events.last(),
        Some(&Seen::Close(None))
    );
}

fn assert_rejected(p: &mut Pair, reason: TlsError) {
    p.run();
    p.check().unwrap();
    let client = p.end(Side::Client).log().events.clone();
    assert_eq!(
        client,
        [
            Seen::Open,
            Seen::Handshake(false, Some(reason)),
            Seen::Close(None)
        ]
    );
    let server = p.end(Side::Server).log().events.clone();
    assert!(
        matches!(
            server[1],
            Seen::Handshake(false, Some(TlsError::PeerAlert(_)))
        ),
        "{server:?}"
    );
    assert_eq!(server.last(), Some(&Seen::Close(None)));
    assert!(
        p.end(Side::Server).log().received.is_empty(),
        "no application data after a rejection"
    );
}

#[test]
fn untrusted_chain_is_rejected() {
    let server = ServerTlsOptions::new(
        pki().self_signed.key_pem.as_str(),
        pki().self_signed.cert_pem.as_str(),
    );
    let mut p = pair(server, trusting_client(), echo(), hello_client());
    assert_rejected(&mut p, TlsError::UnknownIssuer);
}

#[test]
fn name_mismatch_is_rejected() {
    let server = ServerTlsOptions::new(
        pki().wrong_name.key_pem.as_str(),
        pki().wrong_name.cert_pem.as_str(),
    );
    let mut p = pair(server, trusting_client(), echo(), hello_client());
    assert_rejected(&mut p, TlsError::NameMismatch);
}

#[test]
fn expired_certificate_is_rejected() {
    let server = ServerTlsOptions::new(
        pki().expired.key_pem.as_str(),
        pki().expired.cert_pem.as_str(),
    );
    let mut p = pair(server, trusting_client(), echo(), hello_client());
    assert_rejected(&mut p, TlsError::Expired);
}

#[test]
fn mozilla_roots_do_not_trust_a_private_ca() {
    let mut p = pair(
        default_server(),
        ClientTlsOptions::new(),
        echo(),
        hello_client(),
    );
    assert_rejected(&mut p, TlsError::UnknownIssuer);
}

#[test]
fn reject_unauthorized_off_proceeds_and_reports_why() {
    for (pair_, reason) in [
        (&pki().self_signed, TlsError::UnknownIssuer),
        (&pki().wrong_name, TlsError::NameMismatch),
        (&pki().expired, TlsError::Expired),
    ] {
        let server = ServerTlsOptions::new(pair_.key_pem.as_str(), pair_.cert_pem.as_str());
        let client = trusting_client().reject_unauthorized(false);
        let mut p = pair(server, client, echo(), hello_client());
        p.run();
        p.check().unwrap();
        assert_eq!(
            p.end(Side::Client).log().events[1],
            Seen::Handshake(true, Some(reason.clone()))
        );
        assert_eq!(
            p.end(Side::Client).log().received,
            b"hello",
            "data flows ({reason})"
        );
        let info = p.end(Side::Client).handle().tls_info().unwrap();
        assert!(!info.authorized);
        assert_eq!(info.authorization_error, Some(reason));
    }
}

#[test]
fn sni_selects_the_certificate() {
    let server = default_server().sni(
        "other.test",
        pki().sni_other.key_pem.as_str(),
        pki().sni_other.cert_pem.as_str(),
    );
    let client = trusting_client().server_name("other.test");
    let mut p = pair(server, client, echo(), hello_client());
    p.run();
    p.check().unwrap();
    assert_eq!(
        p.end(Side::Client).log().events[1],
        Seen::Handshake(true, None)
    );
    let server_info = p.end(Side::Server).handle().tls_info().unwrap();
    assert_eq!(server_info.server_name.as_deref(), Some("other.test"));
    let client_info = p.end(Side::Client).handle().tls_info().unwrap();
    let sni_der = rustls_pki_types_der(&pki().sni_other.cert_pem);
    assert_eq!(client_info.peer_certificates[0], sni_der);
}

fn rustls_pki_types_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[test]
fn mutual_tls_accepts_a_trusted_client_and_refuses_others() {
    let mtls = || {
        default_server()
            .ca(pki().ca_pem.as_str())
            .request_cert(true)
    };
    // Trusted client certificate.
    let client = trusting_client().client_cert(
        pki().client.cert_pem.as_str(),
        pki().client.key_pem.as_str(),
    );
    let mut p = pair(mtls(), client, echo(), hello_client());
    p.run();
    p.check().unwrap();
    assert_eq!(
        p.end(Side::Server).log().events[1],
        Seen::Handshake(true, None)
    );
    assert_eq!(p.end(Side::Client).log().received, b"hello");
    assert!(p.end(Side::Server).handle().tls_info().unwrap().authorized);
    // A certificate from another CA.
    let client = trusting_client().client_cert(
        pki().untrusted_client.cert_pem.as_str(),
        pki().untrusted_client.key_pem.as_str(),
    );
    let mut p = pair(mtls(), client, echo(), hello_client());
    p.run();
    p.check().unwrap();
    let server = p.end(Side::Server).log().events.clone();
    assert_eq!(
        server[1],
        Seen::Handshake(false, Some(TlsError::UnknownIssuer)),
        "{server:?}"
    );
    assert!(p.end(Side::Server).log().received.is_empty());
    // No certificate at all.
    let mut p = pair(mtls(), trusting_client(), echo(), hello_client());
    p.run();
    p.check().unwrap();
    let server = p.end(Side::Server).log().events.clone();
    assert_eq!(
        server[1],
        Seen::Handshake(false, Some(TlsError::NoPeerCertificate)),
        "{server:?}"
    );
}

#[test]
fn alpn_is_negotiated() {
    let server = default_server().alpn(["h2", "http/1.1"]);
    let client = trusting_client().alpn(["http/1.1"]);
    let mut p = pair(server, client, echo(), hello_client());
    p.run();
    let info = p.end(Side::Client).handle().tls_info().unwrap();
    assert_eq!(info.alpn_protocol.as_deref(), Some(&b"http/1.1"[..]));
}

#[test]
fn garbage_to_a_tls_server_fails_its_handshake_only() {
    // The client speaks plain TCP to a TLS server.
    let server = server_tls(default_server());
    let client_plain = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            sim_write(s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        }
    });
    let mut p = Pair::with_tls_server_only(server, echo(), client_plain);
    p.run();
    // (The byte invariant does not hold here: the plain client receives the raw alert.)
    assert!(p.end(Side::Server).log().violation.is_none());
    let events = p.end(Side::Server).log().events.clone();
    assert!(
        matches!(
            events[1],
            Seen::Handshake(false, Some(TlsError::Protocol(_)))
        ),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&Seen::Close(None)));
    assert!(p.end(Side::Server).log().received.is_empty());
}

fn quiet() -> Arc<SimHandler> {
    SimHandler::new(|_, _| {})
}

#[test]
fn handshake_timeout_drops_a_silent_client() {
    let server = server_tls(default_server().handshake_timeout(Duration::from_secs(3)));
    let mut p = Pair::with_tls_server_only(server, echo(), quiet());
    p.run();
    p.advance(Duration::from_millis(2999));
    p.run();
    assert_eq!(p.end(Side::Server).trace(), ["open"]);
    p.advance(Duration::from_millis(1));
    p.run();
    let events = p.end(Side::Server).log().events.clone();
    assert_eq!(
        events,
        [
            Seen::Open,
            Seen::Handshake(false, Some(TlsError::HandshakeTimeout)),
            Seen::Close(None)
        ]
    );
}

#[test]
fn backpressure_over_tls_delivers_exactly_the_accepted_bytes() {
    let config = PairConfig {
        server: ConnectionConfig::default().high_water_mark(50_000),
        client: ConnectionConfig::default(),
    };
    let server = SimHandler::new(|seen, s| {
        if matches!(seen, Seen::Handshake(true, _) | Seen::Drain) {
            let chunk: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
            // Write until refused, up to 400 kB in all.
            while s.bytes_written() < 400_000 && sim_write(s, &chunk).unwrap() == chunk.len() {}
        }
    });
    let client = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            s.pause();
        }
    });
    let mut p = Pair::with_tls(
        config,
        Some((server_tls(default_server()), client_tls(trusting_client()))),
        server,
        client,
    );
    p.capacity = 100_000;
    p.run();
    let accepted = p.end(Side::Server).log().accepted.len();
    assert!(accepted > 50_000, "the server wrote past the first refusal");
    p.end(Side::Client).handle().resume();
    p.run();
    assert!(p.end(Side::Server).log().accepted.len() >= 400_000);
    p.end(Side::Server).handle().end();
    p.run();
    p.check().unwrap();
    let (accepted, received) = (
        p.end(Side::Server).log().accepted.clone(),
        p.end(Side::Client).log().received.clone(),
    );
    assert_eq!(received.len(), accepted.len());
    assert!(received == accepted);
    assert!(p.end(Side::Server).trace().contains(&"drain"));
}

#[test]
fn configuration_errors_are_typed_and_name_the_field() {
    let build = |o: ServerTlsOptions| o.build(&no_files).unwrap_err();
    let e = build(ServerTlsOptions::new(
        "not pem",
        pki().server.cert_pem.as_str(),
    ));
    assert!(
        matches!(e, TlsConfigError::NoPemBlock { field: "key", .. }),
        "{e}"
    );
    let e = build(ServerTlsOptions::new(
        pki().server.key_pem.as_str(),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    ));
    assert!(
        matches!(
            e,
            TlsConfigError::BadPem { field: "cert", .. }
                | TlsConfigError::NoPemBlock { field: "cert", .. }
        ),
        "{e}"
    );
    let e = build(ServerTlsOptions::new(
        pki().client.key_pem.as_str(),
        pki().server.cert_pem.as_str(),
    ));
    assert_eq!(e, TlsConfigError::KeyMismatch { field: "key" });
    let e = build(ServerTlsOptions::new(
        Pem::file("/no/such/key.pem"),
        pki().server.cert_pem.as_str(),
    ));
    assert!(
        matches!(
            e,
            TlsConfigError::Unreadable {
                field: "key",
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{e}"
    );
    let e = build(ServerTlsOptions::new(
        Pem::List(vec![]),
        pki().server.cert_pem.as_str(),
    ));
    assert_eq!(e, TlsConfigError::EmptyList { field: "key" });
    let e = build(default_server().request_cert(true));
    assert_eq!(
        e,
        TlsConfigError::Missing {
            field: "ca",
            with: "request_cert"
        }
    );
    // PEM from a list of sources works (key in one blob, certificate chain in another).
    let ok = ServerTlsOptions::new(
        Pem::List(vec![Pem::Text(pki().server.key_pem.clone())]),
        Pem::List(vec![
            Pem::Bytes(pki().server.cert_pem.clone().into_bytes()),
            Pem::Text(pki().ca_pem.clone()),
        ]),
    );
    ok.build(&no_files).expect("a list of PEM sources");
    let e = ClientTlsOptions::new()
        .build("bad name!", &no_files)
        .unwrap_err();
    assert!(matches!(e, TlsConfigError::InvalidServerName { .. }), "{e}");
    let e = ClientTlsOptions::new()
        .ca("garbage")
        .build("localhost", &no_files)
        .unwrap_err();
    assert!(
        matches!(e, TlsConfigError::NoPemBlock { field: "ca", .. }),
        "{e}"
    );
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    fn pemish() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..600),
            // Real PEM with bytes flipped or cut.
            (any::<usize>(), any::<u8>(), 0usize..2000).prop_map(|(at, b, cut)| {
                let mut pem = pki().server.cert_pem.clone().into_bytes();
                let i = at % pem.len();
                pem[i] = b;
                pem.truncate(cut.max(1).min(pem.len()));
                pem
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Arbitrary bytes as key, cert or ca: a typed error or a valid config, never a panic.
        #[test]
        fn configuration_from_arbitrary_pem_never_panics(key in pemish(), cert in pemish(), ca in pemish()) {
            let _ = ServerTlsOptions::new(Pem::Bytes(key.clone()), Pem::Bytes(cert.clone())).build(&no_files);
            let _ = ServerTlsOptions::new(pki().server.key_pem.as_str(), Pem::Bytes(cert.clone())).build(&no_files);
            let _ = default_server().ca(Pem::Bytes(ca.clone())).request_cert(true).build(&no_files);
            let _ = ClientTlsOptions::new().ca(Pem::Bytes(ca)).build("localhost", &no_files);
            let _ = ClientTlsOptions::new().client_cert(Pem::Bytes(cert), Pem::Bytes(key)).build("localhost", &no_files);
        }

        /// Arbitrary bytes into a TLS server's handshake: no panic, and the socket either waits
        /// for more or fails its handshake and closes cleanly; nothing reaches `data`.
        #[test]
        fn arbitrary_bytes_into_a_tls_server(bytes in proptest::collection::vec(any::<u8>(), 0..3000), chunk in 1usize..512) {
            let server = server_tls(default_server());
            let garbage = bytes.clone();
            let client_plain = SimHandler::new(move |seen, s| {
                if *seen == Seen::Open {
                    let _ = sim_write(s, &garbage);
                }
            });
            let mut p = Pair::with_tls_server_only(server, echo(), client_plain);
            p.read_chunk = chunk;
            p.run();
            p.advance(Duration::from_secs(11));
            p.run();
            prop_assert!(p.end(Side::Server).log().violation.is_none());
            prop_assert!(p.end(Side::Server).log().received.is_empty());
            let trace = p.end(Side::Server).trace();
            prop_assert_eq!(trace, vec!["open", "handshake", "close"]);
        }

        /// Arbitrary bytes from a "server" into a TLS client's handshake.
        #[test]
        fn arbitrary_bytes_into_a_tls_client(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let tls = client_tls(trusting_client());
            let mut p = Pair::with_tls_client_only(tls, bytes, quiet());
            p.run();
            p.advance(Duration::from_secs(11));
            p.run();
            prop_assert!(p.end(Side::Client).log().violation.is_none());
            prop_assert!(p.end(Side::Client).log().received.is_empty());
            prop_assert_eq!(p.end(Side::Client).trace(), vec!["open", "handshake", "close"]);
        }
    }
}

mod transfer {
    //! Both directions of a TLS connection carry exactly the accepted bytes whatever the link
    //! does to them: reads and writes cut at arbitrary sizes (records split across reads, many
    //! records per read), a small high-water mark, writes large enough to be encrypted
    //! directly and small enough to be gathered, and a receiver that pauses.

    use super::*;
    use proptest::prelude::*;

    fn bytes(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    fn write_size() -> impl Strategy<Value = usize> {
        prop_oneof![1..64usize, 1..5000usize, 4096..40_000usize]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn both_directions_deliver_exactly_what_was_accepted(
            read_chunk in prop_oneof![1..40usize, 1..6000usize, 1..70_000usize, 100_000..300_000usize],
            write_chunk in prop_oneof![1..6000usize, 1..70_000usize],
            capacity in prop_oneof![2000..200_000usize, 200_000..400_000usize],
            hwm in 1000..100_000usize,
            server_writes in prop::collection::vec(write_size(), 1..8),
            client_writes in prop::collection::vec(write_size(), 1..8),
            client_pauses in any::<bool>(),
            client_pauses_in_data in any::<bool>(),
        ) {
            let total: usize = server_writes.iter().chain(&client_writes).sum();
            let next = std::sync::atomic::AtomicUsize::new(0);
            let server = SimHandler::new(move |seen, s| {
                if matches!(seen, Seen::Handshake(true, _) | Seen::Drain) {
                    // Each write once, in order, until one is refused or short; `drain`
                    // goes on with the next.
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(&len) = server_writes.get(i) else { return };
                        if sim_write(s, &bytes(i as u8, len)).unwrap() < len {
                            return;
                        }
                    }
                }
            });
            // Paused in `data`: nothing more may arrive until the test resumes it, even when the
            // same read brought many more records.
            let paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let data_while_paused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let (paused2, dwp2) = (paused.clone(), data_while_paused.clone());
            let paused_once = std::sync::atomic::AtomicBool::new(false);
            let client = SimHandler::new(move |seen, s| {
                use std::sync::atomic::Ordering::SeqCst;
                if let Seen::Data(_) = seen {
                    if paused2.load(SeqCst) {
                        dwp2.fetch_add(1, SeqCst);
                    } else if client_pauses_in_data && !paused_once.swap(true, SeqCst) {
                        paused2.store(true, SeqCst);
                        s.pause();
                    }
                }
                if *seen == Seen::Open {
                    if client_pauses {
                        s.pause();
                    }
                    for (i, &len) in client_writes.iter().enumerate() {
                        let _ = sim_write(s, &bytes(100 + i as u8, len));
                    }
                }
            });
            let config = PairConfig {
                server: ConnectionConfig::default().high_water_mark(hwm),
                client: ConnectionConfig::default().high_water_mark(hwm),
            };
            let mut p = Pair::with_tls(
                config,
                Some((server_tls(default_server()), client_tls(trusting_client()))),
                server,
                client,
            );
            p.read_chunk = read_chunk;
            p.write_chunk = write_chunk;
            p.capacity = capacity;
            // Every round that does not settle moves at least one byte.
            let rounds = 20_000 + 2 * total;
            p.run_for(rounds);
            // Paused in `open`, then maybe again at the first `data` after that resume.
            for _ in 0..2 {
                prop_assert_eq!(
                    data_while_paused.load(std::sync::atomic::Ordering::SeqCst), 0,
                    "data delivered while paused"
                );
                paused.store(false, std::sync::atomic::Ordering::SeqCst);
                p.end(Side::Client).handle().resume();
                p.run_for(rounds);
            }
            p.check().map_err(TestCaseError::fail)?;
            for (from, to) in [(Side::Server, Side::Client), (Side::Client, Side::Server)] {
                let accepted = p.end(from).log().accepted.clone();
                let received = p.end(to).log().received.clone();
                prop_assert!(!accepted.is_empty());
                prop_assert_eq!(received.len(), accepted.len());
                prop_assert!(received == accepted, "bytes differ");
            }
        }
    }
}

#[test]
fn pause_in_data_stops_delivery_within_one_read_and_resume_delivers_the_rest() {
    // The server sends 200 KB in many records; the client reads them in one large read and
    // pauses at its first `data`: nothing more may arrive until it resumes (the review found
    // 134,464 more bytes delivered from the same read).
    let server = SimHandler::new(|seen, s| {
        if let Seen::Handshake(true, _) = seen {
            for i in 0..50u8 {
                sim_write(s, &[i; 4000]).unwrap();
            }
        }
    });
    let seen_data = std::sync::atomic::AtomicUsize::new(0);
    let client = SimHandler::new(move |seen, s| {
        if let Seen::Data(_) = seen {
            if seen_data.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                s.pause();
            }
        }
    });
    let config = PairConfig {
        server: ConnectionConfig::default().high_water_mark(1 << 20),
        client: ConnectionConfig::default(),
    };
    let mut p = Pair::with_tls(
        config,
        Some((server_tls(default_server()), client_tls(trusting_client()))),
        server,
        client,
    );
    p.read_chunk = 1 << 20;
    p.capacity = 1 << 20;
    p.run();
    p.check().unwrap();
    let first = p.end(Side::Client).log().received.len();
    assert!(first > 0 && first < 200_000, "first data: {first} bytes");
    let data_events = |p: &Pair| {
        p.end(Side::Client)
            .log()
            .events
            .iter()
            .filter(|e| matches!(e, Seen::Data(_)))
            .count()
    };
    assert_eq!(data_events(&p), 1, "one data event while paused");
    p.advance(Duration::from_secs(1));
    p.run();
    assert_eq!(p.end(Side::Client).log().received.len(), first, "paused");
    p.end(Side::Client).handle().resume();
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Client).log().received.len(), 200_000);
    assert_eq!(
        p.end(Side::Client).log().received,
        p.end(Side::Server).log().accepted
    );
}

#[test]
fn a_bare_fin_after_the_handshake_is_reported_as_truncation() {
    let server = SimHandler::new(|seen, s| {
        if let Seen::Handshake(true, _) = seen {
            sim_write(s, b"partial answ").unwrap();
        }
    });
    let mut p = pair(default_server(), trusting_client(), server, quiet());
    p.run();
    // The server's TCP connection ends without close_notify (a crash, or an attacker cutting
    // the stream): the client gets every byte, then `end`, and a close that says so.
    p.inject_bare_fin(Side::Client);
    p.run();
    p.check().unwrap();
    let client = p.end(Side::Client).log().events.clone();
    assert_eq!(p.end(Side::Client).log().received, b"partial answ");
    assert!(client.contains(&Seen::End), "{client:?}");
    assert_eq!(
        client.last(),
        Some(&Seen::Close(Some(sansock_core::CloseError::TlsTruncated)))
    );
}

#[test]
fn close_notify_then_fin_is_a_clean_close() {
    let client = SimHandler::new(|seen, s| {
        if let Seen::Handshake(true, _) = seen {
            s.end();
        }
    });
    let mut p = pair(default_server(), trusting_client(), quiet(), client);
    p.run();
    p.advance(Duration::from_secs(11));
    p.run();
    p.check().unwrap();
    for side in [Side::Server, Side::Client] {
        assert_eq!(
            p.end(side).log().events.last(),
            Some(&Seen::Close(None)),
            "{side:?}"
        );
    }
}

// ----- session resumption -----

/// One connection from `client` to a listener serving `server` (built once, as a listener
/// does), run until settled.
fn connect_with(server: &ServerTls, client: &ClientTlsOptions) -> Pair {
    let mut p = Pair::with_tls(
        PairConfig::default(),
        Some((server.clone(), client_tls(client.clone()))),
        echo(),
        hello_client(),
    );
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Client).log().received, b"hello");
    p
}

/// Whether `side` resumed: `[server, client]`.
fn resumed(p: &Pair) -> [bool; 2] {
    [Side::Server, Side::Client].map(|side| p.end(side).handle().tls_info().unwrap().session_reused)
}

#[test]
fn a_second_connect_with_the_same_options_resumes_the_session() {
    let server = server_tls(default_server());
    let client = trusting_client();
    let first = connect_with(&server, &client);
    assert_eq!(resumed(&first), [false, false]);
    let second = connect_with(&server, &client);
    assert_eq!(resumed(&second), [true, true]);
    let info = second.end(Side::Client).handle().tls_info().unwrap();
    assert!(info.authorized);
    assert_eq!(info.authorization_error, None);
    assert_eq!(
        info.peer_certificates,
        first
            .end(Side::Client)
            .handle()
            .tls_info()
            .unwrap()
            .peer_certificates,
        "a resumed session keeps the server's chain"
    );
    // A clone shares the session cache, also with a per-connection name or timeout.
    let clone = client
        .clone()
        .server_name("localhost")
        .handshake_timeout(Duration::from_secs(5));
    assert_eq!(resumed(&connect_with(&server, &clone)), [true, true]);
}

#[test]
fn other_options_values_do_not_resume() {
    let server = server_tls(default_server());
    let client = trusting_client();
    connect_with(&server, &client);
    // An equal value built separately has its own, empty cache.
    assert_eq!(
        resumed(&connect_with(&server, &trusting_client())),
        [false, false]
    );
    // A clone given other ALPN protocols gets a configuration of its own.
    let other_alpn = client.clone().alpn(["h2"]);
    assert_eq!(resumed(&connect_with(&server, &other_alpn)), [false, false]);
    // A field assigned directly: rebuilt at the next connect.
    let mut changed = client.clone();
    changed.alpn = vec![b"http/1.1".to_vec()];
    assert_eq!(resumed(&connect_with(&server, &changed)), [false, false]);
    assert_eq!(resumed(&connect_with(&server, &changed)), [true, true]);
}

#[test]
fn a_resumed_session_still_reports_an_untrusted_certificate() {
    // No `ca`: the test CA is not among Mozilla's roots.
    let server = server_tls(default_server());
    let client = ClientTlsOptions::new().reject_unauthorized(false);
    for reused in [false, true] {
        let p = connect_with(&server, &client);
        assert_eq!(resumed(&p), [reused, reused]);
        assert_eq!(
            p.end(Side::Client).log().events[1],
            Seen::Handshake(true, Some(TlsError::UnknownIssuer)),
            "resumed: {reused}"
        );
        let info = p.end(Side::Client).handle().tls_info().unwrap();
        assert!(!info.authorized);
        assert_eq!(info.authorization_error, Some(TlsError::UnknownIssuer));
    }
}

#[test]
fn mutual_tls_resumes_with_the_client_certificate() {
    let server = server_tls(
        default_server()
            .ca(pki().ca_pem.as_str())
            .request_cert(true),
    );
    let client = trusting_client().client_cert(
        pki().client.cert_pem.as_str(),
        pki().client.key_pem.as_str(),
    );
    let first = connect_with(&server, &client);
    let second = connect_with(&server, &client);
    assert_eq!(resumed(&second), [true, true]);
    let info = second.end(Side::Server).handle().tls_info().unwrap();
    assert!(info.authorized);
    assert_eq!(
        info.peer_certificates,
        first
            .end(Side::Server)
            .handle()
            .tls_info()
            .unwrap()
            .peer_certificates
    );
}

// ----- keying material exporters -----

fn export(p: &Pair, side: Side, label: &[u8], context: Option<&[u8]>) -> Vec<u8> {
    p.end(side)
        .handle()
        .export_keying_material(label, context, 32)
        .unwrap()
}

#[test]
fn both_ends_export_the_same_keying_material() {
    let mut p = pair(default_server(), trusting_client(), echo(), hello_client());
    assert_eq!(
        p.end(Side::Client)
            .handle()
            .export_keying_material(b"EXPORTER-test", None, 32),
        Err(ExportError::HandshakeNotDone)
    );
    p.run();
    p.check().unwrap();
    let client = export(&p, Side::Client, b"EXPORTER-test", None);
    assert_eq!(client.len(), 32);
    assert_eq!(client, export(&p, Side::Server, b"EXPORTER-test", None));
    // TLS 1.3: no context is an empty context.
    assert_eq!(
        client,
        export(&p, Side::Server, b"EXPORTER-test", Some(b""))
    );
    // Another label or context gives other bytes.
    let other_label = export(&p, Side::Client, b"EXPORTER-other", None);
    assert_ne!(client, other_label);
    assert_eq!(
        other_label,
        export(&p, Side::Server, b"EXPORTER-other", None)
    );
    let with_context = export(&p, Side::Client, b"EXPORTER-test", Some(b"ctx"));
    assert_ne!(client, with_context);
    assert_eq!(
        with_context,
        export(&p, Side::Server, b"EXPORTER-test", Some(b"ctx"))
    );
    // Another session gives other bytes.
    let mut q = pair(default_server(), trusting_client(), echo(), hello_client());
    q.run();
    assert_ne!(client, export(&q, Side::Client, b"EXPORTER-test", None));
    let h = p.end(Side::Client).handle();
    assert_eq!(
        h.export_keying_material(b"x", None, 0),
        Err(ExportError::InvalidLength { len: 0 })
    );
    assert_eq!(
        h.export_keying_material(b"x", None, 255 * 48 + 1),
        Err(ExportError::InvalidLength { len: 255 * 48 + 1 })
    );
    assert_eq!(
        h.export_keying_material(&[b'x'; 250], None, 32),
        Err(ExportError::InvalidLabel { len: 250 })
    );
}

#[test]
fn a_resumed_session_exports_too_and_plain_tcp_does_not() {
    let server = server_tls(default_server());
    let client = trusting_client();
    let first = connect_with(&server, &client);
    let second = connect_with(&server, &client);
    assert_eq!(resumed(&second), [true, true]);
    let material = export(&second, Side::Client, b"EXPORTER-test", None);
    assert_eq!(
        material,
        export(&second, Side::Server, b"EXPORTER-test", None)
    );
    assert_ne!(
        material,
        export(&first, Side::Client, b"EXPORTER-test", None)
    );
    let mut plain = Pair::new(PairConfig::default(), echo(), hello_client());
    plain.run();
    assert_eq!(
        plain
            .end(Side::Client)
            .handle()
            .export_keying_material(b"EXPORTER-test", None, 32),
        Err(ExportError::NotTls)
    );
}

// ----- SNI -----

#[test]
fn sni_is_recorded_from_a_client_hello_read_one_byte_at_a_time() {
    let server = default_server().sni(
        "other.test",
        pki().sni_other.key_pem.as_str(),
        pki().sni_other.cert_pem.as_str(),
    );
    let client = trusting_client().server_name("Other.Test");
    let mut p = pair(server, client, echo(), hello_client());
    p.read_chunk = 1;
    p.run_for(100_000);
    p.check().unwrap();
    assert_eq!(p.end(Side::Client).log().received, b"hello");
    let info = p.end(Side::Server).handle().tls_info().unwrap();
    assert_eq!(info.server_name.as_deref(), Some("other.test"));
    assert_eq!(
        p.end(Side::Client)
            .handle()
            .tls_info()
            .unwrap()
            .peer_certificates[0],
        rustls_pki_types_der(&pki().sni_other.cert_pem)
    );
}

#[test]
fn sni_is_recorded_on_a_resumed_session_and_absent_for_an_ip() {
    let server = server_tls(default_server());
    let client = trusting_client();
    connect_with(&server, &client);
    let second = connect_with(&server, &client);
    assert_eq!(resumed(&second), [true, true]);
    let info = second.end(Side::Server).handle().tls_info().unwrap();
    assert_eq!(info.server_name.as_deref(), Some("localhost"));
    // A client connecting to an IP address sends no SNI.
    let ip_client = client_tls_for(
        "127.0.0.1",
        ClientTlsOptions::new().reject_unauthorized(false),
    );
    let mut p = Pair::with_tls(
        PairConfig::default(),
        Some((server.clone(), ip_client)),
        echo(),
        hello_client(),
    );
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Client).log().received, b"hello");
    let info = p.end(Side::Server).handle().tls_info().unwrap();
    assert_eq!(info.server_name, None);
}

fn client_tls_for(host: &str, opts: ClientTlsOptions) -> ClientTls {
    opts.build(host, &no_files).expect("client config")
}
