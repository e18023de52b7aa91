//! SVMs, aggregates, volumes (FlexVol, FlexGroup, FlexClone), snapshots and file clones.

use http::Method;

use crate::client::Client;
use crate::error::Result;
use crate::models::{
    Aggregate, AntiRansomwareState, EfficiencyMode, FileCloneCreate, FlexCloneCreate, Snapshot,
    SnapshotPatch, Svm, TieringPolicy, Volume, VolumePatch,
};
use crate::mutation::{to_body, Completed, Created};
use crate::query::Query;
use crate::Api;

use super::sub_path;

/// Path of the file-clone endpoint.
const FILE_CLONE_PATH: &str = "/api/storage/file/clone";

impl Client {
    /// SVMs: `/api/svm/svms` (key: SVM UUID).
    pub fn svms(&self) -> Api<Svm> {
        Api::new(self, "/api/svm/svms")
    }

    /// Aggregates: `/api/storage/aggregates` (key: aggregate UUID).
    pub fn aggregates(&self) -> Api<Aggregate> {
        Api::new(self, "/api/storage/aggregates")
    }

    /// Volumes: `/api/storage/volumes` (key: volume UUID).
    ///
    /// ```no_run
    /// use ontap_client::models::{VolumeCreate, GIB};
    /// # async fn run(client: ontap_client::Client) -> ontap_client::Result<()> {
    /// let created = client
    ///     .volumes()
    ///     .create(&VolumeCreate::flexvol("vol1", "svm1", "aggr1").size(10 * GIB))
    ///     .await?;
    /// let uuid = created.record.and_then(|v| v.uuid).unwrap_or_default();
    /// client.volumes().resize(&uuid, 20 * GIB).await?;
    /// # Ok(()) }
    /// ```
    pub fn volumes(&self) -> Api<Volume> {
        Api::new(self, "/api/storage/volumes")
    }

    /// Snapshots of one volume: `/api/storage/volumes/{volume_uuid}/snapshots`
    /// (key: snapshot UUID).
    pub fn snapshots(&self, volume_uuid: &str) -> Api<Snapshot> {
        Api::new(
            self,
            sub_path("/api/storage/volumes", volume_uuid, "snapshots"),
        )
    }

    /// Clones a file or part of one inside a volume: `POST /api/storage/file/clone`, then
    /// waits for the job.
    pub async fn file_clone(&self, body: &FileCloneCreate) -> Result<Completed> {
        let bytes = to_body(&Method::POST, FILE_CLONE_PATH, body)?;
        self.mutate(Method::POST, FILE_CLONE_PATH, &Query::new(), Some(bytes))
            .await?
            .wait(self)
            .await
    }
}

impl Api<Svm> {
    /// The SVM named `name`, if any.
    pub async fn by_name(&self, name: &str) -> Result<Option<Svm>> {
        self.find(&Query::new().filter("name", name)).await
    }
}

impl Api<Aggregate> {
    /// The aggregate named `name`, if any.
    pub async fn by_name(&self, name: &str) -> Result<Option<Aggregate>> {
        self.find(&Query::new().filter("name", name)).await
    }
}

impl Api<Volume> {
    /// The volume `name` in SVM `svm`, if any.
    pub async fn by_name(&self, svm: &str, name: &str) -> Result<Option<Volume>> {
        self.find(&Query::new().filter("svm.name", svm).filter("name", name))
            .await
    }

    /// Snapshots of volume `volume_uuid`.
    pub fn snapshots(&self, volume_uuid: &str) -> Api<Snapshot> {
        self.client().snapshots(volume_uuid)
    }

    /// Creates a FlexClone (`POST` with `clone.is_flexclone`), waits for the job and
    /// resolves the new volume through `Location` (`?name=...`).
    pub async fn create_flexclone(&self, body: &FlexCloneCreate) -> Result<Created<Volume>> {
        self.create(body).await
    }

    /// Starts splitting FlexClone `uuid` from its parent (`clone.split_initiated=true`).
    pub async fn split_clone(&self, uuid: &str) -> Result<Completed> {
        self.patch(uuid, &VolumePatch::split_clone()).await
    }

    /// Resizes volume `uuid` to `size` bytes.
    pub async fn resize(&self, uuid: &str, size: u64) -> Result<Completed> {
        self.patch(uuid, &VolumePatch::new().size(size)).await
    }

    /// Sets compression and deduplication of volume `uuid`.
    pub async fn set_efficiency(
        &self,
        uuid: &str,
        compression: EfficiencyMode,
        dedupe: EfficiencyMode,
    ) -> Result<Completed> {
        self.patch(uuid, &VolumePatch::new().efficiency(compression, dedupe))
            .await
    }

    /// Sets the snapshot policy of volume `uuid` by name (`none` stops scheduled snapshots).
    pub async fn set_snapshot_policy(&self, uuid: &str, policy: &str) -> Result<Completed> {
        self.patch(uuid, &VolumePatch::new().snapshot_policy(policy))
            .await
    }

    /// Sets the tiering policy of volume `uuid`.
    pub async fn set_tiering_policy(&self, uuid: &str, policy: TieringPolicy) -> Result<Completed> {
        self.patch(uuid, &VolumePatch::new().tiering_policy(policy))
            .await
    }

    /// Sets the ransomware protection state of volume `uuid`.
    pub async fn set_anti_ransomware(
        &self,
        uuid: &str,
        state: AntiRansomwareState,
    ) -> Result<Completed> {
        self.patch(uuid, &VolumePatch::new().anti_ransomware(state))
            .await
    }

    /// Enables or disables encryption of volume `uuid` (`encryption.enabled`).
    pub async fn set_encryption(&self, uuid: &str, enabled: bool) -> Result<Completed> {
        self.patch(uuid, &VolumePatch::new().encryption(enabled))
            .await
    }

    /// Enables or disables snapshot locking on volume `uuid` (9.12+).
    pub async fn set_snapshot_locking(&self, uuid: &str, enabled: bool) -> Result<Completed> {
        self.patch(uuid, &VolumePatch::new().snapshot_locking_enabled(enabled))
            .await
    }
}

impl Api<Snapshot> {
    /// The snapshot named `name` in this volume, if any.
    pub async fn by_name(&self, name: &str) -> Result<Option<Snapshot>> {
        self.find(&Query::new().filter("name", name)).await
    }

    /// Locks snapshot `uuid` until `expiry_time` (ISO-8601), ONTAP 9.15+ form
    /// (`snaplock.expiry_time`). The volume needs `snapshot_locking_enabled`.
    pub async fn lock_until(&self, uuid: &str, expiry_time: &str) -> Result<Completed> {
        self.patch(uuid, &SnapshotPatch::new().snaplock_expiry(expiry_time))
            .await
    }

    /// Locks snapshot `uuid` until `expiry_time` (ISO-8601), ONTAP 9.12-9.14 form
    /// (`snaplock_expiry_time`).
    pub async fn lock_until_legacy(&self, uuid: &str, expiry_time: &str) -> Result<Completed> {
        self.patch(
            uuid,
            &SnapshotPatch::new().snaplock_expiry_time(expiry_time),
        )
        .await
    }
}
