//! SMB/CIFS shares (`/api/protocols/cifs/shares`) and their ACLs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{setters, string_enum, Links, NamedRef};

string_enum! {
    /// Share ACL permission (`permission`).
    pub enum CifsPermission {
        /// No access.
        NoAccess => "no_access",
        /// Read.
        Read => "read",
        /// Change.
        Change => "change",
        /// Full control.
        FullControl => "full_control",
    }
}

string_enum! {
    /// Kind of ACL principal (`type`).
    pub enum CifsAclType {
        /// Windows user or group.
        Windows => "windows",
        /// UNIX user.
        UnixUser => "unix_user",
        /// UNIX group.
        UnixGroup => "unix_group",
    }
}

string_enum! {
    /// How symlinks are presented (`unix_symlink`).
    pub enum UnixSymlink {
        /// Local symlinks only.
        Local => "local",
        /// Wide links too.
        Widelink => "widelink",
        /// Disabled.
        Disable => "disable",
    }
}

/// One share ACL entry.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CifsShareAcl {
    /// User or group, such as `Everyone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_or_group: Option<String>,
    /// Permission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<CifsPermission>,
    /// Kind of principal.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<CifsAclType>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CifsShareAcl {
    /// An ACL entry.
    pub fn new(
        user_or_group: impl Into<String>,
        kind: CifsAclType,
        permission: CifsPermission,
    ) -> Self {
        Self {
            user_or_group: Some(user_or_group.into()),
            permission: Some(permission),
            kind: Some(kind),
            ..Self::default()
        }
    }
}

/// An SMB share. Its key is `svm.uuid/name`.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CifsShare {
    /// Share name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Path in the SVM namespace, such as `/vol1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Owning SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// ACL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acls: Option<Vec<CifsShareAcl>>,
    /// Opportunistic locks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oplocks: Option<bool>,
    /// Change notifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_notify: Option<bool>,
    /// SMB encryption required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<bool>,
    /// Continuously available (Hyper-V/SQL over SMB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuously_available: Option<bool>,
    /// Home directory share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_directory: Option<bool>,
    /// Access-based enumeration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_based_enumeration: Option<bool>,
    /// Show the `.snapshot` directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_snapshot: Option<bool>,
    /// Symlink handling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unix_symlink: Option<UnixSymlink>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /api/protocols/cifs/shares`.
///
/// ```
/// use ontap_client::models::{CifsShareCreate, CifsAclType, CifsPermission};
///
/// let body = CifsShareCreate::new("share1", "svm1", "/vol1")
///     .acl("Everyone", CifsAclType::Windows, CifsPermission::FullControl)
///     .continuously_available(true);
/// assert_eq!(
///     serde_json::to_value(&body).unwrap(),
///     serde_json::json!({"name": "share1", "svm": {"name": "svm1"}, "path": "/vol1",
///         "acls": [{"user_or_group": "Everyone", "permission": "full_control", "type": "windows"}],
///         "continuously_available": true}),
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CifsShareCreate {
    /// Share name.
    pub name: String,
    /// Owning SVM.
    pub svm: NamedRef,
    /// Path in the SVM namespace.
    pub path: String,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// ACL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acls: Option<Vec<CifsShareAcl>>,
    /// Opportunistic locks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oplocks: Option<bool>,
    /// SMB encryption required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<bool>,
    /// Continuously available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuously_available: Option<bool>,
    /// Access-based enumeration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_based_enumeration: Option<bool>,
    /// Show the `.snapshot` directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_snapshot: Option<bool>,
    /// Symlink handling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unix_symlink: Option<UnixSymlink>,
}

impl CifsShareCreate {
    /// A share named `name` in `svm` at `path`.
    pub fn new(name: impl Into<String>, svm: impl Into<NamedRef>, path: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            svm: svm.into(),
            path: path.into(),
            ..Self::default()
        }
    }

    /// Add an ACL entry.
    #[must_use]
    pub fn acl(
        mut self,
        user_or_group: impl Into<String>,
        kind: CifsAclType,
        permission: CifsPermission,
    ) -> Self {
        self.acls
            .get_or_insert_with(Vec::new)
            .push(CifsShareAcl::new(user_or_group, kind, permission));
        self
    }

    setters! {
        /// Comment.
        comment: into String,
        /// Opportunistic locks.
        oplocks: bool,
        /// SMB encryption required.
        encryption: bool,
        /// Continuously available.
        continuously_available: bool,
        /// Access-based enumeration.
        access_based_enumeration: bool,
        /// Show the `.snapshot` directory.
        show_snapshot: bool,
        /// Symlink handling.
        unix_symlink: UnixSymlink,
    }
}
