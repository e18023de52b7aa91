//! knfsd exports: a file for `/etc/exports.d/` rendered from the volumes' junction paths
//! and export-policy rules.
//!
//! Each junction is a bind mount of the volume's subvolume under the export root, so knfsd
//! sees a real mount point; `fsid=` is the volume UUID (stable across restarts). The export
//! root itself is exported read-only as the NFSv4 pseudo root (`fsid=0`), so NFSv4 clients
//! mount `server:/vol1`; NFSv3 clients use the full path below the export root.

use std::path::PathBuf;

/// One client entry of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRule {
    /// Client match (`*`, address, CIDR, host, `@netgroup`), already validated.
    pub client: String,
    /// Read-write (else read-only).
    pub rw: bool,
    /// Root is squashed (ONTAP superuser `none`).
    pub root_squash: bool,
    /// UID anonymous and squashed users map to.
    pub anonuid: Option<u32>,
    /// Security flavors (`sys`, `krb5`, `krb5i`, `krb5p`); empty = the default.
    pub sec: Vec<String>,
}

/// One exported junction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The bind-mount path under the export root.
    pub path: PathBuf,
    /// `fsid=` value (the volume UUID).
    pub fsid: String,
    /// Client entries, in rule order.
    pub clients: Vec<ClientRule>,
}

/// First line of the managed file.
pub const HEADER: &str = "# Managed by ontap-sim (kernel backend): rewritten on every change.\n";

/// Client entries of one ONTAP export-policy rule (`None` when the rule grants nothing
/// over NFS). `clients` are already validated client matches.
pub fn rule_clients(rule: &serde_json::Value, clients: &[String]) -> Vec<ClientRule> {
    let list = |k: &str| -> Vec<String> {
        rule[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let protocols = list("protocols");
    let nfs = protocols.is_empty()
        || protocols
            .iter()
            .any(|p| matches!(p.as_str(), "any" | "nfs" | "nfs3" | "nfs4" | "nfs41"));
    let ro = list("ro_rule");
    if !nfs || ro.is_empty() || ro.iter().all(|f| f == "never") {
        return Vec::new();
    }
    let rw = list("rw_rule");
    let su = list("superuser");
    let grants = |l: &[String]| l.iter().any(|f| f != "never" && f != "none");
    let sec: Vec<String> = if ro.iter().any(|f| f == "any") {
        Vec::new()
    } else {
        ro.iter()
            .filter(|f| matches!(f.as_str(), "sys" | "krb5" | "krb5i" | "krb5p"))
            .cloned()
            .collect()
    };
    let anonuid = rule["anonymous_user"]
        .as_str()
        .and_then(|s| s.parse::<u32>().ok())
        .or_else(|| rule["anonymous_user"].as_u64().map(|n| n as u32));
    clients
        .iter()
        .map(|c| ClientRule {
            client: if c == "0.0.0.0/0" || c == "::/0" {
                "*".to_string()
            } else {
                c.clone()
            },
            rw: grants(&rw),
            root_squash: !grants(&su),
            anonuid,
            sec: sec.clone(),
        })
        .collect()
}

/// The exports file for these exports; `pseudo_root` (the export root) is exported
/// read-only with `fsid=0` to every client that has some export.
pub fn render(pseudo_root: &std::path::Path, exports: &[Export]) -> String {
    let mut out = String::from(HEADER);
    let mut all: Vec<&str> = exports
        .iter()
        .flat_map(|e| e.clients.iter().map(|c| c.client.as_str()))
        .collect();
    all.sort();
    all.dedup();
    if !all.is_empty() {
        out.push_str(&pseudo_root.to_string_lossy());
        for c in &all {
            out.push_str(&format!(
                " {c}(ro,fsid=0,crossmnt,root_squash,no_subtree_check,insecure)"
            ));
        }
        out.push('\n');
    }
    for e in exports {
        if e.clients.is_empty() {
            continue;
        }
        out.push_str(&e.path.to_string_lossy());
        for c in &e.clients {
            let mut opts = vec![
                if c.rw { "rw" } else { "ro" }.to_string(),
                if c.root_squash {
                    "root_squash"
                } else {
                    "no_root_squash"
                }
                .to_string(),
            ];
            if let Some(u) = c.anonuid {
                opts.push(format!("anonuid={u}"));
            }
            if !c.sec.is_empty() {
                opts.push(format!("sec={}", c.sec.join(":")));
            }
            opts.push("no_subtree_check".into());
            opts.push("insecure".into());
            opts.push(format!("fsid={}", e.fsid));
            out.push_str(&format!(" {}({})", c.client, opts.join(",")));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ontap_rules_become_export_options() {
        let rule = json!({"index": 1, "clients": [{"match": "0.0.0.0/0"}],
            "ro_rule": ["sys"], "rw_rule": ["sys"], "superuser": ["none"],
            "protocols": ["nfs"], "anonymous_user": "65534"});
        let c = rule_clients(&rule, &["0.0.0.0/0".into(), "127.0.0.0/8".into()]);
        assert_eq!(
            c,
            vec![
                ClientRule {
                    client: "*".into(),
                    rw: true,
                    root_squash: true,
                    anonuid: Some(65534),
                    sec: vec!["sys".into()]
                },
                ClientRule {
                    client: "127.0.0.0/8".into(),
                    rw: true,
                    root_squash: true,
                    anonuid: Some(65534),
                    sec: vec!["sys".into()]
                }
            ]
        );
        let ro_root = json!({"ro_rule": ["any"], "rw_rule": ["never"], "superuser": ["any"],
                             "protocols": ["any"]});
        let c = rule_clients(&ro_root, &["10.1.0.0/16".into()]);
        assert!(!c[0].rw && !c[0].root_squash && c[0].sec.is_empty());
        let cifs_only = json!({"ro_rule": ["any"], "rw_rule": ["any"], "superuser": ["any"],
                               "protocols": ["cifs"]});
        assert!(rule_clients(&cifs_only, &["*".into()]).is_empty());
        let never = json!({"ro_rule": ["never"], "rw_rule": ["any"], "superuser": ["any"]});
        assert!(rule_clients(&never, &["*".into()]).is_empty());
    }

    #[test]
    fn renders_exact_lines() {
        let e = Export {
            path: "/lab/export/vol1".into(),
            fsid: "0c5f2f5a-1d0a-4b5e-9a3f-2c7f0e6d9b11".into(),
            clients: vec![ClientRule {
                client: "127.0.0.0/8".into(),
                rw: true,
                root_squash: false,
                anonuid: Some(65534),
                sec: vec!["sys".into()],
            }],
        };
        let none = Export {
            path: "/lab/export/closed".into(),
            fsid: "x".into(),
            clients: vec![],
        };
        assert_eq!(
            render(std::path::Path::new("/lab/export"), &[e, none]),
            format!(
                "{HEADER}/lab/export 127.0.0.0/8(ro,fsid=0,crossmnt,root_squash,no_subtree_check,insecure)\n\
                 /lab/export/vol1 127.0.0.0/8(rw,no_root_squash,anonuid=65534,sec=sys,no_subtree_check,insecure,fsid=0c5f2f5a-1d0a-4b5e-9a3f-2c7f0e6d9b11)\n"
            )
        );
        assert_eq!(render(std::path::Path::new("/x"), &[]), HEADER);
    }
}
