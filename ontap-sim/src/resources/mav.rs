//! Multi-admin verification (MAV): the global switch, rules and approval requests.
//!
//! Pure rules (rule matching, request states, the 262325 message) live in [`rules`].
//!
//! Handlers of protected operations call [`guard`] before they change anything: when MAV is
//! enabled and a rule covers the operation, the call fails with 262325 and a pending request
//! is created (or the pending one for the same operation and query is named again). Once an
//! approver PATCHes the request to `approved`, the retried call passes once and the request
//! becomes `executed`.
//!
//! The simulator has a single account, so it cannot tell approvers from requesters: any
//! caller may approve (ONTAP refuses the requester's own approval). The pure rule
//! [`rules::decide`] does check it when both users are known.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Value};

use self::rules::{
    approval_required, decide, format_query, parse_query, rule_covers, RequestState,
};
use super::san::ok_empty;
use super::{
    get_one, int_key, json_response, list, ApiError, ApiRequest, ResourceSpec, Sim, Store,
};
use crate::api::{opt_bool, opt_str, req_str};
use crate::jobs::now_timestamp;
use crate::query::percent_encode;
use crate::store::{coll, str_at, u64_at};

/// Pure MAV rules, independent of HTTP and of the record store.
pub(crate) mod rules {
    use crate::resources::san::rules::Violation;

    /// ONTAP's code for "this operation needs an approved MAV request".
    pub(crate) const APPROVAL_REQUIRED: u32 = 262325;

    /// HTTP status of the approval-required error. ONTAP's sources do not show it
    /// **(unverified)**; 403 fits "not permitted yet" and is what the simulator sends.
    pub(crate) const APPROVAL_REQUIRED_STATUS: u16 = 403;

    /// The message ONTAP sends with code 262325.
    pub(crate) fn approval_required_message(index: u64) -> String {
        format!("The security multi-admin-verify request (index {index}) requires approval.")
    }

    /// The approval-required refusal for request `index`.
    pub(crate) fn approval_required(index: u64) -> Violation {
        Violation::with_status(
            APPROVAL_REQUIRED_STATUS,
            APPROVAL_REQUIRED,
            approval_required_message(index),
        )
    }

