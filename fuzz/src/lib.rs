//! The fuzz targets' drivers: raw bytes -> operations ([`arbitrary`]) -> the simulated link
//! or a sink, with the invariant checks of `sansock_core::sim` after every operation.
//!
//! This file is the library of the `sansock-fuzz` crate (used by `fuzz_targets/*.rs`) and is
//! also compiled into the main workspace's tests by `core/tests/fuzz_corpus.rs`, which replays
//! `fuzz/corpus/` and `fuzz/regressions/` through the same functions on stable, without
//! libFuzzer. So it may only use `sansock_core` (with `sim`), `rustls` (a dependency of
//! `sansock_core`, so the replay test has it too), `arbitrary` and `std`. It holds no check of
//! its own, except in `tls_session`, whose peer is rustls rather than a second sansock end (so
//! `Pair::check`'s byte rules, written for two sansock ends, do not apply): every other
//! invariant lives in `sansock_core::sim`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use sansock_core::sim::{
    self, sim_write, sim_write_all, Pair, PairConfig, Seen, Side, SimHandler, SinkModel,
};
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
    Target {
        name: "tls_session",
        run: run_tls_session,
        run_faithful: run_tls_session_faithful,
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
    // Fixed: "bad-record-after-own-close-notify-trips-rustls-debug-assert" (rustls 0.23 sends a
    // fatal alert after our close_notify and debug-asserts it never does, rustls/rustls#959;
    // core/src/tls/session.rs contains the panic and fails the session), kept in
    // regressions/tls_session/.
    // Fixed: "end-with-after-shutdown-never-closes" (end_with skipped end() when its write
    // was refused; core/src/socket.rs), kept in regressions/connection/.
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

// ---------------------------------------------------------------------------------------------
// `tls_session`: past the handshake, against a scripted rustls peer.
// ---------------------------------------------------------------------------------------------

/// How a `tls_session` pair starts.
#[derive(Debug, Clone, Arbitrary)]
pub struct SessionSetup {
    /// The sansock end is the client (the peer is a rustls server) instead of the server.
    pub sansock_client: bool,
    /// The peer speaks TLS 1.2 only instead of TLS 1.3 only.
    pub tls12: bool,
    /// The sansock end echoes what it receives.
    pub echo: bool,
    /// The link's read chunk (through [`size`]; 0 keeps the simulation's default).
    pub read_chunk: u16,
}

/// A TLS record content type (the outer one of a raw record, the inner one of a forged one).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum RecordType {
    /// 20
    ChangeCipherSpec,
    /// 21
    Alert,
    /// 22
    Handshake,
    /// 23
    ApplicationData,
    /// 24
    Heartbeat,
    /// Anything (0 as a forged record's inner type: its payload's trailing zeros are
    /// padding, and its last non-zero byte becomes the type).
    Other(u8),
}

impl RecordType {
    fn byte(self) -> u8 {
        match self {
            RecordType::ChangeCipherSpec => 20,
            RecordType::Alert => 21,
            RecordType::Handshake => 22,
            RecordType::ApplicationData => 23,
            RecordType::Heartbeat => 24,
            RecordType::Other(b) => b,
        }
    }
}

/// A record header's version field.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum RecordVersion {
    /// 0x0303, what TLS 1.2 and 1.3 records carry.
    Tls12,
    /// 0x0301, allowed in a first ClientHello.
    Tls10,
    /// Anything.
    Other(u16),
}

impl RecordVersion {
    fn value(self) -> u16 {
        match self {
            RecordVersion::Tls12 => 0x0303,
            RecordVersion::Tls10 => 0x0301,
            RecordVersion::Other(v) => v,
        }
    }
}

/// Which end an operation drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Who {
    /// The sansock TLS end.
    Sansock,
    /// The plain end carrying the rustls peer.
    Peer,
}

