//! NVMe services, namespaces, subsystems with their hosts, and subsystem maps.

use crate::client::Client;
use crate::error::Result;
use crate::models::{
    NamespacePatch, NvmeNamespace, NvmeService, NvmeSubsystem, NvmeSubsystemHost, NvmeSubsystemMap,
    SubsystemHostsAdd,
};
use crate::mutation::{Completed, Created};
use crate::query::Query;
use crate::Api;

use super::{pair_key, sub_path};

impl Client {
    /// NVMe services: `/api/protocols/nvme/services` (key: SVM UUID).
    pub fn nvme_services(&self) -> Api<NvmeService> {
        Api::new(self, "/api/protocols/nvme/services")
    }

    /// NVMe namespaces: `/api/storage/namespaces` (key: namespace UUID).
    pub fn namespaces(&self) -> Api<NvmeNamespace> {
        Api::new(self, "/api/storage/namespaces")
    }

    /// NVMe subsystems: `/api/protocols/nvme/subsystems` (key: subsystem UUID).
    pub fn nvme_subsystems(&self) -> Api<NvmeSubsystem> {
        Api::new(self, "/api/protocols/nvme/subsystems")
    }

    /// Hosts of subsystem `subsystem_uuid`:
    /// `/api/protocols/nvme/subsystems/{subsystem_uuid}/hosts` (key: host NQN).
    pub fn nvme_subsystem_hosts(&self, subsystem_uuid: &str) -> Api<NvmeSubsystemHost> {
        Api::new(
            self,
            sub_path("/api/protocols/nvme/subsystems", subsystem_uuid, "hosts"),
        )
    }

    /// Subsystem maps: `/api/protocols/nvme/subsystem-maps`
    /// (key: `{subsystem_uuid}/{namespace_uuid}`).
    pub fn nvme_subsystem_maps(&self) -> Api<NvmeSubsystemMap> {
        Api::new(self, "/api/protocols/nvme/subsystem-maps")
    }
}

impl Api<NvmeNamespace> {
    /// The namespace with path name `name` in SVM `svm`, if any.
    pub async fn by_name(&self, svm: &str, name: &str) -> Result<Option<NvmeNamespace>> {
        self.find(&Query::new().filter("svm.name", svm).filter("name", name))
            .await
    }

    /// Resizes namespace `uuid` to `size` bytes.
    pub async fn resize(&self, uuid: &str, size: u64) -> Result<Completed> {
        self.patch(uuid, &NamespacePatch::new().size(size)).await
    }
}

impl Api<NvmeSubsystem> {
    /// The subsystem `name` in SVM `svm`, if any.
    pub async fn by_name(&self, svm: &str, name: &str) -> Result<Option<NvmeSubsystem>> {
        self.find(&Query::new().filter("svm.name", svm).filter("name", name))
            .await
    }

    /// Hosts of subsystem `subsystem_uuid`.
    pub fn hosts(&self, subsystem_uuid: &str) -> Api<NvmeSubsystemHost> {
        self.client().nvme_subsystem_hosts(subsystem_uuid)
    }

    /// Allows host NQNs on subsystem `subsystem_uuid`.
    pub async fn add_hosts<I, S>(
        &self,
        subsystem_uuid: &str,
        nqns: I,
    ) -> Result<Created<NvmeSubsystemHost>>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.hosts(subsystem_uuid)
            .create(&SubsystemHostsAdd::new(nqns))
            .await
    }

    /// Removes host `nqn` from subsystem `subsystem_uuid`.
    pub async fn remove_host(&self, subsystem_uuid: &str, nqn: &str) -> Result<Completed> {
        self.hosts(subsystem_uuid).delete(nqn).await
    }
}

impl Api<NvmeSubsystemMap> {
    /// The key of the map of namespace `namespace_uuid` into subsystem `subsystem_uuid`.
    pub fn map_key(subsystem_uuid: &str, namespace_uuid: &str) -> String {
        pair_key(subsystem_uuid, namespace_uuid)
    }

    /// Unmaps namespace `namespace_uuid` from subsystem `subsystem_uuid`.
    pub async fn unmap(&self, subsystem_uuid: &str, namespace_uuid: &str) -> Result<Completed> {
        self.delete(&Self::map_key(subsystem_uuid, namespace_uuid))
            .await
    }
}
