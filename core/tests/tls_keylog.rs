//! `key_log(true)` writes session secrets to `SSLKEYLOGFILE`. Alone in its own test binary:
//! environment variables are process-wide, and the one test here sets one.

use sansock_core::sim::{sim_write, Pair, PairConfig, Seen, Side, SimHandler};
use sansock_core::test_certs::TestPki;
use sansock_core::tls::{ClientTlsOptions, ServerTlsOptions};

fn no_files(_: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::ErrorKind::NotFound.into())
}

/// One handshake (and an echo) with these options, settled.
fn handshake(server: ServerTlsOptions, client: ClientTlsOptions) -> Pair {
    let hello = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            sim_write(s, b"hello").unwrap();
        }
    });
    let echo = SimHandler::new(|seen, s| {
        if let Seen::Data(bytes) = seen {
            let _ = sim_write(s, bytes);
        }
    });
    let tls = (
        server.build(&no_files).unwrap(),
        client.build("localhost", &no_files).unwrap(),
    );
    let mut p = Pair::with_tls(PairConfig::default(), Some(tls), echo, hello);
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Client).log().received, b"hello");
    p
}

fn labels(log: &str) -> Vec<&str> {
    log.lines()
        .map(|line| line.split(' ').next().unwrap())
        .collect()
}

#[test]
fn key_log_writes_secrets_to_sslkeylogfile_only_when_asked() {
    let pki = TestPki::generate();
    let server =
        || ServerTlsOptions::new(pki.server.key_pem.as_str(), pki.server.cert_pem.as_str());
    let client = || ClientTlsOptions::new().ca(pki.ca_pem.as_str());
    let dir = std::env::temp_dir().join(format!("sansock-keylog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys.log");
    let _ = std::fs::remove_file(&path);
    std::env::set_var("SSLKEYLOGFILE", &path);
    let read = || std::fs::read_to_string(&path).unwrap_or_default();

    // Off by default: the variable alone writes nothing.
    handshake(server(), client());
    assert_eq!(read(), "");

    // The client's secrets.
    let p = handshake(server(), client().key_log(true));
    let log = read();
    let tls13 = [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    ];
    let mut got = labels(&log);
    got.sort_unstable();
    let mut want = tls13.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{log}");
    // `<label> <client random, 32 bytes hex> <secret hex>`, one client random for all.
    let randoms: Vec<&str> = log.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert!(randoms.iter().all(|r| r.len() == 64 && *r == randoms[0]));
    // The key log still leaves the exporter working.
    let material = |side| {
        p.end(side)
            .handle()
            .export_keying_material(b"EXPORTER-test", None, 16)
            .unwrap()
    };
    assert_eq!(material(Side::Client), material(Side::Server));

    // The server's secrets, under another client random.
    handshake(server().key_log(true), client());
    let log = read();
    assert_eq!(log.lines().count(), 2 * tls13.len(), "{log}");
    let second_random = log.lines().last().unwrap().split(' ').nth(1).unwrap();
    assert_ne!(second_random, randoms[0]);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key log is private to its owner");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