/// One `tls_session` operation, after the handshake.
#[derive(Debug, Clone, Arbitrary)]
pub enum SessionOp {
    /// The peer sends these bytes as application data.
    PeerWrite(Vec<u8>),
    /// The peer sends `len % MAX_WRITE` pattern bytes as application data.
    PeerWritePattern(u16),
    /// The sansock end `write`s these bytes.
    Write(Vec<u8>),
    /// The sansock end `write`s `len % MAX_WRITE` pattern bytes.
    WritePattern(u16),
    /// The peer sends close_notify.
    PeerCloseNotify,
    /// The peer sends a KeyUpdate asking for one back (TLS 1.3; nothing on TLS 1.2).
    PeerKeyUpdate,
    /// These bytes are fed to the peer, which fails on them (usually) and sends its fatal
    /// alert, encrypted.
    PeerGarbage(Vec<u8>),
    /// The peer stops being rustls (TLS 1.3 only; nothing on TLS 1.2): with rustls' traffic
    /// secrets it encrypts a record of any inner type and payload, under the right key and
    /// sequence number, so the sansock end decrypts it and has to deal with what is inside
    /// (alerts, handshake messages such as KeyUpdate or NewSessionTicket, application data,
    /// unknown types, padding, empty records). Later peer operations are forged too.
    Forge(RecordType, Vec<u8>),
    /// These bytes on the wire towards the sansock end, as they are.
    Raw(Vec<u8>),
    /// A plaintext record on the wire towards the sansock end: a header with this type,
    /// version and length (the body's if none) and this body.
    Record(RecordType, RecordVersion, Option<u16>, Vec<u8>),
    /// A plaintext alert record (level, description) on the wire.
    PlainAlert(u8, u8),
    /// The peer's output is held back instead of going on the wire.
    Hold,
    /// Up to `size(n)` bytes of the held output go on the wire (a record may be cut).
    Release(u16),
    /// All held output goes on the wire and stops being held.
    ReleaseAll,
    /// XORs a byte of the held output (position modulo its length) with a non-zero value.
    Corrupt(u16, u8),
    /// The held output is dropped (with a partial `Release`, a cut record).
    DropHeld,
    /// The last chunk put on the wire goes again (a replayed record).
    Replay,
    /// The peer's plain end calls `end()`: a FIN without close_notify (after what it wrote).
    PeerEnd,
    /// A bare FIN reaches the sansock end after what is in flight.
    InjectFin,
    /// A reset reaches the sansock end after what is in flight.
    InjectReset,
    /// `pause()` on the sansock end.
    Pause,
    /// `resume()` on the sansock end.
    Resume,
    /// `end()` on the sansock end.
    End,
    /// `shutdown()` on the sansock end.
    Shutdown,
    /// `close()` on the sansock end.
    Close,
    /// `terminate()` on the sansock end.
    Terminate,
    /// Changes the link's read chunk (through [`size`]).
    SetReadChunk(u16),
    /// Moves the clock `ms % 1024` milliseconds.
    Advance(u16),
    /// Moves the clock a minute.
    AdvanceLong,
    /// Both ends until nothing changes.
    Run,
    /// One IO-loop turn of one end.
    Step(Who),
}

/// A whole `tls_session` input.
#[derive(Debug, Clone, Arbitrary)]
pub struct SessionInput {
    /// How the pair starts.
    pub setup: SessionSetup,
    /// What happens after the handshake, in order (at most [`MAX_OPS`] are used).
    pub ops: Vec<SessionOp>,
}

/// The peer's TLS: rustls until a [`SessionOp::Forge`], then a bare record encrypter.
enum PeerTls {
    Rustls(Box<rustls::Connection>),
    Forged {
        encrypter: Box<dyn rustls::crypto::cipher::MessageEncrypter>,
        seq: u64,
    },
    /// Failed, or its secrets could not be taken: it sends nothing more.
    Gone,
}

/// The scripted peer, shared by the plain end's handler and the driver.
struct Peer {
    tls: PeerTls,
    /// Output not on the wire yet.
    held: Vec<u8>,
    /// Output is held back until released.
    hold: bool,
    /// The last chunk put on the wire.
    last: Vec<u8>,
    /// The application data the peer sent before anything that could be its close_notify:
    /// what the sansock end receives must be a prefix of it.
    sent: Vec<u8>,
    /// The peer sent (or forged) close_notify.
    closed: bool,
    /// The plaintext the peer read from the sansock end.
    received: Vec<u8>,
    /// Garbage was fed to the peer: its failures are its own.
    garbage_fed: bool,
    /// The peer failed on the sansock end's records for a reason other than an alert.
    failure: Option<String>,
}

