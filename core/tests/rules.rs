//! Every rule of the core, pinned with the in-memory simulated link (no sockets, no clock).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sansock_core::sim::{
    sim_write, sim_write_all, Pair, PairConfig, Seen, Side, SimData, SimHandler,
};
use sansock_core::{
    Addr, CloseAction, CloseError, ConnectionConfig, ListenerShared, RefCounter, SocketAddrs,
    SocketError, WriteError, WriteStatus,
};

fn quiet() -> Arc<SimHandler> {
    SimHandler::new(|_, _| {})
}

fn echo() -> Arc<SimHandler> {
    SimHandler::new(|seen, s| {
        if let Seen::Data(bytes) = seen {
            let _ = sim_write(s, bytes);
        }
    })
}

fn pair(server: Arc<SimHandler>, client: Arc<SimHandler>) -> Pair {
    Pair::new(PairConfig::default(), server, client)
}

#[test]
fn normal_exchange_event_order() {
    // Client writes in open, server echoes, client ends after the reply.
    let client = SimHandler::new(|seen, s| match seen {
        Seen::Open => {
            sim_write(s, b"ping").unwrap();
        }
        Seen::Data(_) => s.end(),
        _ => {}
    });
    let mut p = pair(echo(), client);
    p.run();
    p.check().unwrap();
    assert_eq!(
        p.end(Side::Server).trace(),
        ["open", "data", "end", "close"]
    );
    assert_eq!(
        p.end(Side::Client).trace(),
        ["open", "data", "end", "close"]
    );
    assert_eq!(p.end(Side::Client).log().received, b"ping");
    assert_eq!(
        p.end(Side::Server).log().events.last(),
        Some(&Seen::Close(None))
    );
}

#[test]
fn writes_in_one_dispatch_are_corked_into_one_transmit() {
    let server = SimHandler::new(|seen, s| {
        if let Seen::Data(_) = seen {
            for b in b"hello" {
                sim_write(s, &[*b]).unwrap();
            }
        }
    });
    let client = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            sim_write(s, b"?").unwrap();
        }
    });
    let mut p = pair(server, client);
    p.read_chunk = 1 << 20;
    p.run();
    p.check().unwrap();
    // One data event with all five bytes: they travelled as one write.
    assert_eq!(
        p.end(Side::Client).log().events[1],
        Seen::Data(b"hello".to_vec())
    );
}

#[test]
fn backpressure_accepts_up_to_high_water_mark_then_drains_once() {
    let hwm = 1000;
    let config = PairConfig {
        server: ConnectionConfig::default().high_water_mark(hwm),
        client: ConnectionConfig::default(),
    };
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let r2 = results.clone();
    let server = SimHandler::new(move |seen, s| {
        if *seen == Seen::Open {
            let mut got = r2.lock().unwrap();
            got.push(sim_write(s, &[1u8; 600]).unwrap());
            got.push(sim_write(s, &[2u8; 600]).unwrap());
            got.push(sim_write(s, &[3u8; 600]).unwrap());
        }
    });
    let client = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            s.pause();
        }
    });
    let mut p = Pair::new(config, server, client);
    p.capacity = 300; // the "kernel" holds 300 bytes while the client does not read
    p.run();
    assert_eq!(*results.lock().unwrap(), [600, 400, 0]);
    assert_eq!(p.end(Side::Server).handle().buffered_amount(), 700);
    assert_eq!(p.end(Side::Server).trace(), ["open"]);
    p.end(Side::Client).handle().resume();
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Server).trace(), ["open", "drain"]);
    let received = p.end(Side::Client).log().received.clone();
    assert_eq!(received.len(), 1000);
    assert!(received[..600].iter().all(|&b| b == 1) && received[600..].iter().all(|&b| b == 2));
}

#[test]
fn owed_drain_survives_an_inline_flush() {
    // A refused write, then room comes back while the user writes again and that write is
    // flushed at once: drain is still owed and fires.
    let config = PairConfig {
        server: ConnectionConfig::default().high_water_mark(10),
        client: ConnectionConfig::default(),
    };
    let server = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            assert_eq!(sim_write(s, &[7; 20]).unwrap(), 10);
        }
    });
    let mut p = Pair::new(config, server, quiet());
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Server).trace(), ["open", "drain"]);
    assert_eq!(p.end(Side::Client).log().received.len(), 10);
}

