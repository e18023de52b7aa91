//! The generic query engine: parses ONTAP query strings and applies `fields`, filters,
//! `order_by` and paging to JSON records of any resource.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Query parameters that control a request rather than filter records.
pub const CONTROL_PARAMS: &[&str] = &[
    "fields",
    "max_records",
    "return_records",
    "return_timeout",
    "order_by",
    "$orderBy",
    "pretty",
    "continue_on_failure",
    "validate_only",
    "serial_records",
    "allow_delete_while_mapped",
    "allow_delete_with_hosts",
    "force",
    "destroy_data_on_delete",
];

/// A parsed query string.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Raw `name=value` segments as received (still percent-encoded), in order.
    pub raw: Vec<String>,
    /// Decoded `(name, value)` pairs, in order.
    pub pairs: Vec<(String, String)>,
    /// `fields=` entries, split on commas, when given.
    pub fields: Option<Vec<String>>,
    /// Field filters (every parameter that is not a control parameter nor `start.*`).
    pub filters: Vec<(String, String)>,
    /// `order_by` terms: (dotted field, descending).
    pub order_by: Vec<(String, bool)>,
    /// `max_records`.
    pub max_records: Option<usize>,
    /// `return_records`.
    pub return_records: Option<bool>,
    /// `return_timeout` in seconds (validated 0..=120).
    pub return_timeout: Option<u64>,
    /// A paging token: (`start.NAME` without the prefix, value).
    pub start: Option<(String, String)>,
}

impl Query {
    /// Parses a raw query string (without the `?`).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Query::default();
        let Some(raw) = raw else { return Ok(q) };
        for seg in raw.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = match seg.split_once('=') {
                Some((k, v)) => (percent_decode(k), percent_decode(v)),
                None => (percent_decode(seg), String::new()),
            };
            q.raw.push(seg.to_string());
            q.pairs.push((k.clone(), v.clone()));
            match k.as_str() {
                "fields" => {
                    let list = q.fields.get_or_insert_with(Vec::new);
                    list.extend(
                        v.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty()),
                    );
                }
                "max_records" => {
                    let n: usize = v
                        .parse()
                        .map_err(|_| ApiError::invalid_value("max_records", &v))?;
                    q.max_records = Some(n);
                }
                "return_records" => {
                    q.return_records = Some(parse_bool("return_records", &v)?);
                }
                "return_timeout" => {
                    let n: u64 = v.parse().map_err(|_| return_timeout_error(&v))?;
                    if n > 120 {
                        return Err(return_timeout_error(&v));
                    }
                    q.return_timeout = Some(n);
                }
                "order_by" | "$orderBy" => {
                    for term in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        let mut parts = term.split_whitespace();
                        let field = parts.next().unwrap_or_default().to_string();
                        let desc = match parts.next() {
                            None | Some("asc") => false,
                            Some("desc") => true,
                            Some(_) => return Err(ApiError::invalid_value("order_by", term)),
                        };
                        q.order_by.push((field, desc));
                    }
                }
                _ if k.starts_with("start.") => {
                    q.start = Some((k["start.".len()..].to_string(), v));
                }
                _ if CONTROL_PARAMS.contains(&k.as_str()) => {}
                _ => q.filters.push((k, v)),
            }
        }
        Ok(q)
    }

    /// The decoded value of a parameter (the last one when repeated).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a boolean parameter such as `allow_delete_while_mapped`.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.param(name).map(|v| parse_bool(name, v)).transpose()
    }

    /// The raw segments without any `start.*` paging token.
    pub fn raw_without_start(&self) -> Vec<&str> {
        self.raw
            .iter()
            .filter(|s| !percent_decode(s.split('=').next().unwrap_or("")).starts_with("start."))
            .map(String::as_str)
            .collect()
    }

    /// Whether `record` passes every filter.
    pub fn matches(&self, record: &Value) -> bool {
        self.filters
            .iter()
            .all(|(f, e)| filter_matches(record, f, e))
    }
}

fn return_timeout_error(v: &str) -> ApiError {
    ApiError::new(
        400,
        "262197",
        format!("The value \"{v}\" is invalid for field \"return_timeout\" (<0..120>)"),
    )
    .with_target("return_timeout")
}