impl Peer {
    /// Feeds ciphertext from the sansock end to the peer, reads the plaintext out, and
    /// collects what the peer answers.
    fn absorb(&mut self, mut bytes: &[u8]) {
        use std::io::Read;
        let mut failed = None;
        if let PeerTls::Rustls(conn) = &mut self.tls {
            while !bytes.is_empty() {
                if !matches!(conn.read_tls(&mut bytes), Ok(n) if n > 0) {
                    break;
                }
                let result = conn.process_new_packets();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.reader().read(&mut buf) {
                    self.received.extend_from_slice(&buf[..n]);
                }
                if let Err(e) = result {
                    failed = Some(e);
                    break;
                }
            }
        }
        self.collect();
        if let Some(e) = failed {
            if !self.garbage_fed && !matches!(e, rustls::Error::AlertReceived(_)) {
                self.failure.get_or_insert_with(|| {
                    format!("the peer failed on the sansock end's records: {e:?}")
                });
            }
            self.tls = PeerTls::Gone;
        }
    }

    /// Moves rustls' pending output to `held`.
    fn collect(&mut self) {
        if let PeerTls::Rustls(conn) = &mut self.tls {
            while conn.wants_write() {
                if !matches!(conn.write_tls(&mut self.held), Ok(n) if n > 0) {
                    break;
                }
            }
        }
    }

    /// What goes on the wire now (nothing while held).
    fn outgoing(&mut self) -> Vec<u8> {
        if self.hold {
            return Vec::new();
        }
        self.release(usize::MAX)
    }

    /// Up to `n` bytes of the held output, to go on the wire.
    fn release(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.held.len());
        let out: Vec<u8> = self.held.drain(..n).collect();
        if !out.is_empty() {
            self.last.clone_from(&out);
        }
        out
    }

    /// Application data from the peer.
    fn write(&mut self, bytes: &[u8]) {
        use std::io::Write;
        match &mut self.tls {
            PeerTls::Rustls(conn) => {
                if conn.writer().write_all(bytes).is_ok() && !self.closed {
                    self.sent.extend_from_slice(bytes);
                }
            }
            PeerTls::Forged { .. } => self.forge(RecordType::ApplicationData.byte(), bytes),
            PeerTls::Gone => {}
        }
        self.collect();
    }

    fn close_notify(&mut self) {
        match &mut self.tls {
            PeerTls::Rustls(conn) => conn.send_close_notify(),
            PeerTls::Forged { .. } => self.forge(RecordType::Alert.byte(), &[1, 0]),
            PeerTls::Gone => {}
        }
        self.closed = true;
        self.collect();
    }

    fn key_update(&mut self) {
        match &mut self.tls {
            PeerTls::Rustls(conn) => drop(conn.refresh_traffic_keys()),
            // KeyUpdate(update_requested); the forger cannot follow the new keys.
            PeerTls::Forged { .. } => self.forge(RecordType::Handshake.byte(), &[24, 0, 0, 1, 1]),
            PeerTls::Gone => {}
        }
        self.collect();
    }

    /// Turns the peer into a forger (TLS 1.3 only): takes rustls' transmit key and sequence
    /// number once its pending output is collected.
    fn start_forging(&mut self) {
        use rustls::ConnectionTrafficSecrets as S;
        self.collect();
        let PeerTls::Rustls(conn) = std::mem::replace(&mut self.tls, PeerTls::Gone) else {
            // Already forging (put back) or gone.
            return;
        };
        let Some(rustls::SupportedCipherSuite::Tls13(suite)) = conn.negotiated_cipher_suite()
        else {
            self.tls = PeerTls::Rustls(conn);
            return;
        };
        let Ok(secrets) = conn.dangerous_extract_secrets() else {
            return;
        };
        let (
            seq,
            S::Aes128Gcm { key, iv } | S::Aes256Gcm { key, iv } | S::Chacha20Poly1305 { key, iv },
        ) = secrets.tx
        else {
            return;
        };
        self.tls = PeerTls::Forged {
            encrypter: suite.aead_alg.encrypter(key, iv),
            seq,
        };
    }

    /// One encrypted record of inner type `typ` with `payload` (the forger's only output).
    fn forge(&mut self, typ: u8, payload: &[u8]) {
        use rustls::crypto::cipher::{OutboundChunks, OutboundPlainMessage};
        let PeerTls::Forged { encrypter, seq } = &mut self.tls else {
            return;
        };
        let payload = &payload[..payload.len().min(16 * 1024)];
        let message = OutboundPlainMessage {
            typ: rustls::ContentType::from(typ),
            version: rustls::ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(payload),
        };
        let Ok(record) = encrypter.encrypt(message, *seq) else {
            return;
        };
        *seq += 1;
        self.held.extend_from_slice(&record.encode());
        // What the sansock end will find inside: the inner plaintext is the payload and the
        // type byte, and trailing zeros are padding.
        let mut inner = payload.to_vec();
        inner.push(typ);
        while inner.last() == Some(&0) {
            inner.pop();
        }
        match inner.split_last() {
            Some((&23, data)) if !self.closed => self.sent.extend_from_slice(data),
            Some((&21, [_, 0])) => self.closed = true,
            _ => {}
        }
    }
}

