//! The tokio runtimes as conformance adapters.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sansock_conformance::{Adapter, ListenerApi};
use sansock_core::{
    Addr, ConnectError, ConnectOptions, Handler, ListenError, ListenOptions, SocketHandle,
};

impl<D: Send + 'static> ListenerApi<D> for Wrap<D> {
    fn local_addr(&self) -> &Addr {
        self.0.local_addr()
    }
    fn stop(&self, close_active: bool) {
        self.0.stop(close_active)
    }
    fn reload(&self, handler: Arc<dyn Handler<Data = D>>) {
        self.0.reload_shared(handler)
    }
    fn set_ref(&self, referenced: bool) {
        self.0.set_ref(referenced)
    }
    fn connection_count(&self) -> usize {
        self.0.connection_count()
    }
    fn sockets(&self) -> Vec<SocketHandle<D>> {
        self.0.sockets()
    }
}

pub struct Wrap<D>(sansock_tokio::Listener<D>);
impl<D> Clone for Wrap<D> {
    fn clone(&self) -> Self {
        Wrap(self.0.clone())
    }
}

macro_rules! tokio_adapter {
    ($name:ident, $multi:expr, $builder:expr) => {
        pub struct $name;
        impl Adapter for $name {
            type Listener<D: Send + 'static> = Wrap<D>;
            const MULTI_THREAD: bool = $multi;
            fn block_on<F: Future>(future: F) -> F::Output {
                let rt = $builder.enable_all().build().expect("runtime");
                rt.block_on(future)
            }
            fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
                tokio::spawn(future);
            }
            fn sleep(duration: Duration) -> impl Future<Output = ()> + Send {
                tokio::time::sleep(duration)
            }
            async fn listen<D: Send + 'static>(
                options: ListenOptions<D>,
                handler: Arc<dyn Handler<Data = D>>,
            ) -> Result<Wrap<D>, ListenError> {
                sansock_tokio::listen_shared(options, handler)
                    .await
                    .map(Wrap)
            }
            async fn connect<D: Send + 'static>(
                options: ConnectOptions<D>,
                handler: Arc<dyn Handler<Data = D>>,
            ) -> Result<SocketHandle<D>, ConnectError> {
                sansock_tokio::connect_shared(options, handler).await
            }
            fn idle() -> impl Future<Output = ()> + Send {
                sansock_tokio::idle()
            }
        }
    };
}

tokio_adapter!(TokioMultiThread, true, {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2);
    b
});
tokio_adapter!(
    TokioCurrentThread,
    false,
    tokio::runtime::Builder::new_current_thread()
);
