//! NVMe resources: services, namespaces, subsystems, subsystem hosts and subsystem maps.
//!
//! Pure rules (NQNs, NSIDs, sizes) sit in [`rules`]; the handlers below apply them to the store.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use self::rules::{
    check_block_size, check_namespace_size, check_nqn, check_subsystem_name, hex_id,
    lowest_free_nsid, new_subsystem_serial, parse_hex_id, target_nqn, DEFAULT_BLOCK_SIZE,
    NAMESPACE_OS_TYPES, SUBSYSTEM_OS_TYPES,
};
use super::commit::{self, commit_ok, deleted, lookup};
use super::san::rules::PathKind;
use super::san::{
    allows, block_location, block_path_taken, check_room, each_selected, find_ref, get_in_svm,
    grow_size, guard_delete, lookup_in_svm, ok_empty, patch_enabled, path_taken, req_enum,
    reserved, resolve_location, size_input, svm_without,
};
use super::{
    get_handler, get_one, href_ref, list_handler, list_records, svm_ref, ApiError, ApiRequest,
    ResourceSpec, Sim, Store,
};
use crate::api::{opt_bool, opt_str, req_str};
use crate::jobs::now_timestamp;
use crate::store::{coll, str_at};

/// Pure NVMe rules, independent of HTTP and of the record store.
pub(crate) mod rules {
    use crate::resources::san::rules::{parse_size, SizeInput, Violation};

    /// The target NQN ONTAP gives a subsystem:
    /// `nqn.1992-08.com.netapp:sn.<svm uuid hex>:subsystem.<name>`.
    pub(crate) fn target_nqn(svm_uuid: &str, subsystem: &str) -> String {
        let hex: String = svm_uuid.chars().filter(|c| *c != '-').collect();
        format!(
            "nqn.1992-08.com.netapp:sn.{}:subsystem.{subsystem}",
            hex.to_ascii_lowercase()
        )
    }

    /// Longest NQN the NVMe specification allows.
    pub(crate) const MAX_NQN_LEN: usize = 223;

