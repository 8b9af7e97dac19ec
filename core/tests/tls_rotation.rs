//! Certificate rotation without a restart (`ListenerShared::set_tls`, Node's
//! `server.setSecureContext`) over the simulated link: new handshakes get the new certificate,
//! live connections keep theirs and keep working. Certificates come from rcgen.

use std::sync::{Arc, OnceLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sansock_core::sim::{sim_write, Pair, PairConfig, Seen, Side, SimHandler};
use sansock_core::test_certs::{self, TestPki};
use sansock_core::tls::{ClientTls, ClientTlsOptions, ServerTls, ServerTlsOptions};
use sansock_core::ListenError;

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(TestPki::generate)
}

fn no_files(_: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::ErrorKind::NotFound.into())
}

/// A server configuration for `cert` (certificate A is `pki().server`, B `pki().server_next`).
fn server_tls(cert: &test_certs::Pair) -> ServerTls {
    ServerTlsOptions::new(cert.key_pem.as_str(), cert.cert_pem.as_str())
        .build(&no_files)
        .expect("server config")
}

fn client_tls(opts: &ClientTlsOptions) -> ClientTls {
    opts.build("localhost", &no_files).expect("client config")
}

fn der(cert: &test_certs::Pair) -> Vec<u8> {
    CertificateDer::from_pem_slice(cert.cert_pem.as_bytes())
        .expect("PEM certificate")
        .to_vec()
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
            sim_write(s, b"hello").unwrap();
        }
    })
}

/// The leaf certificate the client end was served.
fn served_leaf(p: &Pair) -> Vec<u8> {
    let info = p.end(Side::Client).handle().tls_info().expect("negotiated");
    assert!(info.authorized, "{:?}", info.authorization_error);
    info.peer_certificates[0].clone()
}

#[test]
fn new_handshakes_get_the_new_certificate_and_live_connections_keep_working() {
    let (a, b) = (&pki().server, &pki().server_next);
    assert_ne!(der(a), der(b));
    // One client options value throughout: its session cache holds the first connection's
    // ticket, which must not resume into the old certificate.
    let client = ClientTlsOptions::new().ca(pki().ca_pem.as_str());
    let mut first = Pair::with_tls(
        PairConfig::default(),
        Some((server_tls(a), client_tls(&client))),
        echo(),
        hello_client(),
    );
    first.run();
    first.check().unwrap();
    assert_eq!(first.end(Side::Client).log().received, b"hello");
    assert_eq!(served_leaf(&first), der(a));

    first.listener.set_tls(server_tls(b)).unwrap();

    let mut second = first.connect_again(Some(client_tls(&client)), hello_client());
    second.run();
    second.check().unwrap();
    assert_eq!(second.end(Side::Client).log().received, b"hello");
    assert_eq!(
        served_leaf(&second),
        der(b),
        "the new handshake got the old cert"
    );
    let resumed = [Side::Client, Side::Server]
        .map(|side| second.end(side).handle().tls_info().unwrap().session_reused);
    assert_eq!(
        resumed,
        [false, false],
        "a session of the old configuration"
    );

    // The first connection is untouched: open, still on A, and exchanging bytes.
    assert_eq!(first.listener.connection_count(), 2);
    first.end(Side::Client).write_all(b" again").unwrap();
    first.run();
    first.check().unwrap();
    assert_eq!(first.end(Side::Client).log().received, b"hello again");
    assert_eq!(first.end(Side::Server).log().received, b"hello again");
    assert_eq!(served_leaf(&first), der(a));
    for p in [&first, &second] {
        for side in [Side::Client, Side::Server] {
            assert!(!p.end(side).handle().is_closed(), "{side:?} closed");
        }
    }
}

/// A connection accepted before the rotation whose handshake has not run yet still completes
/// with the configuration it was accepted with.
#[test]
fn a_handshake_accepted_before_the_rotation_keeps_the_old_certificate() {
    let client = ClientTlsOptions::new().ca(pki().ca_pem.as_str());
    let mut p = Pair::with_tls(
        PairConfig::default(),
        Some((server_tls(&pki().server), client_tls(&client))),
        echo(),
        hello_client(),
    );
    p.listener.set_tls(server_tls(&pki().server_next)).unwrap();
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Client).log().received, b"hello");
    assert_eq!(served_leaf(&p), der(&pki().server));
}

#[test]
fn a_plain_listener_refuses_set_tls_and_stays_plain() {
    let p = Pair::new(PairConfig::default(), echo(), hello_client());
    let e = p
        .listener
        .set_tls(server_tls(&pki().server_next))
        .unwrap_err();
    assert_eq!(e, ListenError::NotTls);
    assert_eq!(
        std::io::Error::from(e).kind(),
        std::io::ErrorKind::Unsupported
    );
    let mut again = p.connect_again(None, hello_client());
    again.run();
    again.check().unwrap();
    assert_eq!(again.end(Side::Client).log().received, b"hello");
    assert!(again.end(Side::Server).handle().tls_info().is_none());
}
