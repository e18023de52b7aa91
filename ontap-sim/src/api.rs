//! The request extractor every ONTAP route handler takes, and JSON response helpers.

use axum::extract::FromRequest;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::query::Query;
use crate::store::{coll, str_at, Store};

/// A parsed ONTAP API request: method, path, query, SVM tunnelling headers and JSON body.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApiRequest {
    /// HTTP method.
    pub method: Method,
    /// Path without a trailing slash, e.g. `/api/storage/volumes`.
    pub path: String,
    /// Raw query string.
    pub raw_query: Option<String>,
    /// Parsed query.
    pub query: Query,
    /// `X-Dot-SVM-Name`.
    pub svm_name: Option<String>,
    /// `X-Dot-SVM-UUID`.
    pub svm_uuid: Option<String>,
    /// The JSON body (`None` when empty).
    pub body: Option<Value>,
}

impl<S: Send + Sync> FromRequest<S> for ApiRequest {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let header = |n: &str| {
            parts
                .headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let path = parts.uri.path().trim_end_matches('/').to_string();
        let raw_query = parts.uri.query().map(str::to_string);
        let query = Query::parse(raw_query.as_deref())?;
        let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
            .await
            .map_err(|_| ApiError::invalid("Cannot read the request body."))?;
        let body =
            if bytes.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                    ApiError::new(400, "262200", format!("Invalid JSON input: {e}"))
                })?)
            };
        if let Some(b) = &body {
            if !b.is_object() && parts.method != Method::GET {
                return Err(ApiError::new(
                    400,
                    "262200",
                    "Invalid JSON input: expected an object.",
                ));
            }
        }
        Ok(ApiRequest {
            method: parts.method,
            path,
            raw_query,
            query,
            svm_name: header("x-dot-svm-name"),
            svm_uuid: header("x-dot-svm-uuid"),
            body,
        })
    }
}

impl ApiRequest {
    /// The body as an object (empty when there is no body).
    pub fn body_obj(&self) -> Map<String, Value> {
        match &self.body {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        }
    }

    /// Refuses body fields outside `allowed` with 400 / 262179 `Unexpected argument`.
    /// An entry allows itself and everything below it (`"nas"` allows `nas.path`);
    /// `_links` is always allowed.
    pub fn check_fields(&self, allowed: &[&str]) -> Result<(), ApiError> {
        check_fields(&self.body_obj(), allowed)
    }

    /// This request with `body` as its body: one record of a `{"records":[…]}` POST, so
    /// the single-record validation (`check_fields`, `create_svm`) applies unchanged.
    pub fn for_record(&self, body: Map<String, Value>) -> ApiRequest {
        ApiRequest {
            body: Some(Value::Object(body)),
            ..self.clone()
        }
    }

    /// The path with the raw query, for `_links.self`.
    pub fn self_href(&self) -> String {
        match &self.raw_query {
            Some(q) if !q.is_empty() => format!("{}?{q}", self.path),
            _ => self.path.clone(),
        }
    }

    /// The SVM named by the tunnelling headers, as `(uuid, name)`.
    pub fn tunnel_svm(&self, store: &Store) -> Result<Option<(String, String)>, ApiError> {
        let (by, v) = match (&self.svm_uuid, &self.svm_name) {
            (Some(u), _) => ("uuid", u),
            (None, Some(n)) => ("name", n),
            (None, None) => return Ok(None),
        };
        let found = if by == "uuid" {
            store.get(coll::SVMS, v)
        } else {
            store
                .find_named(coll::SVMS, None, v, |_| true)
                .map(|(_, r)| r)
        };
        match found {
            Some(r) => Ok(Some((str_at(r, "/uuid"), str_at(r, "/name")))),
            None => Err(ApiError::new(
                400,
                "2",
                format!("The SVM \"{v}\" specified in the request header does not exist."),
            )),
        }
    }