    /// Validates a host NQN with ONTAP's codes (72089771/72089772/72089773).
    pub(crate) fn check_nqn(nqn: &str) -> Result<(), Violation> {
        const EXAMPLE: &str = "An example of a valid NQN is nqn.1992-01.com.example:string.";
        let Some(rest) = nqn.strip_prefix("nqn.") else {
            return Err(Violation::bad(
                72089772,
                format!("The NQN is invalid. Add the prefix 'nqn'. {EXAMPLE}"),
            ));
        };
        let date = rest.get(..7).unwrap_or(rest);
        let b = date.as_bytes();
        let date_ok = b.len() == 7
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..].iter().all(u8::is_ascii_digit)
            && (1..=12).contains(&date[5..].parse::<u8>().unwrap_or(0));
        if !date_ok {
            return Err(Violation::bad(
                72089773,
                format!("The NQN is invalid. The date field must be formatted yyyy-mm. {EXAMPLE}"),
            ));
        }
        let after = &rest[7..];
        let qualifier = after.strip_prefix('.').unwrap_or("");
        if qualifier.is_empty()
            || qualifier.starts_with(':')
            || nqn.len() > MAX_NQN_LEN
            || nqn.contains(' ')
        {
            return Err(Violation::bad(
                72089771,
                format!("The NQN is invalid. A non-empty qualifier is required after the prefix. {EXAMPLE}"),
            ));
        }
        Ok(())
    }

    /// Checks a subsystem name (ONTAP code 72089709): 1..96 of `A-Z a-z 0-9 _ - .`.
    pub(crate) fn check_subsystem_name(name: &str) -> Result<(), Violation> {
        let ok = !name.is_empty()
            && name.len() <= 96
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(())
        } else {
            Err(Violation::bad(
                72089709,
                "The NVMe subsystem name contains an invalid character.",
            )
            .at("name"))
        }
    }

    /// Formats an NSID or ANA group id as ONTAP does: 8 zero-filled hex digits and `h`.
    pub(crate) fn hex_id(n: u32) -> String {
        format!("{n:08x}h")
    }

    /// Reads back an id written by [`hex_id`].
    pub(crate) fn parse_hex_id(s: &str) -> Option<u32> {
        u32::from_str_radix(s.strip_suffix('h')?, 16).ok()
    }

    /// Lowest NSID not in `used`, counting from 1 (NSID 0 is reserved by the NVMe spec).
    pub(crate) fn lowest_free_nsid(used: impl IntoIterator<Item = u32>) -> u32 {
        let used: std::collections::BTreeSet<u32> = used.into_iter().collect();
        (1..).find(|n| !used.contains(n)).unwrap_or(u32::MAX)
    }

    /// Makes a subsystem serial number ("wtJNKNKD-uPLAAAAAAAD" style: 20 characters); `pick(n)`
    /// must return a value in `0..n`.
    pub(crate) fn new_subsystem_serial(mut pick: impl FnMut(usize) -> usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..20)
            .map(|i| {
                if i == 8 {
                    '-'
                } else {
                    char::from(ALPHABET[pick(ALPHABET.len())])
                }
            })
            .collect()
    }

    /// Namespace `os_type` values.
    pub(crate) const NAMESPACE_OS_TYPES: &[&str] = &["aix", "linux", "vmware", "windows"];

    /// Subsystem `os_type` values.
    pub(crate) const SUBSYSTEM_OS_TYPES: &[&str] = &["aix", "linux", "vmware", "windows"];

    /// Default namespace block size (ONTAP uses 4 KiB unless asked for 512).
    pub(crate) const DEFAULT_BLOCK_SIZE: u64 = 4096;

    /// Checks a namespace block size: 512 or 4096.
    pub(crate) fn check_block_size(size: u64) -> Result<u64, Violation> {
        if size == 512 || size == 4096 {
            Ok(size)
        } else {
            Err(Violation::bad(
                262185,
                format!("Invalid value \"{size}\" for field \"space.block_size\" (512, 4096)."),
            )
            .at("space.block_size"))
        }
    }

    /// Checks a namespace size (ONTAP codes 72089722/72089723/72089724).
    pub(crate) fn check_namespace_size(input: &SizeInput<'_>) -> Result<u64, Violation> {
        use crate::resources::san::rules::{MAX_BLOCK_DEVICE_SIZE, MIN_BLOCK_DEVICE_SIZE};
        let size = parse_size(input).map_err(|()| {
            Violation::bad(262185, "An invalid size value was provided.").at("space.size")
        })?;
        if size < 0 {
            return Err(Violation::bad(
                72089722,
                "A negative size was provided for the NVMe namespace.",
            )
            .at("space.size"));
        }
        if size < i128::from(MIN_BLOCK_DEVICE_SIZE) {
            return Err(Violation::bad(
                72089723,
                "The specified size is too small for the NVMe namespace.",
            )
            .at("space.size"));
        }
        if size > i128::from(MAX_BLOCK_DEVICE_SIZE) {
            return Err(Violation::bad(
                72089724,
                "The specified size is too large for the NVMe namespace.",
            )
            .at("space.size"));
        }
        Ok(size as u64)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn target_nqn_matches_real_capture() {
            // shared/samples/nvme-show-topology-json_ontap.json.txt
            assert_eq!(
                target_nqn("48391d66-c0a6-11ec-aaa5-d039ea165514", "subsys_CLIENT116"),
                "nqn.1992-08.com.netapp:sn.48391d66c0a611ecaaa5d039ea165514:subsystem.subsys_CLIENT116"
            );
        }

        #[test]
        fn nqn_validation() {
            assert_eq!(
                check_nqn("nqn.2014-08.org.nvmexpress:uuid:12372496-59c4-4d1b-be09-74362c0c1afc"),
                Ok(())
            );
            assert_eq!(check_nqn("nqn.1992-01.com.example:string"), Ok(()));
            assert_eq!(
                check_nqn("iqn.1992-01.com.example:string")
                    .unwrap_err()
                    .code,
                72089772
            );
            assert_eq!(
                check_nqn("nqn.92-01.com.example").unwrap_err().code,
                72089773
            );
            assert_eq!(
                check_nqn("nqn.1992-13.com.example").unwrap_err().code,
                72089773
            );
            assert_eq!(check_nqn("nqn.1992-01").unwrap_err().code, 72089771);
            assert_eq!(check_nqn("nqn.1992-01.").unwrap_err().code, 72089771);
            assert_eq!(check_nqn("nqn.").unwrap_err().code, 72089773);
        }

        #[test]
        fn subsystem_names() {
            assert_eq!(check_subsystem_name("subsys_CLIENT116"), Ok(()));
            assert_eq!(check_subsystem_name("a/b").unwrap_err().code, 72089709);
            assert_eq!(check_subsystem_name("").unwrap_err().code, 72089709);
        }

        #[test]
        fn ids() {
            assert_eq!(hex_id(1), "00000001h");
            assert_eq!(hex_id(0x103050), "00103050h");
            assert_eq!(parse_hex_id("0000000ah"), Some(10));
            assert_eq!(parse_hex_id("0000000a"), None);
            assert_eq!(lowest_free_nsid([]), 1);
            assert_eq!(lowest_free_nsid([1, 2, 4]), 3);
        }

        #[test]
        fn serial_shape() {
            let s = new_subsystem_serial(|n| 3 % n);
            assert_eq!(s, "DDDDDDDD-DDDDDDDDDDD");
            assert_eq!(s.len(), 20);
        }

        #[test]
        fn sizes_and_blocks() {
            assert_eq!(check_block_size(512), Ok(512));
            assert_eq!(check_block_size(1024).unwrap_err().code, 262185);
            assert_eq!(check_namespace_size(&SizeInput::Text("1G")), Ok(1 << 30));
            assert_eq!(
                check_namespace_size(&SizeInput::Int(-5)).unwrap_err().code,
                72089722
            );
            assert_eq!(
                check_namespace_size(&SizeInput::Int(100)).unwrap_err().code,
                72089723
            );
            assert_eq!(
                check_namespace_size(&SizeInput::Text("20T"))
                    .unwrap_err()
                    .code,
                72089724
            );
        }
    }
}

