//! File and sub-file clones (`POST /api/storage/file/clone`).

use serde::Serialize;

use super::common::{setters, NamedRef};

/// Body of `POST /api/storage/file/clone` (asynchronous: 202 + job).
///
/// ```
/// use ontap_client::models::FileCloneCreate;
///
/// let body = FileCloneCreate::new("vol1", "disk.img", "clone.img").overwrite_destination(true);
/// assert_eq!(
///     serde_json::to_value(&body).unwrap(),
///     serde_json::json!({"volume": {"name": "vol1"}, "source_path": "disk.img",
///                        "destination_path": "clone.img", "overwrite_destination": true}),
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileCloneCreate {
    /// Volume holding both files (by name or UUID).
    pub volume: NamedRef,
    /// Source path, relative to the volume root.
    pub source_path: String,
    /// Destination path, relative to the volume root.
    pub destination_path: String,
    /// SVM, needed when the volume is given by name and names are not unique.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Block ranges `src_start:dst_start:count` for sub-file clones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<Vec<String>>,
    /// Let ONTAP delete the clone under space pressure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autodelete: Option<bool>,
    /// Mark as a backup clone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_backup: Option<bool>,
    /// Overwrite an existing destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overwrite_destination: Option<bool>,
    /// Token reserving the split load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_uuid: Option<String>,
}

impl FileCloneCreate {
    /// Clone `source_path` to `destination_path` inside `volume`.
    pub fn new(
        volume: impl Into<NamedRef>,
        source_path: impl Into<String>,
        destination_path: impl Into<String>,
    ) -> Self {
        Self {
            volume: volume.into(),
            source_path: source_path.into(),
            destination_path: destination_path.into(),
            ..Self::default()
        }
    }

    setters! {
        /// SVM of the volume.
        svm: into NamedRef,
        /// Let ONTAP delete the clone under space pressure.
        autodelete: bool,
        /// Mark as a backup clone.
        is_backup: bool,
        /// Overwrite an existing destination.
        overwrite_destination: bool,
        /// Token reserving the split load.
        token_uuid: into String,
    }

    /// Add a sub-file block range `src_start:dst_start:count`.
    #[must_use]
    pub fn range(mut self, source_block: u64, destination_block: u64, count: u64) -> Self {
        self.range
            .get_or_insert_with(Vec::new)
            .push(format!("{source_block}:{destination_block}:{count}"));
        self
    }
}