#[test]
fn peer_fin_without_half_open_flushes_then_closes() {
    let server = SimHandler::new(|seen, s| {
        if *seen == Seen::End {
            // Still writable inside `end`: the reply goes out before our FIN.
            sim_write(s, b"bye").unwrap();
        }
    });
    let client = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            s.shutdown();
        }
    });
    let mut p = pair(server, client);
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Server).trace(), ["open", "end", "close"]);
    assert_eq!(
        p.end(Side::Client).trace(),
        ["open", "data", "end", "close"]
    );
    assert_eq!(p.end(Side::Client).log().received, b"bye");
}

#[test]
fn peer_fin_with_half_open_stays_writable_until_end() {
    let config = PairConfig {
        server: ConnectionConfig::default().allow_half_open(true),
        client: ConnectionConfig::default(),
    };
    let client = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            s.shutdown();
        }
    });
    let mut p = Pair::new(config, quiet(), client);
    p.run();
    assert_eq!(p.end(Side::Server).trace(), ["open", "end"]);
    let server = p.end(Side::Server).handle();
    assert!(server.is_writable());
    assert_eq!(p.end(Side::Server).write(b"late"), Ok(4));
    p.run();
    assert_eq!(p.end(Side::Client).log().received, b"late");
    server.end();
    p.run();
    assert_eq!(p.end(Side::Server).trace(), ["open", "end", "close"]);
    assert_eq!(
        p.end(Side::Client).trace(),
        ["open", "data", "end", "close"]
    );
}

#[test]
fn end_flushes_pending_data_and_refuses_later_writes() {
    let config = PairConfig {
        server: ConnectionConfig::default(),
        client: ConnectionConfig::default().allow_half_open(true),
    };
    let server = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            sim_write(s, &[9u8; 50_000]).unwrap();
            assert_eq!(sim_write(s, b"tail").unwrap(), 4);
            s.end();
            assert_eq!(s.write(b"more"), Err(WriteError::Ended));
        }
    });
    let mut p = Pair::new(config, server, quiet());
    // The server's bytes trickle out through a tiny pipe.
    p.capacity = 1000;
    p.write_chunk = 333;
    p.run();
    let received = p.end(Side::Client).log().received.clone();
    assert_eq!(received.len(), 50_004);
    assert_eq!(&received[50_000..], b"tail");
    // The server keeps reading after end(): the half-open client can still answer.
    assert_eq!(p.end(Side::Client).trace(), ["open", "data", "end"]);
    p.end(Side::Client).write(b"answer").unwrap();
    p.end(Side::Client).handle().end();
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Server).log().received, b"answer");
    assert_eq!(
        p.end(Side::Server).trace(),
        ["open", "data", "end", "close"]
    );
    assert_eq!(p.end(Side::Server).write(b"x"), Err(WriteError::Closed));
}

#[test]
fn end_lingers_at_most_the_configured_time() {
    let config = PairConfig {
        server: ConnectionConfig::default().end_linger(Duration::from_secs(2)),
        client: ConnectionConfig::default().allow_half_open(true),
    };
    let server = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            s.end();
        }
    });
    let mut p = Pair::new(config, server, quiet());
    p.run();
    assert_eq!(p.end(Side::Server).trace(), ["open"]);
    p.advance(Duration::from_millis(1999));
    p.run();
    assert_eq!(p.end(Side::Server).trace(), ["open"]);
    p.advance(Duration::from_millis(1));
    p.run();
    assert_eq!(p.end(Side::Server).trace(), ["open", "close"]);
    p.check().unwrap();
}

#[test]
fn terminate_resets_and_the_peer_sees_the_reset() {
    let server = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            sim_write(s, b"dropped").unwrap();
            s.terminate();
        }
    });
    let mut p = pair(server, quiet());
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Server).closed_with, Some(CloseAction::Reset));
    assert_eq!(
        p.end(Side::Server).log().events,
        [Seen::Open, Seen::Close(None)]
    );
    assert_eq!(
        p.end(Side::Client).log().events,
        [Seen::Open, Seen::Close(Some(CloseError::Reset))]
    );
}