    /// Reads the request index back out of a 262325 message.
    // The client side of this lives in ontap-client; kept here to test the message shape.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn parse_request_index(message: &str) -> Option<u64> {
        let start = message.find("(index ")? + "(index ".len();
        let rest = &message[start..];
        let end = rest.find(')')?;
        rest[..end].trim().parse().ok()
    }

    /// Parses a CLI-style query such as `-vserver vs0 -volume v1` into (field, value) pairs.
    pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut words = query.split_whitespace().peekable();
        while let Some(word) = words.next() {
            if let Some(field) = word.strip_prefix('-') {
                let value = match words.peek() {
                    Some(v) if !v.starts_with('-') => words.next().unwrap_or_default().to_owned(),
                    _ => String::new(),
                };
                out.push((field.to_owned(), value));
            }
        }
        out
    }

    fn glob(pattern: &str, value: &str) -> bool {
        match pattern.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => pattern == value,
        }
    }

    /// Does a rule (`operation`, CLI `query`) cover an operation with these CLI arguments?
    /// An empty rule query covers every instance; otherwise every field in it must match.
    pub(crate) fn rule_covers(
        rule_operation: &str,
        rule_query: &str,
        operation: &str,
        args: &[(&str, &str)],
    ) -> bool {
        if rule_operation != operation {
            return false;
        }
        parse_query(rule_query)
            .iter()
            .all(|(field, pattern)| args.iter().any(|(f, v)| *f == field && glob(pattern, v)))
    }

    /// Builds the CLI query ONTAP records on a request: `-vserver vs0 -volume v1`.
    pub(crate) fn format_query(args: &[(&str, &str)]) -> String {
        args.iter()
            .map(|(f, v)| format!("-{f} {v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// States of an approval request.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum RequestState {
        /// Waiting for approvers.
        Pending,
        /// Approved; the operation may run once.
        Approved,
        /// Vetoed by an approver.
        Vetoed,
        /// Expired before approval or execution.
        Expired,
        /// The approved operation ran.
        Executed,
    }

    impl RequestState {
        /// Parses the REST value.
        pub(crate) fn parse(s: &str) -> Option<Self> {
            match s {
                "pending" => Some(Self::Pending),
                "approved" => Some(Self::Approved),
                "vetoed" => Some(Self::Vetoed),
                "expired" => Some(Self::Expired),
                "executed" => Some(Self::Executed),
                _ => None,
            }
        }

        /// The REST value.
        pub(crate) fn as_str(self) -> &'static str {
            match self {
                Self::Pending => "pending",
                Self::Approved => "approved",
                Self::Vetoed => "vetoed",
                Self::Expired => "expired",
                Self::Executed => "executed",
            }
        }
    }

    /// ONTAP code for an approval decision the request's state or the user does not allow.
    /// Not documented in the sources **(unverified)**; the simulator uses 262326.
    pub(crate) const INVALID_DECISION: u32 = 262326;

    /// Applies an approver's PATCH of `state` (approved or vetoed) to a request.
    ///
    /// The requester may not approve their own request, as in ONTAP. `pending_approvers` is
    /// decremented on each approval; the request becomes approved when it reaches 0.
    pub(crate) fn decide(
        current: RequestState,
        wanted: RequestState,
        requester: &str,
        approver: Option<&str>,
        pending_approvers: u32,
    ) -> Result<(RequestState, u32), Violation> {
        if current != RequestState::Pending {
            return Err(Violation::bad(
                INVALID_DECISION,
                format!(
                    "The request is in state \"{}\" and cannot be {}.",
                    current.as_str(),
                    wanted.as_str()
                ),
            )
            .at("state"));
        }
        if approver == Some(requester) {
            return Err(Violation::with_status(
                403,
                INVALID_DECISION,
                format!("User \"{requester}\" cannot approve or veto a request they made."),
            ));
        }
        match wanted {
            RequestState::Approved => {
                let left = pending_approvers.saturating_sub(1);
                let state = if left == 0 {
                    RequestState::Approved
                } else {
                    RequestState::Pending
                };
                Ok((state, left))
            }
            RequestState::Vetoed => Ok((RequestState::Vetoed, pending_approvers)),
            other => Err(Violation::bad(
                262185,
                format!(
                    "Invalid value \"{}\" for field \"state\" (approved, vetoed).",
                    other.as_str()
                ),
            )
            .at("state")),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn message_round_trip() {
            let m = approval_required_message(1);
            assert_eq!(
                m,
                "The security multi-admin-verify request (index 1) requires approval."
            );
            assert_eq!(parse_request_index(&m), Some(1));
            assert_eq!(
                parse_request_index(&approval_required_message(4711)),
                Some(4711)
            );
            assert_eq!(parse_request_index("entry doesn't exist"), None);
            let v = approval_required(3);
            assert_eq!((v.status, v.code), (403, 262325));
        }

        #[test]
        fn queries() {
            assert_eq!(
                parse_query("-vserver vs0 -volume v1"),
                vec![
                    ("vserver".to_owned(), "vs0".to_owned()),
                    ("volume".to_owned(), "v1".to_owned())
                ]
            );
            assert_eq!(
                format_query(&[("vserver", "vs0"), ("volume", "v1")]),
                "-vserver vs0 -volume v1"
            );
            let args = [("vserver", "vs0"), ("volume", "v1")];
            assert!(rule_covers("volume delete", "", "volume delete", &args));
            assert!(rule_covers(
                "volume delete",
                "-vserver vs0",
                "volume delete",
                &args
            ));
            assert!(rule_covers(
                "volume delete",
                "-vserver vs* -volume v1",
                "volume delete",
                &args
            ));
            assert!(!rule_covers(
                "volume delete",
                "-vserver vs1",
                "volume delete",
                &args
            ));
            assert!(!rule_covers(
                "volume snapshot delete",
                "",
                "volume delete",
                &args
            ));
            assert!(!rule_covers(
                "volume delete",
                "-snapshot s1",
                "volume delete",
                &args
            ));
        }

        #[test]
        fn decisions() {
            use RequestState::*;
            assert_eq!(
                decide(Pending, Approved, "admin", Some("approver"), 1),
                Ok((Approved, 0))
            );
            assert_eq!(
                decide(Pending, Approved, "admin", None, 2),
                Ok((Pending, 1))
            );
            assert_eq!(
                decide(Pending, Vetoed, "admin", Some("approver"), 1),
                Ok((Vetoed, 1))
            );
            let own = decide(Pending, Approved, "admin", Some("admin"), 1).unwrap_err();
            assert_eq!((own.status, own.code), (403, INVALID_DECISION));
            assert_eq!(
                decide(Executed, Approved, "admin", Some("b"), 1)
                    .unwrap_err()
                    .code,
                INVALID_DECISION
            );
            assert_eq!(
                decide(Pending, Executed, "admin", None, 1)
                    .unwrap_err()
                    .code,
                262185
            );
        }
    }
}

/// Store collection holding the global MAV settings (one record, key `config`).
pub(crate) const CONFIG: &str = "mav_config";
/// Store collection of MAV rules (key `OWNER_UUID/OPERATION`).
pub(crate) const RULES: &str = "mav_rules";
/// Store collection of MAV requests (key: zero-padded index).
pub(crate) const REQUESTS: &str = "mav_requests";

const CONFIG_KEY: &str = "config";
const BASE: &str = "/api/security/multi-admin-verify";

const RULE_SPEC: ResourceSpec = ResourceSpec {
    collection: RULES,
    key_param: "key",
    identity: &["owner", "operation"],
    svm_scoped: false,
};
const REQUEST_SPEC: ResourceSpec = ResourceSpec {
    collection: REQUESTS,
    key_param: "index",
    identity: &["index"],
    svm_scoped: false,
};

/// Operations that protect MAV itself while it is enabled (ONTAP's system-defined rules).
const SELF_PROTECTED: &[&str] = &[
    "security multi-admin-verify modify",
    "security multi-admin-verify rule create",
    "security multi-admin-verify rule modify",
    "security multi-admin-verify rule delete",
];

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(BASE, get(config_get).patch(config_patch))
        .route(&format!("{BASE}/rules"), get(rule_list).post(rule_create))
        .route(
            &format!("{BASE}/rules/{{owner}}/{{operation}}"),
            get(rule_get).patch(rule_patch).delete(rule_delete),
        )
        .route(
            &format!("{BASE}/requests"),
            get(request_list).post(request_create),
        )
        .route(
            &format!("{BASE}/requests/{{index}}"),
            get(request_get).patch(request_patch).delete(request_delete),
        )
}

