//! Arbitrary bytes into the TLS server and client handshake and record path over the
//! simulated link. The interpretation is in `src/lib.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = sansock_fuzz::run_tls(data) {
        panic!("{violation}");
    }
});