#[test]
fn reset_mid_transfer_closes_with_reset() {
    let mut p = pair(echo(), quiet());
    p.run();
    p.end(Side::Client).write(&[1; 100]).unwrap();
    p.inject_reset(Side::Server);
    p.run();
    let events = p.end(Side::Server).log().events.clone();
    assert_eq!(events.last(), Some(&Seen::Close(Some(CloseError::Reset))));
}

#[test]
fn idle_timeout_fires_once_is_reset_by_traffic_and_does_not_close() {
    let server = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            s.set_timeout(Duration::from_millis(100));
        }
    });
    let mut p = pair(server, quiet());
    p.run();
    p.advance(Duration::from_millis(60));
    p.end(Side::Client).write(b"x").unwrap();
    p.run();
    p.advance(Duration::from_millis(60)); // 120 ms since arming, 60 since traffic
    p.run();
    assert_eq!(p.end(Side::Server).trace(), ["open", "data"]);
    p.advance(Duration::from_millis(40));
    p.run();
    assert_eq!(p.end(Side::Server).trace(), ["open", "data", "timeout"]);
    p.advance(Duration::from_secs(10));
    p.run();
    assert_eq!(p.end(Side::Server).trace(), ["open", "data", "timeout"]);
    assert!(p.end(Side::Server).handle().is_writable());
    // Re-arming fires again; zero disarms.
    p.end(Side::Server)
        .handle()
        .set_timeout(Duration::from_millis(5));
    p.run();
    p.advance(Duration::from_millis(5));
    p.run();
    assert_eq!(p.end(Side::Server).trace().last(), Some(&"timeout"));
    p.end(Side::Server)
        .handle()
        .set_timeout(Duration::from_millis(5));
    p.end(Side::Server).handle().set_timeout(Duration::ZERO);
    p.run();
    p.advance(Duration::from_secs(1));
    p.run();
    assert_eq!(
        p.end(Side::Server)
            .trace()
            .iter()
            .filter(|e| **e == "timeout")
            .count(),
        2
    );
    p.check().unwrap();
}

#[test]
fn stop_false_keeps_sockets_and_stop_true_closes_them() {
    let mut p = pair(echo(), quiet());
    p.run();
    p.listener.stop(false);
    assert!(p.listener.is_stopped());
    p.end(Side::Client).write(b"still").unwrap();
    p.run();
    assert_eq!(p.end(Side::Client).log().received, b"still");
    assert_eq!(p.listener.connection_count(), 1);
    p.listener.stop(true);
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Server).trace(), ["open", "data", "close"]);
    assert_eq!(
        p.end(Side::Client).trace(),
        ["open", "data", "end", "close"]
    );
    assert_eq!(p.listener.connection_count(), 0);
}

#[test]
fn reload_reaches_live_sockets() {
    let mut p = pair(echo(), quiet());
    p.run();
    let upper = SimHandler::new(|seen, s| {
        if let Seen::Data(bytes) = seen {
            let _ = sim_write(s, &bytes.to_ascii_uppercase());
        }
    });
    p.listener.reload(upper);
    p.end(Side::Client).write(b"abc").unwrap();
    p.run();
    assert_eq!(p.end(Side::Client).log().received, b"ABC");
    // A socket-level reload on the client.
    let counted = Arc::new(AtomicUsize::new(0));
    let c2 = counted.clone();
    p.end(Side::Client)
        .handle()
        .reload(SimHandler::new(move |seen, _| {
            if let Seen::Data(_) = seen {
                c2.fetch_add(1, Ordering::SeqCst);
            }
        }));
    p.end(Side::Client).write(b"d").unwrap();
    p.run();
    assert_eq!(counted.load(Ordering::SeqCst), 1);
}

#[test]
fn panic_in_a_handler_gives_error_then_close_and_spares_the_listener() {
    let server = SimHandler::new(|seen, _| {
        if let Seen::Data(bytes) = seen {
            if bytes == b"boom" {
                panic!("handler exploded");
            }
        }
    });
    let mut p = pair(server, quiet());
    p.run();
    p.end(Side::Client).write(b"boom").unwrap();
    p.run();
    p.check().unwrap();
    let events = p.end(Side::Server).log().events.clone();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(
        matches!(&events[2], Seen::Error(sansock_core::SocketError::HandlerPanicked { handler: "data", message }) if message == "handler exploded")
    );
    assert!(matches!(
        &events[3],
        Seen::Close(Some(CloseError::HandlerPanicked(_)))
    ));
    assert_eq!(p.end(Side::Client).trace(), ["open", "end", "close"]);
    assert!(!p.listener.is_stopped());
}

