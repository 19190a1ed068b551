use std::path::{Path, PathBuf};
use std::time::Duration;

use super::origin::OriginConnector;
use super::*;
use crate::config::TlsCertificate;

/// A self-signed certificate for `names`, written to `dir/{stem}.pem` and `dir/{stem}.key`.
fn certificate(dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf, Vec<u8>) {
    let names = names.iter().map(ToString::to_string).collect::<Vec<_>>();
    let generated = rcgen::generate_simple_self_signed(names).expect("rcgen");
    let cert = dir.join(format!("{stem}.pem"));
    let key = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    (cert, key, generated.cert.der().to_vec())
}

fn entry(cert: &Path, key: &Path, names: Option<&[&str]>) -> TlsCertificate {
    TlsCertificate {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        names: names.map(|n| n.iter().map(ToString::to_string).collect()),
    }
}

/// The DER of the certificate a handshake with `sni` gets.
fn served(store: &CertStore, sni: Option<&str>) -> Vec<u8> {
    store.current().select(sni).cert[0].to_vec()
}

#[test]
fn sni_picks_exact_then_wildcard_then_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let (default_cert, default_key, default_der) = certificate(dir.path(), "d", &["d.test"]);
    let (a_cert, a_key, a_der) = certificate(dir.path(), "a", &["a.test", "*.a.test"]);
    let (b_cert, b_key, b_der) = certificate(dir.path(), "b", &["b.test", "www.a.test"]);
    let config = TlsConfig {
        cert: Some(default_cert),
        key: Some(default_key),
        certificates: vec![
            entry(&a_cert, &a_key, None),
            entry(&b_cert, &b_key, Some(&["B.test", "www.a.test"])),
        ],
        ..TlsConfig::default()
    };
    let store = CertStore::from_config(&config)
        .unwrap()
        .expect("files given");
    assert_eq!(served(&store, Some("a.test")), a_der);
    assert_eq!(
        served(&store, Some("A.Test.")),
        a_der,
        "any case, a trailing dot"
    );
    assert_eq!(served(&store, Some("img.a.test")), a_der, "the wildcard");
    assert_eq!(
        served(&store, Some("www.a.test")),
        b_der,
        "exact before wildcard"
    );
    assert_eq!(served(&store, Some("b.test")), b_der, "listed names");
    assert_eq!(
        served(&store, Some("x.img.a.test")),
        default_der,
        "a wildcard covers one label"
    );
    assert_eq!(served(&store, Some("other.test")), default_der);
    assert_eq!(served(&store, None), default_der);
    assert_eq!(store.current().summary().len(), 3);
}

#[test]
fn without_tls_cert_the_first_entry_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let (a_cert, a_key, a_der) = certificate(dir.path(), "a", &["a.test"]);
    let (b_cert, b_key, b_der) = certificate(dir.path(), "b", &["b.test"]);
    let config = TlsConfig {
        certificates: vec![entry(&a_cert, &a_key, None), entry(&b_cert, &b_key, None)],
        ..TlsConfig::default()
    };
    let store = CertStore::from_config(&config)
        .unwrap()
        .expect("files given");
    assert_eq!(served(&store, Some("b.test")), b_der);
    assert_eq!(served(&store, Some("a.test")), a_der);
    assert_eq!(served(&store, Some("c.test")), a_der);
    assert_eq!(served(&store, None), a_der);
    assert!(
        CertStore::from_config(&TlsConfig::default())
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_broken_pair_fails_the_whole_load_naming_its_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a_cert, a_key, a_der) = certificate(dir.path(), "a", &["a.test"]);
    let (b_cert, b_key, _) = certificate(dir.path(), "b", &["b.test"]);
    let config = TlsConfig {
        certificates: vec![entry(&a_cert, &a_key, None), entry(&b_cert, &b_key, None)],
        ..TlsConfig::default()
    };
    let store = CertStore::from_config(&config)
        .unwrap()
        .expect("files given");

    std::fs::write(&b_key, "garbage\n").unwrap();
    let error = store.load().expect_err("a broken key").to_string();
    assert!(error.starts_with("tls.certificates[1].key: "), "{error}");
    assert!(error.contains("b.key"), "{error}");

    // A key of another certificate.
    let (_, other_key, _) = certificate(dir.path(), "other", &["b.test"]);
    std::fs::copy(&other_key, &b_key).unwrap();
    let error = store
        .load()
        .expect_err("a key that does not fit")
        .to_string();
    assert!(
        error.starts_with("tls.certificates[1].key: ") && error.contains("does not fit"),
        "{error}"
    );

    std::fs::remove_file(&a_cert).unwrap();
    let error = store.load().expect_err("a missing file").to_string();
    assert!(error.starts_with("tls.certificates[0].cert: "), "{error}");
    assert_eq!(served(&store, Some("a.test")), a_der, "nothing swapped");
}

