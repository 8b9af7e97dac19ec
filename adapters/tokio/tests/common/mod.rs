//! The tokio runtime flavours as conformance adapters.

use std::future::Future;

use sansock_conformance::Adapter;
use sansock_tokio::Tokio;

pub struct TokioMultiThread;
impl Adapter for TokioMultiThread {
    type Runtime = Tokio;
    const MULTI_THREAD: bool = true;
    fn block_on<F: Future>(future: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(future)
    }
}

pub struct TokioCurrentThread;
impl Adapter for TokioCurrentThread {
    type Runtime = Tokio;
    const MULTI_THREAD: bool = false;
    fn block_on<F: Future>(future: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(future)
    }
}