#[test]
fn panic_in_close_is_contained() {
    let server = SimHandler::new(|seen, _| {
        if matches!(seen, Seen::Close(_)) {
            panic!("close exploded");
        }
    });
    let mut p = pair(server, quiet());
    p.run();
    p.end(Side::Server).handle().terminate();
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Server).trace(), ["open", "close"]);
}

#[test]
fn pause_holds_data_until_resume() {
    let client = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            s.pause();
        }
    });
    let mut p = pair(quiet(), client);
    p.run();
    p.end(Side::Server).write(b"queued").unwrap();
    p.end(Side::Server).handle().end();
    p.run();
    assert_eq!(p.end(Side::Client).trace(), ["open"]);
    p.end(Side::Client).handle().resume();
    p.run();
    assert_eq!(p.end(Side::Client).log().received, b"queued");
    assert_eq!(
        p.end(Side::Client).trace(),
        ["open", "data", "end", "close"]
    );
    p.check().unwrap();
}

#[test]
fn close_is_graceful_and_stops_reading() {
    let server = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            sim_write(s, b"last words").unwrap();
            s.close();
        }
    });
    let mut p = pair(server, quiet());
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Server).trace(), ["open", "close"]);
    assert_eq!(p.end(Side::Client).log().received, b"last words");
}

#[test]
fn writes_after_close_say_closed() {
    let mut p = pair(quiet(), quiet());
    p.run();
    let h = p.end(Side::Server).handle();
    h.terminate();
    p.run();
    assert!(h.is_closed());
    assert_eq!(h.write(b"x"), Err(WriteError::Closed));
    assert_eq!(h.end_with(b"x"), Err(WriteError::Closed));
}

// ----- the write contract: every byte, or a typed error -----

/// A client that reads nothing until the test resumes it.
fn paused_on_open() -> Arc<SimHandler> {
    SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            s.pause();
        }
    })
}

/// A server socket accepted through a listener counted by `refs`, with `open` dispatched.
fn accepted(
    refs: &Arc<RefCounter>,
    handler: Arc<SimHandler>,
) -> (Arc<ListenerShared<SimData>>, sansock_core::Driver<SimData>) {
    let listener = ListenerShared::new(handler, ConnectionConfig::default(), refs, None);
    let addrs = SocketAddrs {
        local: Addr::Unix(None),
        remote: Addr::Unix(None),
    };
    let mut driver = listener
        .accept(Instant::now(), addrs, SimData::default())
        .unwrap();
    driver.dispatch();
    (listener, driver)
}

#[test]
fn write_takes_every_byte_past_the_high_water_mark_and_drain_follows() {
    // The README echo: `write` with the status ignored. Nothing may be cut.
    let config = PairConfig {
        server: ConnectionConfig::default().high_water_mark(1000),
        client: ConnectionConfig::default(),
    };
    let statuses = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = statuses.clone();
    let server = SimHandler::new(move |seen, s| {
        if *seen == Seen::Open {
            for i in 0..3u8 {
                let status = sim_write_all(s, &[i; 600]).unwrap();
                s2.lock().unwrap().push(status);
            }
        }
    });
    let client = paused_on_open();
    let mut p = Pair::new(config, server, client);
    p.capacity = 300;
    p.run();
    assert_eq!(
        *statuses.lock().unwrap(),
        [
            WriteStatus::Ready,
            WriteStatus::Backpressured { buffered: 1200 },
            WriteStatus::Backpressured { buffered: 1800 },
        ]
    );
    assert_eq!(p.end(Side::Server).handle().buffered_amount(), 1500);
    p.end(Side::Client).handle().resume();
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Server).trace(), ["open", "drain"]);
    assert_eq!(p.end(Side::Client).log().received.len(), 1800);
}

