//! NFS export policies and rules, SMB shares and their ACLs.

use crate::client::Client;
use crate::error::Result;
use crate::models::{CifsShare, CifsShareAcl, ExportPolicy, ExportRule, ExportRuleCreate};
use crate::mutation::{Completed, Created};
use crate::query::Query;
use crate::Api;

use super::{pair_key, sub_path};

impl Client {
    /// NFS export policies: `/api/protocols/nfs/export-policies` (key: policy id).
    pub fn export_policies(&self) -> Api<ExportPolicy> {
        Api::new(self, "/api/protocols/nfs/export-policies")
    }

    /// Rules of export policy `policy_id`:
    /// `/api/protocols/nfs/export-policies/{policy_id}/rules` (key: rule index).
    pub fn export_rules(&self, policy_id: u64) -> Api<ExportRule> {
        Api::new(
            self,
            sub_path(
                "/api/protocols/nfs/export-policies",
                &policy_id.to_string(),
                "rules",
            ),
        )
    }

    /// SMB shares: `/api/protocols/cifs/shares` (key: `{svm_uuid}/{name}`, see
    /// [`Api::<CifsShare>::share_key`]).
    pub fn cifs_shares(&self) -> Api<CifsShare> {
        Api::new(self, "/api/protocols/cifs/shares")
    }
}

impl Api<ExportPolicy> {
    /// The policy `name` in SVM `svm`, if any.
    pub async fn by_name(&self, svm: &str, name: &str) -> Result<Option<ExportPolicy>> {
        self.find(&Query::new().filter("svm.name", svm).filter("name", name))
            .await
    }

    /// Rules of policy `policy_id`.
    pub fn rules(&self, policy_id: u64) -> Api<ExportRule> {
        self.client().export_rules(policy_id)
    }

    /// Adds a rule to policy `policy_id`.
    pub async fn add_rule(
        &self,
        policy_id: u64,
        rule: &ExportRuleCreate,
    ) -> Result<Created<ExportRule>> {
        self.rules(policy_id).create(rule).await
    }
}

impl Api<CifsShare> {
    /// The key of share `name` in SVM `svm_uuid`: `{svm_uuid}/{name}`.
    pub fn share_key(svm_uuid: &str, name: &str) -> String {
        pair_key(svm_uuid, name)
    }

    /// Share `name` of SVM `svm_uuid`.
    pub async fn get_share(&self, svm_uuid: &str, name: &str, query: &Query) -> Result<CifsShare> {
        self.get(&Self::share_key(svm_uuid, name), query).await
    }

    /// Deletes share `name` of SVM `svm_uuid`.
    pub async fn delete_share(&self, svm_uuid: &str, name: &str) -> Result<Completed> {
        self.delete(&Self::share_key(svm_uuid, name)).await
    }

    /// ACL entries of share `name` of SVM `svm_uuid`:
    /// `/api/protocols/cifs/shares/{svm_uuid}/{name}/acls` (key: `{user_or_group}/{type}`).
    pub fn acls(&self, svm_uuid: &str, name: &str) -> Api<CifsShareAcl> {
        let share = sub_path(self.path(), svm_uuid, "");
        Api::new(
            self.client(),
            sub_path(share.trim_end_matches('/'), name, "acls"),
        )
    }
}
