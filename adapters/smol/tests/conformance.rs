//! The conformance suite on smol.

mod common;

mod smol_executor {
    sansock_conformance::conformance_tests!(super::common::SmolAdapter);
}