#[test]
fn a_write_beyond_max_buffered_is_refused_whole_and_closes_loudly() {
    let config = PairConfig {
        server: ConnectionConfig::default()
            .high_water_mark(1000)
            .max_buffered(5000),
        client: ConnectionConfig::default(),
    };
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let r2 = results.clone();
    let server = SimHandler::new(move |seen, s| {
        if *seen == Seen::Open {
            let mut got = r2.lock().unwrap();
            for (i, len) in [(1, 3000), (2, 3000), (3, 10)] {
                got.push(sim_write_all(s, &vec![i; len]).map(|_| len));
            }
        }
    });
    let client = paused_on_open();
    let mut p = Pair::new(config, server, client);
    p.capacity = 100;
    p.run();
    p.end(Side::Client).handle().resume();
    p.run();
    p.check().unwrap();
    let limit = WriteError::BufferLimit {
        buffered: 3000,
        refused: 3000,
        limit: 5000,
    };
    assert_eq!(
        *results.lock().unwrap(),
        [Ok(3000), Err(limit), Err(WriteError::Closed)]
    );
    let server = p.end(Side::Server).log().events.clone();
    assert_eq!(
        server,
        [
            Seen::Open,
            Seen::Error(SocketError::BufferLimit {
                buffered: 3000,
                refused: 3000,
                limit: 5000
            }),
            Seen::Close(Some(CloseError::BufferLimit {
                buffered: 3000,
                refused: 3000,
                limit: 5000
            })),
        ]
    );
    assert_eq!(p.end(Side::Server).closed_with, Some(CloseAction::Reset));
    // The peer is not told "clean end": it sees a reset.
    assert_eq!(
        p.end(Side::Client).log().events.last(),
        Some(&Seen::Close(Some(CloseError::Reset)))
    );
}

#[test]
fn try_write_keeps_buns_semantics() {
    let config = PairConfig {
        server: ConnectionConfig::default().high_water_mark(1000),
        client: ConnectionConfig::default(),
    };
    let server = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            assert_eq!(s.try_write(&[1; 600]), Ok(600));
            assert_eq!(s.try_write(&[1; 600]), Ok(400));
            assert_eq!(s.try_write(&[1; 600]), Ok(0));
            assert_eq!(s.buffered_amount(), 1000);
        }
    });
    let mut p = Pair::new(config, server, quiet());
    p.run();
    assert_eq!(p.end(Side::Server).trace(), ["open", "drain"]);
    assert_eq!(p.end(Side::Client).log().received.len(), 1000);
}

#[test]
fn pause_until_drain_stops_reading_and_drain_resumes_it() {
    // An echo that follows the documented pattern, against a peer that sends 50 KB and only
    // then starts reading: the echo stops reading while its replies wait, nothing is lost.
    let config = PairConfig {
        server: ConnectionConfig::default().high_water_mark(4000),
        client: ConnectionConfig::default(),
    };
    let max_buffered = Arc::new(AtomicUsize::new(0));
    let m2 = max_buffered.clone();
    let server = SimHandler::new(move |seen, s| {
        if let Seen::Data(bytes) = seen {
            let status = sim_write_all(s, bytes).unwrap();
            m2.fetch_max(s.buffered_amount(), Ordering::SeqCst);
            if status.is_backpressured() {
                s.pause_until_drain();
            }
        }
    });
    let client = SimHandler::new(|seen, s| {
        if *seen == Seen::Open {
            s.pause();
            for i in 0..50u8 {
                sim_write_all(s, &[i; 1000]).unwrap();
            }
        }
    });
    let mut p = Pair::new(config, server, client);
    p.capacity = 2000;
    p.read_chunk = 1500;
    p.run();
    // The server stopped reading: replies wait in its buffer, bounded by one read past the mark.
    let buffered = p.end(Side::Server).handle().buffered_amount();
    assert!((4000..=5500).contains(&buffered), "{buffered}");
    p.end(Side::Client).handle().resume();
    p.run();
    p.check().unwrap();
    assert_eq!(p.end(Side::Client).log().received.len(), 50_000);
    assert!(max_buffered.load(Ordering::SeqCst) <= 5500);
    assert!(p.end(Side::Server).trace().contains(&"drain"));
}

