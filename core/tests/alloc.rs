//! The steady state allocates nothing: once warm, an echo socket driven through the full
//! adapter contract (`Driver`) and a bare `Connection` make no heap allocation per event.
//!
//! A counting global allocator counts, per thread, the allocations made while a measurement is
//! on, so the test harness's own threads do not add noise. Set `SANSOCK_ALLOC_TRACE=1` to print
//! a backtrace for every counted allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use sansock_core::{
    Addr, Bytes, Connection, ConnectionConfig, Event, Handler, ListenerShared, RefCounter, Sink,
    Socket, SocketAddrs, WriteStatus,
};

struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

static TRACE: AtomicBool = AtomicBool::new(false);

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: allocations during thread-local teardown are not ours to count.
    let measuring = MEASURING.try_with(Cell::get).unwrap_or(false);
    if !measuring {
        return;
    }
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    let _ = BYTES.try_with(|b| b.set(b.get() + size));
    if TRACE.load(Ordering::Relaxed) {
        // Capturing and printing allocate: stop counting meanwhile (this also stops recursion).
        let _ = MEASURING.try_with(|m| m.set(false));
        eprintln!(
            "counted allocation of {size} bytes:\n{}",
            std::backtrace::Backtrace::force_capture()
        );
        let _ = MEASURING.try_with(|m| m.set(true));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

/// Allocations (count, bytes) made on this thread while `f` runs.
fn count_allocations(f: impl FnOnce()) -> (usize, usize) {
    TRACE.store(
        std::env::var_os("SANSOCK_ALLOC_TRACE").is_some(),
        Ordering::Relaxed,
    );
    COUNT.with(|c| c.set(0));
    BYTES.with(|b| b.set(0));
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    (COUNT.with(Cell::get), BYTES.with(Cell::get))
}

const WARM_UP: usize = 100;
const ITERATIONS: usize = 10_000;
const READ: usize = 64;

static REFS: std::sync::LazyLock<Arc<RefCounter>> =
    std::sync::LazyLock::new(|| Arc::new(RefCounter::new()));

/// Echoes every byte back and counts them in the socket's data; arms an idle timeout so the
/// timer is exercised too.
struct Echo;

impl Handler for Echo {
    type Data = u64;
    fn open(&self, socket: &mut Socket<'_, u64>) {
        socket.set_timeout(Duration::from_secs(30));
    }
    fn data(&self, socket: &mut Socket<'_, u64>, bytes: &[u8]) {
        let (echoed, out) = socket.parts();
        if out.write(bytes).is_ok() {
            *echoed += bytes.len() as u64;
        }
    }
}

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

fn addrs() -> SocketAddrs {
    SocketAddrs {
        local: Addr::Ip(([127, 0, 0, 1], 1).into()),
        remote: Addr::Ip(([127, 0, 0, 1], 2).into()),
    }
}

/// Warms `turn` up, then counts the allocations of `ITERATIONS` more turns.
fn measure_warm(what: &str, mut turn: impl FnMut()) -> (usize, usize) {
    let (warm_allocs, warm_bytes) = count_allocations(|| {
        for _ in 0..WARM_UP {
            turn();
        }
    });
    let (allocs, bytes) = count_allocations(|| {
        for _ in 0..ITERATIONS {
            turn();
        }
    });
    println!(
        "{what}: {warm_allocs} allocations ({warm_bytes} bytes) in {WARM_UP} warm-up turns, \
         {allocs} ({bytes} bytes) in the next {ITERATIONS}"
    );
    (allocs, bytes)
}

#[test]
fn driver_echo_steady_state_allocates_nothing() {
    let mut now = Instant::now();
    let listener = ListenerShared::new(Arc::new(Echo), ConnectionConfig::default(), &REFS, None);
    let mut driver = listener
        .accept(now, addrs(), 0u64)
        .expect("listener is open");
    driver.dispatch(); // open
    let waker = Waker::from(Arc::new(NoopWake));
    let mut buf = [0x5au8; 4096];
    let mut sent = 0usize;

    let (allocs, bytes) = measure_warm("Driver, echo", || {
        // One turn of the IO loop, as the crate docs describe it.
        now += Duration::from_micros(50);
        driver.handle_timeout(now);
        driver.handle_read(now, &mut buf[..READ]);
        let blocked = driver.transmit(now, |slices: &[IoSlice<'_>]| {
            let n: usize = slices.iter().map(|s| s.len()).sum();
            sent += n;
            Some(Ok(n))
        });
        assert!(!blocked);
        assert!(!driver.poll_fin(now));
        assert!(driver.take_options().is_empty());
        assert!(driver.close_action().is_none());
        let interest = black_box(driver.interest());
        assert!(interest.read && !interest.write);
        assert!(interest.deadline.is_some());
        driver.register_waker(&waker);
    });
    assert_eq!(sent, (WARM_UP + ITERATIONS) * READ, "every byte is echoed");
    assert_eq!(*driver.data(), ((WARM_UP + ITERATIONS) * READ) as u64);
    assert_eq!(
        allocs, 0,
        "{allocs} allocations ({bytes} bytes); rerun with SANSOCK_ALLOC_TRACE=1"
    );
}

#[test]
fn connection_steady_state_allocates_nothing() {
    let mut now = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::default(), now);
    assert_eq!(conn.poll_event(), Some(Event::Open));
    conn.set_timeout(Duration::from_secs(30));
    let buf = [0xa5u8; 4096];
    let mut sent = 0usize;

    let (allocs, bytes) = measure_warm("Connection, echo", || {
        now += Duration::from_micros(50);
        conn.handle_timeout(now);
        assert!(conn.handle_read(now, READ));
        assert_eq!(conn.write(&buf[..READ]), Ok(WriteStatus::Ready));
        // Two vectored writes, the first one partial, as a busy kernel would take them.
        for take in [READ / 2, usize::MAX] {
            let written = {
                let mut slices = [IoSlice::new(&[]); 8];
                let n = conn.io_slices(&mut slices);
                let total: usize = slices[..n].iter().map(|s| s.len()).sum();
                total.min(take)
            };
            conn.handle_written(now, written);
            sent += written;
        }
        assert_eq!(conn.poll_event(), None);
        assert!(!conn.poll_fin(now));
        assert!(conn.wants_read() && !conn.wants_write());
        black_box(conn.poll_timeout());
    });
    assert_eq!(sent, (WARM_UP + ITERATIONS) * READ);
    assert_eq!(
        allocs, 0,
        "{allocs} allocations ({bytes} bytes); rerun with SANSOCK_ALLOC_TRACE=1"
    );
}

