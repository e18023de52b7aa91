//! TLS material: extra trust anchors and the client certificate.
//!
//! Verification is on by default (the platform's trust store plus any CA added with
//! [`crate::ClientBuilder::add_ca_pem`]). Turning it off needs
//! [`crate::ClientBuilder::danger_accept_invalid_certs`], which logs a warning at build time.

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};

use crate::error::BuildError;

/// Parses every certificate in a PEM bundle.
pub(crate) fn ca_certificates(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, BuildError> {
    reqwest::Certificate::from_pem_bundle(pem).map_err(BuildError::InvalidCaCertificate)
}

/// A client certificate chain with its private key, for mutual-TLS authentication.
///
/// ONTAP maps the certificate's common name to the account name; the account needs the
/// `certificate` authentication method for the `http` application.
#[derive(Clone)]
pub struct ClientIdentity {
    cert_pem: Vec<u8>,
    key_pem: SecretString,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_pem_bytes", &self.cert_pem.len())
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

impl ClientIdentity {
    /// A certificate chain (PEM) and its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_pem: impl Into<Vec<u8>>, key_pem: SecretString) -> Self {
        Self {
            cert_pem: cert_pem.into(),
            key_pem,
        }
    }

    /// Builds the TLS identity; the joined copy of the key is wiped afterwards.
    pub(crate) fn to_reqwest(&self) -> Result<reqwest::Identity, BuildError> {
        let key = self.key_pem.expose_secret().as_bytes();
        let mut buf = Vec::with_capacity(self.cert_pem.len() + key.len() + 1);
        buf.extend_from_slice(&self.cert_pem);
        buf.push(b'\n');
        buf.extend_from_slice(key);
        let identity = reqwest::Identity::from_pem(&buf);
        buf.zeroize();
        identity.map_err(BuildError::InvalidClientIdentity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_ca_is_rejected() {
        let err = ca_certificates(
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, BuildError::InvalidCaCertificate(_)),
            "{err:?}"
        );
    }

    #[test]
    fn empty_bundle_has_no_certs() {
        assert_eq!(ca_certificates(b"").unwrap().len(), 0);
    }

    #[test]
    fn identity_debug_hides_key() {
        let id = ClientIdentity::from_pem(
            b"-----BEGIN CERTIFICATE-----\n".to_vec(),
            SecretString::from("PLANTED-KEY-MATERIAL"),
        );
        let dbg = format!("{id:?}");
        assert!(!dbg.contains("PLANTED"), "{dbg}");
        let err = id.to_reqwest().unwrap_err();
        assert!(!format!("{err:?} {err}").contains("PLANTED"));
    }
}