// ----- runtime shutdown and cork scopes -----

#[test]
fn dropping_the_driver_of_an_open_socket_closes_it_once() {
    let refs = Arc::new(RefCounter::new());
    let closes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let c2 = closes.clone();
    let handler = SimHandler::new(move |seen, _| {
        if let Seen::Close(e) = seen {
            c2.lock().unwrap().push(e.clone());
        }
    });
    let (listener, driver) = accepted(&refs, handler);
    assert_eq!((refs.count(), listener.connection_count()), (2, 1));
    drop(driver); // what a runtime shutting down does to the socket's task
    assert_eq!(*closes.lock().unwrap(), [Some(CloseError::RuntimeShutdown)]);
    assert_eq!(listener.connection_count(), 0);
    assert_eq!(refs.count(), 1, "only the listener is left referenced");
    listener.stop(false);
    assert_eq!(refs.count(), 0);
}

/// Runs `f` on a thread and fails the test if it has not returned within 10 s (a deadlock).
fn within_10s(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("deadlock: did not return within 10 s");
}

#[test]
fn cork_runs_user_code_without_the_socket_lock() {
    let mut p = pair(quiet(), quiet());
    p.run();
    let h = p.end(Side::Client).handle();
    let h2 = h.clone();
    within_10s(move || {
        h2.cork(|c| {
            c.write(b"one ").unwrap();
            // The same socket through another handle, inside the scope: no self-deadlock.
            h2.write(b"two ").unwrap();
            h2.clone().cork(|c| c.write(b"three").unwrap());
            assert_eq!(c.buffered_amount(), 13);
        });
    });
    p.run();
    // Nothing was recorded through the sim's helpers; compare the bytes directly.
    assert_eq!(p.end(Side::Server).log().received, b"one two three");
    assert_eq!(p.end(Side::Server).trace(), ["open", "data"]);
    assert_eq!(h.buffered_amount(), 0);
}

#[test]
fn two_sockets_corking_each_other_from_two_threads_do_not_deadlock() {
    let mut p = pair(quiet(), quiet());
    p.run();
    let (a, b) = (p.end(Side::Server).handle(), p.end(Side::Client).handle());
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let (a2, b2, bar2) = (a.clone(), b.clone(), barrier.clone());
    let t = std::thread::spawn(move || {
        a2.cork(|_| {
            bar2.wait();
            b2.cork(|c| c.write(b"from a").unwrap());
        })
    });
    within_10s(move || {
        b.cork(|_| {
            barrier.wait();
            a.cork(|c| c.write(b"from b").unwrap());
        });
    });
    t.join().unwrap();
    p.run();
    assert_eq!(p.end(Side::Server).log().received, b"from a");
    assert_eq!(p.end(Side::Client).log().received, b"from b");
}

#[test]
fn writers_on_other_threads_do_not_wait_for_the_transmit_syscall() {
    // The transmit's write callback is the syscall. It runs without the socket's lock: a
    // handle can write (and read the buffered amount) meanwhile, from this or another thread,
    // and what it writes follows the bytes being written.
    within_10s(|| {
        let refs = Arc::new(RefCounter::new());
        let (_listener, mut driver) = accepted(&refs, quiet());
        let h = driver.handle();
        h.write(b"first ").unwrap();
        let mut wire = Vec::new();
        let mut calls = 0;
        let blocked = driver.transmit(Instant::now(), |slices| {
            calls += 1;
            if calls == 1 {
                // Mid-syscall: the 6 bytes in flight still count as buffered.
                assert_eq!(h.buffered_amount(), 6);
                let h2 = h.clone();
                std::thread::spawn(move || h2.write(b"second").unwrap())
                    .join()
                    .unwrap();
                assert_eq!(h.buffered_amount(), 12);
            }
            let n = slices[0].len();
            wire.extend_from_slice(&slices[0]);
            Some(Ok(n))
        });
        assert!(!blocked);
        assert_eq!(h.buffered_amount(), 6);
        driver.transmit(Instant::now(), |slices| {
            wire.extend_from_slice(&slices[0]);
            Some(Ok(slices[0].len()))
        });
        assert_eq!(wire, b"first second");
        assert_eq!(h.buffered_amount(), 0);
    });
}
