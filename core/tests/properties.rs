//! Property tests of the core: the sink against a `Vec<u8>` model, backpressure accounting over
//! the simulated link, and random operation sequences on both ends of a simulated pair.
//!
//! The invariant checks live in `sansock_core::sim` (`Pair::check`, the event-order checks of
//! `SimHandler`); this file only adds the properties specific to each scenario.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use sansock_core::sim::{
    apply_sink_op, check_sink_against_model, sim_write, Pair, PairConfig, Seen, Side, SimHandler,
    SinkModel, SinkOp,
};
use sansock_core::{ConnectionConfig, Sink, DEFAULT_HIGH_WATER_MARK};

/// A distinct-looking byte for every position of the stream, so reordered, duplicated or lost
/// bytes do not go unnoticed.
fn pattern_byte(position: u64) -> u8 {
    (position.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

fn pattern(start: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern_byte(start + i)).collect()
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

/// A sink operation with write sizes instead of bytes (the bytes come from `pattern`).
#[derive(Debug, Clone)]
enum SinkStep {
    Write(usize),
    WriteBytes(usize),
    Other(SinkOp),
}

fn sink_step() -> impl Strategy<Value = SinkStep> {
    let size = prop_oneof![0..16usize, 0..2000usize];
    prop_oneof![
        4 => size.clone().prop_map(SinkStep::Write),
        4 => size.prop_map(SinkStep::WriteBytes),
        3 => prop_oneof![0..64usize, 0..3000usize].prop_map(|n| SinkStep::Other(SinkOp::Consume(n))),
        1 => Just(SinkStep::Other(SinkOp::TakeAll)),
        1 => Just(SinkStep::Other(SinkOp::Clear)),
        1 => Just(SinkStep::Other(SinkOp::Shrink)),
        1 => prop_oneof![1..64usize, 1..5000usize]
            .prop_map(|n| SinkStep::Other(SinkOp::SetHighWaterMark(n))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sink_matches_a_vec_model(
        hwm in prop_oneof![1..64usize, 1..5000usize, 1..50_000usize],
        steps in prop::collection::vec(sink_step(), 0..80),
    ) {
        // The checks are `sim::apply_sink_op` / `sim::check_sink_against_model`, shared with
        // the `sink` fuzz target.
        let mut sink = Sink::with_high_water_mark(hwm);
        let mut model = SinkModel::new(hwm);
        let mut next = 0u64;
        check_sink_against_model(&sink, &model).map_err(TestCaseError::fail)?;
        for step in steps {
            let op = match step {
                SinkStep::Write(len) | SinkStep::WriteBytes(len) => {
                    // Distinct bytes for every stream position.
                    let data = pattern(next, len);
                    next += len as u64;
                    if matches!(step, SinkStep::Write(_)) {
                        SinkOp::Write(data)
                    } else {
                        SinkOp::WriteBytes(data)
                    }
                }
                SinkStep::Other(ref op) => op.clone(),
            };
            apply_sink_op(&mut sink, &mut model, &op)
                .map_err(|e| TestCaseError::fail(format!("after {step:?}: {e}")))?;
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

    p.run_for(max_rounds);
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
        p.run_for(max_rounds);
        p.check().map_err(TestCaseError::fail)?;
    }
    p.end(Side::Client).handle().resume();
    p.run_for(max_rounds);
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
    let mut next = [0u64; 2];

    // The user operations go through the pair's methods, which record them for
    // `check_settled`.
    for op in &case.ops {
        match *op {
            Op::Write(i, len) => {
                let bytes = pattern(next[i] | (i as u64) << 40, len);
                next[i] += len as u64;
                let _ = p.end(side(i)).write(&bytes);
            }
            Op::End(i) => p.end_side(side(i)),
            Op::Shutdown(i) => p.shutdown_side(side(i)),
            Op::Close(i) => p.close_side(side(i)),
            Op::Terminate(i) => p.terminate_side(side(i)),
            Op::Pause(i) => p.end(side(i)).handle().pause(),
            Op::Resume(i) => p.end(side(i)).handle().resume(),
            Op::SetTimeout(i, ms) => p.set_timeout_side(side(i), Duration::from_millis(ms)),
            Op::Advance(ms) => p.advance(Duration::from_millis(ms)),
            Op::Reset(i) => p.inject_reset(side(i)),
            Op::Run => {
                p.run_for(max_rounds);
            }
        }
        p.check()
            .map_err(|e| TestCaseError::fail(format!("after {op:?}: {e}")))?;
    }

    // Let everything finish: both ends read, every timer (linger at most 300 ms) expires; then
    // every end is closed or open for a reason the rules give (`sim::Pair::check_settled`).
    p.finish(max_rounds);
    p.check_settled().map_err(TestCaseError::fail)?;
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
