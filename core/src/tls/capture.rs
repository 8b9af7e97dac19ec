//! Per-connection values that rustls hands only to callbacks of the shared configuration: the
//! SNI name (to the server's certificate resolver) and the TLS 1.3 exporter secret (to the key
//! log).
//!
//! One configuration serves every connection of a listener (or of a client options value), so
//! its callbacks cannot know which connection they run for. But rustls calls them
//! synchronously, inside the `process_tls_records` call that the session makes on this thread:
//! the session lends its [`Captured`] slot to the thread around that call ([`during`]), and the
//! callbacks ([`RecordingResolver`], [`RecordingKeyLog`]) write into whatever slot is lent.

use std::cell::RefCell;
use std::sync::Arc;

use rustls::crypto::tls13::OkmBlock;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::KeyLog;

/// What the callbacks recorded for one connection.
#[derive(Default)]
pub(crate) struct Captured {
    /// The SNI name from the ClientHello (server side; validated by rustls, lower case).
    pub(crate) sni: Option<String>,
    /// The TLS 1.3 exporter master secret (zeroed on drop).
    pub(crate) exporter_secret: Option<Box<OkmBlock>>,
}

thread_local! {
    static LENT: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// Runs `f` (a call into rustls) with `slot` lent to this thread's callbacks.
pub(crate) fn during<R>(slot: &mut Captured, f: impl FnOnce() -> R) -> R {
    let outer = LENT.with_borrow_mut(|lent| lent.replace(std::mem::take(slot)));
    let result = f();
    *slot = LENT
        .with_borrow_mut(|lent| std::mem::replace(lent, outer))
        .unwrap_or_default();
    result
}

/// Records into the lent slot, if any (a callback outside [`during`] records nothing).
fn record(f: impl FnOnce(&mut Captured)) {
    LENT.with_borrow_mut(|lent| {
        if let Some(captured) = lent.as_mut() {
            f(captured);
        }
    });
}

/// Records the ClientHello's SNI name, then lets `inner` choose the certificate.
#[derive(Debug)]
pub(crate) struct RecordingResolver(pub(crate) Arc<dyn ResolvesServerCert>);

impl ResolvesServerCert for RecordingResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            let name = name.to_ascii_lowercase();
            record(|c| c.sni = Some(name));
        }
        self.0.resolve(hello)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.0.only_raw_public_keys()
    }
}

/// The key log label of the TLS 1.3 exporter master secret.
const EXPORTER_SECRET: &str = "EXPORTER_SECRET";

/// Keeps the exporter secret for [`export_keying_material`], and passes every secret to
/// `inner` (a user's key log, `SSLKEYLOGFILE`) when there is one.
///
/// [`export_keying_material`]: crate::Connection::export_keying_material
#[derive(Debug)]
pub(crate) struct RecordingKeyLog(pub(crate) Option<Arc<dyn KeyLog>>);

impl KeyLog for RecordingKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if label == EXPORTER_SECRET && secret.len() <= OkmBlock::MAX_LEN {
            record(|c| c.exporter_secret = Some(Box::new(OkmBlock::new(secret))));
        }
        if let Some(inner) = &self.0 {
            if inner.will_log(label) {
                inner.log(label, client_random, secret);
            }
        }
    }

    fn will_log(&self, label: &str) -> bool {
        label == EXPORTER_SECRET || self.0.as_ref().is_some_and(|inner| inner.will_log(label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_lent_slot_records_and_nesting_restores_the_outer_one() {
        record(|c| c.sni = Some("nobody".into()));
        let mut outer = Captured::default();
        let mut inner = Captured::default();
        during(&mut outer, || {
            record(|c| c.sni = Some("outer".into()));
            during(&mut inner, || record(|c| c.sni = Some("inner".into())));
            record(|c| c.exporter_secret = Some(Box::new(OkmBlock::new(b"s"))));
        });
        assert_eq!(outer.sni.as_deref(), Some("outer"));
        assert_eq!(
            outer
                .exporter_secret
                .as_deref()
                .map(|s| s.as_ref().to_vec()),
            Some(b"s".to_vec())
        );
        assert_eq!(inner.sni.as_deref(), Some("inner"));
        assert!(LENT.with_borrow(|lent| lent.is_none()));
    }
}
