//! ref/unref on its own: the ref count is process-wide, so no other test may run beside it.

mod common;

#[test]
fn ref_unref_idle() {
    sansock_conformance::run_with_timeout::<common::SmolAdapter, _>(
        std::time::Duration::from_secs(30),
        sansock_conformance::scenarios::ref_unref_idle::<common::SmolAdapter>(),
    );
}
