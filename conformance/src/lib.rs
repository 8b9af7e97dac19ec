//! One behaviour suite for every sansock adapter.
//!
//! Scenarios are async functions generic over [`Adapter`], the small trait for what differs
//! between runtimes. An adapter's `tests/` expands [`conformance_tests!`] once per runtime
//! flavour, and every scenario becomes a named `#[test]`, each bounded by a timeout.

#![allow(missing_docs)]

pub mod recorder;
pub mod scenarios;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sansock_core::{
    Addr, ConnectError, ConnectOptions, Handler, ListenError, ListenOptions, SocketHandle,
};

/// What a scenario needs from an adapter and its runtime.
pub trait Adapter: Send + Sync + 'static {
    /// The adapter's listener type.
    type Listener<D: Send + 'static>: ListenerApi<D>;
    /// Whether the runtime runs tasks on several threads.
    const MULTI_THREAD: bool;

    /// Runs `future` to completion on a fresh runtime.
    fn block_on<F: Future>(future: F) -> F::Output;
    /// Spawns a task.
    fn spawn<F: Future<Output = ()> + Send + 'static>(future: F);
    /// Sleeps.
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send;
    /// `listen` with shared handlers.
    fn listen<D: Send + 'static>(
        options: ListenOptions<D>,
        handler: Arc<dyn Handler<Data = D>>,
    ) -> impl Future<Output = Result<Self::Listener<D>, ListenError>> + Send;
    /// `connect` with shared handlers.
    fn connect<D: Send + 'static>(
        options: ConnectOptions<D>,
        handler: Arc<dyn Handler<Data = D>>,
    ) -> impl Future<Output = Result<SocketHandle<D>, ConnectError>> + Send;
    /// Resolves when nothing referenced is left.
    fn idle() -> impl Future<Output = ()> + Send;
}

/// The listener operations scenarios use.
pub trait ListenerApi<D>: Clone + Send + Sync + 'static {
    fn local_addr(&self) -> &Addr;
    fn stop(&self, close_active: bool);
    fn reload(&self, handler: Arc<dyn Handler<Data = D>>);
    fn set_ref(&self, referenced: bool);
    fn connection_count(&self) -> usize;
    fn sockets(&self) -> Vec<SocketHandle<D>>;
    fn port(&self) -> u16 {
        self.local_addr().port().expect("a TCP listener")
    }
}

/// Runs a scenario on the adapter's runtime, failing it after `limit`.
pub fn run_with_timeout<A: Adapter, F: Future<Output = ()>>(limit: Duration, scenario: F) {
    A::block_on(async move {
        let timeout = A::sleep(limit);
        futures_util::pin_mut!(scenario, timeout);
        match futures_util::future::select(scenario, timeout).await {
            futures_util::future::Either::Left(((), _)) => {}
            futures_util::future::Either::Right(_) => panic!("scenario timed out after {limit:?}"),
        }
    })
}

/// Polls `cond` every few milliseconds until it holds; panics with `what` after `limit`.
pub async fn wait_until<A: Adapter>(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting until {what}"
        );
        A::sleep(Duration::from_millis(2)).await;
    }
}

/// Raises the open-file soft limit as far as the hard limit allows; returns the new limit.
pub fn raise_fd_limit(want: u64) -> u64 {
    match rlimit::Resource::NOFILE.get() {
        Ok((soft, hard)) if soft < want => {
            let new = want.min(hard);
            let _ = rlimit::Resource::NOFILE.set(new, hard);
            rlimit::Resource::NOFILE
                .get()
                .map(|(s, _)| s)
                .unwrap_or(soft)
        }
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

/// Expands every scenario into a `#[test]` for the adapter type `$adapter`.
#[macro_export]
macro_rules! conformance_tests {
    ($adapter:ty) => {
        $crate::conformance_tests!(@each $adapter;
            event_order_normal_exchange,
            corked_writes_arrive_together,
            backpressure_then_drain_exact_bytes,
            one_gib_with_sha256,
            half_close_without_half_open,
            half_close_with_half_open,
            end_with_unsent_data_delivers_everything,
            terminate_resets_peer,
            idle_timeout_fires_once_reset_by_traffic,
            stop_false_keeps_live_sockets,
            stop_true_closes_live_sockets_and_refuses,
            reload_reaches_live_sockets,
            reload_on_client_socket,
            connect_refused,
            connect_unresolvable_host,
            connect_missing_unix_path,
            unix_socket_echo_and_stop_removes_file,
            unix_path_in_use_is_an_error,
            ipv6_loopback_echo,
            thousand_concurrent_clients,
            panic_in_handler_closes_only_that_socket,
            broadcast_from_handlers_does_not_deadlock,
            handle_and_handler_writes_keep_order,
            initial_data_and_addresses,
            reuse_port_and_exclusive,
            address_in_use_is_typed,
            invalid_options_are_typed,
        );
    };
    (@each $adapter:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::run_with_timeout::<$adapter, _>(
                    ::std::time::Duration::from_secs(60),
                    $crate::scenarios::$name::<$adapter>(),
                );
            }
        )*
    };
}
