//! Reliability under load, faults and bad input, on async-std.

mod common;

sansock_conformance::reliability_tests!(common::AsyncStdAdapter);