/// Store collection of NVMe namespaces.
pub(crate) const NAMESPACES: &str = "nvme_namespaces";
/// Store collection of NVMe subsystems.
pub(crate) const SUBSYSTEMS: &str = "nvme_subsystems";
/// Store collection of subsystem maps (key `SUBSYSTEM_UUID/NAMESPACE_UUID`).
pub(crate) const SUBSYSTEM_MAPS: &str = "nvme_subsystem_maps";

/// The NVMe service: its collection and the SVM's flag.
const NVME_SERVICE: commit::Service = (coll::NVME_SERVICES, "nvme");
const SERVICE_SPEC: ResourceSpec = ResourceSpec {
    collection: coll::NVME_SERVICES,
    key_param: "svm.uuid",
    identity: &["svm"],
    svm_scoped: true,
};
const NAMESPACE_SPEC: ResourceSpec = ResourceSpec {
    collection: NAMESPACES,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: true,
};
const SUBSYSTEM_SPEC: ResourceSpec = ResourceSpec {
    collection: SUBSYSTEMS,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: true,
};
const HOST_SPEC: ResourceSpec = ResourceSpec {
    collection: SUBSYSTEMS,
    key_param: "nqn",
    identity: &["nqn"],
    svm_scoped: false,
};
const MAP_SPEC: ResourceSpec = ResourceSpec {
    collection: SUBSYSTEM_MAPS,
    key_param: "key",
    identity: &["svm", "subsystem", "namespace"],
    svm_scoped: true,
};

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/api/protocols/nvme/services",
            get(list_handler(&SERVICE_SPEC)).post(service_create),
        )
        .route(
            "/api/protocols/nvme/services/{svm}",
            get(service_get).patch(service_patch).delete(service_delete),
        )
        .route(
            "/api/storage/namespaces",
            get(list_handler(&NAMESPACE_SPEC))
                .post(ns_create)
                .delete(each_selected(&NAMESPACE_SPEC, |sim, k, req| {
                    ns_delete(State(sim), Path(k), req)
                })),
        )
        .route(
            "/api/storage/namespaces/{uuid}",
            get(get_handler(&NAMESPACE_SPEC))
                .patch(ns_patch)
                .delete(ns_delete),
        )
        .route(
            "/api/protocols/nvme/subsystems",
            get(list_handler(&SUBSYSTEM_SPEC)).post(sub_create),
        )
        .route(
            "/api/protocols/nvme/subsystems/{uuid}",
            get(get_handler(&SUBSYSTEM_SPEC))
                .patch(sub_patch)
                .delete(sub_delete),
        )
        .route(
            "/api/protocols/nvme/subsystems/{uuid}/hosts",
            get(host_list).post(host_add),
        )
        .route(
            "/api/protocols/nvme/subsystems/{uuid}/hosts/{nqn}",
            get(host_get).delete(host_remove),
        )
        .route(
            "/api/protocols/nvme/subsystem-maps",
            get(list_handler(&MAP_SPEC)).post(map_create),
        )
        .route(
            "/api/protocols/nvme/subsystem-maps/{subsystem}/{namespace}",
            get(map_get).delete(map_delete),
        )
}

// ---------------------------------------------------------------- services

fn no_service() -> ApiError {
    ApiError::new(
        404,
        "72089651",
        "The supplied SVM does not have an NVMe service.",
    )
}

async fn service_get(
    State(sim): State<Sim>,
    Path(svm): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    get_in_svm(&sim, &req, &SERVICE_SPEC, (&svm, &svm), no_service)
}

