//! The fuzz targets' drivers: raw bytes -> operations ([`arbitrary`]) -> the simulated link
//! or a sink, with the invariant checks of `sansock_core::sim` after every operation.
//!
//! This file is the library of the `sansock-fuzz` crate (used by `fuzz_targets/*.rs`) and is
//! also compiled into the main workspace's tests by `core/tests/fuzz_corpus.rs`, which replays
//! `fuzz/corpus/` and `fuzz/regressions/` through the same functions on stable, without
//! libFuzzer. So it may only use `sansock_core` (with `sim`), `arbitrary` and `std`, and it
//! holds no check of its own: every invariant lives in `sansock_core::sim`.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use sansock_core::sim::{self, sim_write, Pair, PairConfig, Seen, Side, SimHandler, SinkModel};
use sansock_core::{ConnectionConfig, Sink, DEFAULT_HIGH_WATER_MARK};

/// Operations per input; the rest is ignored. Bounds the work per input (about a millisecond
/// under ASan, far less in the replay test).
pub const MAX_OPS: usize = 64;

/// Most bytes one write operation offers.
pub const MAX_WRITE: usize = 2048;

/// Most bytes the writes of one side offer over a whole input. With the server's echo, at
/// most twice this crosses the link in one direction, which a 1-byte link moves in as many
/// rounds: well within `Pair::run`'s 10,000, so a run that does not settle is a real bug.
pub const BYTES_PER_SIDE: usize = 2048;

/// A fuzz target's driver: `Err` (or a panic) is a violation.
pub type Driver = fn(&[u8]) -> Result<(), String>;

/// A fuzz target: its name, the driver the fuzz target calls (stepping around
/// [`KNOWN_BUGS`]), and the faithful driver (no workaround) that regressions are replayed with.
pub struct Target {
    /// The cargo-fuzz target's name (`fuzz_targets/<name>.rs`, `corpus/<name>/`, ...).
    pub name: &'static str,
    /// What the fuzz target runs; the corpus is replayed with it.
    pub run: Driver,
    /// The same without the workarounds for [`KNOWN_BUGS`]; regressions are replayed with it.
    pub run_faithful: Driver,
}

/// Every fuzz target (what the replay test iterates over).
pub const TARGETS: &[Target] = &[
    Target {
        name: "connection",
        run: run_connection,
        run_faithful: run_connection_faithful,
    },
    Target {
        name: "sink",
        run: run_sink,
        run_faithful: run_sink,
    },
    Target {
        name: "config",
        run: run_config,
        run_faithful: run_config,
    },
    Target {
        name: "tls",
        run: run_tls,
        run_faithful: run_tls,
    },
];

fn pki() -> &'static sansock_core::test_certs::TestPki {
    static PKI: std::sync::OnceLock<sansock_core::test_certs::TestPki> = std::sync::OnceLock::new();
    PKI.get_or_init(sansock_core::test_certs::TestPki::generate)
}

/// A server configuration and a client configuration that trusts it (built once).
fn trusted_tls() -> (sansock_core::tls::ServerTls, sansock_core::tls::ClientTls) {
    use sansock_core::tls::{ClientTlsOptions, ServerTlsOptions};
    static TLS: std::sync::OnceLock<(sansock_core::tls::ServerTls, sansock_core::tls::ClientTls)> =
        std::sync::OnceLock::new();
    TLS.get_or_init(|| {
        let server = ServerTlsOptions::new(
            pki().server.key_pem.as_str(),
            pki().server.cert_pem.as_str(),
        )
        .build(&no_files)
        .expect("server configuration");
        let client = ClientTlsOptions::new()
            .ca(pki().ca_pem.as_str())
            .build("localhost", &no_files)
            .expect("client configuration");
        (server, client)
    })
    .clone()
}

fn no_files(_: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::ErrorKind::NotFound.into())
}

