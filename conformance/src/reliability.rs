//! Reliability under load, faults and bad input (issue: "measured"). Each scenario prints its
//! figures on stderr (`RELIABILITY ...` lines); RELIABILITY.md collects them. Scenarios in one
//! test binary run one at a time (descriptor and memory counts need a quiet process).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sansock_core::tls::{ClientTlsOptions, ServerTlsOptions};
use sansock_core::{CloseError, ConnectOptions, ListenOptions, SocketHandle};

use crate::accept_failures;
use crate::recorder::{echo, quiet, recorder, Ev, Log, Logs};
use crate::scenarios::client;
use crate::tls_scenarios::pki;
use crate::{port_of, wait_until, Adapter};

/// Serialises the scenarios of one test binary.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident memory of this process, KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn figure(name: &str, text: String) {
    eprintln!("RELIABILITY {name}: {text}");
}

async fn settle_fds<A: Adapter>(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = open_fds();
        if now <= want || Instant::now() > deadline {
            return now;
        }
        A::sleep(Duration::from_millis(20)).await;
    }
}

/// Environment variables of the client process.
const CLIENT_TARGET: &str = "SANSOCK_RELIABILITY_TARGET";
const CLIENT_COUNT: &str = "SANSOCK_RELIABILITY_CLIENTS";

/// The client half of [`ten_thousand_concurrent_connections`], run in a child process (the
/// same test binary) so client and server descriptors do not share one limit. Does nothing
/// unless started by that scenario.
pub fn client_process_main<A: Adapter>() {
    let (Ok(target), Ok(count)) = (std::env::var(CLIENT_TARGET), std::env::var(CLIENT_COUNT))
    else {
        return;
    };
    let count: usize = count.parse().unwrap();
    let port: u16 = target.parse().unwrap();
    crate::raise_fd_limit(count as u64 + 512);
    A::block_on(async move {
        let answered = Arc::new(AtomicUsize::new(0));
        let wrong = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(count);
        for i in 0..count {
            let want = format!("req-{i:05}");
            let (a2, w2) = (answered.clone(), wrong.clone());
            let handler = recorder(move |ev, s| match ev {
                Ev::Open => {
                    s.write(want.as_bytes()).unwrap();
                }
                Ev::Data(_) if s.data().received_len() >= want.len() => {
                    if s.data().received() == want.as_bytes() {
                        a2.fetch_add(1, Ordering::SeqCst);
                    } else {
                        w2.fetch_add(1, Ordering::SeqCst);
                    }
                }
                _ => {}
            });
            // All connections stay open together: the server holds `count` at once.
            handles.push(client::<A>(port, handler).await.0);
        }
        wait_until::<A>("every request answered", Duration::from_secs(60), || {
            answered.load(Ordering::SeqCst) + wrong.load(Ordering::SeqCst) == count
        })
        .await;
        println!(
            "ANSWERED {} WRONG {}",
            answered.load(Ordering::SeqCst),
            wrong.load(Ordering::SeqCst)
        );
        for h in &handles {
            h.close();
        }
        wait_until::<A>("all closed", Duration::from_secs(30), || {
            handles.iter().all(SocketHandle::is_closed)
        })
        .await;
    });
}