fn service_exists() -> ApiError {
    ApiError::new(
        409,
        "72089650",
        "An NVMe service already exists for the specified SVM.",
    )
}

async fn service_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&["svm", "enabled"])?;
    let body = req.body_obj();
    let enabled = opt_bool(&body, "enabled")?.unwrap_or(true);
    let plan = |s: &Store| svm_without(s, &req, coll::NVME_SERVICES, service_exists);
    let (u, n) = sim.read(plan)?;
    let record = json!({
        "svm": svm_ref(&u, &n),
        "enabled": enabled,
        "_links": {"self": {"href": format!("/api/protocols/nvme/services/{u}")}},
    });
    commit::create_service(&sim, &req, NVME_SERVICE, &record, |s| plan(s).map(drop)).await
}

async fn service_patch(
    State(sim): State<Sim>,
    Path(svm): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    patch_enabled(&sim, &req, (coll::NVME_SERVICES, &svm), no_service).await
}

async fn service_delete(
    State(sim): State<Sim>,
    Path(svm): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = lookup_in_svm(&sim, &req, (coll::NVME_SERVICES, &svm), &svm, no_service)?;
    if rec["enabled"] == true {
        return Err(ApiError::new(409, "72090028", "The NVMe service is enabled. The NVMe service must be disabled before it can be deleted."));
    }
    if sim.read(|s| {
        s.find(SUBSYSTEMS, |v| str_at(v, "/svm/uuid") == svm)
            .is_some()
    }) {
        return Err(ApiError::new(409, "72089653", "There are subsystems associated with the NVMe service SVM. The subsystems must be removed before deleting the NVMe service."));
    }
    commit::delete_service(&sim, NVME_SERVICE, &svm, &rec).await
}

// ---------------------------------------------------------------- namespaces

/// The namespaces `sources` (of the parent volume, now or at a snapshot) as a new
/// FlexClone `clone` holds them (new UUIDs, unmapped).
pub(crate) fn cloned_namespaces(sources: &[Value], clone: &Value) -> Vec<Value> {
    super::san::cloned_block_records(sources, clone, |_| {})
}

fn ns_not_found() -> ApiError {
    ApiError::new(404, "72090006", "The specified namespace was not found.")
}

async fn ns_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&[
        "svm",
        "name",
        "location.volume",
        "location.qtree",
        "location.namespace",
        "os_type",
        "space.size",
        "space.block_size",
        "comment",
        "enabled",
    ])?;
    let body = req.body_obj();
    let os_type = req_enum(&body, "os_type", NAMESPACE_OS_TYPES)?;
    let size = match size_input(&body, "space.size")? {
        Some(s) => check_namespace_size(&s)?,
        None => return Err(ApiError::missing_value("space.size")),
    };
    let block = match body.get("space").and_then(|s| s.get("block_size")) {
        None | Some(Value::Null) => DEFAULT_BLOCK_SIZE,
        Some(v) => check_block_size(
            v.as_u64()
                .ok_or_else(|| ApiError::invalid_value("space.block_size", &v.to_string()))?,
        )?,
    };
    let comment = opt_str(&body, "comment")?.unwrap_or_default();
    let uuid = uuid::Uuid::new_v4().to_string();
    let record = sim.read(|s| -> Result<Value, ApiError> {
        let (svm_uuid, svm_name) = req.create_svm(s)?;
        let (path, vuuid, vrec) =
            resolve_location(s, &svm_uuid, &body, PathKind::Namespace, "namespace")?;
        if vrec["type"] == "ls" {
            return Err(ApiError::new(400, "72089721", "The volume specified is in a load sharing mirror relationship. Namespaces are not supported in load sharing mirrors."));
        }
        if vrec["style"] == "flexgroup" {
            return Err(ApiError::new(400, "72089728", "NVMe namespaces cannot be created on a FlexGroup volume."));
        }
        if block_path_taken(s, &svm_uuid, &path.full()) {
            return Err(path_taken("72089725"));
        }
        // Namespaces are created thin (no reservation), as ONTAP does.
        check_room(&vrec, reserved(false, size), "namespace")?;
        let location = block_location(&path, &vuuid, "namespace");
        Ok(json!({
            "uuid": uuid,
            "name": path.full(),
            "svm": svm_ref(&svm_uuid, &svm_name),
            "location": location,
            "os_type": os_type,
            "enabled": true,
            "comment": comment,
            "create_time": now_timestamp(),
            "space": {"size": size, "used": 0, "block_size": block,
                      "guarantee": {"requested": false, "reserved": false}},
            "status": {"state": "online", "container_state": "online", "read_only": false,
                       "mapped": false},
            "_links": {"self": {"href": format!("/api/storage/namespaces/{uuid}")}},
        }))
    })?;
    commit::commit_block(&sim, NAMESPACES, &record, "72089725", "namespace").await?;
    Ok(super::created(
        &req,
        &record,
        &format!("/api/storage/namespaces/{uuid}"),
    ))
}

