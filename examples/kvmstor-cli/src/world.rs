//! From plain values (flags, Python arguments) to the facade's [`Env`] and
//! [`NfsDatastore`].

use std::path::{Path, PathBuf};

use kvmstor::nfs::{NfsDatastore, Persist, PoolKind};
use kvmstor::{Env, Host};
use ontap_client::Client;

use crate::simhost::simulated_host;

/// Why plain values could not be turned into a world.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorldError {
    /// A size is not `N`, `NK`, `NM`, `NG` or `NT`.
    #[error("invalid size {value:?} (expected e.g. 500G)")]
    Size {
        /// The refused text.
        value: String,
    },
    /// A host is not `NAME=ADDRESS`.
    #[error("invalid host {value:?} (expected NAME=ADDRESS)")]
    Host {
        /// The refused text.
        value: String,
    },
    /// A keyword is not one of the allowed ones.
    #[error("invalid {field} {value:?} (expected one of {allowed})")]
    Choice {
        /// The field.
        field: &'static str,
        /// The refused value.
        value: String,
        /// The allowed values.
        allowed: &'static str,
    },
    /// Preparing a simulated host's scratch root failed.
    #[error("cannot prepare the simulated host root {path}", path = path.display())]
    SimRoot {
        /// The root.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// `4096`, `512M`, `10G`, `1T` (binary units) as bytes.
pub fn parse_size(s: &str) -> Result<u64, WorldError> {
    let t = s.trim();
    let (num, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| WorldError::Size {
            value: s.to_owned(),
        })
}

/// One host: its name and the address its export rule admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Name.
    pub name: String,
    /// Export-rule address.
    pub address: String,
}

impl std::str::FromStr for HostSpec {
    type Err = WorldError;

    /// `NAME=ADDRESS`.
    fn from_str(s: &str) -> Result<Self, WorldError> {
        match s.split_once('=') {
            Some((n, a)) if !n.is_empty() && !a.is_empty() => Ok(HostSpec {
                name: n.to_owned(),
                address: a.to_owned(),
            }),
            _ => Err(WorldError::Host {
                value: s.to_owned(),
            }),
        }
    }
}

/// How hosts are reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMode {
    /// This machine, for real, with this libvirt URI.
    Local {
        /// libvirt URI.
        libvirt_uri: String,
    },
    /// Simulated host side: host `NAME` lives under `ROOT/NAME` (see [`crate::simhost`]).
    Simulated {
        /// Parent of the scratch roots.
        root: PathBuf,
    },
}

/// The environment: `client` and the hosts.
pub fn env(client: Client, hosts: &[HostSpec], mode: &HostMode) -> Result<Env, WorldError> {
    let mut env = Env::new(client);
    for h in hosts {
        let host = match mode {
            HostMode::Local { libvirt_uri } => Host::local(h.name.clone())
                .address(h.address.clone())
                .libvirt_uri(libvirt_uri.clone()),
            HostMode::Simulated { root } => {
                let dir = root.join(&h.name);
                simulated_host(&h.name, &h.address, &dir)
                    .map_err(|source| WorldError::SimRoot { path: dir, source })?
                    .0
            }
        };
        env = env.host(host);
    }
    Ok(env)
}

/// An NFS datastore request in plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsSpec {
    /// SVM.
    pub svm: String,
    /// Pool name.
    pub name: String,
    /// Aggregate.
    pub aggregate: String,
    /// Size in bytes.
    pub size: u64,
    /// Host names.
    pub hosts: Vec<String>,
    /// Volume name (default: the pool's name with `-` as `_`).
    pub volume: Option<String>,
    /// Mount point (default `/var/lib/kvmstor/mnt/NAME`, or `SIMROOT/mnt/NAME` for
    /// simulated hosts).
    pub mount_point: Option<PathBuf>,
    /// `fstab` or `autofs`.
    pub persist: String,
    /// `dir` or `netfs`.
    pub pool_kind: String,
    /// Detach deletes the volume and export policy too.
    pub delete_ontap_objects: bool,
}

impl NfsSpec {
    /// The facade's datastore; `sim_root` is the simulated hosts' parent root, if any.
    pub fn datastore(&self, sim_root: Option<&Path>) -> Result<NfsDatastore, WorldError> {
        let persist = match self.persist.as_str() {
            "fstab" => Persist::Fstab,
            "autofs" => Persist::Autofs,
            other => {
                return Err(WorldError::Choice {
                    field: "persist",
                    value: other.to_owned(),
                    allowed: "fstab, autofs",
                })
            }
        };
        let kind = match self.pool_kind.as_str() {
            "dir" => PoolKind::Dir,
            "netfs" => PoolKind::Netfs,
            other => {
                return Err(WorldError::Choice {
                    field: "pool kind",
                    value: other.to_owned(),
                    allowed: "dir, netfs",
                })
            }
        };
        let mut ds = NfsDatastore::new(&self.svm, &self.name, &self.aggregate, self.size)
            .hosts(self.hosts.iter().cloned())
            .persist(persist)
            .pool_kind(kind)
            .delete_ontap_objects(self.delete_ontap_objects);
        if let Some(v) = &self.volume {
            ds = ds.volume_name(v.clone());
        }
        match (&self.mount_point, sim_root) {
            (Some(m), _) => ds = ds.mount_point(m.clone()),
            (None, Some(root)) => ds = ds.mount_point(root.join("mnt").join(&self.name)),
            (None, None) => {}
        }
        Ok(ds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("1t").unwrap(), 1 << 40);
        assert!(matches!(parse_size("ten"), Err(WorldError::Size { .. })));
    }

    #[test]
    fn hosts() {
        let h: HostSpec = "kvm1=192.0.2.1".parse().unwrap();
        assert_eq!(
            h,
            HostSpec {
                name: "kvm1".into(),
                address: "192.0.2.1".into()
            }
        );
        assert!("kvm1".parse::<HostSpec>().is_err());
    }
}
