//! The record store: named collections of JSON records keyed by an ordered string key,
//! with a name index, counters and per-volume file sets. Everything here is persisted
//! by `--state` (jobs live elsewhere and are not).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;

/// Store collection names used by the framework and the built-in resources.
pub mod coll {
    /// `/api/cluster` (one record, key `cluster`).
    pub const CLUSTER: &str = "cluster";
    /// `/api/cluster/nodes`.
    pub const NODES: &str = "nodes";
    /// `/api/storage/aggregates`.
    pub const AGGREGATES: &str = "aggregates";
    /// `/api/svm/svms`.
    pub const SVMS: &str = "svms";
    /// `/api/storage/volumes`.
    pub const VOLUMES: &str = "volumes";
    /// `/api/storage/volumes/{uuid}/snapshots` (all volumes' snapshots in one collection).
    pub const SNAPSHOTS: &str = "snapshots";
    /// `/api/network/ip/interfaces`.
    pub const IP_INTERFACES: &str = "ip_interfaces";
    /// `/api/network/fc/interfaces`.
    pub const FC_INTERFACES: &str = "fc_interfaces";
    /// `/api/protocols/nfs/export-policies`.
    pub const EXPORT_POLICIES: &str = "export_policies";
    /// `/api/protocols/cifs/shares`.
    pub const CIFS_SHARES: &str = "cifs_shares";
    /// `/api/storage/snapshot-policies`.
    pub const SNAPSHOT_POLICIES: &str = "snapshot_policies";
    /// `/api/protocols/san/iscsi/services` (key: SVM UUID; seeded here, served by the
    /// SAN resources).
    pub const ISCSI_SERVICES: &str = "iscsi_services";
    /// `/api/protocols/nvme/services` (key: SVM UUID; seeded here, served by the NVMe
    /// resources).
    pub const NVME_SERVICES: &str = "nvme_services";
    /// `/api/protocols/san/fcp/services` (key: SVM UUID; seeded here, served by the SAN
    /// resources).
    pub const FCP_SERVICES: &str = "fcp_services";
    /// `/api/protocols/nfs/services` (key: SVM UUID).
    pub const NFS_SERVICES: &str = "nfs_services";
    /// `/api/protocols/cifs/services` (key: SVM UUID).
    pub const CIFS_SERVICES: &str = "cifs_services";
}

/// The LUN and NVMe namespace records of a volume as one of its snapshots holds them,
/// kept so that a FlexClone of the snapshot gets those (ONTAP clones the snapshot, not the
/// volume as it is now). Not a resource: no endpoint serves it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotBlocks {
    /// The snapshot's volume.
    pub volume_uuid: String,
    /// Records by collection (`luns`, `nvme_namespaces`), in key order, as they were when
    /// the snapshot was taken.
    pub records: BTreeMap<String, Vec<Value>>,
}

/// All simulated state except jobs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Store {
    collections: BTreeMap<String, BTreeMap<String, Value>>,
    counters: BTreeMap<String, u64>,
    files: BTreeMap<String, BTreeSet<String>>,
    /// By snapshot UUID. Outside `collections` so that nothing that walks the resources
    /// (SVM delete, the kernel backend's mirror, volume users) sees these records; state
    /// files written before it existed load with none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    snapshot_blocks: BTreeMap<String, SnapshotBlocks>,
    #[serde(skip)]
    names: HashMap<String, HashMap<String, Vec<String>>>,
}

