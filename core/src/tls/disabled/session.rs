//! Without the `tls` feature: a TLS session cannot exist (the type has no values), so every
//! TLS path of the connection is statically dead while its code stays the same.

use std::io::{self, IoSlice};
use std::sync::Arc;

use crate::sink::Sink;
use crate::tls::{ClientTls, ExportError, ServerTls, TlsError, TlsInfo};

/// What feeding ciphertext produced, besides plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(dead_code)]
pub(crate) enum TlsEvent {
    HandshakeDone(Arc<TlsInfo>),
    HandshakeFailed(TlsError),
    Fatal(TlsError),
    PeerClosed,
}

/// No TLS session: this type has no values.
#[derive(Debug)]
pub(crate) enum TlsSession {}

#[allow(clippy::unused_self)]
impl TlsSession {
    pub(crate) fn server(tls: &ServerTls) -> Result<Self, TlsError> {
        match *tls {}
    }
    pub(crate) fn client(tls: &ClientTls) -> Result<Self, TlsError> {
        match *tls {}
    }
    pub(crate) fn is_handshaking(&self) -> bool {
        match *self {}
    }
    pub(crate) fn is_failed(&self) -> bool {
        match *self {}
    }
    pub(crate) fn wants_write(&self) -> bool {
        match *self {}
    }
    pub(crate) fn pending_ciphertext(&self) -> usize {
        match *self {}
    }
    pub(crate) fn close_notify_sent(&self) -> bool {
        match *self {}
    }
    pub(crate) fn hold(&mut self, _: &mut &mut [u8]) {
        match *self {}
    }
    pub(crate) fn holds_input(&self) -> bool {
        match *self {}
    }
    pub(crate) fn receive(&mut self, _: &mut &mut [u8], _: &mut [u8]) -> (usize, Option<TlsEvent>) {
        match *self {}
    }
    pub(crate) fn fail(&mut self) {
        match *self {}
    }
    pub(crate) fn export_keying_material(
        &self,
        _: &[u8],
        _: Option<&[u8]>,
        _: usize,
    ) -> Result<Vec<u8>, ExportError> {
        match *self {}
    }
    pub(crate) fn encrypt_from(&mut self, _: &mut Sink, _: usize) {
        match *self {}
    }
    pub(crate) fn encrypt_direct(&mut self, _: &[u8], _: usize) -> usize {
        match *self {}
    }
    pub(crate) fn send_close_notify(&mut self) {
        match *self {}
    }
    pub(crate) fn flush(
        &mut self,
        _: &mut dyn FnMut(&[IoSlice<'_>]) -> Option<io::Result<usize>>,
        _: &mut usize,
    ) -> io::Result<bool> {
        match *self {}
    }
}
