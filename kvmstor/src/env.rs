//! The world workflows act on: one ONTAP cluster and a set of hosts, each reached through a
//! [`Runner`] and a libvirt URI.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::SecretString;

use host_storage::autofs::Reload;
use host_storage::files::HostRoot;
use host_storage::{Runner, SystemRunner};
use ontap_client::Client;

use crate::error::StepError;

/// One KVM host: how to run commands on it, where its files are, its libvirt URI and the
/// addresses ONTAP's export rules admit.
///
/// ```
/// use std::sync::Arc;
/// use kvmstor::Host;
/// let kvm1 = Host::local("kvm1")
///     .address("192.0.2.101")
///     .libvirt_uri("qemu:///system");
/// assert_eq!(kvm1.addresses(), ["192.0.2.101"]);
/// ```
#[derive(Clone)]
pub struct Host {
    name: String,
    addresses: Vec<String>,
    runner: Arc<dyn Runner>,
    libvirt_uri: String,
    root: HostRoot,
    mountinfo: PathBuf,
    autofs_reload: Reload,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("addresses", &self.addresses)
            .field("libvirt_uri", &self.libvirt_uri)
            .field("root", &self.root)
            .field("mountinfo", &self.mountinfo)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host reached through `runner`, with its files under `/`, `qemu:///system` and no
    /// addresses yet.
    pub fn new(name: impl Into<String>, runner: Arc<dyn Runner>) -> Self {
        Host {
            name: name.into(),
            addresses: Vec::new(),
            runner,
            libvirt_uri: "qemu:///system".into(),
            root: HostRoot::system(),
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
            autofs_reload: Reload::Auto,
        }
    }

    /// This machine, with the real [`SystemRunner`].
    pub fn local(name: impl Into<String>) -> Self {
        Host::new(name, Arc::new(SystemRunner::new()))
    }

    /// Adds an address (or subnet, `10.0.0.0/24`) for the export rule.
    #[must_use]
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.addresses.push(address.into());
        self
    }

    /// The libvirt URI (default `qemu:///system`).
    #[must_use]
    pub fn libvirt_uri(mut self, uri: impl Into<String>) -> Self {
        self.libvirt_uri = uri.into();
        self
    }

    /// Host files live under `root` (tests: a temporary directory). The mount table is read
    /// from `ROOT/proc/self/mountinfo` unless [`Host::mountinfo`] says otherwise.
    #[must_use]
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = HostRoot::new(root);
        self.mountinfo = self.root.path("/proc/self/mountinfo");
        self
    }

    /// Reads the mount table from this file.
    #[must_use]
    pub fn mountinfo(mut self, path: impl Into<PathBuf>) -> Self {
        self.mountinfo = path.into();
        self
    }

    /// How autofs is told about map changes (default [`Reload::Auto`]). Any strategy but
    /// `Never` also means an autofs attach requires a running automount on this host
    /// ([`host_storage::autofs::Autofs::require_daemon`]); `Never` leaves automount to the
    /// caller, who must reload it and see the trigger before the pool is used.
    #[must_use]
    pub fn autofs_reload(mut self, reload: Reload) -> Self {
        self.autofs_reload = reload;
        self
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Export-rule addresses.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// The runner.
    pub fn runner(&self) -> Arc<dyn Runner> {
        self.runner.clone()
    }

    /// The libvirt URI.
    pub fn uri(&self) -> &str {
        &self.libvirt_uri
    }

    /// Where host files live.
    pub fn host_root(&self) -> &HostRoot {
        &self.root
    }

    /// The mount table file.
    pub fn mountinfo_path(&self) -> &std::path::Path {
        &self.mountinfo
    }

    /// The autofs reload strategy.
    pub fn reload(&self) -> Reload {
        self.autofs_reload
    }
}

/// An ONTAP cluster, the hosts a workflow may touch, and the secrets its steps name.
///
/// Journals never hold a secret: a step that needs one (an SMB password) names it, and the
/// [`Env`] given to [`crate::saga::Saga::run`] or [`crate::saga::recover`] supplies it.
///
/// ```
/// use kvmstor::Env;
/// use ontap_client::{Client, SecretString};
/// let client = Client::builder("https://cluster1.example.com").build().unwrap();
/// let env = Env::new(client).secret("smb/vmshare", SecretString::from("s3cret"));
/// assert!(env.find_secret("smb/vmshare").is_some());
/// assert!(!format!("{env:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct Env {
    ontap: Client,
    hosts: Vec<Host>,
    secrets: BTreeMap<String, SecretString>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("ontap", &self.ontap)
            .field("hosts", &self.hosts)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Env {
    /// An environment over `ontap` with no hosts.
    pub fn new(ontap: Client) -> Self {
        Env {
            ontap,
            hosts: Vec::new(),
            secrets: BTreeMap::new(),
        }
    }

    /// Adds a secret under `name` (what steps and journals refer to it by).
    #[must_use]
    pub fn secret(mut self, name: impl Into<String>, value: SecretString) -> Self {
        self.secrets.insert(name.into(), value);
        self
    }

    /// The secret named `name`, if given.
    pub fn find_secret(&self, name: &str) -> Option<&SecretString> {
        self.secrets.get(name)
    }

    /// Adds a host.
    #[must_use]
    pub fn host(mut self, host: Host) -> Self {
        self.hosts.push(host);
        self
    }

    /// The ONTAP client.
    pub fn ontap(&self) -> &Client {
        &self.ontap
    }

    /// The cluster's identity in lock keys: its base URL.
    pub fn cluster(&self) -> &str {
        self.ontap.base_url()
    }

    /// The hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The host named `name`.
    pub fn find_host(&self, name: &str) -> Result<&Host, StepError> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| StepError::UnknownHost {
                host: name.to_owned(),
            })
    }
}
