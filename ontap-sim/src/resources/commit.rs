//! The skeleton the SAN and NVMe handlers share: find the record the request may see,
//! check, tell the backend, then commit under the store lock with a re-check (the store
//! may have moved while the backend worked), and answer.
//!
//! The backend is told before the store changes, so a refusal leaves the store as it was;
//! a re-check that fails under the lock answers with its error after the backend was
//! told, as every handler did before these helpers existed.

use axum::response::Response;
use serde_json::Value;

use super::{ApiError, ApiRequest, Sim, Store};
use crate::backend::Change;
use crate::store::str_at;

/// The record `key` of `collection` when the request may see it (its SVM, when tunnelled),
/// else the error `missing` makes.
pub(crate) fn lookup(
    sim: &Sim,
    req: &ApiRequest,
    collection: &str,
    key: &str,
    missing: impl FnOnce() -> ApiError,
) -> Result<Value, ApiError> {
    sim.read(|s| super::san::visible(s, req, collection, key))?
        .ok_or_else(missing)
}

/// A record about to be created.
pub(crate) fn created(collection: &str, record: &Value) -> Change {
    Change::Created {
        collection: collection.into(),
        record: record.clone(),
    }
}

/// A record about to change from `before` to `after`.
pub(crate) fn modified(collection: &str, before: Value, after: &Value) -> Change {
    Change::Modified {
        collection: collection.into(),
        before,
        after: after.clone(),
    }
}

/// A record about to be deleted.
pub(crate) fn deleted(collection: &str, record: &Value) -> Change {
    Change::Deleted {
        collection: collection.into(),
        record: record.clone(),
    }
}

/// Realises `changes` in order (the first refusal answers; the store is not touched), then
/// runs `commit` under the store lock; it re-checks what may have changed meanwhile.
pub(crate) async fn commit<T>(
    sim: &Sim,
    changes: impl IntoIterator<Item = Change>,
    commit: impl FnOnce(&mut Store) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    for change in changes {
        sim.realise(change).await.map_err(ApiError::from)?;
    }
    sim.write(commit)
}

/// [`commit`], answering 200 with an empty body (PATCH, DELETE).
pub(crate) async fn commit_ok(
    sim: &Sim,
    changes: impl IntoIterator<Item = Change>,
    write: impl FnOnce(&mut Store) -> Result<(), ApiError>,
) -> Result<Response, ApiError> {
    commit(sim, changes, write).await?;
    Ok(super::san::ok_empty())
}

/// The create skeleton: the backend realises `record`; under the lock `recheck` runs (it
/// may refuse, or charge what goes with the record), then `record` is stored as `key`;
/// the answer is 201 with `Location:` the record's own link.
pub(crate) async fn create(
    sim: &Sim,
    req: &ApiRequest,
    (collection, key): (&str, &str),
    record: &Value,
    recheck: impl FnOnce(&mut Store) -> Result<(), ApiError>,
) -> Result<Response, ApiError> {
    let href = str_at(record, "/_links/self/href");
    commit(sim, [created(collection, record)], |s| {
        recheck(s)?;
        s.insert(collection, key, record.clone());
        Ok(())
    })
    .await?;
    Ok(super::created(req, record, &href))
}

/// Realises and stores a LUN or namespace `record` of `collection`: under the lock its path
/// must still be free (else 409 with `taken_code`) and its reservation is charged to its
/// volume.
pub(crate) async fn commit_block(
    sim: &Sim,
    collection: &str,
    record: &Value,
    taken_code: &str,
    what: &str,
) -> Result<(), ApiError> {
    let uuid = str_at(record, "/uuid");
    commit(sim, [created(collection, record)], |s| {
        if super::san::block_path_taken(s, &str_at(record, "/svm/uuid"), &str_at(record, "/name")) {
            return Err(super::san::path_taken(taken_code));
        }
        let held = super::san::reserved(
            super::san::is_thick(record),
            crate::store::u64_at(record, "/space/size"),
        );
        super::san::charge(
            s,
            &str_at(record, "/location/volume/uuid"),
            held as i64,
            what,
        )?;
        s.insert(collection, &uuid, record.clone());
        Ok(())
    })
    .await
}

