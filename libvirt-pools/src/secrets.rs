//! libvirt secrets holding iSCSI CHAP passwords.
//!
//! The password goes to libvirt through `virSecretSetValue` (an API call, never argv, never
//! logged). Secrets this crate defines carry a fixed description, so `remove` only undefines
//! secrets it made.

use secrecy::{ExposeSecret, SecretString};
use virt::error::ErrorNumber;

use crate::client::{lv_err, Libvirt};
use crate::error::{Error, NameKind, NameProblem, Operation, Result};
use crate::names::Outcome;
use crate::xml::Element;

/// Description stamped on secrets this crate defines.
pub const SECRET_DESCRIPTION: &str = "kvmstor iSCSI CHAP secret";

fn check_usage(usage: &str) -> Result<()> {
    let problem = if usage.is_empty() {
        Some(NameProblem::Empty)
    } else if usage.chars().any(char::is_control) {
        Some(NameProblem::ControlCharacter)
    } else if usage.len() > 255 {
        Some(NameProblem::TooLong)
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::InvalidName {
            kind: NameKind::Secret,
            name: usage.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// The XML of a private, persistent iSCSI secret with the given usage name.
pub fn iscsi_secret_xml(usage: &str) -> String {
    Element::new("secret")
        .attr("ephemeral", "no")
        .attr("private", "yes")
        .child(Element::leaf("description", SECRET_DESCRIPTION))
        .child(
            Element::new("usage")
                .attr("type", "iscsi")
                .child(Element::leaf("target", usage)),
        )
        .render()
}

/// Secret operations; from [`Libvirt::secrets`].
#[derive(Debug, Clone)]
pub struct Secrets {
    pub(crate) lv: Libvirt,
}

fn lookup(conn: &virt::connect::Connect, usage: &str) -> Result<Option<virt::secret::Secret>> {
    match conn.lookup_secret_by_usage(virt::sys::VIR_SECRET_USAGE_TYPE_ISCSI as i32, usage) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.code().is(ErrorNumber::NoSecret) => Ok(None),
        Err(e) => Err(lv_err(Operation::LookupSecret, None, Some(usage))(e)),
    }
}

impl Secrets {
    /// Defines (or keeps) the iSCSI secret `usage` and sets its value to `password`.
    /// Returns the secret's UUID and `Changed` when the secret was newly defined (the value
    /// is set either way: a private value cannot be read back to compare).
    pub async fn ensure_iscsi(
        &self,
        usage: &str,
        password: &SecretString,
    ) -> Result<(String, Outcome)> {
        check_usage(usage)?;
        let usage = usage.to_owned();
        let password = password.clone();
        self.lv
            .run(Operation::DefineSecret, move |conn| {
                let err = |op| lv_err(op, None, Some(usage.as_str()));
                let (secret, outcome) = match lookup(conn, &usage)? {
                    Some(s) => (s, Outcome::Unchanged),
                    None => (
                        conn.define_secret_xml(&iscsi_secret_xml(&usage), 0)
                            .map_err(err(Operation::DefineSecret))?,
                        Outcome::Changed,
                    ),
                };
                secret
                    .set_value(password.expose_secret().as_bytes(), 0)
                    .map_err(err(Operation::DefineSecret))?;
                let uuid = secret.uuid_string().map_err(err(Operation::LookupSecret))?;
                Ok((uuid, outcome))
            })
            .await
    }

    /// Undefines the iSCSI secret `usage` whatever made it. `Unchanged` when absent.
    pub async fn remove_iscsi(&self, usage: &str) -> Result<Outcome> {
        self.remove(usage, false).await
    }

    /// Undefines the iSCSI secret `usage` only if this crate defined it (by its
    /// description). `Unchanged` when absent or not ours.
    pub async fn remove_iscsi_if_ours(&self, usage: &str) -> Result<Outcome> {
        self.remove(usage, true).await
    }

    /// UUID of the iSCSI secret `usage`, if defined.
    pub async fn iscsi_uuid(&self, usage: &str) -> Result<Option<String>> {
        check_usage(usage)?;
        let usage = usage.to_owned();
        self.lv
            .run(Operation::LookupSecret, move |conn| {
                match lookup(conn, &usage)? {
                    Some(s) => s.uuid_string().map(Some).map_err(lv_err(
                        Operation::LookupSecret,
                        None,
                        Some(usage.as_str()),
                    )),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn remove(&self, usage: &str, only_ours: bool) -> Result<Outcome> {
        check_usage(usage)?;
        let usage = usage.to_owned();
        self.lv
            .run(Operation::UndefineSecret, move |conn| {
                let err = |op| lv_err(op, None, Some(usage.as_str()));
                let Some(secret) = lookup(conn, &usage)? else {
                    return Ok(Outcome::Unchanged);
                };
                if only_ours {
                    let xml = secret.xml_desc(0).map_err(err(Operation::LookupSecret))?;
                    let ours = Element::parse("secret", &xml)?.child_text("description")
                        == Some(SECRET_DESCRIPTION);
                    if !ours {
                        return Ok(Outcome::Unchanged);
                    }
                }
                secret.undefine().map_err(err(Operation::UndefineSecret))?;
                Ok(Outcome::Changed)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_xml_is_private_and_persistent() {
        assert_eq!(
            iscsi_secret_xml("ds1-chap"),
            "<secret ephemeral=\"no\" private=\"yes\">\n  \
             <description>kvmstor iSCSI CHAP secret</description>\n  \
             <usage type=\"iscsi\">\n    <target>ds1-chap</target>\n  </usage>\n</secret>"
        );
    }

    #[test]
    fn refuses_bad_usage_names() {
        assert!(matches!(
            check_usage("a\nb"),
            Err(Error::InvalidName {
                kind: NameKind::Secret,
                problem: NameProblem::ControlCharacter,
                ..
            })
        ));
        assert!(check_usage("").is_err());
        assert!(check_usage("iqn.2024-01.lab.test:target1").is_ok());
    }
}