fn parse_bool(field: &str, v: &str) -> Result<bool, ApiError> {
    // ONTAP accepts any case; NetApp's Python client sends `True`/`False`.
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ApiError::invalid_value(field, v))
    }
}

/// Decodes `%XX` escapes. `+` stays a plus sign, as on ONTAP (clients send `%20`).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(n) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(n);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a query value: unreserved characters and a few harmless ones stay, the rest
/// (spaces included, as `%20`) is escaped.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-_.~*!:,/|<>".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Collects the values at a dotted path; arrays on the way are flattened, so
/// `aggregates.name` yields every aggregate's name.
pub fn values_at<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let parts: Vec<&str> = path.split('.').collect();
    collect(v, &parts, &mut out);
    out
}

fn collect<'a>(v: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => {
            for item in items {
                collect(item, path, out);
            }
        }
        Value::Null => {}
        _ if path.is_empty() => out.push(v),
        Value::Object(m) => {
            if let Some(child) = m.get(path[0]) {
                collect(child, &path[1..], out);
            }
        }
        _ => {}
    }
}

/// Whether `record` matches the ONTAP query expression `expr` on `field`.
pub fn filter_matches(record: &Value, field: &str, expr: &str) -> bool {
    let values = values_at(record, field);
    expr.split('|').any(|alt| alternative_matches(&values, alt))
}

fn alternative_matches(values: &[&Value], alt: &str) -> bool {
    let (neg, pat) = match alt.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, alt),
    };
    let hit = if pat == "null" {
        values.is_empty()
    } else {
        values.iter().any(|v| value_matches(v, pat))
    };
    hit != neg
}

fn unquote(p: &str) -> Option<&str> {
    p.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| p.strip_prefix('{').and_then(|r| r.strip_suffix('}')))
}

fn value_matches(v: &Value, pat: &str) -> bool {
    if let Some(lit) = unquote(pat) {
        return compare(v, lit) == Some(Ordering::Equal);
    }
    for (op, want) in [
        ("<=", &[Ordering::Less, Ordering::Equal][..]),
        (">=", &[Ordering::Greater, Ordering::Equal][..]),
        ("<", &[Ordering::Less][..]),
        (">", &[Ordering::Greater][..]),
    ] {
        if let Some(rest) = pat.strip_prefix(op) {
            return compare(v, rest).is_some_and(|o| want.contains(&o));
        }
    }
    if let Some((lo, hi)) = pat.split_once("..") {
        return compare(v, lo).is_some_and(|o| o != Ordering::Less)
            && compare(v, hi).is_some_and(|o| o != Ordering::Greater);
    }
    if pat.contains('*') {
        let s = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return glob(&pat.to_lowercase(), &s.to_lowercase());
    }
    compare(v, pat) == Some(Ordering::Equal)
}

/// Glob matching with `*` only (callers lower-case both sides for ONTAP's case-insensitive wildcards).
pub fn glob(pat: &str, s: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == s;
    }
    let mut rest = s;
    if !rest.starts_with(parts[0]) {
        return false;
    }
    rest = &rest[parts[0].len()..];
    let last = parts[parts.len() - 1];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Parses a number, accepting size suffixes (`KB`, `MB`, `GB`, `TB`, `PB`, with or without
/// the `B`, powers of 1024).
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if let Ok(n) = t.parse::<f64>() {
        return Some(n);
    }
    let upper = t.to_ascii_uppercase();
    let body = upper.strip_suffix('B').unwrap_or(&upper);
    let (num, mult) = match body.chars().last()? {
        'K' => (&body[..body.len() - 1], 1024f64),
        'M' => (&body[..body.len() - 1], 1024f64.powi(2)),
        'G' => (&body[..body.len() - 1], 1024f64.powi(3)),
        'T' => (&body[..body.len() - 1], 1024f64.powi(4)),
        'P' => (&body[..body.len() - 1], 1024f64.powi(5)),
        _ => (body, 1.0),
    };
    num.trim().parse::<f64>().ok().map(|n| n * mult)
}