pub async fn ten_thousand_concurrent_connections<A: Adapter>(test_name: &str) {
    const N: usize = 10_000;
    let limit = crate::raise_fd_limit(N as u64 + 512);
    assert!(
        limit >= N as u64 + 256,
        "this test needs {} open files; the hard limit allows {limit} (raise `ulimit -Hn`)",
        N + 256
    );
    let (l, logs) = {
        let logs = Logs::new();
        let l = A::listen(
            ListenOptions::tcp("127.0.0.1", 0)
                .backlog(4096)
                .data_with(logs.factory()),
            echo(),
        )
        .await
        .unwrap();
        (l, logs)
    };
    let peak = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let exe = std::env::current_exe().unwrap();
    let port = port_of(&l);
    let mut child = Command::new(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
        .env(CLIENT_TARGET, port.to_string())
        .env(CLIENT_COUNT, N.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client process");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let output = Arc::new(Mutex::new(String::new()));
    let errors = Arc::new(Mutex::new(String::new()));
    let (o2, e2) = (output.clone(), errors.clone());
    let readers = [
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            *o2.lock().unwrap() = s;
        }),
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            *e2.lock().unwrap() = s;
        }),
    ];
    let mut status = None;
    let p2 = peak.clone();
    let l2 = l.clone();
    wait_until::<A>(
        "the client process finished",
        Duration::from_secs(120),
        || {
            p2.fetch_max(l2.connection_count(), Ordering::SeqCst);
            status = child.try_wait().ok().flatten();
            status.is_some()
        },
    )
    .await;
    // The pipes closed with the process: the readers end at once. Wait for them, or the
    // output may not be stored yet (an empty "client output" under load).
    for r in readers {
        let _ = r.join();
    }
    let output = output.lock().unwrap().clone();
    assert!(
        output.contains(&format!("ANSWERED {N} WRONG 0")),
        "client process {status:?}; stdout: {output}; stderr: {}",
        errors.lock().unwrap()
    );
    let peak = peak.load(Ordering::SeqCst);
    figure(
        "10k",
        format!(
            "{N} concurrent connections answered in {:?}; peak {peak} accepted sockets open at once; {} accepted in all",
            start.elapsed(),
            logs.len()
        ),
    );
    assert_eq!(logs.len(), N);
    assert!(
        peak >= N * 9 / 10,
        "connections were not concurrent (peak {peak})"
    );
    l.stop(true);
}

pub async fn hundred_thousand_connect_close_cycles<A: Adapter>() {
    const CYCLES: usize = 100_000;
    const IN_FLIGHT: usize = 64;
    crate::raise_fd_limit(4096);
    let (l, _logs) = {
        let l = A::listen(
            ListenOptions::tcp("127.0.0.1", 0).data_with(|| Arc::new(Log::default())),
            quiet(),
        )
        .await
        .unwrap();
        (l, ())
    };
    let port = port_of(&l);
    // Warm up (runtime threads, buffers), then measure.
    let run = |cycles: usize| async move {
        let done = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        for _ in 0..IN_FLIGHT {
            let (done, started) = (done.clone(), started.clone());
            A::spawn(async move {
                while started.fetch_add(1, Ordering::SeqCst) < cycles {
                    let d2 = done.clone();
                    let handler = recorder(move |ev, s| match ev {
                        Ev::Open => s.close(),
                        Ev::Close(_) => {
                            d2.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => {}
                    });
                    let (h, _) = client::<A>(port, handler).await;
                    while !h.is_closed() {
                        A::sleep(Duration::from_millis(1)).await;
                    }
                }
            });
        }
        wait_until::<A>("all cycles done", Duration::from_secs(240), || {
            done.load(Ordering::SeqCst) >= cycles
        })
        .await;
    };
    run(2_000).await;
    wait_until::<A>("server sockets closed", Duration::from_secs(10), || {
        l.connection_count() == 0
    })
    .await;
    let fds_before = settle_fds::<A>(0).await;
    let rss_before = rss_kib();
    let start = Instant::now();
    run(CYCLES).await;
    let elapsed = start.elapsed();
    wait_until::<A>("server sockets closed", Duration::from_secs(10), || {
        l.connection_count() == 0
    })
    .await;
    let fds_after = settle_fds::<A>(fds_before).await;
    let rss_after = rss_kib();
    figure(
        "100k-cycles",
        format!(
            "{CYCLES} connect/close cycles ({IN_FLIGHT} in flight) in {elapsed:?} ({:.0}/s); descriptors {fds_before} -> {fds_after}; RSS {rss_before} -> {rss_after} KiB",
            CYCLES as f64 / elapsed.as_secs_f64()
        ),
    );
    assert_eq!(fds_after, fds_before, "descriptor leak");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "memory grew by more than 16 MiB over {CYCLES} cycles"
    );
    l.stop(true);
}

