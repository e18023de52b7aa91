//! Certificate authentication over real TLS: a client certificate signed by the simulator's
//! client CA authenticates as the account its CN names (no password); one from another CA
//! fails the TLS handshake, as on ONTAP with `security ssl modify -client-enabled true`;
//! without a certificate basic auth is still required.

use ontap_client::tls::ClientIdentity;
use ontap_client::{Client, Query, SecretString};
use ontap_sim::{SimError, SimServer};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA and its issuer.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A client certificate for `cn` signed by `ca`: (certificate PEM, key PEM).
fn client_cert(ca: &Ca, cn: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn client(sim: &SimServer, identity: Option<&(String, String)>, password: Option<&str>) -> Client {
    let mut b = Client::builder(sim.url())
        .add_ca_pem(sim.ca_pem().unwrap().as_bytes().to_vec())
        .trust_only_added_cas(true);
    if let Some((cert, key)) = identity {
        b = b.client_identity(ClientIdentity::from_pem(
            cert.as_bytes().to_vec(),
            SecretString::from(key.clone()),
        ));
    }
    if let Some(p) = password {
        b = b.basic_auth("admin", SecretString::from(p.to_owned()));
    }
    b.build().unwrap()
}

async fn svm_names(c: &Client) -> Result<Vec<String>, ontap_client::Error> {
    let svms = c.svms().list_all(&Query::new().fields(["name"])).await?;
    Ok(svms.into_iter().filter_map(|s| s.name).collect())
}

#[tokio::test]
async fn client_certificate_of_the_client_ca_authenticates_as_its_cn() {
    let good = ca("kvmstor test client CA");
    let sim = SimServer::builder()
        .client_ca_pem(good.pem.clone())
        .start()
        .await
        .unwrap();
    let admin = client_cert(&good, "admin");

    // Certificate, no password: authenticated as admin.
    let names = svm_names(&client(&sim, Some(&admin), None)).await.unwrap();
    assert_eq!(names, ["svm1"]);

    // No certificate, no password: 401.
    let e = svm_names(&client(&sim, None, None)).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");

    // No certificate, the password: basic auth still works.
    let pw = {
        use secrecy::ExposeSecret;
        sim.password().expose_secret().to_owned()
    };
    assert_eq!(
        svm_names(&client(&sim, None, Some(&pw))).await.unwrap(),
        ["svm1"]
    );

    // A certificate of the right CA for an account that does not exist: 401.
    let stranger = client_cert(&good, "intruder");
    let e = svm_names(&client(&sim, Some(&stranger), None))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");

    // A certificate from another CA, even with CN admin: the handshake fails (no HTTP
    // status at all), as ONTAP refuses a chain it cannot verify.
    let other = ca("someone else's CA");
    let forged = client_cert(&other, "admin");
    let e = svm_names(&client(&sim, Some(&forged), None))
        .await
        .unwrap_err();
    assert_eq!(e.status(), None, "{e}");
    assert!(
        matches!(e, ontap_client::Error::Transport { .. }),
        "expected a transport (handshake) error, got {e:?}"
    );
}

#[tokio::test]
async fn without_a_client_ca_certificates_are_not_asked_for() {
    let some = ca("unused CA");
    let sim = SimServer::builder().start().await.unwrap();
    let admin = client_cert(&some, "admin");
    // The server does not request a certificate: the client's is never sent.
    let e = svm_names(&client(&sim, Some(&admin), None))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
}

#[tokio::test]
async fn an_unusable_client_ca_is_a_typed_start_error() {
    let e = SimServer::builder()
        .client_ca_pem("not a certificate")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(e, SimError::ClientCa(_)), "{e:?}");
}