/// Parses a size given as a JSON number or a string with an optional suffix.
pub fn parse_size(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_number(s).filter(|n| *n >= 0.0).map(|n| n as u64),
        _ => None,
    }
}

/// Compares a JSON value with a query literal: numerically for numbers (sizes allowed),
/// as `true`/`false` for booleans, alphabetically for strings.
pub fn compare(v: &Value, lit: &str) -> Option<Ordering> {
    match v {
        Value::Number(n) => {
            let a = n.as_f64()?;
            let b = parse_number(lit)?;
            a.partial_cmp(&b)
        }
        Value::Bool(b) => match lit {
            "true" | "false" => Some(b.to_string().as_str().cmp(lit)),
            _ => None,
        },
        Value::String(s) => Some(s.as_str().cmp(lit)),
        _ => None,
    }
}

/// Compares two records by one dotted field; records missing the field sort last.
pub fn compare_records(a: &Value, b: &Value, field: &str) -> Ordering {
    let va = values_at(a, field).into_iter().next();
    let vb = values_at(b, field).into_iter().next();
    match (va, vb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => match (x, y) {
            (Value::Number(m), Value::Number(n)) => m
                .as_f64()
                .partial_cmp(&n.as_f64())
                .unwrap_or(Ordering::Equal),
            (Value::String(m), Value::String(n)) => m.cmp(n),
            (Value::Bool(m), Value::Bool(n)) => m.cmp(n),
            _ => x.to_string().cmp(&y.to_string()),
        },
    }
}

/// Which fields a response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSelection {
    /// Every field, minus the excluded paths.
    All {
        /// Dotted paths to remove.
        exclude: Vec<String>,
    },
    /// Only these dotted paths (identity fields and `_links` included), minus exclusions.
    Some {
        /// Dotted paths to keep.
        include: Vec<String>,
        /// Dotted paths to remove.
        exclude: Vec<String>,
    },
}

impl FieldSelection {
    /// Decides the selection for a request. `identity` lists the fields returned by
    /// default in collections; `instance` is true for a GET of one record (default: all).
    pub fn for_query(q: &Query, identity: &[&str], instance: bool) -> Self {
        let mut include: Vec<String> = Vec::new();
        let mut exclude: Vec<String> = Vec::new();
        let mut all = false;
        match &q.fields {
            None => all = instance,
            Some(list) => {
                for f in list {
                    if f == "*" || f == "**" {
                        all = true;
                    } else if let Some(x) = f.strip_prefix('!') {
                        exclude.push(x.to_string());
                    } else {
                        include.push(f.clone());
                    }
                }
                if include.is_empty() && !all && !exclude.is_empty() {
                    all = true;
                }
            }
        }
        if all {
            return FieldSelection::All { exclude };
        }
        let mut inc: Vec<String> = identity.iter().map(|s| s.to_string()).collect();
        inc.push("_links".into());
        inc.extend(include);
        inc.extend(q.filters.iter().map(|(f, _)| f.clone()));
        FieldSelection::Some {
            include: inc,
            exclude,
        }
    }

    /// Applies the selection to one record.
    pub fn project(&self, rec: &Value) -> Value {
        match self {
            FieldSelection::All { exclude } => {
                let mut out = rec.clone();
                for e in exclude {
                    remove_path(&mut out, &e.split('.').collect::<Vec<_>>());
                }
                out
            }
            FieldSelection::Some { include, exclude } => {
                let mut out = Value::Object(Map::new());
                for p in include {
                    copy_path(rec, &mut out, &p.split('.').collect::<Vec<_>>());
                }
                for e in exclude {
                    remove_path(&mut out, &e.split('.').collect::<Vec<_>>());
                }
                out
            }
        }
    }
}

