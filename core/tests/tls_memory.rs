//! Memory of idle TLS connections: once the handshake is done and the traffic has stopped, a
//! TLS session holds no read or write buffer, only rustls' keys and state.
//!
//! A global allocator tracks the live heap of this thread; the test opens TLS pairs and plain
//! pairs over the simulated link, echoes one message on each, and compares the live heap per
//! pair. Timings are not measured here (see `bench/`); this checks a bound.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sansock_core::sim::{sim_write, Pair, PairConfig, Seen, SimHandler};
use sansock_core::test_certs::TestPki;
use sansock_core::tls::{ClientTlsOptions, ServerTlsOptions};

struct Tracking;

#[global_allocator]
static GLOBAL: Tracking = Tracking;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(bytes: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + bytes));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn no_files(_: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::ErrorKind::NotFound.into())
}

/// Live heap per pair of `n` pairs that each completed one echo (and the handshake, over TLS).
fn heap_per_pair(n: usize, tls: bool, pki: &TestPki) -> isize {
    let server_tls =
        ServerTlsOptions::new(pki.server.key_pem.as_str(), pki.server.cert_pem.as_str())
            .build(&no_files)
            .expect("server config");
    let client_tls = ClientTlsOptions::new()
        .ca(pki.ca_pem.as_str())
        .build("localhost", &no_files)
        .expect("client config");
    let echo = SimHandler::new(|seen, s| {
        if let Seen::Data(bytes) = seen {
            let _ = sim_write(s, bytes);
        }
    });
    let hello = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            sim_write(s, &[7u8; 3000]).unwrap();
        }
    });
    // Warm up: per-thread buffers and pools exist before the first sample.
    let mut pairs = Vec::with_capacity(n + 1);
    let open = |pairs: &mut Vec<Pair>| {
        let tls = tls.then(|| (server_tls.clone(), client_tls.clone()));
        let mut pair = Pair::with_tls(PairConfig::default(), tls, echo.clone(), hello.clone());
        pair.run();
        pair.check().expect("invariants");
        pairs.push(pair);
    };
    open(&mut pairs);
    let before = live();
    for _ in 0..n {
        open(&mut pairs);
    }
    (live() - before) / n as isize
}

#[test]
fn an_idle_tls_connection_holds_no_buffers() {
    let pki = TestPki::generate();
    let n = 64;
    let plain = heap_per_pair(n, false, &pki);
    let tls = heap_per_pair(n, true, &pki);
    let per_side = (tls - plain) / 2;
    eprintln!("live heap per pair: plain {plain} B, TLS {tls} B; TLS adds {per_side} B per side");
    // rustls' keys and handshake state take about 4 KiB a side (client: the server chain it keeps); its buffered API's 4 KiB read
    // buffer (and any write buffer kept after a flush) would push this far above the bound.
    assert!(
        per_side <= 5 * 1024,
        "an idle TLS session costs {per_side} B of heap, more than 5 KiB"
    );
}
