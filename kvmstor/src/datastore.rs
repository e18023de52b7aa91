//! What the NFS, SMB and block datastore requests derive from their pool's name and check
//! alike before they plan: the host file entries' ID, the ONTAP ownership token, and the
//! checks of the host list and of that ID.

use host_storage::files::EntryId;

use crate::error::{Error, Result};

/// The ID of the lines and files a datastore owns on its hosts (fstab line, autofs entry,
/// credentials file): `kvmstor-<pool in lower case>`.
pub(crate) fn entry_id(pool: &str) -> String {
    format!("kvmstor-{}", pool.to_ascii_lowercase())
}

/// A new ownership token for the ONTAP objects an attach of `pool` creates: kept in their
/// comment, so that an unwind removes only what this run made.
pub(crate) fn ownership_token(pool: &str) -> String {
    format!("kvmstor:{}:{}", pool, uuid::Uuid::new_v4())
}

/// [`Error::Invalid`] when no host is named.
pub(crate) fn require_hosts(hosts: &[String]) -> Result<()> {
    if hosts.is_empty() {
        return Err(Error::Invalid {
            field: "hosts",
            value: String::new(),
            reason: "a datastore needs at least one host",
        });
    }
    Ok(())
}

/// [`Error::Invalid`] (on the pool's name) when [`entry_id`] of `pool` is no valid entry ID.
pub(crate) fn check_entry_id(pool: &str) -> Result<()> {
    EntryId::parse(&entry_id(pool)).map_err(|_| Error::Invalid {
        field: "pool",
        value: pool.to_owned(),
        reason: "must be 1 to 56 of a-z A-Z 0-9 _ . - starting with a letter or digit",
    })?;
    Ok(())
}