fn name_of(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

impl Store {
    /// Rebuilds the name index (after deserialising).
    pub fn reindex(&mut self) {
        self.names.clear();
        for (c, recs) in &self.collections {
            let idx = self.names.entry(c.clone()).or_default();
            for (k, v) in recs {
                if let Some(n) = name_of(v) {
                    idx.entry(n.to_string()).or_default().push(k.clone());
                }
            }
        }
    }

    /// One record.
    pub fn get(&self, coll: &str, key: &str) -> Option<&Value> {
        self.collections.get(coll)?.get(key)
    }

    /// One record, mutably. Do not change `name` through this; use [`Store::insert`].
    pub fn get_mut(&mut self, coll: &str, key: &str) -> Option<&mut Value> {
        self.collections.get_mut(coll)?.get_mut(key)
    }

    /// Inserts or replaces a record, keeping the name index up to date. Replacing keeps
    /// what hangs off the record (a volume's files, a snapshot's kept blocks).
    pub fn insert(&mut self, coll: &str, key: &str, value: Value) -> Option<Value> {
        let old = self.take(coll, key);
        if let Some(n) = name_of(&value) {
            self.names
                .entry(coll.to_string())
                .or_default()
                .entry(n.to_string())
                .or_default()
                .push(key.to_string());
        }
        self.collections
            .entry(coll.to_string())
            .or_default()
            .insert(key.to_string(), value);
        old
    }

    /// Removes a record, with what hangs off it: a volume's files and the blocks kept
    /// for its snapshots, a snapshot's kept blocks.
    pub fn remove(&mut self, coll: &str, key: &str) -> Option<Value> {
        let old = self.take(coll, key)?;
        match coll {
            coll::VOLUMES => {
                self.files.remove(key);
                self.snapshot_blocks.retain(|_, b| b.volume_uuid != key);
            }
            coll::SNAPSHOTS => {
                self.snapshot_blocks.remove(key);
            }
            _ => {}
        }
        Some(old)
    }

    /// Removes a record and its name index entry only.
    fn take(&mut self, coll: &str, key: &str) -> Option<Value> {
        let old = self.collections.get_mut(coll)?.remove(key)?;
        if let Some(n) = name_of(&old) {
            if let Some(keys) = self.names.get_mut(coll).and_then(|i| i.get_mut(n)) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    if let Some(i) = self.names.get_mut(coll) {
                        i.remove(n);
                    }
                }
            }
        }
        Some(old)
    }

    /// Keeps `blocks` with snapshot `snapshot_uuid` (replacing what it had).
    pub fn keep_snapshot_blocks(&mut self, snapshot_uuid: &str, blocks: SnapshotBlocks) {
        self.snapshot_blocks
            .insert(snapshot_uuid.to_string(), blocks);
    }

    /// The blocks kept with a snapshot; `None` for a snapshot taken before they were
    /// kept (an older state file) or one that does not exist.
    pub fn snapshot_blocks(&self, snapshot_uuid: &str) -> Option<&SnapshotBlocks> {
        self.snapshot_blocks.get(snapshot_uuid)
    }

    /// A whole collection, ordered by key.
    pub fn collection(&self, coll: &str) -> Option<&BTreeMap<String, Value>> {
        self.collections.get(coll)
    }

    /// Records of a collection in key order.
    pub fn iter<'a>(&'a self, coll: &str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.collections
            .get(coll)
            .into_iter()
            .flat_map(|m| m.iter())
    }

    /// Names of the collections that hold records.
    pub fn collection_names(&self) -> Vec<String> {
        self.collections.keys().cloned().collect()
    }

    /// Number of records in a collection.
    pub fn len(&self, coll: &str) -> usize {
        self.collections.get(coll).map_or(0, BTreeMap::len)
    }

    /// Whether the store has no records at all.
    pub fn is_empty(&self) -> bool {
        self.collections.values().all(BTreeMap::is_empty)
    }

    /// Keys of the records of `coll` named `name` (any SVM), via the name index.
    pub fn keys_named(&self, coll: &str, name: &str) -> Vec<String> {
        self.names
            .get(coll)
            .and_then(|i| i.get(name))
            .cloned()
            .unwrap_or_default()
    }

    /// The first record of `coll` named `name` whose `svm.uuid` is `svm_uuid` (or any SVM
    /// when `None`) and that passes `extra`.
    pub fn find_named(
        &self,
        coll: &str,
        svm_uuid: Option<&str>,
        name: &str,
        extra: impl Fn(&Value) -> bool,
    ) -> Option<(&String, &Value)> {
        let idx = self.names.get(coll)?.get(name)?;
        let recs = self.collections.get(coll)?;
        idx.iter().find_map(|k| {
            let (key, v) = recs.get_key_value(k)?;
            let svm_ok =
                svm_uuid.is_none_or(|s| v.pointer("/svm/uuid").and_then(Value::as_str) == Some(s));
            (svm_ok && extra(v)).then_some((key, v))
        })
    }

    /// The first record of `coll` passing `pred` (a scan).
    pub fn find(&self, coll: &str, pred: impl Fn(&Value) -> bool) -> Option<(&String, &Value)> {
        self.iter(coll).find(|(_, v)| pred(v))
    }

    /// Next value of a named counter, starting at 1.
    pub fn next_counter(&mut self, name: &str) -> u64 {
        let c = self.counters.entry(name.to_string()).or_insert(0);
        *c += 1;
        *c
    }

    /// Files known in a volume (paths relative to the volume root).
    pub fn files(&self, volume_uuid: &str) -> Option<&BTreeSet<String>> {
        self.files.get(volume_uuid)
    }

    /// Records a file in a volume; returns false if it already existed.
    pub fn add_file(&mut self, volume_uuid: &str, path: &str) -> bool {
        self.files
            .entry(volume_uuid.to_string())
            .or_default()
            .insert(path.trim_start_matches('/').to_string())
    }

    /// Removes a file, or a directory (with everything below it when `recurse`; an empty
    /// directory otherwise). Returns how many entries went.
    pub fn remove_files(&mut self, volume_uuid: &str, path: &str, recurse: bool) -> usize {
        let Some(set) = self.files.get_mut(volume_uuid) else {
            return 0;
        };
        let path = path.trim_matches('/');
        if set.remove(path) {
            return 1;
        }
        let prefix = format!("{path}/");
        let below: Vec<String> = set
            .iter()
            .filter(|f| f.starts_with(&prefix) && f.as_str() != prefix)
            .cloned()
            .collect();
        if !below.is_empty() && !recurse {
            return 0;
        }
        let mut n = usize::from(set.remove(&prefix));
        for f in below {
            set.remove(&f);
            n += 1;
        }
        n
    }

    /// Resolves an SVM reference object (`{"name":…}` or `{"uuid":…}`) to `(uuid, name)`.
    pub fn resolve_svm(&self, r: &Value) -> Result<(String, String), ApiError> {
        let rec = if let Some(u) = r.get("uuid").and_then(Value::as_str) {
            self.get(coll::SVMS, u)
        } else if let Some(n) = r.get("name").and_then(Value::as_str) {
            self.find_named(coll::SVMS, None, n, |_| true)
                .map(|(_, v)| v)
        } else {
            return Err(ApiError::missing_value("svm.name"));
        };
        let rec = rec.ok_or_else(|| {
            let what = r
                .get("name")
                .or_else(|| r.get("uuid"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            ApiError::not_found_msg(format!("SVM \"{what}\" does not exist.")).with_target("svm")
        })?;
        Ok((str_at(rec, "/uuid"), str_at(rec, "/name")))
    }

    /// Everything that keeps a volume from being deleted: records of any collection other
    /// than volumes and snapshots whose `location.volume.uuid` (LUNs, namespaces, ...) or
    /// `volume.uuid` is the volume, and FlexClones whose parent is the volume.
    /// Returns `(collection, key, name)` triples.
    pub fn volume_users(&self, volume_uuid: &str) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for (c, recs) in &self.collections {
            for (k, v) in recs {
                let hit = match c.as_str() {
                    coll::SNAPSHOTS => false,
                    coll::VOLUMES => {
                        v.pointer("/clone/is_flexclone") == Some(&Value::Bool(true))
                            && v.pointer("/clone/parent_volume/uuid")
                                .and_then(Value::as_str)
                                == Some(volume_uuid)
                    }
                    _ => {
                        v.pointer("/location/volume/uuid").and_then(Value::as_str)
                            == Some(volume_uuid)
                    }
                };
                if hit {
                    out.push((c.clone(), k.clone(), name_of(v).unwrap_or(k).to_string()));
                }
            }
        }
        out
    }

    /// Resets the store to empty.
    pub fn clear(&mut self) {
        *self = Store::default();
    }
}

