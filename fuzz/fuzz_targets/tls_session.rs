//! A TLS session past its handshake, against a rustls peer on the simulated link: application
//! data both ways, close_notify, KeyUpdate, the peer's own fatal alerts, forged encrypted
//! records of any type, raw and plaintext records, cut, corrupted and replayed records, FINs
//! and resets. The interpretation is in `src/lib.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = sansock_fuzz::run_tls_session(data) {
        panic!("{violation}");
    }
});
