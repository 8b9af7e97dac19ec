//! Certificates generated at test time with rcgen (feature `sim`): a CA, server certificates
//! for `localhost`/127.0.0.1/::1 (two, with known serial numbers, for rotation), a second SNI
//! name, a client certificate, an expired and a
//! wrong-name certificate, and a self-signed one. Nothing here is committed to disk.

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

/// The serial number of [`TestPki::server`]'s certificate.
pub const SERVER_SERIAL: u64 = 0x5a50_0001;
/// The serial number of [`TestPki::server_next`]'s certificate.
pub const SERVER_NEXT_SERIAL: u64 = 0x5a50_0002;

/// A certificate chain and its private key, as PEM.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The certificate (leaf only; the CA is in [`TestPki::ca_pem`]).
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

/// A small PKI for tests.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate, to trust.
    pub ca_pem: String,
    /// For `localhost`, 127.0.0.1 and ::1, serial number [`SERVER_SERIAL`].
    pub server: Pair,
    /// Another certificate for the same names and from the same CA, serial number
    /// [`SERVER_NEXT_SERIAL`], with its own key: what [`server`](Self::server) is rotated to.
    pub server_next: Pair,
    /// For `other.test` (SNI selection).
    pub sni_other: Pair,
    /// A client certificate (mutual TLS), signed by the CA.
    pub client: Pair,
    /// A client certificate signed by an unrelated CA.
    pub untrusted_client: Pair,
    /// For `localhost`, expired in 2001.
    pub expired: Pair,
    /// For `wrong.example` only.
    pub wrong_name: Pair,
    /// A self-signed certificate for `localhost` (no CA).
    pub self_signed: Pair,
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-sign CA");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// What kind of leaf certificate [`leaf`] makes.
#[derive(Debug, Clone, Copy, Default)]
struct LeafKind {
    client: bool,
    expired: bool,
    serial: Option<u64>,
}

fn leaf(ca: &Ca, names: &[&str], kind: LeafKind) -> Pair {
    let LeafKind {
        client,
        expired,
        serial,
    } = kind;
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.serial_number = serial.map(SerialNumber::from);
    for name in names {
        params.subject_alt_names.push(match name.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*name).try_into().expect("dns name")),
        });
    }
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("client"),
    );
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    if expired {
        params.not_before = date_time_ymd(2000, 1, 1);
        params.not_after = date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.issuer).expect("sign");
    Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

impl TestPki {
    /// Generates everything (a few milliseconds).
    pub fn generate() -> Self {
        const SERVER_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];
        let serial = |serial| LeafKind {
            serial: Some(serial),
            ..LeafKind::default()
        };
        let client = LeafKind {
            client: true,
            ..LeafKind::default()
        };
        let expired = LeafKind {
            expired: true,
            ..LeafKind::default()
        };
        let root = ca("sansock test CA");
        let other_root = ca("unrelated CA");
        let self_signed = {
            let key = KeyPair::generate().expect("key");
            let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
            Pair {
                cert_pem: params.self_signed(&key).expect("sign").pem(),
                key_pem: key.serialize_pem(),
            }
        };
        TestPki {
            server: leaf(&root, SERVER_NAMES, serial(SERVER_SERIAL)),
            server_next: leaf(&root, SERVER_NAMES, serial(SERVER_NEXT_SERIAL)),
            sni_other: leaf(&root, &["other.test"], LeafKind::default()),
            client: leaf(&root, &["client.test"], client),
            untrusted_client: leaf(&other_root, &["client.test"], client),
            expired: leaf(&root, &["localhost", "127.0.0.1"], expired),
            wrong_name: leaf(&root, &["wrong.example"], LeafKind::default()),
            self_signed,
            ca_pem: root.pem,
        }
    }
}