/// The maps (records of `maps`) whose `member_ptr` (`/lun/uuid`, `/igroup/uuid`,
/// `/namespace/uuid`, `/subsystem/uuid`) is `member`, in key order.
pub(crate) fn maps_of(sim: &Sim, maps: &str, (member_ptr, member): (&str, &str)) -> Vec<Value> {
    sim.read(|s| {
        s.iter(maps)
            .filter(|(_, m)| str_at(m, member_ptr) == member)
            .map(|(_, m)| m.clone())
            .collect()
    })
}

/// Deletes `record` (key `key` of `collection`) with its `maps` (records of `maps_coll`):
/// the backend is told of each map's deletion, then of the record's; under the lock
/// `unmap` takes each map out of the store, then the record goes.
pub(crate) async fn delete_mapped(
    sim: &Sim,
    (maps_coll, maps): (&str, &[Value]),
    (collection, key, record): (&str, &str, &Value),
    unmap: impl Fn(&mut Store, &Value),
) -> Result<Response, ApiError> {
    delete_mapped_then(
        sim,
        (maps_coll, maps),
        (collection, key, record),
        unmap,
        |_| Ok(()),
    )
    .await
}

/// [`delete_mapped`], running `gone` under the lock when the record was still there.
async fn delete_mapped_then(
    sim: &Sim,
    (maps_coll, maps): (&str, &[Value]),
    (collection, key, record): (&str, &str, &Value),
    unmap: impl Fn(&mut Store, &Value),
    gone: impl FnOnce(&mut Store) -> Result<(), ApiError>,
) -> Result<Response, ApiError> {
    let changes: Vec<Change> = maps
        .iter()
        .map(|m| deleted(maps_coll, m))
        .chain([deleted(collection, record)])
        .collect();
    commit_ok(sim, changes, |s| {
        for m in maps {
            unmap(s, m);
        }
        if s.remove(collection, key).is_some() {
            gone(s)?;
        }
        Ok(())
    })
    .await
}

/// Deletes a LUN or namespace `record` of `collection` with its `maps` ([`delete_mapped`]);
/// its reservation is released from its volume, if that is still there.
pub(crate) async fn delete_block(
    sim: &Sim,
    maps: (&str, &[Value]),
    collection: &str,
    record: &Value,
    what: &str,
    unmap: impl Fn(&mut Store, &Value),
) -> Result<Response, ApiError> {
    let uuid = str_at(record, "/uuid");
    delete_mapped_then(sim, maps, (collection, &uuid, record), unmap, |s| {
        let vuuid = str_at(record, "/location/volume/uuid");
        if s.get(crate::store::coll::VOLUMES, &vuuid).is_some() {
            let held = super::san::reserved(
                super::san::is_thick(record),
                crate::store::u64_at(record, "/space/size"),
            );
            super::san::charge(s, &vuuid, -(held as i64), what)?;
        }
        Ok(())
    })
    .await
}

/// A PATCH of the LUN or namespace `before` (record `uuid` of `collection`) to `after`,
/// whose size grew by `grown` bytes: a thick record's reservation grows with it, checked
/// against its volume first and charged under the lock. There `keep` carries into `after`
/// what may have moved meanwhile (maps), then `after` replaces the record.
pub(crate) async fn patch_block(
    sim: &Sim,
    (collection, uuid): (&str, &str),
    (before, mut after): (Value, Value),
    grown: i64,
    what: &str,
    keep: impl FnOnce(&mut Store, &mut Value),
) -> Result<Response, ApiError> {
    let vuuid = str_at(&before, "/location/volume/uuid");
    // Only a thick record's reservation follows its size.
    let delta = if super::san::is_thick(&before) {
        grown
    } else {
        0
    };
    if delta > 0 {
        let vrec = sim
            .read(|s| s.get(crate::store::coll::VOLUMES, &vuuid).cloned())
            .ok_or_else(ApiError::not_found)?;
        super::san::check_room(&vrec, delta as u64, what)?;
    }
    commit_ok(sim, [modified(collection, before, &after)], |s| {
        if delta != 0 {
            super::san::charge(s, &vuuid, delta, what)?;
        }
        keep(s, &mut after);
        s.insert(collection, uuid, after);
        Ok(())
    })
    .await
}

