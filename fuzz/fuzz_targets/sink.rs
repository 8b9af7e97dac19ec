//! Arbitrary operations on a `Sink`, checked against `sim::SinkModel` after every one. The
//! interpretation is in `src/lib.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = sansock_fuzz::run_sink(data) {
        panic!("{violation}");
    }
});