/// The `config` target: arbitrary bytes as PEM key, certificate and CA, for the server and
/// client builders. A typed error or a valid configuration; a panic is the failure.
pub fn run_config(data: &[u8]) -> Result<(), String> {
    use sansock_core::tls::{ClientTlsOptions, Pem, ServerTlsOptions};
    let third = data.len() / 3;
    let (key, rest) = data.split_at(third);
    let (cert, ca) = rest.split_at(third);
    let bytes = |b: &[u8]| Pem::Bytes(b.to_vec());
    let _ = ServerTlsOptions::new(bytes(key), bytes(cert)).build(&no_files);
    let _ = ServerTlsOptions::new(pki().server.key_pem.as_str(), bytes(cert)).build(&no_files);
    let _ = ServerTlsOptions::new(bytes(key), pki().server.cert_pem.as_str()).build(&no_files);
    let _ = ServerTlsOptions::new(
        pki().server.key_pem.as_str(),
        pki().server.cert_pem.as_str(),
    )
    .ca(bytes(ca))
    .request_cert(true)
    .build(&no_files);
    let _ = ClientTlsOptions::new()
        .ca(bytes(ca))
        .build("localhost", &no_files);
    let _ = ClientTlsOptions::new()
        .client_cert(bytes(cert), bytes(key))
        .build("localhost", &no_files);
    Ok(())
}

/// The `tls` target: arbitrary bytes into a TLS server's handshake (first byte even) or a TLS
/// client's (odd), delivered in reads of a size taken from the second byte. The TLS end must
/// fail its handshake and close cleanly (or by the handshake timeout), deliver nothing, and
/// keep every event invariant.
pub fn run_tls(data: &[u8]) -> Result<(), String> {
    use sansock_core::tls::{ClientTlsOptions, ServerTlsOptions};
    let (Some(&mode), Some(&chunk)) = (data.first(), data.get(1)) else {
        return Ok(());
    };
    let garbage = data[2..].to_vec();
    let quiet = SimHandler::new(|_, _| {});
    let (mut p, side) = if mode % 2 == 0 {
        let server = ServerTlsOptions::new(
            pki().server.key_pem.as_str(),
            pki().server.cert_pem.as_str(),
        )
        .build(&no_files)
        .map_err(|e| e.to_string())?;
        let sender = SimHandler::new(move |seen, s| {
            if *seen == Seen::Open {
                let _ = sim_write(s, &garbage);
            }
        });
        (
            Pair::with_tls_server_only(server, quiet, sender),
            Side::Server,
        )
    } else {
        let client = ClientTlsOptions::new()
            .ca(pki().ca_pem.as_str())
            .build("localhost", &no_files)
            .map_err(|e| e.to_string())?;
        (
            Pair::with_tls_client_only(client, garbage, quiet),
            Side::Client,
        )
    };
    p.read_chunk = usize::from(chunk).max(1);
    p.run();
    p.advance(std::time::Duration::from_secs(11));
    p.run();
    let end = p.end(side);
    if let Some(v) = &end.log().violation {
        return Err(v.clone());
    }
    if !end.log().received.is_empty() {
        return Err("garbage reached the data handler".to_owned());
    }
    let trace = end.trace();
    if trace != ["open", "handshake", "close"] {
        return Err(format!("unexpected trace {trace:?}"));
    }
    Ok(())
}

/// A core bug found by fuzzing and not fixed yet. The fuzz targets step around it (see
/// [`run_connection`]) so that a campaign goes on finding new bugs; its minimised input in
/// `fuzz/regressions/<target>/<file>` is replayed by `core/tests/fuzz_corpus.rs` with the
/// faithful driver, which must still fail with `symptom`. Once the bug is fixed, that test
/// says so: delete the entry and its workaround.
pub struct KnownBug {
    /// The fuzz target.
    pub target: &'static str,
    /// The regression input's file name in `fuzz/regressions/<target>/`.
    pub file: &'static str,
    /// A substring of the violation the faithful driver reports.
    pub symptom: &'static str,
    /// What is wrong, in one line.
    pub summary: &'static str,
}

/// The open bugs (see [`KnownBug`]).
pub const KNOWN_BUGS: &[KnownBug] = &[
    // None open. Fixed: "end-with-after-shutdown-never-closes" (end_with skipped end() when
    // its write was refused; core/src/socket.rs), kept in regressions/connection/.
];

/// A size from two fuzzer bytes, biased to small values (short reads, tiny buffers): 1..=64,
/// 1..=4096 or 4..=65536 (in steps of 4) depending on the top two bits.
fn size(v: u16) -> usize {
    match v >> 14 {
        0 | 1 => (v & 0x3f) as usize + 1,
        2 => (v & 0xfff) as usize + 1,
        _ => (v & 0x3fff) as usize * 4 + 4,
    }
}

