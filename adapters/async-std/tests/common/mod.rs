//! async-std as a conformance adapter.

use std::future::Future;

use sansock_conformance::Adapter;

pub struct AsyncStdAdapter;
impl Adapter for AsyncStdAdapter {
    type Runtime = sansock_async_std::AsyncStd;
    // async-std runs tasks on a thread pool.
    const MULTI_THREAD: bool = true;
    fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}
