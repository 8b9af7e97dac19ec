//! Property tests of the core: the sink against a `Vec<u8>` model, backpressure accounting over
//! the simulated link, and random operation sequences on both ends of a simulated pair.
//!
//! The invariant checks live in `sansock_core::sim` (`Pair::check`, the event-order checks of
//! `SimHandler`); this file only adds the properties specific to each scenario.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use sansock_core::sim::{sim_write, Pair, PairConfig, Seen, Side, SimHandler};
use sansock_core::{Bytes, CloseAction, ConnectionConfig, Sink, DEFAULT_HIGH_WATER_MARK};

/// A distinct-looking byte for every position of the stream, so reordered, duplicated or lost
/// bytes do not go unnoticed.
fn pattern_byte(position: u64) -> u8 {
    (position.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

fn pattern(start: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern_byte(start + i)).collect()
}

/// Runs both ends until nothing changes, like `Pair::run`, but with a round limit sized for
/// the data in flight (`Pair::run` stops at 10,000 rounds, which a 1-byte link can exceed).
fn settle(p: &mut Pair, max_rounds: usize) {
    for _ in 0..max_rounds {
        let a = p.step(0);
        let b = p.step(1);
        if !a && !b {
            return;
        }
    }
    panic!("simulation did not settle in {max_rounds} rounds");
}

fn side(i: usize) -> Side {
    if i == 0 {
        Side::Server
    } else {
        Side::Client
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The sink against a Vec<u8> model.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum SinkOp {
    Write(usize),
    WriteBytes(usize),
    Consume(usize),
    TakeAll,
}

fn sink_op() -> impl Strategy<Value = SinkOp> {
    let size = prop_oneof![0..16usize, 0..2000usize];
    prop_oneof![
        4 => size.clone().prop_map(SinkOp::Write),
        4 => size.prop_map(SinkOp::WriteBytes),
        3 => prop_oneof![0..64usize, 0..3000usize].prop_map(SinkOp::Consume),
        1 => Just(SinkOp::TakeAll),
    ]
}

fn flatten(sink: &Sink) -> Result<Vec<u8>, TestCaseError> {
    let mut slices = [IoSlice::new(&[]); 256];
    let n = sink.io_slices(&mut slices);
    prop_assert!(n < slices.len(), "more than {} slices", slices.len() - 1);
    prop_assert!(
        slices[..n].iter().all(|s| !s.is_empty()),
        "an empty slice was handed out"
    );
    Ok(slices[..n].iter().flat_map(|s| s.iter().copied()).collect())
}

fn check_sink(sink: &Sink, model: &[u8], hwm: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(sink.len(), model.len());
    prop_assert_eq!(sink.is_empty(), model.is_empty());
    prop_assert!(
        sink.len() <= hwm,
        "len {} above the high-water mark {}",
        sink.len(),
        hwm
    );
    prop_assert_eq!(sink.room(), hwm - sink.len());
    prop_assert_eq!(sink.high_water_mark(), hwm);
    let flat = flatten(sink)?;
    prop_assert!(flat == model, "contents differ from the model");
    let first = sink.first_slice();
    prop_assert_eq!(first.is_empty(), model.is_empty());
    prop_assert!(
        model.starts_with(first),
        "first_slice is not a prefix of the contents"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sink_matches_a_vec_model(
        hwm in prop_oneof![1..64usize, 1..5000usize, 1..50_000usize],
        ops in prop::collection::vec(sink_op(), 0..80),
    ) {
        let mut sink = Sink::with_high_water_mark(hwm);
        let mut model: Vec<u8> = Vec::new();
        let mut next = 0u64;
        check_sink(&sink, &model, hwm)?;
        for op in ops {
            match op {
                SinkOp::Write(len) | SinkOp::WriteBytes(len) => {
                    let data = pattern(next, len);
                    next += len as u64;
                    let room = hwm - model.len();
                    let n = match op {
                        SinkOp::Write(_) => sink.write(&data),
                        _ => sink.write_bytes(Bytes::from(data.clone())),
                    };
                    prop_assert_eq!(n, len.min(room), "{:?} with {} bytes of room", op, room);
                    model.extend_from_slice(&data[..n]);
                }
                SinkOp::Consume(n) => {
                    sink.consume(n);
                    model.drain(..n.min(model.len()));
                }
                SinkOp::TakeAll => {
                    let all = sink.take_all();
                    prop_assert!(all[..] == model[..], "take_all differs from the model");
                    model.clear();
                }
            }
            check_sink(&sink, &model, hwm)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Backpressure accounting over the simulated link.
// ---------------------------------------------------------------------------------------------

/// What the server did, in order, as seen by this test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BpEv {
    Write { offered: usize, accepted: usize },
    Drain { buffered: usize },
}

#[derive(Debug, Clone)]
struct BpRound {
    /// Writes through the server's handle (outside any handler) before the run.
    writes: Vec<usize>,
    /// Pause (`Some(true)`) or resume (`Some(false)`) the client before the run.
    client_pause: Option<bool>,
}

#[derive(Debug, Clone)]
struct BpCase {
    capacity: usize,
    write_chunk: usize,
    read_chunk: usize,
    hwm: usize,
    /// Writes made by the server's `open` handler.
    open_writes: Vec<usize>,
    /// One of these is written by each `drain` handler call, while any are left.
    drain_writes: Vec<usize>,
    client_pauses_in_open: bool,
    rounds: Vec<BpRound>,
}

fn write_size() -> impl Strategy<Value = usize> {
    prop_oneof![0..64usize, 0..2000usize, 0..6000usize]
}

fn bp_case() -> impl Strategy<Value = BpCase> {
    let round = (
        prop::collection::vec(write_size(), 0..4),
        prop_oneof![2 => Just(None), 1 => Just(Some(true)), 1 => Just(Some(false))],
    )
        .prop_map(|(writes, client_pause)| BpRound {
            writes,
            client_pause,
        });
    (
        (1..5000usize, 1..5000usize, 1..5000usize, 1..5000usize),
        prop::collection::vec(write_size(), 0..5),
        prop::collection::vec(write_size(), 0..4),
        any::<bool>(),
        prop::collection::vec(round, 0..6),
    )
        .prop_map(
            |(
                (capacity, write_chunk, read_chunk, hwm),
                open_writes,
                drain_writes,
                pause,
                rounds,
            )| {
                BpCase {
                    capacity,
                    write_chunk,
                    read_chunk,
                    hwm,
                    open_writes,
                    drain_writes,
                    client_pauses_in_open: pause,
                    rounds,
                }
            },
        )
}

fn run_backpressure(case: BpCase) -> Result<(), TestCaseError> {
    let events = Arc::new(Mutex::new(Vec::<BpEv>::new()));
    let next = Arc::new(AtomicU64::new(0));
    let server = {
        let events = events.clone();
        let next = next.clone();
        let open_writes = case.open_writes.clone();
        let drain_queue = Mutex::new(VecDeque::from(case.drain_writes.clone()));
        SimHandler::new(move |seen, s| {
            let write = |len: usize, s: &mut sansock_core::Socket<'_, _>| {
                let bytes = pattern(next.fetch_add(len as u64, Ordering::SeqCst), len);
                // Never ended or closed: a write error is a failure (the panic closes the
                // socket, which the final checks catch).
                let accepted = sim_write(s, &bytes).expect("the server never ends");
                events.lock().unwrap().push(BpEv::Write {
                    offered: len,
                    accepted,
                });
            };
            match seen {
                Seen::Open => {
                    for &len in &open_writes {
                        write(len, s);
                    }
                }
                Seen::Drain => {
                    events.lock().unwrap().push(BpEv::Drain {
                        buffered: s.buffered_amount(),
                    });
                    let more = drain_queue.lock().unwrap().pop_front();
                    if let Some(len) = more {
                        write(len, s);
                    }
                }
                _ => {}
            }
        })
    };
    let pause_in_open = case.client_pauses_in_open;
    let client = SimHandler::new(move |seen, s| {
        if *seen == Seen::Open && pause_in_open {
            s.pause();
        }
    });
    let config = PairConfig {
        server: ConnectionConfig::default().high_water_mark(case.hwm),
        client: ConnectionConfig::default(),
    };
    let mut p = Pair::new(config, server, client);
    p.capacity = case.capacity;
    p.write_chunk = case.write_chunk;
    p.read_chunk = case.read_chunk;
    let offered: usize = case.open_writes.iter().sum::<usize>()
        + case.drain_writes.iter().sum::<usize>()
        + case.rounds.iter().flat_map(|r| &r.writes).sum::<usize>();
    // Every round moves at least one byte or settles.
    let max_rounds = 10_000 + 2 * offered;

    settle(&mut p, max_rounds);
    p.check().map_err(TestCaseError::fail)?;
    for round in &case.rounds {
        for &len in &round.writes {
            let bytes = pattern(next.fetch_add(len as u64, Ordering::SeqCst), len);
            let accepted = p
                .end(Side::Server)
                .write(&bytes)
                .expect("the server never ends");
            events.lock().unwrap().push(BpEv::Write {
                offered: len,
                accepted,
            });
        }
        match round.client_pause {
            Some(true) => p.end(Side::Client).handle().pause(),
            Some(false) => p.end(Side::Client).handle().resume(),
            None => {}
        }
        settle(&mut p, max_rounds);
        p.check().map_err(TestCaseError::fail)?;
    }
    p.end(Side::Client).handle().resume();
    settle(&mut p, max_rounds);
    p.check().map_err(TestCaseError::fail)?;

    let server = p.end(Side::Server);
    prop_assert_eq!(server.trace().iter().filter(|e| **e == "close").count(), 0);
    prop_assert!(!server.handle().is_closed());
    prop_assert_eq!(server.handle().buffered_amount(), 0);
    let events = events.lock().unwrap().clone();
    let accepted_sum: usize = events
        .iter()
        .map(|e| match e {
            BpEv::Write { accepted, .. } => *accepted,
            BpEv::Drain { .. } => 0,
        })
        .sum();
    let server_accepted = server.log().accepted.clone();
    let client_received = p.end(Side::Client).log().received.clone();
    prop_assert_eq!(accepted_sum, server_accepted.len());
    prop_assert_eq!(server.handle().bytes_written(), accepted_sum as u64);
    prop_assert_eq!(client_received.len(), accepted_sum, "delivered != accepted");
    prop_assert!(
        client_received == server_accepted,
        "delivered bytes differ from accepted ones"
    );

    // Drain episodes: a short write opens one (later short writes join it); one drain closes it.
    let mut owed = false;
    for (i, e) in events.iter().enumerate() {
        match *e {
            BpEv::Write { offered, accepted } => {
                prop_assert!(accepted <= offered);
                if accepted < offered {
                    owed = true;
                }
            }
            BpEv::Drain { buffered } => {
                prop_assert!(
                    owed,
                    "drain #{} without a short write since the last one: {:?}",
                    i,
                    events
                );
                prop_assert_eq!(buffered, 0, "drain fired with bytes still buffered");
                owed = false;
            }
        }
    }
    prop_assert!(
        !owed,
        "a short write was never followed by drain: {:?}",
        events
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn backpressure_accounting(case in bp_case()) {
        run_backpressure(case)?;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Random user operations on both ends.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Write(usize, usize),
    End(usize),
    Shutdown(usize),
    Close(usize),
    Terminate(usize),
    Pause(usize),
    Resume(usize),
    SetTimeout(usize, u64),
    Advance(u64),
    Reset(usize),
    Run,
}

fn op() -> impl Strategy<Value = Op> {
    let s = || 0..2usize;
    prop_oneof![
        6 => (s(), write_size()).prop_map(|(i, n)| Op::Write(i, n)),
        1 => s().prop_map(Op::End),
        1 => s().prop_map(Op::Shutdown),
        1 => s().prop_map(Op::Close),
        1 => s().prop_map(Op::Terminate),
        2 => s().prop_map(Op::Pause),
        2 => s().prop_map(Op::Resume),
        2 => (s(), 0..50u64).prop_map(|(i, ms)| Op::SetTimeout(i, ms)),
        3 => (0..300u64).prop_map(Op::Advance),
        1 => s().prop_map(Op::Reset),
        8 => Just(Op::Run),
    ]
}

#[derive(Debug, Clone)]
struct OpsCase {
    half_open: [bool; 2],
    linger_ms: [u64; 2],
    hwm: [usize; 2],
    capacity: usize,
    write_chunk: usize,
    read_chunk: usize,
    server_echoes: bool,
    ops: Vec<Op>,
}

fn ops_case() -> impl Strategy<Value = OpsCase> {
    let hwm = prop_oneof![1..5000usize, Just(DEFAULT_HIGH_WATER_MARK)];
    (
        (
            any::<[bool; 2]>(),
            [0..300u64, 0..300u64],
            [hwm.clone(), hwm],
        ),
        (1..5000usize, 1..5000usize, 1..5000usize),
        any::<bool>(),
        prop::collection::vec(op(), 0..40),
    )
        .prop_map(
            |(
                (half_open, linger_ms, hwm),
                (capacity, write_chunk, read_chunk),
                server_echoes,
                ops,
            )| OpsCase {
                half_open,
                linger_ms,
                hwm,
                capacity,
                write_chunk,
                read_chunk,
                server_echoes,
                ops,
            },
        )
}

/// What the test did to one end.
#[derive(Debug, Default, Clone)]
struct Did {
    end: bool,
    shutdown: bool,
    close: bool,
    terminate: bool,
    /// `terminate` while the socket was open: it must close with a reset.
    terminate_while_open: bool,
    reset_injected: bool,
    timeout_armed: bool,
    /// The pair ran since the first `shutdown` (so its FIN may have gone out).
    ran_since_shutdown: bool,
    /// `end()` was called after `shutdown()`'s FIN had gone out (the known bug's trigger).
    end_after_fin: bool,
}

fn run_ops(case: OpsCase) -> Result<(), TestCaseError> {
    let config = |i: usize| {
        ConnectionConfig::default()
            .allow_half_open(case.half_open[i])
            .end_linger(Duration::from_millis(case.linger_ms[i]))
            .high_water_mark(case.hwm[i])
    };
    let echo = case.server_echoes;
    let server = SimHandler::new(move |seen, s| {
        if let (true, Seen::Data(bytes)) = (echo, seen) {
            let _ = sim_write(s, bytes);
        }
    });
    let client = SimHandler::new(|_, _| {});
    let mut p = Pair::new(
        PairConfig {
            server: config(0),
            client: config(1),
        },
        server,
        client,
    );
    p.capacity = case.capacity;
    p.write_chunk = case.write_chunk;
    p.read_chunk = case.read_chunk;
    let offered: usize = case
        .ops
        .iter()
        .map(|op| if let Op::Write(_, n) = op { *n } else { 0 })
        .sum();
    // The echo can double the traffic; every round moves a byte or settles.
    let max_rounds = 10_000 + 4 * offered;
    let mut did = [Did::default(), Did::default()];
    let mut next = [0u64; 2];

    for op in &case.ops {
        match *op {
            Op::Write(i, len) => {
                let bytes = pattern(next[i] | (i as u64) << 40, len);
                next[i] += len as u64;
                let _ = p.end(side(i)).write(&bytes);
            }
            Op::End(i) => {
                let h = p.end(side(i)).handle();
                if did[i].shutdown
                    && did[i].ran_since_shutdown
                    && !h.is_closed()
                    && !h.is_writable()
                    && h.buffered_amount() == 0
                {
                    did[i].end_after_fin = true;
                }
                did[i].end = true;
                h.end();
            }
            Op::Shutdown(i) => {
                did[i].shutdown = true;
                p.end(side(i)).handle().shutdown();
            }
            Op::Close(i) => {
                did[i].close = true;
                p.end(side(i)).handle().close();
            }
            Op::Terminate(i) => {
                let h = p.end(side(i)).handle();
                did[i].terminate = true;
                did[i].terminate_while_open |= !h.is_closed();
                h.terminate();
            }
            Op::Pause(i) => p.end(side(i)).handle().pause(),
            Op::Resume(i) => p.end(side(i)).handle().resume(),
            Op::SetTimeout(i, ms) => {
                did[i].timeout_armed |= ms > 0;
                p.end(side(i))
                    .handle()
                    .set_timeout(Duration::from_millis(ms));
            }
            Op::Advance(ms) => p.advance(Duration::from_millis(ms)),
            Op::Reset(i) => {
                did[i].reset_injected = true;
                p.inject_reset(side(i));
            }
            Op::Run => {
                settle(&mut p, max_rounds);
                for d in did.iter_mut() {
                    d.ran_since_shutdown |= d.shutdown;
                }
            }
        }
        p.check()
            .map_err(|e| TestCaseError::fail(format!("after {op:?}: {e}")))?;
    }

    // Let everything finish: both ends read, every timer (linger at most 300 ms) expires.
    for i in 0..2 {
        p.end(side(i)).handle().resume();
    }
    settle(&mut p, max_rounds);
    for _ in 0..2 {
        p.advance(Duration::from_secs(60));
        settle(&mut p, max_rounds);
    }
    p.check().map_err(TestCaseError::fail)?;

    let traces = [p.end(Side::Server).trace(), p.end(Side::Client).trace()];
    let closed: Vec<bool> = traces.iter().map(|t| t.contains(&"close")).collect();
    for i in 0..2 {
        let end = p.end(side(i));
        let h = end.handle();
        prop_assert_eq!(
            traces[i].iter().filter(|e| **e == "close").count(),
            closed[i] as usize
        );
        prop_assert_eq!(
            h.is_closed(),
            closed[i],
            "end {}: is_closed vs close event",
            i
        );
        prop_assert_eq!(
            end.closed_with.is_some(),
            closed[i],
            "end {}: OS socket vs close event",
            i
        );
        // close() gives up on a peer that will not take its bytes within the linger: a reset
        // with a timed-out close error.
        let close_timed_out = did[i].close
            && end.log().events.last()
                == Some(&Seen::Close(Some(sansock_core::CloseError::TimedOut)));
        prop_assert_eq!(
            end.closed_with == Some(CloseAction::Reset),
            did[i].terminate_while_open || close_timed_out,
            "end {}: a reset close is exactly a terminate while open or a close() that timed out",
            i
        );
        if !did[i].timeout_armed {
            prop_assert!(
                !traces[i].contains(&"timeout"),
                "end {}: timeout without set_timeout",
                i
            );
        }
    }

    let anything_terminal = did
        .iter()
        .any(|d| d.end || d.shutdown || d.close || d.terminate || d.reset_injected);
    if !anything_terminal {
        prop_assert!(
            !closed[0] && !closed[1],
            "closed without any end/close/reset: {:?}",
            traces
        );
        return Ok(());
    }

    // Every end that is still open must be open for a reason the rules give.
    let called_no_fin =
        |i: usize| !did[i].end && !did[i].shutdown && !did[i].close && !did[i].terminate;
    // Half-open: it saw the peer's FIN, stays writable, and never ended its own side.
    let half_open_idle = |i: usize| {
        let h = p.end(side(i)).handle();
        !closed[i]
            && case.half_open[i]
            && traces[i].contains(&"end")
            && called_no_fin(i)
            && h.is_writable()
            && h.buffered_amount() == 0
    };
    // shutdown() waits for the peer's FIN without a bound; a half-open peer never sends one.
    let waits_for_half_open_peer = |i: usize| {
        did[i].shutdown
            && !did[i].close
            && !did[i].terminate
            && !did[i].end
            && !traces[i].contains(&"end")
            && half_open_idle(1 - i)
    };
    for (i, &is_closed) in closed.iter().enumerate() {
        if is_closed {
            continue;
        }
        prop_assert!(
            half_open_idle(i) || waits_for_half_open_peer(i),
            "end {} is still open with no reason: traces {:?}, did {:?}, buffered {:?}",
            i,
            traces,
            did,
            [0, 1].map(|j| p.end(side(j)).handle().buffered_amount())
        );
    }

    // A clean FIN exchange (no close(), no end() linger, no resets) delivers every byte.
    let clean = did
        .iter()
        .all(|d| !d.close && !d.end && !d.terminate && !d.reset_injected);
    if clean && closed[0] && closed[1] {
        for i in 0..2 {
            let received = p.end(side(i)).log().received.clone();
            let accepted = p.end(side(1 - i)).log().accepted.clone();
            prop_assert!(
                received == accepted,
                "end {} lost bytes in a clean exchange",
                i
            );
            let last = p.end(side(i)).log().events.last().cloned();
            prop_assert_eq!(
                last,
                Some(Seen::Close(None)),
                "end {} closed with an error",
                i
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_keep_the_invariants(case in ops_case()) {
        run_ops(case)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Two bugs the properties found (end() after shutdown's FIN; mutual close()), pinned.
// ---------------------------------------------------------------------------------------------

#[test]
fn end_after_shutdown_still_lingers_at_most_end_linger() {
    let config = PairConfig {
        server: ConnectionConfig::default().end_linger(Duration::from_secs(2)),
        client: ConnectionConfig::default().allow_half_open(true),
    };
    let mut p = Pair::new(
        config,
        SimHandler::new(|_, _| {}),
        SimHandler::new(|_, _| {}),
    );
    p.run();
    p.end(Side::Server).handle().shutdown();
    p.run(); // the FIN goes out; the half-open client stays open
    assert_eq!(p.end(Side::Client).trace(), ["open", "end"]);
    p.end(Side::Server).handle().end();
    p.run();
    p.advance(Duration::from_secs(60));
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Server).trace(), ["open", "close"]);
}

#[test]
fn mutual_close_with_full_buffers_still_closes() {
    let mut p = Pair::new(
        PairConfig::default(),
        SimHandler::new(|_, _| {}),
        SimHandler::new(|_, _| {}),
    );
    p.capacity = 100;
    p.run();
    p.end(Side::Server).write(&[1; 500]).unwrap();
    p.end(Side::Client).write(&[2; 500]).unwrap();
    p.end(Side::Server).handle().close();
    p.end(Side::Client).handle().close();
    p.run();
    p.advance(Duration::from_secs(600));
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Server).trace().last(), Some(&"close"));
    assert_eq!(p.end(Side::Client).trace().last(), Some(&"close"));
}