fn default_config() -> Value {
    json!({
        "enabled": false,
        "required_approvers": 1,
        "approval_groups": [],
        "approval_expiry": "PT1H",
        "execution_expiry": "PT1H",
        "_links": {"self": {"href": BASE}},
    })
}

fn config(s: &Store) -> Value {
    s.get(CONFIG, CONFIG_KEY)
        .cloned()
        .unwrap_or_else(default_config)
}

fn owner(s: &Store) -> Value {
    let c = s.get(coll::CLUSTER, "cluster");
    let uuid = c.map(|c| str_at(c, "/uuid")).unwrap_or_default();
    let name = c.map(|c| str_at(c, "/name")).unwrap_or_default();
    json!({"uuid": uuid, "name": name})
}

/// Checks a protected operation against MAV. `args` are the CLI arguments that identify the
/// object (`[("vserver", "svm1"), ("volume", "vol1")]`).
///
/// Returns `Ok` when MAV is off, no rule covers the operation, or an approved request for
/// exactly this operation and query exists (that request becomes `executed`). Otherwise
/// returns the 262325 error naming a pending request, creating it when needed.
///
/// Called before any change by: `lun delete`, `lun igroup delete`, `lun mapping delete`,
/// `vserver nvme namespace delete`, `vserver nvme subsystem delete`,
/// `vserver nvme subsystem map remove`, `snapmirror break`, `snapmirror delete`. Volume and
/// snapshot handlers should call it synchronously (before starting their job) with
/// `"volume delete", &[("vserver", svm), ("volume", name)]` and
/// `"volume snapshot delete", &[("vserver", svm), ("volume", name), ("snapshot", name)]`.
pub(crate) fn guard(sim: &Sim, operation: &str, args: &[(&str, &str)]) -> Result<(), ApiError> {
    let user = sim.inner.cfg.username.clone();
    sim.write(|s| guard_in(s, operation, args, false, &user))
}

