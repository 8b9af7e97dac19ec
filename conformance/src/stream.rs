//! Streaming handlers for the bulk-transfer scenarios: a source that writes a pattern with
//! backpressure and a sink, both hashing what they move.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sansock_core::Handler;
use sha2::{Digest, Sha256};

use crate::recorder::{recorder, Data, Ev};

/// A running SHA-256 and byte count, shared between a handler and its scenario.
#[derive(Default)]
pub struct Tally {
    hash: Mutex<Sha256>,
    bytes: AtomicU64,
}

impl Tally {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }
    fn add(&self, bytes: &[u8]) {
        self.hash.lock().unwrap().update(bytes);
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }
    pub fn digest(&self) -> Vec<u8> {
        self.hash.lock().unwrap().clone().finalize().to_vec()
    }
}

/// Hashes everything it receives.
pub fn hashing_sink(tally: Arc<Tally>) -> Arc<dyn Handler<Data = Data>> {
    recorder(move |ev, _| {
        if let Ev::Data(bytes) = ev {
            tally.add(bytes);
        }
    })
}

/// Streams `total` bytes of `pattern` (repeated): on `open` and on every `drain` it writes
/// until a write reports backpressure, hashing what was written; then it ends.
pub fn hashing_source(
    total: u64,
    pattern: Arc<Vec<u8>>,
    tally: Arc<Tally>,
) -> Arc<dyn Handler<Data = Data>> {
    recorder(move |ev, s| {
        if !matches!(ev, Ev::Open | Ev::Drain) {
            return;
        }
        loop {
            let done = tally.bytes();
            if done == total {
                s.end();
                return;
            }
            let off = (done % pattern.len() as u64) as usize;
            let left = (total - done).min((pattern.len() - off) as u64) as usize;
            let chunk = &pattern[off..off + left];
            let status = s.write(chunk).unwrap();
            tally.add(chunk);
            if status.is_backpressured() {
                return;
            }
        }
    })
}