pub async fn slow_reader_memory_is_bounded<A: Adapter>() {
    const HWM: usize = 256 * 1024;
    let keep_writing = Arc::new(AtomicBool::new(true));
    let refused = Arc::new(AtomicU64::new(0));
    let (k2, r2) = (keep_writing.clone(), refused.clone());
    let chunk = Arc::new(vec![7u8; 64 * 1024]);
    let l = A::listen(
        ListenOptions::tcp("127.0.0.1", 0)
            .high_water_mark(HWM)
            .data_with(|| Arc::new(Log::default())),
        recorder(move |ev, s| {
            if matches!(ev, Ev::Open | Ev::Drain) {
                // Whatever a Bun-style writer does, the socket holds at most the high-water mark.
                while k2.load(Ordering::SeqCst) {
                    if s.try_write(&chunk).unwrap() < chunk.len() {
                        r2.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                }
            }
        }),
    )
    .await
    .unwrap();
    let rss_before = rss_kib();
    // The slow reader: reads 4 KiB every 10 ms.
    let stream = TcpStream::connect(("127.0.0.1", port_of(&l))).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = stream;
        let mut buf = [0u8; 4096];
        let mut total = 0;
        for _ in 0..100 {
            total += s.read(&mut buf).unwrap_or(0);
            std::thread::sleep(Duration::from_millis(10));
        }
        total
    });
    let mut max_buffered = 0;
    while !reader.is_finished() {
        for s in l.sockets() {
            max_buffered = max_buffered.max(s.buffered_amount());
        }
        A::sleep(Duration::from_millis(5)).await;
    }
    let read = reader.join().unwrap();
    let rss_after = rss_kib();
    keep_writing.store(false, Ordering::SeqCst);
    figure(
        "slow-reader",
        format!(
            "reader took {read} bytes in ~1 s; server socket buffered at most {max_buffered} bytes (high-water mark {HWM}); refused writes {}; RSS {rss_before} -> {rss_after} KiB",
            refused.load(Ordering::SeqCst)
        ),
    );
    assert!(max_buffered <= HWM);
    assert!(refused.load(Ordering::SeqCst) >= 1);
    assert!(
        rss_after < rss_before + 8 * 1024,
        "memory grew by more than 8 MiB for one slow reader"
    );
    l.stop(true);
}

pub async fn resets_mid_transfer_both_ways<A: Adapter>() {
    let fds_before = open_fds();
    let data = Arc::new(vec![1u8; 1 << 20]);
    let d2 = data.clone();
    let logs = Logs::new();
    let l = A::listen(
        ListenOptions::tcp("127.0.0.1", 0).data_with(logs.factory()),
        recorder(move |ev, s| {
            if matches!(ev, Ev::Open | Ev::Drain) {
                while s.try_write(&d2).unwrap_or(0) == d2.len() {}
            }
            if let Ev::Data(b) = ev {
                if b.starts_with(b"reset") {
                    s.terminate();
                }
            }
        }),
    )
    .await
    .unwrap();
    let port = port_of(&l);
    // A bystander that must be unaffected.
    let (bystander, blog) = {
        let log = Arc::new(Log::default());
        let h = A::connect(
            ConnectOptions::tcp("127.0.0.1", port).data(log.clone()),
            quiet(),
        )
        .await
        .unwrap();
        (h, log)
    };
    // 1. The client resets while the server streams to it.
    let log1 = Arc::new(Log::default());
    let c1 = A::connect(
        ConnectOptions::tcp("127.0.0.1", port).data(log1.clone()),
        quiet(),
    )
    .await
    .unwrap();
    wait_until::<A>("streaming started", Duration::from_secs(10), || {
        log1.received_len() > 100_000
    })
    .await;
    c1.terminate();
    wait_until::<A>("server saw the reset", Duration::from_secs(10), || {
        logs.get(1).is_some_and(|l| l.is_closed())
    })
    .await;
    let server_close = logs.get(1).unwrap().close_error().unwrap();
    assert!(
        matches!(
            server_close,
            Some(CloseError::Reset) | Some(CloseError::BrokenPipe)
        ),
        "server close error: {server_close:?}"
    );
    // 2. The server resets while the client streams to it.
    let log2 = Arc::new(Log::default());
    let c2 = A::connect(
        ConnectOptions::tcp("127.0.0.1", port).data(log2.clone()),
        recorder(|ev, s| {
            if let Ev::Open = ev {
                s.write(b"reset please").unwrap();
            }
        }),
    )
    .await
    .unwrap();
    wait_until::<A>("client saw the reset", Duration::from_secs(10), || {
        log2.is_closed()
    })
    .await;
    assert_eq!(log2.close_error(), Some(Some(CloseError::Reset)));
    let _ = c2;
    assert!(
        !blog.is_closed() && !bystander.is_closed(),
        "the bystander was affected"
    );
    assert!(blog.received_len() > 0);
    bystander.terminate();
    l.stop(true);
    wait_until::<A>("bystander closed", Duration::from_secs(10), || {
        blog.is_closed()
    })
    .await;
    let fds_after = settle_fds::<A>(fds_before).await;
    figure("resets", format!("reset both ways mid-transfer; close errors {server_close:?} / Reset; descriptors {fds_before} -> {fds_after}"));
    assert_eq!(fds_after, fds_before, "descriptor leak after resets");
}