/// The string at a JSON pointer, or an empty string.
pub fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The unsigned integer at a JSON pointer, or 0.
pub fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn name_index_follows_renames_and_removals() {
        let mut s = Store::default();
        s.insert("volumes", "k1", json!({"name":"a","svm":{"uuid":"s1"}}));
        s.insert("volumes", "k2", json!({"name":"a","svm":{"uuid":"s2"}}));
        assert_eq!(
            s.find_named("volumes", Some("s2"), "a", |_| true)
                .map(|(k, _)| k.as_str()),
            Some("k2")
        );
        s.insert("volumes", "k2", json!({"name":"b","svm":{"uuid":"s2"}}));
        assert!(s.find_named("volumes", Some("s2"), "a", |_| true).is_none());
        assert_eq!(s.keys_named("volumes", "b"), vec!["k2".to_string()]);
        s.remove("volumes", "k1");
        assert!(s.keys_named("volumes", "a").is_empty());
        let text = serde_json::to_string(&s).unwrap();
        let mut back: Store = serde_json::from_str(&text).unwrap();
        back.reindex();
        assert_eq!(back.keys_named("volumes", "b"), vec!["k2".to_string()]);
    }

    fn blocks(vol: &str, lun: &str) -> SnapshotBlocks {
        SnapshotBlocks {
            volume_uuid: vol.into(),
            records: BTreeMap::from([("luns".to_string(), vec![json!({"name": lun})])]),
        }
    }

    #[test]
    fn replacing_a_record_keeps_what_hangs_off_it_and_removing_drops_it() {
        let mut s = Store::default();
        s.insert(coll::VOLUMES, "v1", json!({"name": "v"}));
        s.add_file("v1", "f");
        s.insert(coll::SNAPSHOTS, "s1", json!({"name": "a"}));
        s.insert(coll::SNAPSHOTS, "s2", json!({"name": "b"}));
        s.keep_snapshot_blocks("s1", blocks("v1", "/vol/v/l1"));
        s.keep_snapshot_blocks("s2", blocks("v1", "/vol/v/l2"));
        s.keep_snapshot_blocks("s3", blocks("v3", "/vol/w/l3"));

        // A PATCH (rename) replaces the record; files and kept blocks stay.
        s.insert(coll::VOLUMES, "v1", json!({"name": "v-renamed"}));
        s.insert(coll::SNAPSHOTS, "s1", json!({"name": "a-renamed"}));
        assert_eq!(s.files("v1").map(BTreeSet::len), Some(1));
        assert_eq!(s.snapshot_blocks("s1"), Some(&blocks("v1", "/vol/v/l1")));

        s.remove(coll::SNAPSHOTS, "s1");
        assert_eq!(s.snapshot_blocks("s1"), None);
        assert_eq!(s.snapshot_blocks("s2"), Some(&blocks("v1", "/vol/v/l2")));
        s.remove(coll::VOLUMES, "v1");
        assert_eq!(s.files("v1"), None);
        assert_eq!(s.snapshot_blocks("s2"), None);
        assert_eq!(s.snapshot_blocks("s3"), Some(&blocks("v3", "/vol/w/l3")));
        // Kept blocks are no collection.
        assert_eq!(s.collection_names(), ["snapshots", "volumes"]);
        assert_eq!(s.len(coll::SNAPSHOTS), 1);
    }

    #[test]
    fn kept_blocks_round_trip_and_older_state_loads_without_them() {
        let mut s = Store::default();
        s.insert(coll::SNAPSHOTS, "s1", json!({"name": "a"}));
        assert_eq!(
            serde_json::to_value(&s).unwrap().get("snapshot_blocks"),
            None
        );
        s.keep_snapshot_blocks("s1", blocks("v1", "/vol/v/l1"));
        let text = serde_json::to_value(&s).unwrap();
        assert_eq!(
            text["snapshot_blocks"],
            json!({"s1": {"volume_uuid": "v1", "records": {"luns": [{"name": "/vol/v/l1"}]}}})
        );
        let back: Store = serde_json::from_value(text).unwrap();
        assert_eq!(back.snapshot_blocks("s1"), Some(&blocks("v1", "/vol/v/l1")));
        let old: Store = serde_json::from_value(
            json!({"collections": {"snapshots": {"s1": {"name": "a"}}}, "counters": {}, "files": {}}),
        )
        .unwrap();
        assert_eq!(old.snapshot_blocks("s1"), None);
        assert_eq!(old.len(coll::SNAPSHOTS), 1);
    }
}
