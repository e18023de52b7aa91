//! NFS export policies (`/api/protocols/nfs/export-policies`) and their rules.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{setters, string_enum, Links, NamedRef};

string_enum! {
    /// Security flavor in `ro_rule`, `rw_rule` and `superuser`.
    pub enum NfsSecurityFlavor {
        /// Any flavor.
        Any => "any",
        /// Access as the anonymous user (ONTAP `none`).
        None => "none",
        /// Never.
        Never => "never",
        /// Kerberos 5.
        Krb5 => "krb5",
        /// Kerberos 5 with integrity.
        Krb5i => "krb5i",
        /// Kerberos 5 with privacy.
        Krb5p => "krb5p",
        /// NTLM.
        Ntlm => "ntlm",
        /// AUTH_SYS.
        Sys => "sys",
    }
}

string_enum! {
    /// Access protocol of an export rule (`protocols[]`).
    pub enum ExportProtocol {
        /// Any protocol.
        Any => "any",
        /// Any NFS version.
        Nfs => "nfs",
        /// NFSv3.
        Nfs3 => "nfs3",
        /// NFSv4.
        Nfs4 => "nfs4",
        /// SMB.
        Cifs => "cifs",
        /// FlexCache.
        Flexcache => "flexcache",
    }
}

/// One client match of a rule (`clients[]`): host, IP, CIDR or netgroup.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportClient {
    /// The match string, such as `10.0.0.0/24`.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<String>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ExportClient {
    /// A client match.
    pub fn new(match_: impl Into<String>) -> Self {
        Self {
            match_: Some(match_.into()),
            ..Self::default()
        }
    }
}

/// An export rule.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportRule {
    /// Rule index (position).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Clients the rule matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<ExportClient>>,
    /// Flavors granted read-only access.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ro_rule: Option<Vec<NfsSecurityFlavor>>,
    /// Flavors granted read-write access.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rw_rule: Option<Vec<NfsSecurityFlavor>>,
    /// Flavors granted superuser access.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superuser: Option<Vec<NfsSecurityFlavor>>,
    /// Protocols the rule applies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocols: Option<Vec<ExportProtocol>>,
    /// User id anonymous users map to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_user: Option<String>,
    /// Honor set-uid bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_suid: Option<bool>,
    /// Allow device creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_device_creation: Option<bool>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An export policy.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportPolicy {
    /// Policy id (the key in URLs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Policy name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owning SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Rules, when requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<ExportRule>>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST .../export-policies/{id}/rules` (or an inline rule of a new policy).
///
/// ```
/// use ontap_client::models::{ExportRuleCreate, ExportProtocol, NfsSecurityFlavor};
///
/// let rule = ExportRuleCreate::new()
///     .client("10.0.0.0/24")
///     .ro([NfsSecurityFlavor::Sys])
///     .rw([NfsSecurityFlavor::Sys])
///     .superuser([NfsSecurityFlavor::None])
///     .protocols([ExportProtocol::Nfs3]);
/// assert_eq!(
///     serde_json::to_string(&rule).unwrap(),
///     r#"{"clients":[{"match":"10.0.0.0/24"}],"ro_rule":["sys"],"rw_rule":["sys"],"superuser":["none"],"protocols":["nfs3"]}"#,
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportRuleCreate {
    /// Clients the rule matches.
    pub clients: Vec<ExportClient>,
    /// Read-only flavors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ro_rule: Option<Vec<NfsSecurityFlavor>>,
    /// Read-write flavors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rw_rule: Option<Vec<NfsSecurityFlavor>>,
    /// Superuser flavors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superuser: Option<Vec<NfsSecurityFlavor>>,
    /// Protocols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocols: Option<Vec<ExportProtocol>>,
    /// Anonymous user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_user: Option<String>,
    /// Honor set-uid bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_suid: Option<bool>,
    /// Position to insert the rule at (9.10+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

impl ExportRuleCreate {
    /// An empty rule; add at least one client.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a client match (host, IP, CIDR, netgroup).
    #[must_use]
    pub fn client(mut self, match_: impl Into<String>) -> Self {
        self.clients.push(ExportClient::new(match_));
        self
    }

    /// Read-only flavors.
    #[must_use]
    pub fn ro(mut self, flavors: impl IntoIterator<Item = NfsSecurityFlavor>) -> Self {
        self.ro_rule = Some(flavors.into_iter().collect());
        self
    }

    /// Read-write flavors.
    #[must_use]
    pub fn rw(mut self, flavors: impl IntoIterator<Item = NfsSecurityFlavor>) -> Self {
        self.rw_rule = Some(flavors.into_iter().collect());
        self
    }

    /// Superuser flavors.
    #[must_use]
    pub fn superuser(mut self, flavors: impl IntoIterator<Item = NfsSecurityFlavor>) -> Self {
        self.superuser = Some(flavors.into_iter().collect());
        self
    }

    /// Protocols.
    #[must_use]
    pub fn protocols(mut self, protocols: impl IntoIterator<Item = ExportProtocol>) -> Self {
        self.protocols = Some(protocols.into_iter().collect());
        self
    }

    setters! {
        /// Anonymous user id (such as `65534`).
        anonymous_user: into String,
        /// Honor set-uid bits.
        allow_suid: bool,
        /// Insert at this position.
        index: u32,
    }
}

/// Body of `POST /api/protocols/nfs/export-policies`.
///
/// ```
/// use ontap_client::models::{ExportPolicyCreate, ExportRuleCreate, NfsSecurityFlavor};
///
/// let body = ExportPolicyCreate::new("p1", "svm1")
///     .rule(ExportRuleCreate::new().client("10.0.0.5").rw([NfsSecurityFlavor::Sys]));
/// assert_eq!(
///     serde_json::to_string(&body).unwrap(),
///     r#"{"name":"p1","svm":{"name":"svm1"},"rules":[{"clients":[{"match":"10.0.0.5"}],"rw_rule":["sys"]}]}"#,
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportPolicyCreate {
    /// Policy name.
    pub name: String,
    /// Owning SVM.
    pub svm: NamedRef,
    /// Rules created with the policy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<ExportRuleCreate>,
}

impl ExportPolicyCreate {
    /// A policy named `name` in `svm`.
    pub fn new(name: impl Into<String>, svm: impl Into<NamedRef>) -> Self {
        Self {
            name: name.into(),
            svm: svm.into(),
            rules: Vec::new(),
        }
    }

    /// Add a rule.
    #[must_use]
    pub fn rule(mut self, rule: ExportRuleCreate) -> Self {
        self.rules.push(rule);
        self
    }
}