async fn ns_patch(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["space.size", "comment", "enabled"])?;
    let body = req.body_obj();
    let before = lookup(&sim, &req, NAMESPACES, &uuid, ns_not_found)?;
    let mut after = before.clone();
    let grown = grow_size(&body, (&before, &mut after), check_namespace_size, || {
        // ONTAP documents no code for shrinking a namespace; refuse as an invalid value.
        ApiError::new(
            400,
            "262185",
            "Reducing the size of an NVMe namespace is not supported.",
        )
        .with_target("space.size")
    })?;
    if let Some(c) = opt_str(&body, "comment")? {
        after["comment"] = json!(c);
    }
    if let Some(e) = opt_bool(&body, "enabled")? {
        after["enabled"] = json!(e);
    }
    let records = (before, after);
    commit::patch_block(
        &sim,
        (NAMESPACES, &uuid),
        records,
        grown,
        "namespace",
        |s, after| {
            if let Some(cur) = s.get(NAMESPACES, &uuid) {
                if let Some(m) = cur.get("subsystem_map") {
                    after["subsystem_map"] = m.clone();
                }
                after["status"]["mapped"] = cur["status"]["mapped"].clone();
            }
        },
    )
    .await
}

async fn ns_delete(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = lookup(&sim, &req, NAMESPACES, &uuid, ns_not_found)?;
    // A namespace maps to one subsystem at most.
    let map = commit::maps_of(&sim, SUBSYSTEM_MAPS, ("/namespace/uuid", &uuid))
        .into_iter()
        .next();
    let allow = allows(&req, "allow_delete_while_mapped")?;
    if map.is_some() && !allow {
        // The 9.7 API lists no code for this; the generic "in use" code is used.
        return Err(ApiError::in_use("The NVMe namespace is mapped to an NVMe subsystem. Use the \"allow_delete_while_mapped\" query parameter to delete it."));
    }
    guard_delete(&sim, "vserver nvme namespace delete", &rec, "path")?;
    let maps = (SUBSYSTEM_MAPS, map.as_slice());
    commit::delete_block(&sim, maps, NAMESPACES, &rec, "namespace", |s, m| {
        unmap_in_store(s, &str_at(m, "/subsystem/uuid"), &uuid);
    })
    .await
}

// ---------------------------------------------------------------- subsystems

fn sub_not_found() -> ApiError {
    ApiError::new(
        404,
        "72090001",
        "The NVMe subsystem specified by \"subsystem.uuid\" was not found.",
    )
}

fn host_nqns(v: &Value) -> Vec<String> {
    v["hosts"]
        .as_array()
        .map(|a| a.iter().map(|h| str_at(h, "/nqn")).collect())
        .unwrap_or_default()
}

fn host_record(sub_uuid: &str, nqn: &str) -> Value {
    json!({"nqn": nqn,
           "_links": {"self": {"href": format!("/api/protocols/nvme/subsystems/{sub_uuid}/hosts/{nqn}")}}})
}

/// Host NQNs from `hosts[{nqn}]` or `records[{nqn}]`, validated and unique.
fn nqn_entries(v: &Value, field: &str, existing: &[String]) -> Result<Vec<String>, ApiError> {
    let items = v
        .as_array()
        .ok_or_else(|| ApiError::invalid_value(field, &v.to_string()))?;
    let mut out: Vec<String> = Vec::new();
    for i in items {
        let nqn = i
            .get("nqn")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::missing_value(&format!("{field}.nqn")))?;
        check_nqn(nqn).map_err(|e| ApiError::from(e).with_target(format!("{field}.nqn")))?;
        if out.iter().any(|o| o == nqn) {
            return Err(ApiError::new(
                400,
                "72090036",
                "The \"hosts.nqn\" NVMe subsystem property must contain unique values.",
            ));
        }
        if existing.iter().any(|o| o == nqn) {
            return Err(ApiError::new(
                409,
                "72089705",
                "The NVMe subsystem host already exists for the NVMe subsystem.",
            ));
        }
        out.push(nqn.to_string());
    }
    Ok(out)
}

