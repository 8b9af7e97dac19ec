//! One behaviour suite for every sansock adapter.
//!
//! Scenarios are async functions generic over [`Adapter`], the small trait for what differs
//! between runtimes. An adapter's `tests/` expands [`conformance_tests!`] once per runtime
//! flavour, and every scenario becomes a named `#[test]`, each bounded by a timeout.

#![allow(missing_docs)]

pub mod accept_failures;
pub mod recorder;
pub mod reliability;
pub mod scenarios;
pub mod starttls;
pub mod stream;
pub mod stream_view;
pub mod tls_scenarios;
pub mod write_contract;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sansock_core::{
    ConnectError, ConnectOptions, Handler, ListenError, ListenOptions, SocketHandle,
};
use sansock_io::{Listener, Runtime};

/// What a scenario needs from an adapter: its [`Runtime`] and how to enter it.
pub trait Adapter: Send + Sync + 'static {
    /// The adapter's runtime.
    type Runtime: Runtime;
    /// Whether the runtime runs tasks on several threads.
    const MULTI_THREAD: bool;

    /// Runs `future` to completion on a fresh runtime.
    fn block_on<F: Future>(future: F) -> F::Output;

    /// Spawns a task.
    fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
        Self::Runtime::spawn(future)
    }
    /// Sleeps.
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send {
        Self::Runtime::sleep(duration)
    }
    /// `listen` with shared handlers.
    fn listen<D: Send + 'static>(
        options: ListenOptions<D>,
        handler: Arc<dyn Handler<Data = D>>,
    ) -> impl Future<Output = Result<Listener<Self::Runtime, D>, ListenError>> + Send {
        sansock_io::listen::<Self::Runtime, D>(options, handler)
    }
    /// `connect` with shared handlers.
    fn connect<D: Send + 'static>(
        options: ConnectOptions<D>,
        handler: Arc<dyn Handler<Data = D>>,
    ) -> impl Future<Output = Result<SocketHandle<D>, ConnectError>> + Send {
        sansock_io::connect::<Self::Runtime, D>(options, handler)
    }
    /// Resolves when nothing referenced is left.
    fn idle() -> impl Future<Output = ()> + Send {
        sansock_io::context::idle::<Self::Runtime>()
    }
}

/// The bound TCP port of a listener in a scenario.
pub fn port_of<R: Runtime, D: Send + 'static>(listener: &Listener<R, D>) -> u16 {
    listener.port().expect("a TCP listener")
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
        $crate::conformance_tests!(@in scenarios $adapter;
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
            ipv6_only_refuses_ipv4,
            cork_and_flush_from_a_handle,
            invalid_options_are_typed,
            panicking_data_factory_drops_only_that_connection,
            bracketed_ipv4_host_is_refused_before_dialling,
        );
        $crate::conformance_tests!(@in write_contract $adapter;
            readme_echo_delivers_every_byte_to_a_client_that_reads_last,
            ignored_backpressure_past_max_buffered_ends_with_a_typed_error,
            paced_echo_bounds_its_buffer_and_delivers_every_byte,
        );
        $crate::conformance_tests!(@in stream_view $adapter;
            stream_echo_16_mib_exact,
            stream_slow_reader_bounds_its_buffer,
            stream_half_close_then_reply,
            stream_reset_is_connection_reset,
            stream_timeout_fails_a_pending_read_only,
        );
        $crate::conformance_tests!(@in starttls $adapter;
            starttls_upgrades_a_live_connection_on_both_ends,
        );
        $crate::conformance_tests!(@in tls_scenarios $adapter;
            tls_trusted_handshake_and_echo,
            tls_session_resumption,
            tls_rejections_with_and_without_reject_unauthorized,
            tls_sni_selects_certificate,
            tls_mutual_accepted_and_refused,
            tls_alpn,
            tls_256_mib_with_sha256_and_backpressure,
            tls_handshake_timeout_and_garbage,
            tls_bad_configuration_is_typed,
            tls_set_tls_rotates_certificates_for_new_connections,
            tls_interop_openssl_client_to_sansock_server,
            tls_interop_sansock_client_to_openssl_server,
        );
    };
    (@in $module:ident $adapter:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::run_with_timeout::<$adapter, _>(
                    ::std::time::Duration::from_secs(60),
                    $crate::$module::$name::<$adapter>(),
                );
            }
        )*
    };
}
