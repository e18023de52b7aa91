//! TLS: verification on by default, extra CAs, the danger switch, and client certificates,
//! against an in-test HTTPS server with certificates made by rcgen.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use ontap_client::{Client, ClientIdentity, Error, Query, RetryPolicy, SecretString};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

struct Pki {
    ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    ca_der: CertificateDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kvmstor test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    server_params
        .extended_key_usages
        .push(ExtendedKeyUsagePurpose::ServerAuth);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "admin");
    client_params
        .extended_key_usages
        .push(ExtendedKeyUsagePurpose::ClientAuth);
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client_params.signed_by(&client_key, &ca).unwrap();

    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_chain: vec![server_cert.der().clone()],
        server_key: server_key.serialize_der(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((sock, addr)) = self.tcp.accept().await else {
                continue;
            };
            // Failed handshakes (an untrusting client) are simply dropped.
            if let Ok(tls) = self.acceptor.accept(sock).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Starts an HTTPS server answering `GET /api/cluster`; with `require_client_cert`, only
/// clients presenting a certificate from the test CA get through.
async fn https_server(pki: &Pki, require_client_cert: bool) -> String {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone()));
    let mut config = builder
        .with_single_cert(pki.server_chain.clone(), key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let app = Router::new().route(
        "/api/cluster",
        get(|| async { axum::Json(serde_json::json!({"name": "cluster1"})) }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("https://127.0.0.1:{port}")
}

async fn get_cluster(client: &Client) -> Result<serde_json::Value, Error> {
    client.raw().get("/api/cluster", &Query::new()).await
}

#[tokio::test]
async fn verification_is_on_by_default() {
    let pki = pki();
    let base = https_server(&pki, false).await;
    let client = Client::builder(&base)
        .retry_policy(RetryPolicy::never())
        .build()
        .unwrap();
    let err = get_cluster(&client).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                may_have_been_sent: false,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn added_ca_is_trusted() {
    let pki = pki();
    let base = https_server(&pki, false).await;
    let client = Client::builder(&base)
        .add_ca_pem(pki.ca_pem.clone())
        .build()
        .unwrap();
    assert_eq!(get_cluster(&client).await.unwrap()["name"], "cluster1");

    let only = Client::builder(&base)
        .add_ca_pem(pki.ca_pem.clone())
        .trust_only_added_cas(true)
        .build()
        .unwrap();
    assert_eq!(get_cluster(&only).await.unwrap()["name"], "cluster1");
}

#[tokio::test]
async fn danger_switch_accepts_unknown_issuer() {
    let pki = pki();
    let base = https_server(&pki, false).await;
    let client = Client::builder(&base)
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    assert_eq!(get_cluster(&client).await.unwrap()["name"], "cluster1");
}

#[tokio::test]
async fn client_certificate_authentication() {
    let pki = pki();
    let base = https_server(&pki, true).await;
    let with_cert = Client::builder(&base)
        .add_ca_pem(pki.ca_pem.clone())
        .client_identity(ClientIdentity::from_pem(
            pki.client_cert_pem.clone(),
            SecretString::from(pki.client_key_pem.clone()),
        ))
        .build()
        .unwrap();
    assert_eq!(get_cluster(&with_cert).await.unwrap()["name"], "cluster1");

    let without = Client::builder(&base)
        .add_ca_pem(pki.ca_pem.clone())
        .retry_policy(RetryPolicy::never())
        .build()
        .unwrap();
    let err = get_cluster(&without).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
}
