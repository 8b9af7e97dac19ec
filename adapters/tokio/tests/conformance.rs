//! The conformance suite on tokio, once per runtime flavour.

mod common;

mod multi_thread {
    sansock_conformance::conformance_tests!(super::common::TokioMultiThread);
}

mod current_thread {
    sansock_conformance::conformance_tests!(super::common::TokioCurrentThread);
}