/// The rustls peer's configurations: `[TLS 1.3, TLS 1.2]`, trusting the test CA, with secret
/// extraction for [`SessionOp::Forge`]. Built once per process.
fn peer_configs() -> &'static [(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>); 2] {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    static CONFIGS: std::sync::OnceLock<
        [(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>); 2],
    > = std::sync::OnceLock::new();
    CONFIGS.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        [&rustls::version::TLS13, &rustls::version::TLS12].map(|version| {
            let certs = CertificateDer::pem_slice_iter(pki().server.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("test certificate");
            let key =
                PrivateKeyDer::from_pem_slice(pki().server.key_pem.as_bytes()).expect("test key");
            let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[version])
                .expect("a supported version")
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("server configuration");
            server.enable_secret_extraction = true;
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(pki().ca_pem.as_bytes()).expect("test CA"))
                .expect("test CA");
            let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[version])
                .expect("a supported version")
                .with_root_certificates(roots)
                .with_no_client_auth();
            client.enable_secret_extraction = true;
            (Arc::new(server), Arc::new(client))
        })
    })
}

fn lock_peer(peer: &Mutex<Peer>) -> std::sync::MutexGuard<'_, Peer> {
    peer.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `tls_session` input as its setup and operations (for reading a crash).
pub fn describe_tls_session(data: &[u8]) -> String {
    match SessionInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => format!("{input:#?}"),
        Err(e) => format!("not an input: {e}"),
    }
}

/// The `tls_session` target: decodes `data` and runs it, stepping around [`KNOWN_BUGS`]: an
/// operation that may put a broken record on the wire (raw bytes, plaintext records, forged,
/// corrupted, dropped or replayed output) is skipped once the sansock end may have sent its
/// close_notify (its `end`/`shutdown`/`close`, the peer's close_notify or FIN), and those are
/// skipped once such an operation ran.
pub fn run_tls_session(data: &[u8]) -> Result<(), String> {
    match SessionInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => run_tls_session_input(&input, true),
        Err(_) => Ok(()),
    }
}

/// [`run_tls_session`] without the workaround.
pub fn run_tls_session_faithful(data: &[u8]) -> Result<(), String> {
    match SessionInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => run_tls_session_input(&input, false),
        Err(_) => Ok(()),
    }
}

