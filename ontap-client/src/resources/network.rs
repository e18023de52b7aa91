//! IP and FC interfaces.

use crate::client::Client;
use crate::error::Result;
use crate::models::{FcInterface, IpInterface, IpService};
use crate::query::Query;
use crate::Api;

/// Fields fetched for data LIF lookups.
const DATA_LIF_FIELDS: [&str; 8] = [
    "name", "svm", "ip", "services", "state", "enabled", "location", "uuid",
];

impl Client {
    /// IP interfaces: `/api/network/ip/interfaces` (key: interface UUID).
    pub fn ip_interfaces(&self) -> Api<IpInterface> {
        Api::new(self, "/api/network/ip/interfaces")
    }

    /// FC interfaces: `/api/network/fc/interfaces` (key: interface UUID).
    pub fn fc_interfaces(&self) -> Api<FcInterface> {
        Api::new(self, "/api/network/fc/interfaces")
    }
}

impl Api<IpInterface> {
    /// The IP interfaces of SVM `svm` that offer `service` (such as
    /// [`IpService::DataNvmeTcp`] for NVMe/TCP portals), up or not.
    ///
    /// ```no_run
    /// use ontap_client::models::IpService;
    /// # async fn run(client: ontap_client::Client) -> ontap_client::Result<()> {
    /// for lif in client.ip_interfaces().data_lifs("svm1", &IpService::DataIscsi).await? {
    ///     println!("{:?}", lif.address());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn data_lifs(&self, svm: &str, service: &IpService) -> Result<Vec<IpInterface>> {
        let query = Query::new()
            .filter("svm.name", svm)
            .filter("services", service.as_str())
            .fields(DATA_LIF_FIELDS);
        let mut lifs = self.list_all(&query).await?;
        // The filter matches on the server; the check keeps the promise if a server ignores it.
        lifs.retain(|lif| lif.offers(service));
        Ok(lifs)
    }
}

impl Api<FcInterface> {
    /// The FC interfaces of SVM `svm` with their WWPNs.
    pub async fn of_svm(&self, svm: &str) -> Result<Vec<FcInterface>> {
        let query = Query::new().filter("svm.name", svm).fields([
            "name",
            "svm",
            "wwpn",
            "wwnn",
            "data_protocol",
            "state",
            "enabled",
            "location",
        ]);
        self.list_all(&query).await
    }
}
