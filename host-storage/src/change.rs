//! Results of mutating calls.

/// Whether a mutating call changed the host.
///
/// Every mutation in this crate is idempotent: running it a second time returns
/// [`Change::Unchanged`] and touches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use]
pub enum Change {
    /// The call modified the host (a file, a mount, a daemon).
    Changed,
    /// The host already was in the asked state; nothing was touched.
    Unchanged,
}

impl Change {
    /// True for [`Change::Changed`].
    pub fn is_changed(self) -> bool {
        self == Change::Changed
    }

    /// `Changed` if either is `Changed`.
    ///
    /// ```
    /// use host_storage::Change;
    /// assert_eq!(Change::Unchanged.and(Change::Changed), Change::Changed);
    /// assert_eq!(Change::Unchanged.and(Change::Unchanged), Change::Unchanged);
    /// ```
    pub fn and(self, other: Change) -> Change {
        if self.is_changed() || other.is_changed() {
            Change::Changed
        } else {
            Change::Unchanged
        }
    }
}

impl From<bool> for Change {
    fn from(changed: bool) -> Self {
        if changed {
            Change::Changed
        } else {
            Change::Unchanged
        }
    }
}
