//! Samba shares: an include file for `smb.conf` rendered from the CIFS shares.

use std::path::PathBuf;

/// One share section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Share name (validated).
    pub name: String,
    /// Directory shared.
    pub path: PathBuf,
    /// No ACL grants `change` or `full_control`.
    pub read_only: bool,
    /// Users and groups of the ACLs (empty when `Everyone` is among them).
    pub valid_users: Vec<String>,
}

/// First line of the managed file.
pub const HEADER: &str = "# Managed by ontap-sim (kernel backend): rewritten on every change.\n";

/// Read-only flag and valid users from an ONTAP share's `acls`, with names already checked
/// by `check` (an error there refuses the share).
pub fn acl_access<E>(
    share: &serde_json::Value,
    check: impl Fn(&str) -> Result<String, E>,
) -> Result<(bool, Vec<String>), E> {
    let acls = share["acls"].as_array().cloned().unwrap_or_default();
    let writable = acls.iter().any(|a| {
        matches!(
            a["permission"].as_str(),
            Some("change") | Some("full_control")
        )
    });
    let everyone = acls
        .iter()
        .any(|a| a["user_or_group"].as_str() == Some("Everyone"));
    let mut users = Vec::new();
    if !everyone {
        for a in &acls {
            if a["permission"].as_str() == Some("no_access") {
                continue;
            }
            if let Some(u) = a["user_or_group"].as_str() {
                users.push(check(u)?);
            }
        }
    }
    Ok((!writable, users))
}

/// The include file for these shares.
pub fn render(shares: &[Share]) -> String {
    let mut out = String::from(HEADER);
    for s in shares {
        out.push_str(&format!(
            "\n[{}]\n   path = {}\n   read only = {}\n   browseable = yes\n",
            s.name,
            s.path.to_string_lossy(),
            if s.read_only { "yes" } else { "no" }
        ));
        if !s.valid_users.is_empty() {
            out.push_str(&format!("   valid users = {}\n", s.valid_users.join(" ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_exact_sections() {
        let s = json!({"acls": [{"permission": "read", "user_or_group": "alice"},
                                {"permission": "full_control", "user_or_group": "bob"}]});
        let (ro, users) = acl_access(&s, |u| Ok::<_, ()>(u.to_string())).unwrap();
        assert!(!ro);
        assert_eq!(users, vec!["alice", "bob"]);
        let everyone = json!({"acls": [{"permission": "read", "user_or_group": "Everyone"}]});
        assert_eq!(
            acl_access(&everyone, |u| Ok::<_, ()>(u.to_string())).unwrap(),
            (true, vec![])
        );
        let text = render(&[Share {
            name: "data".into(),
            path: "/lab/export/vol1/data".into(),
            read_only: false,
            valid_users: vec!["alice".into(), "bob".into()],
        }]);
        assert_eq!(
            text,
            format!(
                "{HEADER}\n[data]\n   path = /lab/export/vol1/data\n   read only = no\n   browseable = yes\n   valid users = alice bob\n"
            )
        );
    }
}
