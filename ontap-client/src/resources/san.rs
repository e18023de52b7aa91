//! LUNs, igroups and initiators, LUN maps, iSCSI services and CHAP credentials.

use crate::client::Client;
use crate::error::Result;
use crate::models::{
    Igroup, IgroupInitiator, IgroupInitiatorsAdd, IscsiCredentials, IscsiService, Lun, LunMap,
    LunPatch,
};
use crate::mutation::{Completed, Created};
use crate::query::Query;
use crate::Api;

use super::{pair_key, sub_path};

impl Client {
    /// LUNs: `/api/storage/luns` (key: LUN UUID).
    pub fn luns(&self) -> Api<Lun> {
        Api::new(self, "/api/storage/luns")
    }

    /// Initiator groups: `/api/protocols/san/igroups` (key: igroup UUID).
    pub fn igroups(&self) -> Api<Igroup> {
        Api::new(self, "/api/protocols/san/igroups")
    }

    /// Initiators of igroup `igroup_uuid`:
    /// `/api/protocols/san/igroups/{igroup_uuid}/initiators` (key: IQN or WWPN).
    pub fn igroup_initiators(&self, igroup_uuid: &str) -> Api<IgroupInitiator> {
        Api::new(
            self,
            sub_path("/api/protocols/san/igroups", igroup_uuid, "initiators"),
        )
    }

    /// LUN maps: `/api/protocols/san/lun-maps` (key: `{lun_uuid}/{igroup_uuid}`).
    pub fn lun_maps(&self) -> Api<LunMap> {
        Api::new(self, "/api/protocols/san/lun-maps")
    }

    /// iSCSI services: `/api/protocols/san/iscsi/services` (key: SVM UUID).
    pub fn iscsi_services(&self) -> Api<IscsiService> {
        Api::new(self, "/api/protocols/san/iscsi/services")
    }

    /// iSCSI (CHAP) credentials: `/api/protocols/san/iscsi/credentials`
    /// (key: `{svm_uuid}/{initiator}`). Create with
    /// [`IscsiCredentialsCreate`](crate::models::IscsiCredentialsCreate).
    pub fn iscsi_credentials(&self) -> Api<IscsiCredentials> {
        Api::new(self, "/api/protocols/san/iscsi/credentials")
    }
}

impl Api<Lun> {
    /// The LUN with path name `name` (`/vol/v/lun0`) in SVM `svm`, if any.
    pub async fn by_name(&self, svm: &str, name: &str) -> Result<Option<Lun>> {
        self.find(&Query::new().filter("svm.name", svm).filter("name", name))
            .await
    }

    /// Resizes LUN `uuid` to `size` bytes.
    pub async fn resize(&self, uuid: &str, size: u64) -> Result<Completed> {
        self.patch(uuid, &LunPatch::new().size(size)).await
    }
}

impl Api<Igroup> {
    /// The igroup `name` in SVM `svm`, if any.
    pub async fn by_name(&self, svm: &str, name: &str) -> Result<Option<Igroup>> {
        self.find(&Query::new().filter("svm.name", svm).filter("name", name))
            .await
    }

    /// Initiators of igroup `igroup_uuid`.
    pub fn initiators(&self, igroup_uuid: &str) -> Api<IgroupInitiator> {
        self.client().igroup_initiators(igroup_uuid)
    }

    /// Adds initiators (IQNs or WWPNs) to igroup `igroup_uuid`.
    pub async fn add_initiators<I, S>(
        &self,
        igroup_uuid: &str,
        names: I,
    ) -> Result<Created<IgroupInitiator>>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.initiators(igroup_uuid)
            .create(&IgroupInitiatorsAdd::new(names))
            .await
    }

    /// Removes initiator `name` from igroup `igroup_uuid`.
    pub async fn remove_initiator(&self, igroup_uuid: &str, name: &str) -> Result<Completed> {
        self.initiators(igroup_uuid).delete(name).await
    }
}

impl Api<LunMap> {
    /// The key of the map of LUN `lun_uuid` to igroup `igroup_uuid`.
    pub fn map_key(lun_uuid: &str, igroup_uuid: &str) -> String {
        pair_key(lun_uuid, igroup_uuid)
    }

    /// The map of LUN `lun_uuid` to igroup `igroup_uuid`.
    pub async fn get_map(&self, lun_uuid: &str, igroup_uuid: &str) -> Result<LunMap> {
        self.get(&Self::map_key(lun_uuid, igroup_uuid), &Query::new())
            .await
    }

    /// Unmaps LUN `lun_uuid` from igroup `igroup_uuid`.
    pub async fn unmap(&self, lun_uuid: &str, igroup_uuid: &str) -> Result<Completed> {
        self.delete(&Self::map_key(lun_uuid, igroup_uuid)).await
    }
}

impl Api<IscsiCredentials> {
    /// The key of the credentials of `initiator` in SVM `svm_uuid`.
    pub fn credentials_key(svm_uuid: &str, initiator: &str) -> String {
        pair_key(svm_uuid, initiator)
    }
}