fn guard_in(
    s: &mut Store,
    operation: &str,
    args: &[(&str, &str)],
    system_rule: bool,
    user: &str,
) -> Result<(), ApiError> {
    let cfg = config(s);
    if cfg["enabled"] != true {
        return Ok(());
    }
    let rule = s
        .iter(RULES)
        .find(|(_, r)| {
            rule_covers(
                &str_at(r, "/operation"),
                &str_at(r, "/query"),
                operation,
                args,
            )
        })
        .map(|(_, r)| r.clone());
    let required = match (&rule, system_rule) {
        (Some(r), _) => r["required_approvers"].as_u64().unwrap_or(1),
        (None, true) => cfg["required_approvers"].as_u64().unwrap_or(1),
        (None, false) => return Ok(()),
    };
    let query = format_query(args);
    let same = |r: &Value, state: &str| {
        str_at(r, "/operation") == operation
            && str_at(r, "/query") == query
            && str_at(r, "/state") == state
    };
    if let Some(k) = s
        .find(REQUESTS, |r| same(r, "approved"))
        .map(|(k, _)| k.clone())
    {
        if let Some(r) = s.get_mut(REQUESTS, &k) {
            r["state"] = json!(RequestState::Executed.as_str());
            r["execution_time"] = json!(now_timestamp());
        }
        return Ok(());
    }
    if let Some((_, r)) = s.find(REQUESTS, |r| same(r, "pending")) {
        return Err(approval_required(u64_at(r, "/index")).into());
    }
    let index = s.next_counter("mav_request_index");
    let rec = json!({
        "index": index,
        "operation": operation,
        "query": query,
        "state": RequestState::Pending.as_str(),
        "required_approvers": required,
        "pending_approvers": required,
        "approved_users": [],
        "permitted_users": [],
        "user_requested": user,
        "owner": owner(s),
        "execute_on_approval": false,
        "create_time": now_timestamp(),
        "_links": {"self": {"href": format!("{BASE}/requests/{index}")}},
    });
    s.insert(REQUESTS, &int_key(index), rec);
    Err(approval_required(index).into())
}

fn guard_self(sim: &Sim, operation: &str, args: &[(&str, &str)]) -> Result<(), ApiError> {
    let user = sim.inner.cfg.username.clone();
    debug_assert!(SELF_PROTECTED.contains(&operation));
    sim.write(|s| guard_in(s, operation, args, true, &user))
}

async fn config_get(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    let rec = sim.read(config);
    let sel = crate::query::FieldSelection::for_query(&req.query, &[], true);
    Ok(json_response(StatusCode::OK, &sel.project(&rec)))
}

async fn config_patch(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&[
        "enabled",
        "required_approvers",
        "approval_groups",
        "approval_expiry",
        "execution_expiry",
    ])?;
    let body = req.body_obj();
    let enabled = opt_bool(&body, "enabled")?;
    let approvers = match body.get("required_approvers") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ApiError::invalid_value("required_approvers", &v.to_string()))?,
        ),
    };
    let query: Vec<(String, String)> = body
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let args: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    guard_self(&sim, "security multi-admin-verify modify", &args)?;
    sim.write(|s| {
        let mut c = config(s);
        if let Some(e) = enabled {
            c["enabled"] = json!(e);
        }
        if let Some(n) = approvers {
            c["required_approvers"] = json!(n);
        }
        for f in ["approval_groups", "approval_expiry", "execution_expiry"] {
            if let Some(v) = body.get(f) {
                c[f] = v.clone();
            }
        }
        s.insert(CONFIG, CONFIG_KEY, c);
    });
    Ok(ok_empty())
}

fn rule_key(owner: &str, operation: &str) -> String {
    format!("{owner}/{operation}")
}

/// Path segments may spell spaces as `+` (the Python client's `volume+delete`).
fn operation_from_path(op: &str) -> String {
    op.replace('+', " ")
}

async fn rule_list(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    list(&sim, &req, &RULE_SPEC, |_| true)
}

