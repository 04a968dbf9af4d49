//! HTTPS for the fake API server: a CA made in the test (rcgen), a server certificate for
//! 127.0.0.1 and localhost signed by it, client certificates signed by it accepted as
//! authentication (a client may also present none, and then needs the bearer token), and
//! kubeconfigs that trust the CA (as data or as a file), a wrong CA, or none.
//!
//! Include it next to `fake_api` (it needs the rcgen, rustls and base64 dev-dependencies):
//! ```ignore
//! mod fake_api;
//! #[path = "fake_api/tls.rs"]
//! mod fake_tls;
//! ```
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpStream;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::fake_api::{FakeApi, Options, Stream, Tls, TOKEN};

/// What the Go API server answers a plain HTTP request on its HTTPS port (net/http's words).
pub const PLAIN_HTTP_ANSWER: &str = "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

/// A certificate and its key, PEM and DER.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl TestCa {
    /// A new CA whose certificate names `name` (its common name).
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("rcgen: CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("rcgen: CA key");
        let cert = params.self_signed(&key).expect("rcgen: self-sign the CA");
        TestCa { der: cert.der().clone(), pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// The CA's certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.der.clone()
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn issue_server(&self) -> Issued {
        self.issue("fake-apiserver", &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for the user `common_name` (as kubeadm makes them: CN = user).
    pub fn issue_client(&self, common_name: &str) -> Issued {
        self.issue(common_name, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, common_name: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Issued {
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("rcgen: leaf params");
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("rcgen: leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("rcgen: sign the leaf");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

/// The server's side of TLS: its certificate, and client certificates checked against the CA.
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    pub fn new(ca: &TestCa, server: &Issued) -> ServerTls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der()).expect("rustls: add the test CA");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .expect("rustls: client verifier");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls: protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server.cert_der.clone()], key)
            .expect("rustls: server certificate");
        ServerTls { config: Arc::new(config) }
    }
}

impl Tls for ServerTls {
    fn accept(&self, mut tcp: TcpStream) -> Option<(Box<dyn Stream>, bool)> {
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
        // A TLS connection starts with a handshake record (22); anything else is plain HTTP,
        // answered as the Go API server answers it.
        let mut first = [0u8; 1];
        match tcp.peek(&mut first) {
            Ok(1) if first[0] == 0x16 => {}
            Ok(1) => {
                let _ = tcp.write_all(PLAIN_HTTP_ANSWER.as_bytes());
                return None;
            }
            _ => return None,
        }
        let mut conn = rustls::ServerConnection::new(Arc::clone(&self.config)).ok()?;
        while conn.is_handshaking() {
            if conn.complete_io(&mut tcp).is_err() {
                // Send the alert (e.g. a client that did not trust our certificate), then go.
                let _ = conn.write_tls(&mut tcp);
                return None;
            }
        }
        let _ = tcp.set_read_timeout(None);
        let client_certificate = conn.peer_certificates().is_some_and(|certs| !certs.is_empty());
        Some((Box::new(rustls::StreamOwned::new(conn, tcp)), client_certificate))
    }
}

/// Which CA a kubeconfig trusts.
#[derive(Clone, Copy, Debug)]
pub enum Trust<'a> {
    /// `certificate-authority-data`: the server's CA, base64 PEM.
    CaData,
    /// `certificate-authority: PATH`: the server's CA, written to PATH.
    CaFile(&'a Path),
    /// `certificate-authority-data` of another CA, which did not sign the server's certificate.
    WrongCaData,
    /// No CA: the system's roots, which do not know the test CA either.
    SystemRoots,
}

/// How a kubeconfig's user authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// `token: fake-token`.
    Token,
    /// `client-certificate-data` and `client-key-data`: a certificate the server's CA signed.
    ClientCertificate,
    /// A client certificate signed by another CA (the server refuses the handshake).
    ForeignClientCertificate,
    /// Neither (the server answers 401).
    Nothing,
}

/// A fake API server over HTTPS, with its CA and a client certificate. Derefs to [`FakeApi`].
pub struct TlsApi {
    pub api: FakeApi,
    pub ca: TestCa,
    /// A client certificate the server accepts (CN `fake-user`).
    pub client: Issued,
    /// Another CA, for kubeconfigs that trust the wrong one.
    pub other_ca: TestCa,
}

impl Deref for TlsApi {
    type Target = FakeApi;
    fn deref(&self) -> &FakeApi {
        &self.api
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

impl TlsApi {
    /// Starts an HTTPS fake server for Kubernetes `version` with `options` (their `tls` is
    /// replaced by this server's).
    pub fn start(version: &str, options: Options) -> TlsApi {
        let ca = TestCa::new("fake-api-test-ca");
        let server = ca.issue_server();
        let client = ca.issue_client("fake-user");
        let tls: Arc<dyn Tls> = Arc::new(ServerTls::new(&ca, &server));
        let api = FakeApi::start_with(version, Options { tls: Some(tls), ..options });
        TlsApi { api, ca, client, other_ca: TestCa::new("some-other-ca") }
    }

    /// `http://127.0.0.1:PORT`: this server's address with the wrong scheme.
    pub fn plain_url(&self) -> String {
        self.api.url().replacen("https://", "http://", 1)
    }

    /// Writes a kubeconfig whose current context `fake` (namespace default) reaches this server
    /// at `server` (by default [`FakeApi::url`]), trusting `trust` and authenticating with
    /// `credentials`.
    pub fn write_kubeconfig_tls(&self, path: &Path, trust: Trust<'_>, credentials: Credentials, server: Option<&str>) {
        let url = server.map(str::to_string).unwrap_or_else(|| self.api.url());
        let ca_line = match trust {
            Trust::CaData => format!("\n    certificate-authority-data: {}", b64(self.ca.pem())),
            Trust::CaFile(ca_path) => {
                std::fs::write(ca_path, self.ca.pem()).expect("fake_api: write the CA file");
                format!("\n    certificate-authority: {}", ca_path.display())
            }
            Trust::WrongCaData => format!("\n    certificate-authority-data: {}", b64(self.other_ca.pem())),
            Trust::SystemRoots => String::new(),
        };
        let user = match credentials {
            Credentials::Token => format!("    token: {TOKEN}"),
            Credentials::ClientCertificate => format!(
                "    client-certificate-data: {}\n    client-key-data: {}",
                b64(&self.client.cert_pem),
                b64(&self.client.key_pem)
            ),
            Credentials::ForeignClientCertificate => {
                let foreign = self.other_ca.issue_client("fake-user");
                format!(
                    "    client-certificate-data: {}\n    client-key-data: {}",
                    b64(&foreign.cert_pem),
                    b64(&foreign.key_pem)
                )
            }
            Credentials::Nothing => "    {}".to_string(),
        };
        let user =
            if credentials == Credentials::Nothing { "  user: {}".to_string() } else { format!("  user:\n{user}") };
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}{ca_line}
users:
- name: fake
{user}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: default
current-context: fake
preferences: {{}}
"
        );
        std::fs::write(path, text).expect("fake_api: write kubeconfig");
    }
}