/// A distinct-looking byte for every position of a stream (`side` tags the stream), so
/// reordered, duplicated or lost bytes do not go unnoticed.
fn pattern(side: u64, start: u64, len: usize) -> Vec<u8> {
    (start..start + len as u64)
        .map(|p| {
            ((p | side << 40)
                .wrapping_add(1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                >> 56) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// `connection`: a simulated pair.
// ---------------------------------------------------------------------------------------------

/// One end of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum End {
    /// The accepted end (its handlers come from the listener).
    Server,
    /// The connecting end.
    Client,
}

impl End {
    fn side(self) -> Side {
        match self {
            End::Server => Side::Server,
            End::Client => Side::Client,
        }
    }

    fn index(self) -> usize {
        self.side() as usize
    }
}

/// How the pair starts.
#[derive(Debug, Clone, Arbitrary)]
pub struct Setup {
    /// `allow_half_open` of `[server, client]`.
    pub half_open: [bool; 2],
    /// `end_linger` in milliseconds (taken modulo 1000).
    pub linger_ms: [u16; 2],
    /// High-water marks: 0 is the default (256 KiB), anything else goes through [`size`].
    pub hwm: [u16; 2],
    /// The link's capacity per direction, read chunk and write chunk (through [`size`]; 0
    /// keeps the simulation's default).
    pub link: [u16; 3],
    /// The server echoes what it receives.
    pub server_echoes: bool,
    /// The pair speaks TLS (a trusted certificate, so the handshake succeeds) instead of TCP.
    pub tls: bool,
}

/// One adapter input or user operation.
#[derive(Debug, Clone, Arbitrary)]
pub enum ConnOp {
    /// `write` of these bytes from outside the handlers (`SimEnd::write`).
    Write(End, Vec<u8>),
    /// `write` of `len % MAX_WRITE` pattern bytes.
    WritePattern(End, u16),
    /// `write_bytes` of `len % MAX_WRITE` pattern bytes (large chunks are queued uncopied).
    WriteBytes(End, u16),
    /// `end_with` these bytes.
    EndWith(End, Vec<u8>),
    /// `end()`.
    End(End),
    /// `shutdown()`.
    Shutdown(End),
    /// `close()`.
    Close(End),
    /// `terminate()`.
    Terminate(End),
    /// `pause()`.
    Pause(End),
    /// `resume()`.
    Resume(End),
    /// `set_timeout` of `ms % 64` milliseconds (0 disarms).
    SetTimeout(End, u8),
    /// Moves the clock `ms % 1024` milliseconds.
    Advance(u16),
    /// Moves the clock a minute (past every linger).
    AdvanceLong,
    /// The link resets towards this end after what is in flight.
    InjectReset(End),
    /// The listener's `stop(close_active)`.
    StopListener(bool),
    /// The listener's `reload` with an echoing (`true`) or quiet handler.
    Reload(bool),
    /// Changes the link's capacity per direction (through [`size`]).
    SetCapacity(u16),
    /// Changes the most bytes one read returns (short reads).
    SetReadChunk(u16),
    /// Changes the most bytes one vectored write takes (partial writes).
    SetWriteChunk(u16),
    /// `set_nodelay` (an option for the adapter to apply).
    SetNoDelay(End, bool),
    /// Both ends until nothing changes (`Pair::run`).
    Run,
    /// One IO-loop turn of one end (`Pair::step`).
    Step(End),
}

/// A whole `connection` input.
#[derive(Debug, Clone, Arbitrary)]
pub struct ConnectionInput {
    /// How the pair starts.
    pub setup: Setup,
    /// What happens, in order (at most [`MAX_OPS`] are used).
    pub ops: Vec<ConnOp>,
}

fn handler(echo: bool) -> std::sync::Arc<SimHandler> {
    SimHandler::new(move |seen, s| {
        if let (true, Seen::Data(bytes)) = (echo, seen) {
            let _ = sim_write(s, bytes);
        }
    })
}

/// The `connection` target: decodes `data` and runs it, stepping around [`KNOWN_BUGS`]:
/// `EndWith` on a socket that no longer accepts writes is run as `end()`, which is what
/// `end_with` should do there.
pub fn run_connection(data: &[u8]) -> Result<(), String> {
    match ConnectionInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => run_connection_input(&input, true),
        Err(_) => Ok(()),
    }
}

/// [`run_connection`] without the workarounds.
pub fn run_connection_faithful(data: &[u8]) -> Result<(), String> {
    match ConnectionInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => run_connection_input(&input, false),
        Err(_) => Ok(()),
    }
}

/// Drives a pair through `input`, checking `Pair::check` after every operation and
/// `Pair::check_settled` once everything is over. `workarounds` steps around [`KNOWN_BUGS`].
pub fn run_connection_input(input: &ConnectionInput, workarounds: bool) -> Result<(), String> {
    let setup = &input.setup;
    let config = |i: usize| {
        let hwm = match setup.hwm[i] {
            0 => DEFAULT_HIGH_WATER_MARK,
            v => size(v),
        };
        ConnectionConfig::default()
            .allow_half_open(setup.half_open[i])
            .end_linger(Duration::from_millis(u64::from(setup.linger_ms[i] % 1000)))
            .high_water_mark(hwm)
    };
    let mut p = Pair::with_tls(
        PairConfig {
            server: config(0),
            client: config(1),
        },
        setup.tls.then(trusted_tls),
        handler(setup.server_echoes),
        handler(false),
    );
    let [capacity, read_chunk, write_chunk] = setup.link;
    if capacity != 0 {
        p.capacity = size(capacity);
    }
    if read_chunk != 0 {
        p.read_chunk = size(read_chunk);
    }
    if write_chunk != 0 {
        p.write_chunk = size(write_chunk);
    }
    // Bytes offered so far per side (the budget) and the pattern position per side.
    let mut offered = [0usize; 2];
    let ops = &input.ops[..input.ops.len().min(MAX_OPS)];
    for (n, op) in ops.iter().enumerate() {
        apply(&mut p, op, &mut offered, workarounds);
        p.check()
            .map_err(|e| format!("after op #{n} {op:?}: {e}\nsetup {setup:?}\nops {ops:?}"))?;
    }
    p.finish(10_000);
    p.check_settled()
        .map_err(|e| format!("once settled: {e}\nsetup {setup:?}\nops {ops:?}"))
}

/// Cuts a write to the side's remaining budget.
fn budget(offered: &mut [usize; 2], end: End, want: usize) -> usize {
    let i = end.index();
    let n = want.min(MAX_WRITE).min(BYTES_PER_SIDE - offered[i]);
    offered[i] += n;
    n
}

fn apply(p: &mut Pair, op: &ConnOp, offered: &mut [usize; 2], _workarounds: bool) {
    match *op {
        ConnOp::Write(end, ref bytes) => {
            let n = budget(offered, end, bytes.len());
            let _ = p.end(end.side()).write(&bytes[..n]);
        }
        ConnOp::WritePattern(end, len) | ConnOp::WriteBytes(end, len) => {
            let start = offered[end.index()] as u64;
            let n = budget(offered, end, usize::from(len) % MAX_WRITE);
            let bytes = pattern(end.index() as u64, start, n);
            // `write` (Bun's try-write in the sim) and `write_bytes` (all or nothing).
            match op {
                ConnOp::WritePattern(..) => drop(p.end(end.side()).write(&bytes)),
                _ => drop(p.end(end.side()).write_bytes(&bytes)),
            }
        }
        ConnOp::EndWith(end, ref bytes) => {
            let n = budget(offered, end, bytes.len());
            let _ = p.end_side_with(end.side(), &bytes[..n]);
        }
        ConnOp::End(end) => p.end_side(end.side()),
        ConnOp::Shutdown(end) => p.shutdown_side(end.side()),
        ConnOp::Close(end) => p.close_side(end.side()),
        ConnOp::Terminate(end) => p.terminate_side(end.side()),
        ConnOp::Pause(end) => p.end(end.side()).handle().pause(),
        ConnOp::Resume(end) => p.end(end.side()).handle().resume(),
        ConnOp::SetTimeout(end, ms) => {
            p.set_timeout_side(end.side(), Duration::from_millis(u64::from(ms % 64)))
        }
        ConnOp::Advance(ms) => p.advance(Duration::from_millis(u64::from(ms % 1024))),
        ConnOp::AdvanceLong => p.advance(Duration::from_secs(60)),
        ConnOp::InjectReset(end) => p.inject_reset(end.side()),
        ConnOp::StopListener(close_active) => p.stop_listener(close_active),
        ConnOp::Reload(echo) => p.listener.reload(handler(echo)),
        ConnOp::SetCapacity(v) => p.capacity = size(v),
        ConnOp::SetReadChunk(v) => p.read_chunk = size(v),
        ConnOp::SetWriteChunk(v) => p.write_chunk = size(v),
        ConnOp::SetNoDelay(end, on) => p.end(end.side()).handle().set_nodelay(on),
        ConnOp::Run => {
            p.run();
        }
        ConnOp::Step(end) => {
            p.step(end.index());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `sink`: a sink against a Vec<u8> model.
// ---------------------------------------------------------------------------------------------

/// One sink operation.
#[derive(Debug, Clone, Arbitrary)]
pub enum SinkFuzzOp {
    /// `write` of these bytes.
    Write(Vec<u8>),
    /// `write` of `len % 4096` pattern bytes.
    WritePattern(u16),
    /// `write_bytes` of these bytes.
    WriteBytes(Vec<u8>),
    /// `write_bytes` of `len % 4096` pattern bytes (at least 512 are queued uncopied).
    WriteBytesPattern(u16),
    /// `consume(n % 8192)`.
    Consume(u16),
    /// `take_all()`.
    TakeAll,
    /// `clear()`.
    Clear,
    /// `shrink()`.
    Shrink,
    /// `set_high_water_mark` (through [`size`]).
    SetHighWaterMark(u16),
}

/// A whole `sink` input.
#[derive(Debug, Clone, Arbitrary)]
pub struct SinkInput {
    /// The initial high-water mark (through [`size`]).
    pub hwm: u16,
    /// What happens, in order (at most [`MAX_OPS`] are used).
    pub ops: Vec<SinkFuzzOp>,
}

/// The `sink` target: decodes `data` and runs it.
pub fn run_sink(data: &[u8]) -> Result<(), String> {
    match SinkInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => run_sink_input(&input),
        Err(_) => Ok(()),
    }
}

/// Applies `input` to a sink and a `sim::SinkModel` with `sim::apply_sink_op`, which checks
/// them against each other after every operation.
pub fn run_sink_input(input: &SinkInput) -> Result<(), String> {
    let hwm = size(input.hwm);
    let mut sink = Sink::with_high_water_mark(hwm);
    let mut model = SinkModel::new(hwm);
    sim::check_sink_against_model(&sink, &model).map_err(|e| format!("new sink: {e}"))?;
    let mut position = 0u64;
    let ops = &input.ops[..input.ops.len().min(MAX_OPS)];
    for (n, fuzz_op) in ops.iter().enumerate() {
        let mut pattern_of = |len: u16| {
            let len = usize::from(len) % 4096;
            let bytes = pattern(0, position, len);
            position += len as u64;
            bytes
        };
        let op = match *fuzz_op {
            SinkFuzzOp::Write(ref bytes) => sim::SinkOp::Write(bytes.clone()),
            SinkFuzzOp::WritePattern(len) => sim::SinkOp::Write(pattern_of(len)),
            SinkFuzzOp::WriteBytes(ref bytes) => sim::SinkOp::WriteBytes(bytes.clone()),
            SinkFuzzOp::WriteBytesPattern(len) => sim::SinkOp::WriteBytes(pattern_of(len)),
            SinkFuzzOp::Consume(k) => sim::SinkOp::Consume(usize::from(k) % 8192),
            SinkFuzzOp::TakeAll => sim::SinkOp::TakeAll,
            SinkFuzzOp::Clear => sim::SinkOp::Clear,
            SinkFuzzOp::Shrink => sim::SinkOp::Shrink,
            SinkFuzzOp::SetHighWaterMark(v) => sim::SinkOp::SetHighWaterMark(size(v)),
        };
        sim::apply_sink_op(&mut sink, &mut model, &op)
            .map_err(|e| format!("after op #{n} {op:?}: {e}\nhwm {hwm}\nops {ops:?}"))?;
    }
    Ok(())
}
