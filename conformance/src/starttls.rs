//! STARTTLS on real sockets: a plain connection upgraded in place on both ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sansock_core::tls::{ClientTlsOptions, ServerTlsOptions};
use sansock_core::ListenOptions;

use crate::recorder::{recorder, Ev};
use crate::scenarios::{client, first_server_log, server_with};
use crate::tls_scenarios::pki;
use crate::{port_of, wait_until, Adapter};

fn no_files(_: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::ErrorKind::NotFound.into())
}

pub async fn starttls_upgrades_a_live_connection_on_both_ends<A: Adapter>() {
    const T: Duration = Duration::from_secs(10);
    let server_tls = ServerTlsOptions::new(
        pki().server.key_pem.as_str(),
        pki().server.cert_pem.as_str(),
    )
    .build(&no_files)
    .unwrap();
    let client_tls = ClientTlsOptions::new()
        .ca(pki().ca_pem.as_str())
        .build("localhost", &no_files)
        .unwrap();
    let upgraded = AtomicBool::new(false);
    let (listener, logs) = server_with::<A>(
        ListenOptions::tcp("127.0.0.1", 0),
        recorder(move |ev, s| {
            if let Ev::Data(bytes) = ev {
                if !upgraded.swap(true, Ordering::SeqCst) {
                    assert_eq!(*bytes, b"STARTTLS\n");
                    s.write(b"OK\n").unwrap();
                    s.start_tls_server(&server_tls).unwrap();
                } else {
                    s.write(bytes).unwrap();
                }
            }
        }),
    )
    .await;
    let (_c, clog) = client::<A>(
        port_of(&listener),
        recorder(move |ev, s| match ev {
            Ev::Open => {
                s.write(b"STARTTLS\n").unwrap();
            }
            Ev::Data(b"OK\n") => {
                s.start_tls_client(&client_tls).unwrap();
                s.write(b"secret\n").unwrap();
            }
            Ev::Data(_) => s.end(),
            _ => {}
        }),
    )
    .await;
    let slog = first_server_log::<A>(&logs).await;
    wait_until::<A>("both closed", T, || slog.is_closed() && clog.is_closed()).await;
    assert_eq!(clog.received(), b"OK\nsecret\n");
    assert_eq!(slog.received(), b"STARTTLS\nsecret\n");
    assert_eq!(
        clog.trace(),
        ["open", "data", "handshake", "data", "end", "close"]
    );
    assert_eq!(
        slog.trace(),
        ["open", "data", "handshake", "data", "end", "close"]
    );
    listener.stop(true);
}
