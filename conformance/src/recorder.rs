//! A recording handler for real sockets: logs every event per socket and runs a script.

use std::sync::{Arc, Mutex, MutexGuard};

use sansock_core::tls::TlsError;
use sansock_core::{CloseError, ConnectError, Handler, Socket, SocketError};

/// An event as the script sees it.
#[derive(Debug)]
pub enum Ev<'a> {
    Open,
    Data(&'a [u8]),
    Drain,
    End,
    Timeout,
    Handshake(bool, Option<&'a TlsError>),
    Error(&'a SocketError),
    Close(Option<&'a CloseError>),
}

impl Ev<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Ev::Open => "open",
            Ev::Data(_) => "data",
            Ev::Drain => "drain",
            Ev::End => "end",
            Ev::Timeout => "timeout",
            Ev::Handshake(..) => "handshake",
            Ev::Error(_) => "error",
            Ev::Close(_) => "close",
        }
    }
}

/// One socket's record.
#[derive(Debug, Default)]
pub struct Log {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    /// Event names; consecutive data events are merged into one "data".
    trace: Vec<&'static str>,
    received: Vec<u8>,
    close_error: Option<Option<CloseError>>,
    connect_error: Option<ConnectError>,
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn trace(&self) -> Vec<&'static str> {
        self.lock().trace.clone()
    }
    pub fn received(&self) -> Vec<u8> {
        self.lock().received.clone()
    }
    pub fn received_len(&self) -> usize {
        self.lock().received.len()
    }
    pub fn take_received(&self) -> Vec<u8> {
        std::mem::take(&mut self.lock().received)
    }
    pub fn count(&self, name: &str) -> usize {
        self.lock().trace.iter().filter(|e| **e == name).count()
    }
    pub fn is_closed(&self) -> bool {
        self.lock().close_error.is_some()
    }
    /// `Some(error)` once closed.
    pub fn close_error(&self) -> Option<Option<CloseError>> {
        self.lock().close_error.clone()
    }
    pub fn connect_error(&self) -> Option<ConnectError> {
        self.lock().connect_error.clone()
    }
    /// Checks the universal ordering rules: open first, at most one end, exactly one close
    /// and last (if closed).
    pub fn assert_well_ordered(&self) {
        let trace = self.trace();
        if trace.is_empty() {
            return;
        }
        assert_eq!(trace[0], "open", "first event must be open: {trace:?}");
        assert!(
            trace.iter().filter(|e| **e == "open").count() == 1,
            "{trace:?}"
        );
        assert!(
            trace.iter().filter(|e| **e == "end").count() <= 1,
            "{trace:?}"
        );
        let closes = trace.iter().filter(|e| **e == "close").count();
        assert!(closes <= 1, "close fired {closes} times: {trace:?}");
        if closes == 1 {
            assert_eq!(
                trace.last(),
                Some(&"close"),
                "nothing may follow close: {trace:?}"
            );
        }
    }
}

/// The per-socket data of recorded sockets.
pub type Data = Arc<Log>;

/// Every server-side socket's log, in accept order.
#[derive(Debug, Default)]
pub struct Logs {
    all: Mutex<Vec<Arc<Log>>>,
}

impl Logs {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }
    /// A data factory for `ListenOptions::data_with` that registers each new socket's log.
    pub fn factory(self: &Arc<Self>) -> impl Fn() -> Data + Send + Sync + 'static {
        let logs = self.clone();
        move || {
            let log = Arc::new(Log::default());
            logs.all.lock().unwrap().push(log.clone());
            log
        }
    }
    pub fn get(&self, i: usize) -> Option<Arc<Log>> {
        self.all.lock().unwrap().get(i).cloned()
    }
    pub fn len(&self) -> usize {
        self.all.lock().unwrap().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn all(&self) -> Vec<Arc<Log>> {
        self.all.lock().unwrap().clone()
    }
}

/// A handler that records, then runs `script`.
pub struct Recorder<F> {
    script: F,
}

/// Builds a recording handler set.
pub fn recorder<F>(script: F) -> Arc<dyn Handler<Data = Data>>
where
    F: Fn(&Ev<'_>, &mut Socket<'_, Data>) + Send + Sync + 'static,
{
    Arc::new(Recorder { script })
}

/// A recording handler that does nothing else.
pub fn quiet() -> Arc<dyn Handler<Data = Data>> {
    recorder(|_, _| {})
}

/// A recording echo server.
pub fn echo() -> Arc<dyn Handler<Data = Data>> {
    recorder(|ev, s| {
        if let Ev::Data(bytes) = ev {
            s.write(bytes).ok(); // an error means closed: `close` records why
        }
    })
}

impl<F> Recorder<F>
where
    F: Fn(&Ev<'_>, &mut Socket<'_, Data>) + Send + Sync + 'static,
{
    fn record(&self, socket: &mut Socket<'_, Data>, ev: Ev<'_>) {
        {
            let mut log = socket.data().lock();
            let name = ev.name();
            if !(name == "data" && log.trace.last() == Some(&"data")) {
                log.trace.push(name);
            }
            match &ev {
                Ev::Data(bytes) => log.received.extend_from_slice(bytes),
                Ev::Close(e) => log.close_error = Some(e.cloned()),
                _ => {}
            }
        }
        (self.script)(&ev, socket);
    }
}

impl<F> Handler for Recorder<F>
where
    F: Fn(&Ev<'_>, &mut Socket<'_, Data>) + Send + Sync + 'static,
{
    type Data = Data;
    fn open(&self, s: &mut Socket<'_, Data>) {
        self.record(s, Ev::Open)
    }
    fn data(&self, s: &mut Socket<'_, Data>, bytes: &[u8]) {
        self.record(s, Ev::Data(bytes))
    }
    fn drain(&self, s: &mut Socket<'_, Data>) {
        self.record(s, Ev::Drain)
    }
    fn end(&self, s: &mut Socket<'_, Data>) {
        self.record(s, Ev::End)
    }
    fn timeout(&self, s: &mut Socket<'_, Data>) {
        self.record(s, Ev::Timeout)
    }
    fn handshake(&self, s: &mut Socket<'_, Data>, success: bool, e: Option<&TlsError>) {
        self.record(s, Ev::Handshake(success, e))
    }
    fn error(&self, s: &mut Socket<'_, Data>, e: &SocketError) {
        self.record(s, Ev::Error(e))
    }
    fn close(&self, s: &mut Socket<'_, Data>, e: Option<&CloseError>) {
        self.record(s, Ev::Close(e))
    }
    fn connect_error(&self, data: &mut Data, error: &ConnectError) {
        let mut log = data.lock();
        log.trace.push("connect_error");
        log.connect_error = Some(error.clone());
    }
}
