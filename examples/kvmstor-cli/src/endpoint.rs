//! How to reach ONTAP: a URL, a user, where the password comes from (never a flag), the CA
//! to trust and an optional client certificate.

use std::path::{Path, PathBuf};

use ontap_client::tls::ClientIdentity;
use ontap_client::{Client, SecretString};
use serde::Deserialize;

/// Why the endpoint could not be turned into a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// A file named by the endpoint could not be read.
    #[error("cannot read {what} {path}", path = path.display())]
    Read {
        /// What the file holds: `password file`, `CA file`, `certificate`, `key`, `config`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not the expected JSON.
    #[error("config file {path} is not valid", path = path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// The password's environment variable is not set.
    #[error("environment variable {name} is not set")]
    MissingEnv {
        /// The variable.
        name: String,
    },
    /// Prompting for the password failed (no terminal?).
    #[error("cannot prompt for the ONTAP password")]
    Prompt {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A client certificate was given without its key, or the reverse.
    #[error("a client certificate needs both a certificate and a key file")]
    HalfIdentity,
    /// The client builder refused the settings.
    #[error("cannot build the ONTAP client")]
    Build {
        /// The client's error.
        #[source]
        source: Box<ontap_client::Error>,
    },
}

/// Where the basic-auth password comes from. There is deliberately no "literal" variant a
/// command line could fill: argv is visible to every user of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordSource {
    /// The first line of this file.
    File(PathBuf),
    /// This environment variable.
    Env(String),
    /// Ask on the terminal, echo off.
    Prompt,
    /// No basic auth (certificate authentication).
    None,
}

/// The ONTAP endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL, e.g. `https://cluster1.example.com`.
    pub url: String,
    /// Basic-auth user.
    pub username: String,
    /// Where the password comes from.
    pub password: PasswordSource,
    /// PEM file of the CA to trust (only it, when given).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (certificate authentication).
    pub cert_file: Option<PathBuf>,
    /// PEM key of the client certificate.
    pub key_file: Option<PathBuf>,
}

/// The config file (JSON): every field optional, flags override it.
///
/// ```json
/// {"url": "https://cluster1.example.com", "username": "admin",
///  "password_file": "/etc/kvmstor/ontap.pass", "ca_file": "/etc/kvmstor/ca.pem"}
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Base URL.
    pub url: Option<String>,
    /// Basic-auth user.
    pub username: Option<String>,
    /// Password file.
    pub password_file: Option<PathBuf>,
    /// Password environment variable.
    pub password_env: Option<String>,
    /// CA PEM file.
    pub ca_file: Option<PathBuf>,
    /// Client certificate PEM file.
    pub cert_file: Option<PathBuf>,
    /// Client key PEM file.
    pub key_file: Option<PathBuf>,
    /// Journal directory.
    pub journal_dir: Option<PathBuf>,
}

impl ConfigFile {
    /// Reads and decodes `path`.
    pub fn read(path: &Path) -> Result<ConfigFile, EndpointError> {
        let text = read(path, "config")?;
        serde_json::from_str(&text).map_err(|source| EndpointError::Config {
            path: path.to_owned(),
            source,
        })
    }
}

