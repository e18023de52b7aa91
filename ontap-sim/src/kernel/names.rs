//! Validation of names that reach a path, a configfs entry or a configuration line.
//!
//! Names from the API can contain anything; nothing reaches the host unless it passes one
//! of these checks (volumes and LUN backstores live under their UUIDs on disk).

use std::net::IpAddr;

use super::KernelError;

fn bad(what: &'static str, value: &str, reason: &'static str) -> KernelError {
    KernelError::Name {
        what,
        value: value.chars().take(200).collect(),
        reason,
    }
}

/// A UUID as the simulator hands them out (36 characters, hex digits and dashes).
pub fn uuid<'a>(what: &'static str, s: &'a str) -> Result<&'a str, KernelError> {
    let ok = s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then_some(s)
        .ok_or_else(|| bad(what, s, "expected a UUID"))
}

/// One path component: `[A-Za-z0-9_.-]`, 1–255 bytes, not `.`/`..`, not starting with `-`.
pub fn component<'a>(what: &'static str, s: &'a str) -> Result<&'a str, KernelError> {
    if s.is_empty() || s.len() > 255 {
        return Err(bad(what, s, "must be 1 to 255 characters"));
    }
    if s == "." || s == ".." || s.starts_with('-') {
        return Err(bad(
            what,
            s,
            "must not be \".\", \"..\" or start with \"-\"",
        ));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(bad(what, s, "only letters, digits, \"_\", \".\" and \"-\""));
    }
    Ok(s)
}

/// An absolute path such as a junction path (`/vol1/sub`): its components, each checked
/// with [`component`].
pub fn abs_path(what: &'static str, s: &str) -> Result<Vec<String>, KernelError> {
    let rest = s
        .strip_prefix('/')
        .ok_or_else(|| bad(what, s, "must start with \"/\""))?;
    let parts: Vec<String> = rest
        .split('/')
        .filter(|p| !p.is_empty())
        .map(|p| component(what, p).map(str::to_string))
        .collect::<Result<_, _>>()?;
    Ok(parts)
}

/// An iSCSI name (`iqn.…` or `eui.…`), lower case, at most 223 bytes.
pub fn iscsi_name<'a>(what: &'static str, s: &'a str) -> Result<&'a str, KernelError> {
    if !(s.starts_with("iqn.") || s.starts_with("eui.")) || s.len() > 223 {
        return Err(bad(what, s, "expected iqn.… or eui.…, at most 223 bytes"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | ':' | '-'))
    {
        return Err(bad(
            what,
            s,
            "only lower-case letters, digits, \".\", \":\" and \"-\"",
        ));
    }
    Ok(s)
}

/// An NVMe qualified name (`nqn.…`), at most 223 bytes, no `/` or white space.
pub fn nqn<'a>(what: &'static str, s: &'a str) -> Result<&'a str, KernelError> {
    if !s.starts_with("nqn.") || s.len() > 223 {
        return Err(bad(what, s, "expected nqn.…, at most 223 bytes"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_'))
    {
        return Err(bad(
            what,
            s,
            "only letters, digits, \".\", \":\", \"-\" and \"_\"",
        ));
    }
    Ok(s)
}

/// An IP address.
pub fn ip(what: &'static str, s: &str) -> Result<IpAddr, KernelError> {
    s.parse::<IpAddr>()
        .map_err(|_| bad(what, s, "expected an IP address"))
}

/// An NFS client match (`*`, address, CIDR, host name, `@netgroup`, wildcard host).
pub fn export_client<'a>(what: &'static str, s: &'a str) -> Result<&'a str, KernelError> {
    if s.is_empty() || s.len() > 255 {
        return Err(bad(what, s, "must be 1 to 255 characters"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '/' | '@' | '*' | '_' | '-'))
    {
        return Err(bad(what, s, "not a host, address, network or netgroup"));
    }
    Ok(s)
}

/// A CIFS share name or user name for `smb.conf`: letters, digits, `_ . $ - @ \`.
pub fn smb_word<'a>(what: &'static str, s: &'a str) -> Result<&'a str, KernelError> {
    if s.is_empty() || s.len() > 80 {
        return Err(bad(what, s, "must be 1 to 80 characters"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$' | '-' | '@' | '\\'))
    {
        return Err(bad(
            what,
            s,
            "only letters, digits, \"_\", \".\", \"$\", \"-\", \"@\" and \"\\\"",
        ));
    }
    Ok(s)
}

/// A CHAP user name: printable ASCII without white space, at most 255 bytes.
pub fn chap_user<'a>(what: &'static str, s: &'a str) -> Result<&'a str, KernelError> {
    if s.is_empty() || s.len() > 255 || !s.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad(
            what,
            s,
            "printable ASCII without white space, 1 to 255 bytes",
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_refuse_traversal_and_odd_characters() {
        assert_eq!(component("x", "vol_1.a-b").unwrap(), "vol_1.a-b");
        for s in ["", ".", "..", "-rf", "a/b", "a b", "é", "a\nb"] {
            assert!(component("x", s).is_err(), "{s:?}");
        }
        assert_eq!(abs_path("j", "/vol1//q").unwrap(), vec!["vol1", "q"]);
        assert!(abs_path("j", "vol1").is_err());
        assert!(abs_path("j", "/vol1/../etc").is_err());
        assert!(abs_path("j", "/").unwrap().is_empty());
    }

    #[test]
    fn identifiers() {
        assert!(uuid("u", "0c5f2f5a-1d0a-4b5e-9a3f-2c7f0e6d9b11").is_ok());
        assert!(uuid("u", "0c5f2f5a-1d0a-4b5e-9a3f-2c7f0e6d9b1/").is_err());
        assert!(iscsi_name("i", "iqn.1994-05.com.redhat:abc").is_ok());
        assert!(iscsi_name("i", "iqn.1994-05.com.redhat:a/b").is_err());
        assert!(iscsi_name("i", "IQN.1994").is_err());
        assert!(nqn("n", "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1").is_ok());
        assert!(nqn("n", "nqn.x/../y").is_err());
        assert!(ip("a", "127.0.1.3").is_ok());
        assert!(ip("a", "127.0.1.3/8").is_err());
        assert!(export_client("c", "10.0.0.0/8").is_ok());
        assert!(export_client("c", "a(rw)").is_err());
        assert!(smb_word("s", "share$").is_ok());
        assert!(smb_word("s", "a]b").is_err());
        assert!(chap_user("u", "user 1").is_err());
    }
}