/// A sansock TLS end against a rustls peer on the simulated link: the handshake completes
/// first, then `input`'s operations run. After every operation: no violation recorded by the
/// simulation on either end (event order, `close` at most once and last, the per-turn
/// checks); `bytes_written` counts the accepted bytes; the sansock end received a prefix of
/// the application data the peer sent before its close_notify, and the peer a prefix of what
/// the sansock end accepted; the peer never failed on the sansock end's records except on an
/// alert. Once everything settles, if the stream towards the sansock end stayed intact and the
/// sansock end was left alone, everything was delivered both ways, without an error, and a
/// close_notify closed the sansock end (after `end`).
pub fn run_tls_session_input(input: &SessionInput, workarounds: bool) -> Result<(), String> {
    let setup = &input.setup;
    let (server_config, client_config) = peer_configs()[usize::from(setup.tls12)].clone();
    let echo = setup.echo;
    let sansock_handler = SimHandler::new(move |seen, s| {
        if let (true, Seen::Data(bytes)) = (echo, seen) {
            let _ = sim_write(s, bytes);
        }
    });
    let conn: rustls::Connection = if setup.sansock_client {
        rustls::ServerConnection::new(server_config)
            .map_err(|e| format!("peer: {e}"))?
            .into()
    } else {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a DNS name");
        rustls::ClientConnection::new(client_config, name)
            .map_err(|e| format!("peer: {e}"))?
            .into()
    };
    let peer = Arc::new(Mutex::new(Peer {
        tls: PeerTls::Rustls(Box::new(conn)),
        held: Vec::new(),
        hold: false,
        last: Vec::new(),
        sent: Vec::new(),
        closed: false,
        received: Vec::new(),
        garbage_fed: false,
        failure: None,
    }));
    let relay = {
        let peer = peer.clone();
        SimHandler::new(move |seen, s| {
            let out = {
                let mut peer = lock_peer(&peer);
                match seen {
                    Seen::Open => peer.collect(),
                    Seen::Data(bytes) => peer.absorb(bytes),
                    _ => return,
                }
                peer.outgoing()
            };
            if !out.is_empty() {
                let _ = sim_write_all(s, &out);
            }
        })
    };
    let (mut p, me, plain) = if setup.sansock_client {
        let (_, client) = trusted_tls();
        let p = Pair::with_tls_client_only(client, Vec::new(), sansock_handler);
        // The plain server end becomes the peer's relay before it is opened.
        p.listener.reload(relay);
        (p, Side::Client, Side::Server)
    } else {
        let (server, _) = trusted_tls();
        let p = Pair::with_tls_server_only(server, sansock_handler, relay);
        (p, Side::Server, Side::Client)
    };
    if setup.read_chunk != 0 {
        p.read_chunk = size(setup.read_chunk);
    }
    p.run();
    let handshake_done = matches!(&lock_peer(&peer).tls, PeerTls::Rustls(c) if !c.is_handshaking());
    if !handshake_done
        || !p
            .end(me)
            .log()
            .events
            .contains(&Seen::Handshake(true, None))
    {
        return Err(format!(
            "setup: the handshake did not complete: sansock end {:?}, peer done {handshake_done}\n\
             setup {setup:?}",
            p.end(me).log().events
        ));
    }
    check_session(&p, me, plain, &lock_peer(&peer))
        .map_err(|e| format!("after the handshake: {e}\nsetup {setup:?}"))?;

    let mut offered = [0usize; 2];
    // Something other than the peer's own TLS reached the sansock end's stream.
    let mut tampered = false;
    // The user ended, closed or paused... the sansock end (anything that may stop delivery).
    let mut interfered = false;
    // For the workaround: a broken record may have gone out, and the sansock end may have sent
    // its close_notify.
    let (mut broke, mut closing) = (false, false);
    let ops = &input.ops[..input.ops.len().min(MAX_OPS)];
    for (n, op) in ops.iter().enumerate() {
        if workarounds {
            let breaks = matches!(
                op,
                SessionOp::Raw(_)
                    | SessionOp::Record(..)
                    | SessionOp::PlainAlert(..)
                    | SessionOp::Forge(..)
                    | SessionOp::Corrupt(..)
                    | SessionOp::DropHeld
                    | SessionOp::Replay
            );
            let closes = matches!(
                op,
                SessionOp::End
                    | SessionOp::Shutdown
                    | SessionOp::Close
                    | SessionOp::PeerCloseNotify
                    | SessionOp::PeerEnd
                    | SessionOp::InjectFin
            );
            if (breaks && closing) || (closes && broke) {
                continue;
            }
            broke |= breaks;
            closing |= closes;
        }
        let mut wire = Vec::new();
        {
            let mut pr = lock_peer(&peer);
            let budget = |offered: &mut [usize; 2], who: Who, want: usize| {
                let i = who as usize;
                let n = want.min(MAX_WRITE).min(BYTES_PER_SIDE - offered[i]);
                offered[i] += n;
                n
            };
            // Whatever the peer sends after its close_notify is not a session's normal
            // course (its data must not be delivered: `sent` stops growing).
            tampered |= pr.closed
                && matches!(
                    op,
                    SessionOp::PeerWrite(_)
                        | SessionOp::PeerWritePattern(_)
                        | SessionOp::PeerKeyUpdate
                        | SessionOp::PeerCloseNotify
                );
            match *op {
                SessionOp::PeerWrite(ref bytes) => {
                    let k = budget(&mut offered, Who::Peer, bytes.len());
                    pr.write(&bytes[..k]);
                }
                SessionOp::PeerWritePattern(len) => {
                    let start = offered[Who::Peer as usize] as u64;
                    let k = budget(&mut offered, Who::Peer, usize::from(len) % MAX_WRITE);
                    pr.write(&pattern(1, start, k));
                }
                SessionOp::Write(ref bytes) => {
                    let k = budget(&mut offered, Who::Sansock, bytes.len());
                    drop(pr);
                    let _ = p.end(me).write_all(&bytes[..k]);
                    pr = lock_peer(&peer);
                }
                SessionOp::WritePattern(len) => {
                    let start = offered[Who::Sansock as usize] as u64;
                    let k = budget(&mut offered, Who::Sansock, usize::from(len) % MAX_WRITE);
                    drop(pr);
                    let _ = p.end(me).write_all(&pattern(0, start, k));
                    pr = lock_peer(&peer);
                }
                SessionOp::PeerCloseNotify => pr.close_notify(),
                SessionOp::PeerKeyUpdate => pr.key_update(),
                // Not after the peer's own close_notify: its rustls would trip the debug
                // assertion of the known bug above (a fatal alert after close_notify).
                SessionOp::PeerGarbage(_) if pr.closed => {}
                SessionOp::PeerGarbage(ref bytes) => {
                    pr.garbage_fed = true;
                    tampered = true;
                    pr.absorb(bytes);
                }
                SessionOp::Forge(typ, ref payload) => {
                    tampered = true;
                    pr.start_forging();
                    pr.forge(typ.byte(), payload);
                }
                SessionOp::Raw(ref bytes) => {
                    tampered = true;
                    wire = bytes.clone();
                }
                SessionOp::Record(typ, version, length, ref body) => {
                    tampered = true;
                    let length = length.unwrap_or(body.len() as u16);
                    wire = [typ.byte()]
                        .into_iter()
                        .chain(version.value().to_be_bytes())
                        .chain(length.to_be_bytes())
                        .chain(body.iter().copied())
                        .collect();
                }
                SessionOp::PlainAlert(level, description) => {
                    tampered = true;
                    wire = vec![21, 3, 3, 0, 2, level, description];
                }
                SessionOp::Hold => pr.hold = true,
                SessionOp::Release(k) => wire = pr.release(size(k)),
                SessionOp::ReleaseAll => pr.hold = false,
                SessionOp::Corrupt(at, xor) => {
                    if !pr.held.is_empty() {
                        tampered = true;
                        let i = usize::from(at) % pr.held.len();
                        pr.held[i] ^= xor.max(1);
                    }
                }
                SessionOp::DropHeld => {
                    tampered |= !pr.held.is_empty();
                    pr.held.clear();
                }
                SessionOp::Replay => {
                    tampered |= !pr.last.is_empty();
                    wire = pr.last.clone();
                }
                SessionOp::PeerEnd => {
                    tampered = true;
                    p.end(plain).handle().end();
                }
                SessionOp::InjectFin => {
                    tampered = true;
                    p.inject_bare_fin(me);
                }
                SessionOp::InjectReset => {
                    tampered = true;
                    p.inject_reset(me);
                }
                SessionOp::Pause => p.end(me).handle().pause(),
                SessionOp::Resume => p.end(me).handle().resume(),
                SessionOp::End => {
                    interfered = true;
                    p.end_side(me);
                }
                SessionOp::Shutdown => {
                    interfered = true;
                    p.shutdown_side(me);
                }
                SessionOp::Close => {
                    interfered = true;
                    p.close_side(me);
                }
                SessionOp::Terminate => {
                    interfered = true;
                    p.terminate_side(me);
                }
                SessionOp::SetReadChunk(v) => p.read_chunk = size(v),
                SessionOp::Advance(ms) => p.advance(Duration::from_millis(u64::from(ms % 1024))),
                SessionOp::AdvanceLong => p.advance(Duration::from_secs(60)),
                SessionOp::Run | SessionOp::Step(_) => {}
            }
            // The peer's own output goes first (it was produced before the operation's raw
            // bytes, if any), unless held.
            let mut out = pr.outgoing();
            out.extend_from_slice(&wire);
            wire = out;
        }
        if !wire.is_empty() {
            let _ = p.end(plain).write_all(&wire);
        }
        match *op {
            SessionOp::Run => {
                let _ = p.run();
            }
            SessionOp::Step(who) => {
                let side = if who == Who::Sansock { me } else { plain };
                let _ = p.step(side as usize);
            }
            _ => {}
        }
        check_session(&p, me, plain, &lock_peer(&peer))
            .map_err(|e| format!("after op #{n} {op:?}: {e}\nsetup {setup:?}\nops {ops:?}"))?;
    }

    // Everything held goes out, then both ends are left alone until it is all over.
    let out = {
        let mut pr = lock_peer(&peer);
        pr.hold = false;
        pr.outgoing()
    };
    if !out.is_empty() {
        let _ = p.end(plain).write_all(&out);
    }
    p.finish(10_000);
    let pr = lock_peer(&peer);
    let settled = |e: String| {
        format!(
            "once settled: {e}\nsansock end {:?}\nsetup {setup:?}\nops {ops:?}",
            p.end(me).log().events
        )
    };
    check_session(&p, me, plain, &pr).map_err(settled)?;
    if !tampered && !interfered {
        check_intact_session(&p, me, &pr).map_err(settled)?;
    }
    Ok(())
}

