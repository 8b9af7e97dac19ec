//! Server certificate verification that can forgive instead of refuse
//! (`reject_unauthorized: false`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::{TlsConfigError, TlsError};

/// Verifies with webpki; with `reject` off, the chain and name are not checked during the
/// handshake (signatures still are), and [`check`](Self::check) says afterwards what was wrong.
///
/// It keeps no per-connection state: one verifier serves every connection of a client
/// configuration (concurrent handshakes, and resumed sessions, which verify nothing during the
/// handshake but whose stored chain `check` verifies again).
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    reject: bool,
}

impl RecordingVerifier {
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
        reject: bool,
    ) -> Result<Self, TlsConfigError> {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
        Ok(RecordingVerifier { inner, reject })
    }

    /// Why `chain` (leaf first) is not trusted for `server_name`, when `reject` is off (with it
    /// on, a connection that got this far was verified).
    pub(crate) fn check(
        &self,
        chain: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
    ) -> Option<TlsError> {
        if self.reject {
            return None;
        }
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Some(TlsError::NoPeerCertificate);
        };
        self.inner
            .verify_server_cert(leaf, intermediates, server_name, &[], UnixTime::now())
            .err()
            .map(|e| TlsError::from_rustls(&e))
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.reject {
            // Checked after the handshake, by `check`.
            return Ok(ServerCertVerified::assertion());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