fn read(path: &Path, what: &'static str) -> Result<String, EndpointError> {
    std::fs::read_to_string(path).map_err(|source| EndpointError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Resolves a password source: the file's first line, the variable, or a prompt (echo off)
/// saying `prompt`; `None` for [`PasswordSource::None`].
pub fn resolve_secret(
    source: &PasswordSource,
    prompt: &str,
) -> Result<Option<SecretString>, EndpointError> {
    Ok(match source {
        PasswordSource::File(p) => {
            let text = read(p, "password file")?;
            Some(SecretString::from(
                text.lines().next().unwrap_or("").to_owned(),
            ))
        }
        PasswordSource::Env(name) => {
            Some(SecretString::from(std::env::var(name).map_err(|_| {
                EndpointError::MissingEnv { name: name.clone() }
            })?))
        }
        PasswordSource::Prompt => Some(SecretString::from(
            rpassword::prompt_password(prompt)
                .map_err(|source| EndpointError::Prompt { source })?,
        )),
        PasswordSource::None => None,
    })
}

/// The environment variable read for the SMB account's password when no other source is
/// given.
pub const SMB_PASSWORD_ENV: &str = "KVMSTOR_SMB_PASSWORD";

/// The environment variable read when no other password source is given.
pub const PASSWORD_ENV: &str = "KVMSTOR_ONTAP_PASSWORD";

impl Endpoint {
    /// `url` as `admin`, password from [`PASSWORD_ENV`] if set, else a prompt.
    pub fn new(url: impl Into<String>) -> Self {
        Endpoint {
            url: url.into(),
            username: "admin".into(),
            password: if std::env::var_os(PASSWORD_ENV).is_some() {
                PasswordSource::Env(PASSWORD_ENV.into())
            } else {
                PasswordSource::Prompt
            },
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }

    /// Sets the password source.
    #[must_use]
    pub fn password(mut self, source: PasswordSource) -> Self {
        self.password = source;
        self
    }

    /// Resolves the password (reading the file or variable, or prompting).
    pub fn resolve_password(&self) -> Result<Option<SecretString>, EndpointError> {
        resolve_secret(
            &self.password,
            &format!("ONTAP password for {}: ", self.username),
        )
    }

    /// Builds the client: basic auth with the resolved password, the CA file as the only
    /// trusted CA, the client identity when both certificate and key are given.
    pub fn connect(&self) -> Result<Client, EndpointError> {
        let password = self.resolve_password()?;
        self.connect_with(password)
    }

    /// As [`Endpoint::connect`] with an already resolved password.
    pub fn connect_with(&self, password: Option<SecretString>) -> Result<Client, EndpointError> {
        let mut b =
            Client::builder(self.url.clone()).application("kvmstor-cli", env!("CARGO_PKG_VERSION"));
        if let Some(pw) = password {
            b = b.basic_auth(self.username.clone(), pw);
        }
        if let Some(ca) = &self.ca_file {
            b = b
                .add_ca_pem(read(ca, "CA file")?.into_bytes())
                .trust_only_added_cas(true);
        }
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => {
                let cert = read(c, "certificate")?;
                let key = SecretString::from(read(k, "key")?);
                b = b.client_identity(ClientIdentity::from_pem(cert.into_bytes(), key));
            }
            (None, None) => {}
            _ => return Err(EndpointError::HalfIdentity),
        }
        b.build().map_err(|source| EndpointError::Build {
            source: Box::new(source),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn password_file_first_line_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\nignored\n").unwrap();
        let ep = Endpoint::new("https://c1").password(PasswordSource::File(p));
        assert_eq!(
            ep.resolve_password().unwrap().unwrap().expose_secret(),
            "s3cret"
        );
    }

    #[test]
    fn missing_env_is_typed() {
        let ep = Endpoint::new("https://c1")
            .password(PasswordSource::Env("KVMSTOR_TEST_UNSET_VAR".into()));
        match ep.resolve_password() {
            Err(EndpointError::MissingEnv { name }) => assert_eq!(name, "KVMSTOR_TEST_UNSET_VAR"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn half_identity_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("c.pem");
        std::fs::write(&c, "x").unwrap();
        let mut ep = Endpoint::new("https://c1").password(PasswordSource::None);
        ep.cert_file = Some(c);
        assert!(matches!(ep.connect(), Err(EndpointError::HalfIdentity)));
    }

    #[test]
    fn config_rejects_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        std::fs::write(&p, r#"{"url":"https://c1","password":"x"}"#).unwrap();
        assert!(matches!(
            ConfigFile::read(&p),
            Err(EndpointError::Config { .. })
        ));
        std::fs::write(&p, r#"{"url":"https://c1","password_file":"/p"}"#).unwrap();
        let c = ConfigFile::read(&p).unwrap();
        assert_eq!(c.url.as_deref(), Some("https://c1"));
        assert_eq!(c.password_file, Some(PathBuf::from("/p")));
    }
}