#[test]
fn names_must_be_the_certificates_own() {
    let dir = tempfile::tempdir().unwrap();
    let (a_cert, a_key, _) = certificate(dir.path(), "a", &["a.test", "*.a.test"]);
    let listed = |names: &[&str]| TlsConfig {
        certificates: vec![entry(&a_cert, &a_key, Some(names))],
        ..TlsConfig::default()
    };
    assert!(CertStore::from_config(&listed(&["www.a.test", "*.a.test"])).is_ok());
    let error = CertStore::from_config(&listed(&["a.test", "b.test"]))
        .expect_err("b.test is not the certificate's")
        .to_string();
    assert!(
        error.starts_with("tls.certificates[0].names: ") && error.contains("b.test"),
        "{error}"
    );

    // Only an IP address in the certificate: its names must be listed.
    let (ip_cert, ip_key, _) = certificate(dir.path(), "ip", &["127.0.0.1"]);
    let config = TlsConfig {
        certificates: vec![entry(&ip_cert, &ip_key, None)],
        ..TlsConfig::default()
    };
    let error = CertStore::from_config(&config)
        .expect_err("no DNS names")
        .to_string();
    assert!(error.contains("tls.certificates[0].names"), "{error}");
}

#[test]
fn origin_ca_problems_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(1);
    assert!(OriginConnector::new(timeout, None).is_ok());
    let missing = dir.path().join("missing.pem");
    let error = OriginConnector::new(timeout, Some(&missing))
        .err()
        .expect("a missing file")
        .to_string();
    assert!(
        error.starts_with("proxy.origin_ca: ") && error.contains("missing.pem"),
        "{error}"
    );
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let error = OriginConnector::new(timeout, Some(&empty))
        .err()
        .expect("no certificate")
        .to_string();
    assert!(error.contains("no PEM certificate"), "{error}");
    let (ca, _, _) = certificate(dir.path(), "ca", &["origin.test"]);
    assert!(OriginConnector::new(timeout, Some(&ca)).is_ok());
}

/// The self-signed certificate goes into a new private directory with an unpredictable name,
/// never through a path someone planted beforehand (issue 18 finding 5: the predictable
/// `/tmp/edgenode-<pid>/` was followed through symlinks).
#[test]
fn the_self_signed_certificate_gets_a_private_new_directory() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().expect("parent");
    let elsewhere = tempfile::tempdir().expect("elsewhere");
    // What an attacker could plant at the old predictable name.
    let planted = parent
        .path()
        .join(format!("edgenode-{}", std::process::id()));
    std::os::unix::fs::symlink(elsewhere.path(), &planted).expect("symlink");
    let config = TlsConfig::default();
    let first = setup(&config, parent.path()).expect("setup");
    let second = setup(&config, parent.path()).expect("setup");
    let (a, b) = (
        first.self_signed_cert.clone().expect("generated"),
        second.self_signed_cert.clone().expect("generated"),
    );
    assert_ne!(a.parent(), b.parent(), "a new directory each time");
    for cert in [&a, &b] {
        let dir = cert.parent().expect("directory");
        assert_ne!(dir, planted.as_path());
        let mode = std::fs::metadata(dir).expect("dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
        assert!(
            std::fs::read_to_string(cert)
                .expect("pem")
                .contains("BEGIN CERTIFICATE")
        );
    }
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).expect("read").count(),
        0,
        "nothing written through the planted link"
    );
    let dir = a.parent().expect("directory").to_path_buf();
    drop(first);
    assert!(!dir.exists(), "removed with its setup");
}
