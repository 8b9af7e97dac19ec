//! Arbitrary adapter inputs and user operations on a simulated pair (`sim::Pair`), with the
//! shared invariant checks after every operation. The interpretation is in `src/lib.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = sansock_fuzz::run_connection(data) {
        panic!("{violation}");
    }
});