async fn sub_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&[
        "svm",
        "name",
        "os_type",
        "hosts",
        "comment",
        "delete_on_unmap",
    ])?;
    let body = req.body_obj();
    let name = req_str(&body, "name")?;
    check_subsystem_name(&name)?;
    let os_type = req_enum(&body, "os_type", SUBSYSTEM_OS_TYPES)?;
    let hosts = match body.get("hosts") {
        Some(h) => nqn_entries(h, "hosts", &[])?,
        None => Vec::new(),
    };
    let comment = opt_str(&body, "comment")?;
    let delete_on_unmap = opt_bool(&body, "delete_on_unmap")?.unwrap_or(false);
    let uuid = uuid::Uuid::new_v4().to_string();
    let plan = |s: &Store| -> Result<(String, String), ApiError> {
        let (u, n) = req.create_svm(s)?;
        if s.get(coll::NVME_SERVICES, &u).is_none() {
            return Err(ApiError::new(
                400,
                "72090029",
                "The NVMe service does not exist.",
            ));
        }
        if s.find_named(SUBSYSTEMS, Some(&u), &name, |_| true)
            .is_some()
        {
            return Err(ApiError::new(
                409,
                "72090025",
                "The NVMe subsystem already exists for the SVM.",
            )
            .with_target("name"));
        }
        Ok((u, n))
    };
    let (svm_uuid, svm_name) = sim.read(plan)?;
    let mut record = json!({
        "uuid": uuid,
        "name": name,
        "svm": svm_ref(&svm_uuid, &svm_name),
        "os_type": os_type,
        "target_nqn": target_nqn(&svm_uuid, &name),
        "serial_number": new_subsystem_serial(|n| fastrand::usize(..n)),
        "hosts": hosts.iter().map(|h| host_record(&uuid, h)).collect::<Vec<_>>(),
        "io_queue": {"default": {"count": 4, "depth": 32}},
        "delete_on_unmap": delete_on_unmap,
        "subsystem_maps": [],
        "_links": {"self": {"href": format!("/api/protocols/nvme/subsystems/{uuid}")}},
    });
    if let Some(c) = comment {
        record["comment"] = json!(c);
    }
    commit::create(&sim, &req, (SUBSYSTEMS, &uuid), &record, |s| {
        plan(s).map(drop)
    })
    .await
}

async fn sub_patch(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["comment", "delete_on_unmap"])?;
    let body = req.body_obj();
    let before = lookup(&sim, &req, SUBSYSTEMS, &uuid, sub_not_found)?;
    let mut after = before.clone();
    if let Some(c) = opt_str(&body, "comment")? {
        after["comment"] = json!(c);
    }
    if let Some(d) = opt_bool(&body, "delete_on_unmap")? {
        after["delete_on_unmap"] = json!(d);
    }
    let fields = ["comment", "delete_on_unmap"];
    commit::set_fields(&sim, (SUBSYSTEMS, &uuid), before, &after, &fields).await?;
    Ok(ok_empty())
}

async fn sub_delete(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = lookup(&sim, &req, SUBSYSTEMS, &uuid, sub_not_found)?;
    let maps = commit::maps_of(&sim, SUBSYSTEM_MAPS, ("/subsystem/uuid", &uuid));
    if !maps.is_empty() && !allows(&req, "allow_delete_while_mapped")? {
        return Err(ApiError::new(409, "72090023", "The NVMe subsystem contains one or more mapped namespaces. Use the \"allow_delete_while_mapped\" query parameter to delete an NVMe subsystem with mapped NVMe namespaces."));
    }
    if !host_nqns(&rec).is_empty() && !allows(&req, "allow_delete_with_hosts")? {
        return Err(ApiError::new(409, "72090024", "The NVMe subsystem contains one or more NVMe hosts. Use the \"allow_delete_with_hosts\" query parameter to delete an NVMe subsystem with NVMe hosts."));
    }
    guard_delete(&sim, "vserver nvme subsystem delete", &rec, "subsystem")?;
    let subsystem = (SUBSYSTEMS, uuid.as_str(), &rec);
    commit::delete_mapped(&sim, (SUBSYSTEM_MAPS, &maps), subsystem, |s, m| {
        unmap_in_store(s, &uuid, &str_at(m, "/namespace/uuid"));
    })
    .await
}

fn host_map(rec: &Value) -> BTreeMap<String, Value> {
    rec["hosts"]
        .as_array()
        .map(|a| a.iter().map(|h| (str_at(h, "/nqn"), h.clone())).collect())
        .unwrap_or_default()
}

async fn host_list(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = lookup(&sim, &req, SUBSYSTEMS, &uuid, sub_not_found)?;
    list_records(&req, &HOST_SPEC, &host_map(&rec), |_| true)
}

