//! Arbitrary bytes as PEM key, certificate and CA: a typed error or a valid config, never a
//! panic. The interpretation is in `src/lib.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = sansock_fuzz::run_config(data) {
        panic!("{violation}");
    }
});
