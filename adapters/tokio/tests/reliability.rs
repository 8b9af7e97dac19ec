//! Reliability under load, faults and bad input, on tokio (multi-thread).

#[allow(dead_code)]
mod common;

sansock_conformance::reliability_tests!(common::TokioMultiThread);