fn copy_path(src: &Value, dst: &mut Value, path: &[&str]) {
    if path.is_empty() {
        *dst = src.clone();
        return;
    }
    match src {
        Value::Object(m) => {
            let Some(child) = m.get(path[0]) else { return };
            if !dst.is_object() {
                *dst = Value::Object(Map::new());
            }
            let Some(obj) = dst.as_object_mut() else {
                return;
            };
            if path.len() == 1 {
                obj.insert(path[0].to_string(), child.clone());
                return;
            }
            let slot = obj
                .entry(path[0].to_string())
                .or_insert_with(|| match child {
                    Value::Array(a) => Value::Array(vec![Value::Object(Map::new()); a.len()]),
                    _ => Value::Object(Map::new()),
                });
            copy_path(child, slot, &path[1..]);
        }
        Value::Array(items) => {
            let Some(slots) = dst.as_array_mut() else {
                return;
            };
            for (item, slot) in items.iter().zip(slots.iter_mut()) {
                copy_path(item, slot, path);
            }
        }
        _ => {}
    }
}

fn remove_path(v: &mut Value, path: &[&str]) {
    match v {
        Value::Object(m) => {
            if path.len() == 1 {
                m.remove(path[0]);
            } else if let Some(child) = m.get_mut(path[0]) {
                remove_path(child, &path[1..]);
            }
        }
        Value::Array(items) => {
            for item in items {
                remove_path(item, path);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec() -> Value {
        json!({"uuid":"u1","name":"vol_a","size":1073741824,"state":"online",
               "svm":{"name":"svm1","uuid":"s1"},
               "aggregates":[{"name":"aggr1"},{"name":"aggr2"}],
               "services":["data_nfs","data_cifs"],
               "_links":{"self":{"href":"/api/storage/volumes/u1"}}})
    }

    #[test]
    fn booleans_ignore_case_as_ontap_does() {
        assert!(parse_bool("f", "True").unwrap());
        assert!(parse_bool("f", "true").unwrap());
        assert!(!parse_bool("f", "FALSE").unwrap());
        assert!(parse_bool("f", "yes").is_err());
    }

    #[test]
    fn operators() {
        let r = rec();
        assert!(filter_matches(&r, "name", "vol_*"));
        assert!(filter_matches(&r, "name", "VOL_*"));
        assert!(!filter_matches(&r, "name", "vol_b"));
        assert!(filter_matches(&r, "name", "!vol_b"));
        assert!(filter_matches(&r, "name", "x|vol_a"));
        assert!(filter_matches(&r, "size", ">=1GB"));
        assert!(!filter_matches(&r, "size", ">1GB"));
        assert!(filter_matches(&r, "size", "500MB..2GB"));
        assert!(filter_matches(&r, "svm.name", "svm1"));
        assert!(filter_matches(&r, "aggregates.name", "aggr2"));
        assert!(filter_matches(&r, "services", "data_cifs"));
        assert!(filter_matches(&r, "comment", "null"));
        assert!(!filter_matches(&r, "comment", "x"));
        assert!(filter_matches(&r, "state", "<post"));
        assert!(filter_matches(&r, "name", "\"vol_a\""));
    }

    #[test]
    fn parse_and_project() {
        let q = Query::parse(Some(
            "fields=size,svm.name,!svm.uuid&name=vol*&order_by=size%20desc&max_records=2",
        ))
        .unwrap();
        assert_eq!(q.filters, vec![("name".to_string(), "vol*".to_string())]);
        assert_eq!(q.order_by, vec![("size".to_string(), true)]);
        assert_eq!(q.max_records, Some(2));
        let sel = FieldSelection::for_query(&q, &["uuid", "name"], false);
        assert_eq!(
            sel.project(&rec()),
            json!({"uuid":"u1","name":"vol_a","size":1073741824,"svm":{"name":"svm1"},
                   "_links":{"self":{"href":"/api/storage/volumes/u1"}}})
        );
        let q = Query::parse(Some("fields=aggregates.name")).unwrap();
        let sel = FieldSelection::for_query(&q, &["uuid"], false);
        assert_eq!(
            sel.project(&rec())["aggregates"],
            json!([{"name":"aggr1"},{"name":"aggr2"}])
        );
    }

    #[test]
    fn return_timeout_range() {
        let e = Query::parse(Some("return_timeout=600")).unwrap_err();
        assert_eq!(e.code, "262197");
        assert_eq!(
            e.message,
            "The value \"600\" is invalid for field \"return_timeout\" (<0..120>)"
        );
        assert_eq!(parse_number("10GB"), Some(10737418240.0));
        assert_eq!(percent_decode("a%20b+c"), "a b+c");
    }
}
