//! The conformance suite on async-std.

mod common;

mod async_std_executor {
    sansock_conformance::conformance_tests!(super::common::AsyncStdAdapter);
}
