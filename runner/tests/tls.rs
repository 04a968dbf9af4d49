//! `KubeCluster` against the fake API server over HTTPS: a CA in the kubeconfig (as data or as a
//! file), bearer tokens and client certificates, and the diagnostics for a wrong CA and for a
//! scheme that does not match the server.
#![allow(clippy::unwrap_used)]

mod common;
mod fake_api;
#[path = "fake_api/tls.rs"]
mod fake_tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fake_api::{FakeApi, Options};
use fake_tls::{Credentials, TlsApi, Trust};
use serde_json::json;
use skel_runner::api::{Gvk, Resource};
use skel_runner::{block_on, Applied, Cluster, ClusterError, Connection, KubeCluster, Retry};

fn connection(kubeconfig: &Path) -> Connection {
    let retry = Retry { attempts: 2, base: Duration::from_millis(10), cap: Duration::from_millis(20) };
    common::connection(kubeconfig, Duration::from_secs(5), retry)
}

/// `api`'s kubeconfig, written into a new temporary folder (returned to be kept).
fn kubeconfig(
    api: &TlsApi,
    trust: Trust<'_>,
    credentials: Credentials,
    server: Option<&str>,
) -> (tempfile::TempDir, PathBuf) {
    let (dir, kubeconfig) = common::kubeconfig_path();
    api.write_kubeconfig_tls(&kubeconfig, trust, credentials, server);
    (dir, kubeconfig)
}

/// Connects, asks the version, discovers Deployments and applies one: what a run does first.
fn exercise(kubeconfig: &Path) -> Result<(), ClusterError> {
    block_on(async {
        let cluster = KubeCluster::connect(&connection(kubeconfig)).await?;
        let version = cluster.version().await?;
        assert_eq!((version.major, version.minor), (1, 30));
        let served = cluster.discover(&[Gvk::new("apps/v1", "Deployment"), Gvk::new("v1", "Namespace")]).await?;
        assert!(format!("{served:?}").contains("deployments"), "{served:?}");
        let ns = Resource::new("v1", "Namespace", "namespaces", false);
        let manifest = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tls-ns"}});
        assert_eq!(cluster.apply(&ns, None, "tls-ns", &manifest).await, Ok(Applied::Created));
        Ok(())
    })
    .unwrap()
}

/// The diagnostic as a user sees it: miette's graphical report, without colours, with the
/// server's port replaced.
fn render(err: &ClusterError, port: u16) -> String {
    common::render(err).replace(&port.to_string(), "PORT")
}

fn help(err: &ClusterError) -> String {
    miette::Diagnostic::help(err).map(|h| h.to_string()).unwrap_or_default()
}

#[test]
fn ca_data_and_token() {
    let api = TlsApi::start("1.30", Options::default());
    let (_dir, kubeconfig) = kubeconfig(&api, Trust::CaData, Credentials::Token, None);
    exercise(&kubeconfig).unwrap();
    let requests = api.requests();
    assert!(requests.len() >= 4, "{:?}", api.request_lines());
    assert!(requests.iter().all(|r| r.header("authorization") == Some("Bearer fake-token")));
    assert!(requests.iter().all(|r| !r.client_certificate));
    assert!(api.objects().contains_key("/api/v1/namespaces/tls-ns"));
}

#[test]
fn ca_data_and_client_certificate_without_token() {
    let api = TlsApi::start("1.30", Options::default());
    let (_dir, kubeconfig) = kubeconfig(&api, Trust::CaData, Credentials::ClientCertificate, None);
    exercise(&kubeconfig).unwrap();
    let requests = api.requests();
    assert!(requests.iter().all(|r| r.header("authorization").is_none()), "no token was sent");
    assert!(requests.iter().all(|r| r.client_certificate));
}

#[test]
fn ca_file_and_token() {
    let api = TlsApi::start("1.30", Options::default());
    let (dir, kubeconfig) = common::kubeconfig_path();
    let ca = dir.path().join("ca.crt");
    api.write_kubeconfig_tls(&kubeconfig, Trust::CaFile(&ca), Credentials::Token, None);
    assert!(std::fs::read_to_string(&kubeconfig)
        .unwrap()
        .contains(&format!("certificate-authority: {}", ca.display())));
    exercise(&kubeconfig).unwrap();
}

#[test]
fn no_credentials_is_refused_with_a_401() {
    let api = TlsApi::start("1.30", Options::default());
    let (_dir, kubeconfig) = kubeconfig(&api, Trust::CaData, Credentials::Nothing, None);
    let err = exercise(&kubeconfig).unwrap_err();
    assert!(matches!(err, ClusterError::Unauthorized { code: 401, .. }), "{err:?}");
}