async fn host_get(
    State(sim): State<Sim>,
    Path((uuid, nqn)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = lookup(&sim, &req, SUBSYSTEMS, &uuid, sub_not_found)?;
    let host = host_map(&rec)
        .remove(&nqn)
        .ok_or_else(ApiError::not_found)?;
    Ok(super::render_one(&req, &HOST_SPEC, &host))
}

async fn host_add(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["nqn", "records"])?;
    let body = req.body_obj();
    let before = lookup(&sim, &req, SUBSYSTEMS, &uuid, sub_not_found)?;
    let existing = host_nqns(&before);
    let new = match (body.get("nqn"), body.get("records")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(400, "72090002", "The POST request of hosts to an NVMe subsystem can only contain an 'nqn' property or 'records' property, but not both."));
        }
        (Some(n), None) => nqn_entries(&json!([{"nqn": n}]), "nqn", &existing)?,
        (None, Some(r)) => nqn_entries(r, "records", &existing)?,
        (None, None) => return Err(ApiError::missing_value("nqn")),
    };
    if new.is_empty() {
        return Err(ApiError::missing_value("nqn"));
    }
    let mut after = before.clone();
    if let Some(arr) = after["hosts"].as_array_mut() {
        arr.extend(new.iter().map(|n| host_record(&uuid, n)));
    }
    commit::set_fields(&sim, (SUBSYSTEMS, &uuid), before, &after, &["hosts"]).await?;
    let recs: Vec<Value> = new.iter().map(|n| host_record(&uuid, n)).collect();
    let location = format!("/api/protocols/nvme/subsystems/{uuid}/hosts/{}", new[0]);
    Ok(super::created_all(&req, recs, &location))
}