pub async fn descriptor_exhaustion_backs_off_and_recovers<A: Adapter>() {
    let l = A::listen(
        ListenOptions::tcp("127.0.0.1", 0).data_with(|| Arc::new(Log::default())),
        echo(),
    )
    .await
    .unwrap();
    let port = port_of(&l);
    // One client served before the limit drops.
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    first.write_all(b"before").unwrap();
    let mut buf = [0u8; 6];
    first.read_exact(&mut buf).unwrap();
    let retries_before = accept_failures::exhaustion_retries();
    // Descriptors held back, to connect with once the table is full.
    let reserve: Vec<_> = (0..4)
        .map(|_| std::fs::File::open("/dev/null").unwrap())
        .collect();
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
    let base = open_fds() as u64;
    let window = Instant::now();
    rlimit::Resource::NOFILE.set(base + 24, hard).unwrap();
    // Fill the table: clients take descriptors until none is left; the server's accepts then
    // fail with EMFILE.
    let mut clients = Vec::new();
    while let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
        clients.push(c);
        if clients.len() > 64 {
            break;
        }
    }
    // Each freed descriptor goes to one more client at once: its connection waits in the
    // backlog, and the server has no descriptor to accept it with.
    for spare in reserve {
        drop(spare);
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
            clients.push(c);
        }
    }
    A::sleep(Duration::from_millis(200)).await;
    let served_at_limit = l.connection_count();
    // Every failed accept waits at least 5 ms before the next: at most one per 5 ms (and one
    // more at the start). A loop that spins retries thousands of times in this window; a
    // slow machine only retries less.
    let retries = accept_failures::exhaustion_retries() - retries_before;
    let window = window.elapsed();
    let most = window.as_millis() as usize / 5 + 1;
    // The socket accepted before still works.
    first.write_all(b"during").unwrap();
    let echoed = first.read_exact(&mut buf).is_ok() && &buf == b"during";
    // Free descriptors: the listener accepts again.
    let waiting = clients.len();
    clients.clear();
    rlimit::Resource::NOFILE.set(soft, hard).unwrap();
    let mut late = TcpStream::connect(("127.0.0.1", port)).unwrap();
    late.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    late.write_all(b"after!").unwrap();
    late.read_exact(&mut buf).unwrap();
    figure(
        "fd-exhaustion",
        format!(
            "limit lowered to {} descriptors: {waiting} clients connected, {served_at_limit} accepted at the limit, {retries} failed accepts in {window:?} (back-off allows at most {most}); the live socket echoed during exhaustion: {echoed}; after freeing, a new client was served",
            base + 24
        ),
    );
    assert!(
        retries >= 1,
        "the accept loop never hit the descriptor limit: the scenario tested nothing"
    );
    assert!(
        retries <= most,
        "the accept loop did not back off: {retries} failed accepts in {window:?}"
    );
    assert!(
        echoed,
        "the live socket stopped working at the descriptor limit"
    );
    assert_eq!(&buf, b"after!");
    l.stop(true);
}