#[test]
fn a_wrong_ca_says_the_certificate_is_not_trusted() {
    let api = TlsApi::start("1.30", Options::default());
    let (_dir, kubeconfig) = kubeconfig(&api, Trust::WrongCaData, Credentials::Token, None);
    let err = exercise(&kubeconfig).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&api.url()), "names the server: {text}");
    assert!(text.contains("not trusted"), "{text}");
    assert!(!text.contains("ServiceError") && !text.contains("client error"), "no transport chain: {text}");
    let help = help(&err);
    assert!(help.contains("certificate-authority-data"), "{help}");
    assert!(help.contains("--context"), "{help}");
    insta::assert_snapshot!(render(&err, api.port()));
    // Nothing got through.
    assert!(api.requests().is_empty());
}

#[test]
fn no_ca_at_all_is_not_trusted_either() {
    let api = TlsApi::start("1.30", Options::default());
    let (_dir, kubeconfig) = kubeconfig(&api, Trust::SystemRoots, Credentials::Token, None);
    let err = exercise(&kubeconfig).unwrap_err();
    assert!(err.to_string().contains("not trusted"), "{err}");
    assert!(help(&err).contains("certificate-authority"), "{}", help(&err));
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let api = TlsApi::start("1.30", Options::default());
    let (_dir, kubeconfig) = kubeconfig(&api, Trust::CaData, Credentials::ForeignClientCertificate, None);
    let err = exercise(&kubeconfig).unwrap_err();
    let text = format!("{err}\n{}", help(&err));
    assert!(text.contains("client certificate"), "{text}");
    assert!(!text.contains("ServiceError"), "{text}");
    assert!(api.requests().is_empty());
}

#[test]
fn http_to_the_tls_server_is_a_clear_error() {
    let api = TlsApi::start("1.30", Options::default());
    let (_dir, kubeconfig) = kubeconfig(&api, Trust::SystemRoots, Credentials::Token, Some(&api.plain_url()));
    let err = exercise(&kubeconfig).unwrap_err();
    let text = format!("{err}\n{}", help(&err));
    // The server's own words (as the Go API server says them), not a transport chain.
    assert!(text.contains("Client sent an HTTP request to an HTTPS server"), "{text}");
    assert!(text.contains(&api.plain_url()), "{text}");
    insta::assert_snapshot!("http_to_the_tls_server", render(&err, api.port()));
}

#[test]
fn https_to_the_plain_server_is_a_clear_error() {
    let plain = FakeApi::start("1.30");
    let tls = TlsApi::start("1.30", Options::default());
    let url = plain.url().replacen("http://", "https://", 1);
    let (_dir, kubeconfig) = kubeconfig(&tls, Trust::CaData, Credentials::Token, Some(&url));
    let err = exercise(&kubeconfig).unwrap_err();
    let text = format!("{err}\n{}", help(&err));
    assert!(text.contains(&url), "{text}");
    assert!(text.contains("does not speak TLS"), "{text}");
    assert!(text.contains("http://"), "suggests the scheme: {text}");
    assert!(!text.contains("ServiceError"), "{text}");
    insta::assert_snapshot!("https_to_the_plain_server", render(&err, plain.port()));
}

#[test]
fn a_missing_ca_file_is_a_kubeconfig_error() {
    let api = TlsApi::start("1.30", Options::default());
    let (dir, kubeconfig) = common::kubeconfig_path();
    let ca = dir.path().join("ca.crt");
    api.write_kubeconfig_tls(&kubeconfig, Trust::CaFile(&ca), Credentials::Token, None);
    std::fs::remove_file(&ca).unwrap();
    let err = exercise(&kubeconfig).unwrap_err();
    assert!(matches!(err, ClusterError::Kubeconfig { .. }), "{err:?}");
    let text = format!("{err}\n{}", help(&err));
    assert!(text.contains("ca.crt"), "names the file: {text}");
}

#[test]
fn watches_work_over_tls() {
    use std::io::{BufRead, BufReader, Read, Write};
    // A raw HTTPS client trusting the test CA, with a client certificate.
    let api = TlsApi::start("1.30", Options::default());
    api.put_object(
        "/api/v1/namespaces/ns",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}),
    );
    api.create_pod("ns", "p", &[("app", "x")], &[], serde_json::Value::Null).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(api.ca.der()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(api.client.key_der.clone().into());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![api.client.cert_der.clone()], key)
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", api.port())).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(
        b"GET /api/v1/pods?watch=true&timeoutSeconds=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut reader = BufReader::new(tls);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    assert!(rest.contains(r#""type":"ADDED""#), "{rest}");
    assert!(rest.ends_with("0\r\n\r\n"), "{rest:?}");
    assert!(api.requests()[0].client_certificate);
}
