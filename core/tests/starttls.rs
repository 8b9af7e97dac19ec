//! STARTTLS (Bun's `upgradeTLS`): a live plain connection becomes TLS on both ends, the plain
//! reply written before the upgrade goes out first, and nothing is lost or reordered.

use std::sync::{Arc, OnceLock};

use sansock_core::sim::{sim_write, sim_write_all, Pair, PairConfig, Seen, Side, SimHandler};
use sansock_core::test_certs::TestPki;
use sansock_core::tls::{ClientTls, ClientTlsOptions, ServerTls, ServerTlsOptions};
use sansock_core::StartTlsError;

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(TestPki::generate)
}

fn no_files(_: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::ErrorKind::NotFound.into())
}

fn server_tls() -> ServerTls {
    ServerTlsOptions::new(
        pki().server.key_pem.as_str(),
        pki().server.cert_pem.as_str(),
    )
    .build(&no_files)
    .unwrap()
}

fn client_tls() -> ClientTls {
    ClientTlsOptions::new()
        .ca(pki().ca_pem.as_str())
        .build("localhost", &no_files)
        .unwrap()
}

/// A line server: `STARTTLS` gets `OK` in plain text and an upgrade; after it, every line is
/// echoed (over TLS).
fn server(tls: ServerTls) -> Arc<SimHandler> {
    let upgraded = std::sync::atomic::AtomicBool::new(false);
    SimHandler::new(move |seen, s| {
        if let Seen::Data(bytes) = seen {
            if !upgraded.load(std::sync::atomic::Ordering::SeqCst) {
                assert_eq!(bytes, b"STARTTLS\n");
                sim_write(s, b"OK\n").unwrap();
                s.start_tls_server(&tls).unwrap();
                assert_eq!(s.start_tls_server(&tls), Err(StartTlsError::AlreadyTls));
                upgraded.store(true, std::sync::atomic::Ordering::SeqCst);
            } else {
                sim_write_all(s, bytes).unwrap();
            }
        }
    })
}

#[test]
fn both_ends_upgrade_and_talk_tls() {
    let tls = client_tls();
    let client = SimHandler::new(move |seen, s| match seen {
        Seen::Open => {
            sim_write(s, b"STARTTLS\n").unwrap();
        }
        Seen::Data(bytes) if bytes == b"OK\n" => {
            s.start_tls_client(&tls).unwrap();
            // Queued until the handshake is done, then encrypted.
            sim_write_all(s, b"secret line\n").unwrap();
        }
        _ => {}
    });
    let mut p = Pair::new(PairConfig::default(), server(server_tls()), client);
    p.run();
    p.check().unwrap();
    let client = p.end(Side::Client).log().events.clone();
    assert_eq!(
        client,
        [
            Seen::Open,
            Seen::Data(b"OK\n".to_vec()),
            Seen::Handshake(true, None),
            Seen::Data(b"secret line\n".to_vec()),
        ]
    );
    assert_eq!(
        p.end(Side::Server).trace(),
        ["open", "data", "handshake", "data"]
    );
    let info = p
        .end(Side::Client)
        .handle()
        .tls_info()
        .expect("TLS after the upgrade");
    assert_eq!(info.server_name.as_deref(), Some("localhost"));
    // Clean TLS ends on both sides.
    p.end_side(Side::Client);
    p.advance(std::time::Duration::from_secs(11));
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

#[test]
fn a_client_that_never_upgrades_times_the_server_handshake_out() {
    let client = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            sim_write(s, b"STARTTLS\n").unwrap();
        }
    });
    let mut p = Pair::new(PairConfig::default(), server(server_tls()), client);
    p.run();
    assert_eq!(p.end(Side::Client).log().received, b"OK\n");
    p.advance(std::time::Duration::from_secs(11));
    p.run();
    p.check().unwrap();
    let server = p.end(Side::Server).log().events.clone();
    assert!(
        server.contains(&Seen::Handshake(
            false,
            Some(sansock_core::tls::TlsError::HandshakeTimeout)
        )),
        "{server:?}"
    );
}

#[test]
fn upgrading_an_ended_socket_is_refused() {
    let tls = server_tls();
    let result = Arc::new(std::sync::Mutex::new(None));
    let r2 = result.clone();
    let server = SimHandler::new(move |seen, s| {
        if *seen == Seen::Open {
            s.end();
            *r2.lock().unwrap() = Some(s.start_tls_server(&tls));
        }
    });
    let mut p = Pair::new(PairConfig::default(), server, SimHandler::new(|_, _| {}));
    p.run();
    assert_eq!(*result.lock().unwrap(), Some(Err(StartTlsError::NotOpen)));
}
