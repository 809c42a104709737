//! A throwaway PKI made at test time (rcgen): a CA, a server certificate
//! for the engine (`localhost`, `127.0.0.1`) and a client certificate for
//! the peer (trunk), all written as PEM files into `dir`. Shared by the
//! engine's TLS tests and the end-to-end TLS calls (`tests/sip_tls.rs`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// PEM files of one test PKI.
#[allow(dead_code)] // reason: each test binary that includes this uses a different subset
pub(crate) struct Pki {
    /// The CA certificate (the roots both sides trust).
    pub(crate) ca: PathBuf,
    /// The engine's certificate and key.
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    /// The peer's client certificate and key, and both in one file (baresip's `sip_certificate`).
    pub(crate) client_cert: PathBuf,
    pub(crate) client_key: PathBuf,
    pub(crate) client_combined: PathBuf,
    /// A certificate for `127.0.0.1` from a CA nobody trusts.
    pub(crate) rogue_cert: PathBuf,
    pub(crate) rogue_key: PathBuf,
}

fn leaf(names: &[&str], cn: &str, issuer: &CertifiedIssuer<'_, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn ca(cn: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// Makes the PKI in `dir`.
pub(crate) fn make(dir: &Path) -> Pki {
    let root = ca("ivr test CA");
    let rogue_root = ca("somebody else's CA");
    let (server_cert, server_key) = leaf(&["localhost", "127.0.0.1"], "ivr engine", &root);
    let (client_cert, client_key) = leaf(&["trunk.test", "127.0.0.1"], "trunk", &root);
    let (rogue_cert, rogue_key) = leaf(&["localhost", "127.0.0.1"], "rogue", &rogue_root);
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", &root.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server.key", &server_key),
        client_combined: write("client-combined.pem", &format!("{client_cert}{client_key}")),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client.key", &client_key),
        rogue_cert: write("rogue.pem", &rogue_cert),
        rogue_key: write("rogue.key", &rogue_key),
    }
}
