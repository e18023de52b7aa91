//! SnapMirror relationships, their state changes and transfers.

use crate::client::Client;
use crate::error::Result;
use crate::models::{
    SnapmirrorPatch, SnapmirrorRelationship, SnapmirrorTransfer, SnapmirrorTransferCreate,
};
use crate::mutation::{Completed, Created};
use crate::query::Query;
use crate::Api;

use super::sub_path;

impl Client {
    /// SnapMirror relationships: `/api/snapmirror/relationships` (key: relationship UUID).
    pub fn snapmirror_relationships(&self) -> Api<SnapmirrorRelationship> {
        Api::new(self, "/api/snapmirror/relationships")
    }

    /// Transfers of relationship `relationship_uuid`:
    /// `/api/snapmirror/relationships/{relationship_uuid}/transfers` (key: transfer UUID).
    pub fn snapmirror_transfers(&self, relationship_uuid: &str) -> Api<SnapmirrorTransfer> {
        Api::new(
            self,
            sub_path(
                "/api/snapmirror/relationships",
                relationship_uuid,
                "transfers",
            ),
        )
    }
}

impl Api<SnapmirrorRelationship> {
    /// The relationship whose destination path is `destination_path` (`svm:volume`), if any.
    pub async fn by_destination(
        &self,
        destination_path: &str,
    ) -> Result<Option<SnapmirrorRelationship>> {
        self.find(&Query::new().filter("destination.path", destination_path))
            .await
    }

    /// Transfers of relationship `uuid`.
    pub fn transfers(&self, uuid: &str) -> Api<SnapmirrorTransfer> {
        self.client().snapmirror_transfers(uuid)
    }

    /// Starts an update transfer of relationship `uuid`.
    pub async fn update(&self, uuid: &str) -> Result<Created<SnapmirrorTransfer>> {
        self.transfers(uuid)
            .create(&SnapmirrorTransferCreate::new())
            .await
    }

    /// Initializes relationship `uuid` (`state=snapmirrored`); poll `state` afterwards.
    pub async fn initialize(&self, uuid: &str) -> Result<Completed> {
        self.patch(uuid, &SnapmirrorPatch::initialize()).await
    }

    /// Breaks relationship `uuid` (`state=broken_off`), making the destination writable.
    pub async fn break_off(&self, uuid: &str) -> Result<Completed> {
        self.patch(uuid, &SnapmirrorPatch::break_off()).await
    }

    /// Resyncs broken relationship `uuid` (`state=snapmirrored`).
    pub async fn resync(&self, uuid: &str) -> Result<Completed> {
        self.patch(uuid, &SnapmirrorPatch::resync()).await
    }

    /// Pauses relationship `uuid` (`state=paused`).
    pub async fn pause(&self, uuid: &str) -> Result<Completed> {
        self.patch(uuid, &SnapmirrorPatch::pause()).await
    }

    /// Resumes paused relationship `uuid` (`state=snapmirrored`).
    pub async fn resume(&self, uuid: &str) -> Result<Completed> {
        self.patch(uuid, &SnapmirrorPatch::resume()).await
    }
}