/// The per-operation checks of [`run_tls_session_input`].
fn check_session(p: &Pair, me: Side, plain: Side, peer: &Peer) -> Result<(), String> {
    for side in [me, plain] {
        if let Some(v) = &p.end(side).log().violation {
            let who = if side == me {
                "sansock end"
            } else {
                "peer's plain end"
            };
            return Err(format!("{who}: {v}"));
        }
    }
    let bytes_written = p.end(me).handle().bytes_written();
    let log = p.end(me).log();
    if bytes_written != log.accepted.len() as u64 {
        return Err(format!(
            "bytes_written {bytes_written} but {} bytes were accepted",
            log.accepted.len()
        ));
    }
    if !peer.sent.starts_with(&log.received) {
        return Err(format!(
            "the sansock end received {} bytes that are not a prefix of the {} the peer sent \
             as application data (before its close_notify)",
            log.received.len(),
            peer.sent.len()
        ));
    }
    if !log.accepted.starts_with(&peer.received) {
        return Err(format!(
            "the peer read {} bytes that are not a prefix of the {} the sansock end accepted",
            peer.received.len(),
            log.accepted.len()
        ));
    }
    if let Some(f) = &peer.failure {
        return Err(f.clone());
    }
    Ok(())
}

/// The settled state of a session nobody tampered with and the user left alone: every byte
/// delivered both ways, no error, and the peer's close_notify (if any) ended and closed the
/// sansock end cleanly.
fn check_intact_session(p: &Pair, me: Side, peer: &Peer) -> Result<(), String> {
    let log = p.end(me).log();
    if log.received != peer.sent {
        return Err(format!(
            "the sansock end received {} of the {} bytes the peer sent",
            log.received.len(),
            peer.sent.len()
        ));
    }
    if peer.received != log.accepted {
        return Err(format!(
            "the peer received {} of the {} bytes the sansock end accepted",
            peer.received.len(),
            log.accepted.len()
        ));
    }
    if let Some(e) = log.events.iter().find(|e| matches!(e, Seen::Error(_))) {
        return Err(format!("{e:?} on an intact session"));
    }
    let closed = log.events.iter().any(|e| matches!(e, Seen::Close(_)));
    if peer.closed {
        if !log.events.contains(&Seen::End) || log.events.last() != Some(&Seen::Close(None)) {
            return Err(
                "the peer's close_notify did not end and close the sansock end cleanly".into(),
            );
        }
    } else if closed {
        return Err("the sansock end closed with nothing to close it".into());
    }
    Ok(())
}
