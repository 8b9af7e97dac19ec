//! Reliability under load, faults and bad input, on smol.

mod common;

sansock_conformance::reliability_tests!(common::SmolAdapter);
