//! Every rule of the core, pinned with the in-memory simulated link (no sockets, no clock).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sansock_core::sim::{sim_write, Pair, PairConfig, Seen, Side, SimHandler};
use sansock_core::{CloseAction, CloseError, ConnectionConfig, WriteError};

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