async fn rule_get(
    State(sim): State<Sim>,
    Path((owner, op)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    get_one(
        &sim,
        &req,
        &RULE_SPEC,
        &rule_key(&owner, &operation_from_path(&op)),
    )
}

fn check_approvers(v: Option<&Value>) -> Result<Option<u64>, ApiError> {
    match v {
        None => Ok(None),
        Some(x) => x
            .as_u64()
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_value("required_approvers", &x.to_string())),
    }
}

async fn rule_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&[
        "operation",
        "query",
        "required_approvers",
        "auto_request_create",
        "approval_groups",
        "approval_expiry",
        "execution_expiry",
        "owner",
    ])?;
    let body = req.body_obj();
    let operation = req_str(&body, "operation")?;
    if operation.trim().is_empty() {
        return Err(ApiError::invalid_value("operation", &operation));
    }
    let query = opt_str(&body, "query")?.unwrap_or_default();
    if !query.is_empty() && parse_query(&query).is_empty() {
        return Err(ApiError::invalid_value("query", &query));
    }
    let approvers = check_approvers(body.get("required_approvers"))?;
    let auto = opt_bool(&body, "auto_request_create")?.unwrap_or(true);
    guard_self(
        &sim,
        "security multi-admin-verify rule create",
        &[("operation", &operation)],
    )?;
    let record = sim.write(|s| -> Result<Value, ApiError> {
        let own = owner(s);
        let key = rule_key(&str_at(&own, "/uuid"), &operation);
        if s.get(RULES, &key).is_some() {
            return Err(ApiError::duplicate(format!("A rule for operation \"{operation}\" already exists.")).with_target("operation"));
        }
        let required = approvers.unwrap_or_else(|| config(s)["required_approvers"].as_u64().unwrap_or(1));
        let rec = json!({
            "owner": own,
            "operation": operation,
            "query": query,
            "required_approvers": required,
            "auto_request_create": auto,
            "system_defined": false,
            "approval_groups": body.get("approval_groups").cloned().unwrap_or(json!([])),
            "create_time": now_timestamp(),
            "_links": {"self": {"href": format!("{BASE}/rules/{}/{}", str_at(&own, "/uuid"), percent_encode(&operation))}},
        });
        s.insert(RULES, &key, rec.clone());
        Ok(rec)
    })?;
    let location = str_at(&record, "/_links/self/href");
    Ok(super::created(&req, &record, &location))
}

async fn rule_patch(
    State(sim): State<Sim>,
    Path((owner, op)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&[
        "query",
        "required_approvers",
        "auto_request_create",
        "approval_groups",
        "approval_expiry",
        "execution_expiry",
    ])?;
    let body = req.body_obj();
    let operation = operation_from_path(&op);
    let key = rule_key(&owner, &operation);
    if sim.read(|s| s.get(RULES, &key).is_none()) {
        return Err(ApiError::not_found());
    }
    let approvers = check_approvers(body.get("required_approvers"))?;
    let query = opt_str(&body, "query")?;
    let auto = opt_bool(&body, "auto_request_create")?;
    guard_self(
        &sim,
        "security multi-admin-verify rule modify",
        &[("operation", &operation)],
    )?;
    sim.write(|s| {
        if let Some(r) = s.get_mut(RULES, &key) {
            if let Some(n) = approvers {
                r["required_approvers"] = json!(n);
            }
            if let Some(q) = query {
                r["query"] = json!(q);
            }
            if let Some(a) = auto {
                r["auto_request_create"] = json!(a);
            }
            for f in ["approval_groups", "approval_expiry", "execution_expiry"] {
                if let Some(v) = body.get(f) {
                    r[f] = v.clone();
                }
            }
        }
    });
    Ok(ok_empty())
}

async fn rule_delete(
    State(sim): State<Sim>,
    Path((owner, op)): Path<(String, String)>,
    _req: ApiRequest,
) -> Result<Response, ApiError> {
    let operation = operation_from_path(&op);
    let key = rule_key(&owner, &operation);
    if sim.read(|s| s.get(RULES, &key).is_none()) {
        return Err(ApiError::not_found());
    }
    guard_self(
        &sim,
        "security multi-admin-verify rule delete",
        &[("operation", &operation)],
    )?;
    sim.write(|s| s.remove(RULES, &key));
    Ok(ok_empty())
}

fn request_key(index: &str) -> Result<String, ApiError> {
    index
        .parse::<u64>()
        .map(int_key)
        .map_err(|_| ApiError::invalid_value("index", index))
}