pub async fn silent_peer_is_noticed<A: Adapter>() {
    let timed_out = Arc::new(AtomicUsize::new(0));
    let t2 = timed_out.clone();
    let logs = Logs::new();
    let l = A::listen(
        ListenOptions::tcp("127.0.0.1", 0).data_with(logs.factory()),
        recorder(move |ev, s| match ev {
            Ev::Open => {
                s.set_timeout(Duration::from_millis(300));
                s.set_keepalive(Some(Duration::from_secs(5)));
            }
            Ev::Timeout => {
                t2.fetch_add(1, Ordering::SeqCst);
                s.close();
            }
            _ => {}
        }),
    )
    .await
    .unwrap();
    let silent = TcpStream::connect(("127.0.0.1", port_of(&l))).unwrap();
    wait_until::<A>("accepted", Duration::from_secs(5), || logs.len() == 1).await;
    // Keep-alive is armed on the server socket (visible to `ss` as a keepalive timer).
    A::sleep(Duration::from_millis(50)).await;
    let keepalive = Command::new("ss")
        .args([
            "-tnoH",
            "state",
            "established",
            "sport",
            "=",
            &format!(":{}", port_of(&l)),
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("keepalive"))
        .ok();
    let slog = logs.get(0).unwrap();
    wait_until::<A>(
        "the idle timeout closed the silent peer",
        Duration::from_secs(5),
        || slog.is_closed(),
    )
    .await;
    drop(silent);
    figure("silent-peer", format!("idle timeout fired {} time(s) and the handler closed the socket; keep-alive timer seen by ss: {keepalive:?}", timed_out.load(Ordering::SeqCst)));
    assert_eq!(timed_out.load(Ordering::SeqCst), 1);
    if let Some(seen) = keepalive {
        assert!(seen, "SO_KEEPALIVE was not applied");
    }
    l.stop(true);
}

pub async fn stop_true_under_load_closes_each_once<A: Adapter>() {
    const N: usize = 1000;
    crate::raise_fd_limit(4 * N as u64 + 256);
    let closes = Arc::new(AtomicUsize::new(0));
    let c2 = closes.clone();
    let chunk = Arc::new(vec![5u8; 16 * 1024]);
    let logs = Logs::new();
    let l = A::listen(
        ListenOptions::tcp("127.0.0.1", 0)
            .backlog(2048)
            .data_with(logs.factory()),
        recorder(move |ev, s| match ev {
            // Busy: every request gets a 16 KiB answer, and the client asks again at once.
            Ev::Data(_) => {
                s.write(&chunk).ok();
            }
            Ev::Close(_) => {
                c2.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }),
    )
    .await
    .unwrap();
    let mut clients = Vec::new();
    for _ in 0..N {
        let log = Arc::new(Log::default());
        let h = A::connect(
            ConnectOptions::tcp("127.0.0.1", port_of(&l)).data(log.clone()),
            recorder(|ev, s| {
                if matches!(ev, Ev::Open | Ev::Data(_)) {
                    s.write(b"busy").ok();
                }
            }),
        )
        .await
        .unwrap();
        clients.push((h, log));
    }
    wait_until::<A>("all accepted", Duration::from_secs(30), || {
        l.connection_count() == N
    })
    .await;
    let start = Instant::now();
    l.stop(true);
    let returned_in = start.elapsed();
    wait_until::<A>(
        "every server socket closed",
        Duration::from_secs(60),
        || closes.load(Ordering::SeqCst) >= N,
    )
    .await;
    let all_closed_in = start.elapsed();
    A::sleep(Duration::from_millis(100)).await;
    for log in logs.all() {
        log.assert_well_ordered();
        assert_eq!(log.count("close"), 1);
    }
    wait_until::<A>("clients closed", Duration::from_secs(30), || {
        clients.iter().all(|(_, l)| l.is_closed())
    })
    .await;
    figure("stop-under-load", format!("stop(true) with {N} busy sockets returned in {returned_in:?}; all {} closed exactly once within {all_closed_in:?}", closes.load(Ordering::SeqCst)));
    assert_eq!(closes.load(Ordering::SeqCst), N);
}

pub async fn bad_tls_input_and_slowloris<A: Adapter>() {
    const SILENT: usize = 1000;
    crate::raise_fd_limit(3 * SILENT as u64 + 256);
    let logs = Logs::new();
    let tls = ServerTlsOptions::new(
        pki().server.key_pem.as_str(),
        pki().server.cert_pem.as_str(),
    )
    .handshake_timeout(Duration::from_millis(500));
    let l = A::listen(
        ListenOptions::tcp("127.0.0.1", 0)
            .tls(tls)
            .data_with(logs.factory()),
        echo(),
    )
    .await
    .unwrap();
    let port = port_of(&l);
    let fds_before = open_fds();
    // Garbage, a truncated record, an oversized record header.
    let inputs: [&[u8]; 3] = [
        b"\x00\x01garbage that is not TLS at all\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"\x17\x03\x03\xff\xff",
    ];
    for input in inputs {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(input).unwrap();
        drop(s);
    }
    // Slowloris: many connections that send nothing.
    let silent: Vec<_> = (0..SILENT)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let start = Instant::now();
    wait_until::<A>(
        "every bad or silent socket cleared",
        Duration::from_secs(30),
        || logs.len() == SILENT + 3 && l.connection_count() == 0,
    )
    .await;
    let cleared_in = start.elapsed();
    for log in logs.all() {
        assert_eq!(log.trace(), ["open", "handshake", "close"]);
    }
    drop(silent);
    // Plain bytes to a TLS client.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = plain.accept() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nnot tls");
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let clog = Arc::new(Log::default());
    let _c = A::connect(
        ConnectOptions::tcp("127.0.0.1", plain_port)
            .tls(
                ClientTlsOptions::new()
                    .ca(pki().ca_pem.as_str())
                    .server_name("localhost"),
            )
            .data(clog.clone()),
        quiet(),
    )
    .await
    .unwrap();
    wait_until::<A>("the TLS client gave up", Duration::from_secs(10), || {
        clog.is_closed()
    })
    .await;
    assert_eq!(clog.trace(), ["open", "handshake", "close"]);
    // A good client is still served.
    let good = Arc::new(Log::default());
    let g = A::connect(
        ConnectOptions::tcp("localhost", port)
            .tls(ClientTlsOptions::new().ca(pki().ca_pem.as_str()))
            .data(good.clone()),
        recorder(|ev, s| {
            if let Ev::Open = ev {
                s.write(b"still fine").unwrap();
            }
        }),
    )
    .await
    .unwrap();
    wait_until::<A>("good client served", Duration::from_secs(10), || {
        good.received() == b"still fine"
    })
    .await;
    g.close();
    wait_until::<A>("good client closed", Duration::from_secs(10), || {
        good.is_closed()
    })
    .await;
    l.stop(true);
    let fds_after = settle_fds::<A>(fds_before).await;
    figure("bad-tls-input", format!("garbage, truncated and oversized records each failed their handshake; {SILENT} silent connections cleared by the 500 ms handshake timeout in {cleared_in:?}; plain bytes to a TLS client: handshake(false) and close; descriptors {fds_before} -> {fds_after}"));
    assert!(fds_after <= fds_before);
}

/// Expands the reliability scenarios into tests for `$adapter`; `$binary_test` is the name
/// of the test that doubles as the client process for the 10k scenario.
#[macro_export]
macro_rules! reliability_tests {
    ($adapter:ty) => {
        #[test]
        fn ten_thousand_concurrent_connections() {
            if ::std::env::var("SANSOCK_RELIABILITY_TARGET").is_ok() {
                return $crate::reliability::client_process_main::<$adapter>();
            }
            let _serial = $crate::reliability::serial();
            $crate::run_with_timeout::<$adapter, _>(
                ::std::time::Duration::from_secs(180),
                $crate::reliability::ten_thousand_concurrent_connections::<$adapter>("ten_thousand_concurrent_connections"),
            );
        }
        $crate::reliability_tests!(@each $adapter;
            hundred_thousand_connect_close_cycles,
            slow_reader_memory_is_bounded,
            resets_mid_transfer_both_ways,
            descriptor_exhaustion_backs_off_and_recovers,
            silent_peer_is_noticed,
            stop_true_under_load_closes_each_once,
            bad_tls_input_and_slowloris,
        );
    };
    (@each $adapter:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if ::std::env::var("SANSOCK_RELIABILITY_TARGET").is_ok() {
                    return;
                }
                let _serial = $crate::reliability::serial();
                $crate::run_with_timeout::<$adapter, _>(
                    ::std::time::Duration::from_secs(300),
                    $crate::reliability::$name::<$adapter>(),
                );
            }
        )*
    };
}