/// Writes `chunks` each turn (copied when borrowed, queued when owned), flushes them, and
/// returns the allocations (count, bytes) of the warm turns.
fn connection_writes(
    what: &str,
    chunks: &[Result<&'static [u8], &'static [u8]>],
) -> (usize, usize) {
    let mut now = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::default(), now);
    assert_eq!(conn.poll_event(), Some(Event::Open));
    measure_warm(what, || {
        now += Duration::from_micros(50);
        for chunk in chunks {
            let r = match *chunk {
                Ok(borrowed) => conn.write(borrowed),
                Err(owned) => conn.write_bytes(Bytes::from_static(owned)),
            };
            assert_eq!(r, Ok(WriteStatus::Ready));
        }
        let mut slices = [IoSlice::new(&[]); 8];
        let n = conn.io_slices(&mut slices);
        let total: usize = slices[..n].iter().map(|s| s.len()).sum();
        conn.handle_written(now, total);
        assert_eq!(conn.buffered_amount(), 0);
    })
}

static BIG: [u8; 4096] = [7; 4096];

#[test]
fn connection_owned_chunks_allocate_nothing() {
    // Large `Bytes` are queued without a copy; the queue slot is reused once warm. A copied
    // write before or after them reuses the tail buffer too.
    for (what, chunks) in [
        (
            "Connection, owned chunks",
            &[Err(&BIG[..]), Err(&BIG[..1024])][..],
        ),
        (
            "Connection, copied then owned",
            &[Ok(&b"header"[..]), Err(&BIG[..1024])][..],
        ),
        (
            "Connection, owned then copied",
            &[Err(&BIG[..1024]), Ok(&b"trailer"[..])][..],
        ),
    ] {
        let (allocs, bytes) = connection_writes(what, chunks);
        assert_eq!(
            allocs, 0,
            "{what}: {allocs} allocations ({bytes} bytes); rerun with SANSOCK_ALLOC_TRACE=1"
        );
    }
}

static LARGE: [u8; 256 * 1024] = [9; 256 * 1024];

#[test]
fn sink_streaming_copied_writes_allocate_nothing() {
    // A streaming echo copies whole reads (256 KiB, then 128 KiB) and the kernel takes them in
    // pieces (100,000 bytes, then everything). A tail that large is not kept by the sink once
    // empty (an idle socket must not hold a burst's memory); it goes to the thread's spare
    // slot, and the next large write takes it back instead of allocating.
    let mut sink = Sink::default();
    let mut turn = 0usize;
    let (allocs, bytes) = measure_warm("Sink, streaming large copies", || {
        turn += 1;
        let (write, flush) = if turn % 2 == 1 {
            (&LARGE[..], 100_000)
        } else {
            (&LARGE[..128 * 1024], usize::MAX)
        };
        assert!(sink.write(write) > 0);
        sink.consume(sink.len().min(flush));
    });
    assert!(sink.is_empty());
    assert_eq!(
        allocs, 0,
        "{allocs} allocations ({bytes} bytes); rerun with SANSOCK_ALLOC_TRACE=1"
    );
}

/// Measured truth, not a goal: a copied write that follows an owned chunk which itself followed
/// copied bytes, all in one flush, allocates twice per turn. `Sink::write_bytes` moves the tail
/// into the chunk queue with `BytesMut::split`, which promotes a Vec-backed tail to a shared
/// buffer (`promote_to_shared`, 40 bytes), and leaves the tail with no spare capacity, so the
/// next copied write allocates a fresh buffer (`Sink::write` -> `BytesMut::reserve_inner`).
#[test]
fn connection_copied_owned_copied_allocates_twice_per_turn() {
    let (allocs, bytes) = connection_writes(
        "Connection, copied + owned + copied",
        &[Ok(b"header"), Err(&BIG[..1024]), Ok(b"trailer")],
    );
    assert!(
        allocs <= 2 * ITERATIONS,
        "{allocs} allocations ({bytes} bytes), more than the 2 per turn measured before"
    );
}

#[test]
fn the_counter_counts() {
    let (allocs, bytes) = count_allocations(|| {
        black_box(Vec::<u8>::with_capacity(100));
    });
    assert_eq!((allocs, bytes), (1, 100));
}