/// A PATCH that replaces record `key` of `collection` with `after`.
pub(crate) async fn replace(
    sim: &Sim,
    collection: &str,
    key: &str,
    before: Value,
    after: Value,
) -> Result<Response, ApiError> {
    let change = modified(collection, before, &after);
    commit_ok(sim, [change], |s| {
        s.insert(collection, key, after);
        Ok(())
    })
    .await
}

/// A protocol service of an SVM: its store collection (keyed by SVM UUID) and the SVM
/// record's flag (`iscsi`, `fcp`, `nvme`: `<flag>.enabled`) that follows it.
pub(crate) type Service = (&'static str, &'static str);

fn set_service_flag(s: &mut Store, svm: &str, flag: &str, on: bool) {
    if let Some(v) = s.get_mut(crate::store::coll::SVMS, svm) {
        v[flag]["enabled"] = Value::Bool(on);
    }
}

/// Creates the service `record` of its SVM; `recheck` refuses under the lock when the SVM
/// has one by now. 201 with `Location:` the record's own link.
pub(crate) async fn create_service(
    sim: &Sim,
    req: &ApiRequest,
    (collection, flag): Service,
    record: &Value,
    recheck: impl FnOnce(&Store) -> Result<(), ApiError>,
) -> Result<Response, ApiError> {
    let svm = str_at(record, "/svm/uuid");
    create(sim, req, (collection, &svm), record, |s| {
        recheck(s)?;
        set_service_flag(s, &svm, flag, true);
        Ok(())
    })
    .await
}

/// Deletes the service `record` of SVM `svm`.
pub(crate) async fn delete_service(
    sim: &Sim,
    (collection, flag): Service,
    svm: &str,
    record: &Value,
) -> Result<Response, ApiError> {
    commit_ok(sim, [deleted(collection, record)], |s| {
        s.remove(collection, svm);
        set_service_flag(s, svm, flag, false);
        Ok(())
    })
    .await
}

/// A DELETE of record `key` of `collection` and nothing else.
pub(crate) async fn remove(
    sim: &Sim,
    collection: &str,
    key: &str,
    record: &Value,
) -> Result<Response, ApiError> {
    commit_ok(sim, [deleted(collection, record)], |s| {
        s.remove(collection, key);
        Ok(())
    })
    .await
}

/// A change of some `fields` of record `key` of `collection`: `after`'s values are copied
/// into the record as the store has it by then (its other fields may have moved on).
pub(crate) async fn set_fields(
    sim: &Sim,
    (collection, key): (&str, &str),
    before: Value,
    after: &Value,
    fields: &[&str],
) -> Result<(), ApiError> {
    commit(sim, [modified(collection, before, after)], |s| {
        if let Some(cur) = s.get_mut(collection, key) {
            for f in fields {
                cur[*f] = after[*f].clone();
            }
        }
        Ok(())
    })
    .await
}

/// Takes the entries whose `member_ptr` (`/lun/uuid`, `/namespace/uuid`) is `member` out of
/// the `field` array (`lun_maps`, `subsystem_maps`) of record `group` of `collection`
/// (an igroup, a subsystem); the group goes too when that left it with no map and it has
/// `delete_on_unmap`.
pub(crate) fn unmap_from_group(
    s: &mut Store,
    (collection, group): (&str, &str),
    field: &str,
    (member_ptr, member): (&str, &str),
) {
    let mut drop_group = false;
    if let Some(g) = s.get_mut(collection, group) {
        if let Some(arr) = g[field].as_array_mut() {
            arr.retain(|e| str_at(e, member_ptr) != member);
            drop_group = arr.is_empty() && g["delete_on_unmap"] == true;
        }
    }
    if drop_group {
        s.remove(collection, group);
    }
}
