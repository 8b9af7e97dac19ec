//! smol as a conformance adapter.

use std::future::Future;

use sansock_conformance::Adapter;

pub struct SmolAdapter;
impl Adapter for SmolAdapter {
    type Runtime = sansock_smol::Smol;
    // smol's global executor runs tasks on its own thread(s), beside the blocking test thread.
    const MULTI_THREAD: bool = true;
    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }
}