async fn host_remove(
    State(sim): State<Sim>,
    Path((uuid, nqn)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let before = lookup(&sim, &req, SUBSYSTEMS, &uuid, sub_not_found)?;
    if !host_nqns(&before).contains(&nqn) {
        check_nqn(&nqn)?;
        return Err(ApiError::not_found_msg(format!(
            "The NVMe subsystem host \"{nqn}\" does not exist."
        )));
    }
    let mut after = before.clone();
    if let Some(arr) = after["hosts"].as_array_mut() {
        arr.retain(|h| str_at(h, "/nqn") != nqn);
    }
    commit::set_fields(&sim, (SUBSYSTEMS, &uuid), before, &after, &["hosts"]).await?;
    Ok(ok_empty())
}

// ---------------------------------------------------------------- subsystem maps

fn map_key(sub: &str, ns: &str) -> String {
    format!("{sub}/{ns}")
}

/// Removes a subsystem map and its traces; deletes the subsystem when it has
/// `delete_on_unmap` and no maps are left.
fn unmap_in_store(s: &mut Store, sub_uuid: &str, ns_uuid: &str) {
    s.remove(SUBSYSTEM_MAPS, &map_key(sub_uuid, ns_uuid));
    if let Some(ns) = s.get_mut(NAMESPACES, ns_uuid) {
        if let Some(m) = ns.as_object_mut() {
            m.remove("subsystem_map");
        }
        ns["status"]["mapped"] = json!(false);
    }
    let group = (SUBSYSTEMS, sub_uuid);
    commit::unmap_from_group(s, group, "subsystem_maps", ("/namespace/uuid", ns_uuid));
}

async fn map_get(
    State(sim): State<Sim>,
    Path((sub, ns)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    get_one(&sim, &req, &MAP_SPEC, &map_key(&sub, &ns))
}

async fn map_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&["svm", "subsystem", "namespace"])?;
    let body = req.body_obj();
    let sub_ref = body
        .get("subsystem")
        .cloned()
        .ok_or_else(|| ApiError::missing_value("subsystem.uuid"))?;
    let ns_ref = body
        .get("namespace")
        .cloned()
        .ok_or_else(|| ApiError::missing_value("namespace.uuid"))?;
    let plan = |s: &Store| -> Result<(Value, Value, u32), ApiError> {
        let svm = if body.contains_key("svm") || req.svm_name.is_some() || req.svm_uuid.is_some() {
            Some(req.create_svm(s)?.0)
        } else {
            None
        };
        let (_, sub) = find_ref(s, SUBSYSTEMS, svm.as_deref(), &sub_ref).ok_or_else(|| {
            match (sub_ref.get("uuid"), sub_ref.get("name")) {
                (Some(_), Some(_)) => ApiError::new(400, "72090020", "The specified \"subsystem.uuid\" and \"subsystem.name\" refer to different NVMe subsystems."),
                (Some(_), None) => ApiError::new(404, "72090001", "The NVMe subsystem specified by \"subsystem.uuid\" was not found."),
                _ => ApiError::new(404, "72090021", "The NVMe subsystem specified by \"subsystem.name\" was not found."),
            }
            .with_target("subsystem")
        })?;
        let svm_uuid = str_at(sub, "/svm/uuid");
        let (_, ns) = find_ref(s, NAMESPACES, Some(&svm_uuid), &ns_ref).ok_or_else(|| {
            match (ns_ref.get("uuid"), ns_ref.get("name")) {
                (Some(_), Some(_)) => ApiError::new(400, "72090005", "The specified \"namespace.uuid\" and \"namespace.name\" refer to different NVMe namespaces."),
                (Some(_), None) => ApiError::new(404, "72090006", "The NVMe namespace specified by \"namespace.uuid\" was not found."),
                _ => ApiError::new(404, "72090007", "The NVMe namespace specified by \"namespace.name\" was not found."),
            }
            .with_target("namespace")
        })?;
        if let Some(m) = ns.get("subsystem_map") {
            let to = str_at(m, "/subsystem/name");
            return Err(ApiError::new(
                409,
                "72089790",
                format!("The NVMe namespace is already mapped to NVMe subsystem \"{to}\"; a namespace maps to one subsystem only."),
            ));
        }
        let sub_uuid = str_at(sub, "/uuid");
        let used = s
            .iter(SUBSYSTEM_MAPS)
            .filter(|(_, m)| str_at(m, "/subsystem/uuid") == sub_uuid)
            .filter_map(|(_, m)| m["nsid"].as_str().and_then(parse_hex_id));
        let nsid = lowest_free_nsid(used);
        Ok((sub.clone(), ns.clone(), nsid))
    };
    let (sub, ns, nsid) = sim.read(plan)?;
    let (sub_uuid, ns_uuid) = (str_at(&sub, "/uuid"), str_at(&ns, "/uuid"));
    let key = map_key(&sub_uuid, &ns_uuid);
    let sub_link = href_ref(
        "/api/protocols/nvme/subsystems",
        &sub_uuid,
        &str_at(&sub, "/name"),
    );
    let ns_link = href_ref("/api/storage/namespaces", &ns_uuid, &str_at(&ns, "/name"));
    // ANA group ids follow the NSID, as in ONTAP's documented example.
    let record = json!({
        "svm": sub["svm"].clone(),
        "subsystem": sub_link,
        "namespace": ns_link,
        "nsid": hex_id(nsid),
        "anagrpid": hex_id(nsid),
        "_links": {"self": {"href": format!("/api/protocols/nvme/subsystem-maps/{key}")}},
    });
    commit::create(&sim, &req, (SUBSYSTEM_MAPS, &key), &record, |s| {
        let (_, _, again) = plan(s)?;
        if again != nsid {
            return Err(ApiError::new(409, "1", "The NSID was taken by a concurrent map; retry."));
        }
        let entry = json!({"namespace": ns_link, "nsid": hex_id(nsid), "anagrpid": hex_id(nsid)});
        if let Some(cur) = s.get_mut(SUBSYSTEMS, &sub_uuid) {
            if let Some(arr) = cur["subsystem_maps"].as_array_mut() {
                arr.push(entry);
            }
        }
        if let Some(cur) = s.get_mut(NAMESPACES, &ns_uuid) {
            cur["subsystem_map"] = json!({"subsystem": sub_link, "nsid": hex_id(nsid),
                                          "anagrpid": hex_id(nsid),
                                          "_links": {"self": {"href": format!("/api/protocols/nvme/subsystem-maps/{key}")}}});
            cur["status"]["mapped"] = json!(true);
        }
        Ok(())
    })
    .await
}

async fn map_delete(
    State(sim): State<Sim>,
    Path((sub, ns)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let key = map_key(&sub, &ns);
    let rec = lookup(&sim, &req, SUBSYSTEM_MAPS, &key, || {
        ApiError::new(
            404,
            "72090019",
            "The specified NVMe namespace is not mapped to the specified NVMe subsystem.",
        )
    })?;
    crate::resources::mav::guard(
        &sim,
        "vserver nvme subsystem map remove",
        &[
            ("vserver", &str_at(&rec, "/svm/name")),
            ("subsystem", &str_at(&rec, "/subsystem/name")),
            ("path", &str_at(&rec, "/namespace/name")),
        ],
    )?;
    commit_ok(&sim, [deleted(SUBSYSTEM_MAPS, &rec)], |s| {
        unmap_in_store(s, &sub, &ns);
        Ok(())
    })
    .await
}