async fn request_list(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    list(&sim, &req, &REQUEST_SPEC, |_| true)
}

async fn request_get(
    State(sim): State<Sim>,
    Path(index): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    get_one(&sim, &req, &REQUEST_SPEC, &request_key(&index)?)
}

/// POST a request ahead of time (ONTAP's `security multi-admin-verify request create`).
async fn request_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&[
        "operation",
        "query",
        "comment",
        "permitted_users",
        "execute_on_approval",
    ])?;
    let body = req.body_obj();
    let operation = req_str(&body, "operation")?;
    let query = opt_str(&body, "query")?.unwrap_or_default();
    let user = sim.inner.cfg.username.clone();
    let record = sim.write(|s| -> Result<Value, ApiError> {
        let rule = s
            .iter(RULES)
            .find(|(_, r)| str_at(r, "/operation") == operation)
            .map(|(_, r)| r.clone());
        let required = rule
            .as_ref()
            .and_then(|r| r["required_approvers"].as_u64())
            .unwrap_or_else(|| config(s)["required_approvers"].as_u64().unwrap_or(1));
        let index = s.next_counter("mav_request_index");
        let mut rec = json!({
            "index": index,
            "operation": operation,
            "query": query,
            "state": RequestState::Pending.as_str(),
            "required_approvers": required,
            "pending_approvers": required,
            "approved_users": [],
            "permitted_users": body.get("permitted_users").cloned().unwrap_or(json!([])),
            "user_requested": user,
            "owner": owner(s),
            "execute_on_approval": opt_bool(&body, "execute_on_approval")?.unwrap_or(false),
            "create_time": now_timestamp(),
            "_links": {"self": {"href": format!("{BASE}/requests/{index}")}},
        });
        if let Some(c) = opt_str(&body, "comment")? {
            rec["comment"] = json!(c);
        }
        s.insert(REQUESTS, &int_key(index), rec.clone());
        Ok(rec)
    })?;
    let location = str_at(&record, "/_links/self/href");
    Ok(super::created(&req, &record, &location))
}

async fn request_patch(
    State(sim): State<Sim>,
    Path(index): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["state", "execute_on_approval", "comment"])?;
    let body = req.body_obj();
    let key = request_key(&index)?;
    let wanted = match opt_str(&body, "state")? {
        Some(w) => Some(
            RequestState::parse(&w)
                .ok_or_else(|| ApiError::invalid_enum("state", &w, &["approved", "vetoed"]))?,
        ),
        None => None,
    };
    let approver = sim.inner.cfg.username.clone();
    sim.write(|s| -> Result<(), ApiError> {
        let rec = s
            .get(REQUESTS, &key)
            .cloned()
            .ok_or_else(ApiError::not_found)?;
        let mut after = rec.clone();
        if let Some(w) = wanted {
            let current =
                RequestState::parse(&str_at(&rec, "/state")).unwrap_or(RequestState::Pending);
            let pending = u64_at(&rec, "/pending_approvers") as u32;
            // Single account: the approver cannot be told apart from the requester (see the
            // module docs), so the self-approval check is skipped.
            let (state, left) =
                decide(current, w, &str_at(&rec, "/user_requested"), None, pending)?;
            after["state"] = json!(state.as_str());
            after["pending_approvers"] = json!(left);
            if w == RequestState::Approved {
                if let Some(a) = after["approved_users"].as_array_mut() {
                    a.push(json!(approver));
                }
                after["approve_time"] = json!(now_timestamp());
            }
        }
        if let Some(e) = opt_bool(&body, "execute_on_approval")? {
            after["execute_on_approval"] = json!(e);
        }
        if let Some(c) = opt_str(&body, "comment")? {
            after["comment"] = json!(c);
        }
        s.insert(REQUESTS, &key, after);
        Ok(())
    })?;
    Ok(ok_empty())
}

async fn request_delete(
    State(sim): State<Sim>,
    Path(index): Path<String>,
    _req: ApiRequest,
) -> Result<Response, ApiError> {
    let key = request_key(&index)?;
    sim.write(|s| s.remove(REQUESTS, &key))
        .ok_or_else(ApiError::not_found)?;
    Ok(ok_empty())
}