    /// The SVM a create applies to: `svm{name|uuid}` from the body, else the tunnel
    /// header; 262177 when neither is given. Returns `(uuid, name)`.
    pub fn create_svm(&self, store: &Store) -> Result<(String, String), ApiError> {
        let tunnel = self.tunnel_svm(store)?;
        match self.body.as_ref().and_then(|b| b.get("svm")) {
            Some(r) => {
                let got = store.resolve_svm(r)?;
                if let Some((u, _)) = &tunnel {
                    if *u != got.0 {
                        return Err(ApiError::invalid(
                            "The SVM in the body differs from the SVM in the request header.",
                        )
                        .with_target("svm"));
                    }
                }
                Ok(got)
            }
            None => tunnel.ok_or_else(|| ApiError::missing_value("svm.name")),
        }
    }
}

/// See [`ApiRequest::check_fields`].
pub fn check_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    let mut leaves = Vec::new();
    leaf_paths(body, "", &mut leaves);
    for leaf in leaves {
        if leaf == "_links" || leaf.starts_with("_links.") {
            continue;
        }
        let ok = allowed.iter().any(|a| {
            leaf == *a || (leaf.starts_with(a) && leaf.as_bytes().get(a.len()) == Some(&b'.'))
        });
        if !ok {
            return Err(ApiError::unexpected_argument(&leaf));
        }
    }
    Ok(())
}

fn leaf_paths(m: &Map<String, Value>, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in m {
        let p = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) if !inner.is_empty() => leaf_paths(inner, &p, out),
            _ => out.push(p),
        }
    }
}

/// A JSON response with `Content-Type: application/hal+json`.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/hal+json"),
    );
    r
}

/// A JSON response with a `Location` header.
pub fn json_response_at(status: StatusCode, body: &Value, location: Option<&str>) -> Response {
    let mut r = json_response(status, body);
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        r.headers_mut().insert(http::header::LOCATION, l);
    }
    r
}

/// The body field at a dotted path.
pub fn body_at<'a>(body: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = body.get(parts.next()?)?;
    for p in parts {
        cur = cur.get(p)?;
    }
    Some(cur)
}

/// An optional string field; 262185 when present but not a string.
pub fn opt_str(body: &Map<String, Value>, path: &str) -> Result<Option<String>, ApiError> {
    match body_at(body, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(ApiError::invalid_value(path, &v.to_string())),
    }
}

/// A required string field; 262177 when absent.
pub fn req_str(body: &Map<String, Value>, path: &str) -> Result<String, ApiError> {
    opt_str(body, path)?.ok_or_else(|| ApiError::missing_value(path))
}

/// An optional boolean field.
pub fn opt_bool(body: &Map<String, Value>, path: &str) -> Result<Option<bool>, ApiError> {
    match body_at(body, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(v) => Err(ApiError::invalid_value(path, &v.to_string())),
    }
}

/// An optional enum field, validated against `allowed`.
pub fn opt_enum(
    body: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<Option<String>, ApiError> {
    let v = opt_str(body, path)?;
    if let Some(s) = &v {
        if !allowed.contains(&s.as_str()) {
            return Err(ApiError::invalid_enum(path, s, allowed));
        }
    }
    Ok(v)
}

/// An optional size (integer bytes or a string with a KB/MB/GB/TB/PB suffix).
pub fn opt_size(body: &Map<String, Value>, path: &str) -> Result<Option<u64>, ApiError> {
    match body_at(body, path) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => crate::query::parse_size(v)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_value(path, &v.to_string())),
    }
}

/// Sets a value at a dotted path, creating objects on the way.
pub fn set_at(target: &mut Value, path: &str, value: Value) {
    let mut cur = target;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        if !cur.get(*p).is_some_and(Value::is_object) {
            cur[*p] = Value::Object(Map::new());
        }
        cur = &mut cur[*p];
    }
    cur[parts[parts.len() - 1]] = value;
}

/// Deep-merges `patch` into `target` (objects merge, everything else replaces).
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unexpected_fields_are_named() {
        let body = json!({"name":"v","nas":{"path":"/v","bogus":1},"svm":{"name":"s"}});
        let e = check_fields(body.as_object().unwrap(), &["name", "svm", "nas.path"]).unwrap_err();
        assert_eq!(e.code, "262179");
        assert_eq!(e.message, "Unexpected argument \"nas.bogus\".");
        assert_eq!(e.target.as_deref(), Some("nas.bogus"));
        assert!(check_fields(body.as_object().unwrap(), &["name", "svm", "nas"]).is_ok());
    }
}
