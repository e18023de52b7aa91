//! Query parameters for collection and instance calls.
//!
//! ONTAP filters are `field=expression` pairs whose expressions use operators such as
//! `*`, `|`, `!`, `<`, `>`, `..`; they are passed through verbatim. Encoding rules:
//! spaces become `%20` (never `+`, which ONTAP would read as a plus sign), the operator
//! characters stay readable, and `&`, `#`, `+`, `%`, `=` and other reserved bytes are
//! percent-encoded. (On the wire, the `url` crate used by the HTTP stack additionally
//! escapes `<`, `>` and `"` in queries, per the WHATWG URL rules; ONTAP decodes them.)
//!
//! ```
//! use ontap_client::Query;
//!
//! let q = Query::new()
//!     .fields(["name", "space.size"])
//!     .filter("name", "vol*|db*")
//!     .filter("space.size", ">1GB")
//!     .order_by("size desc")
//!     .max_records(50);
//! assert_eq!(
//!     q.encode().unwrap(),
//!     "fields=name,space.size&name=vol*|db*&space.size=>1GB&order_by=size%20desc&max_records=50"
//! );
//! ```

use crate::error::QueryError;

/// The largest `return_timeout` ONTAP accepts, in seconds.
pub const MAX_RETURN_TIMEOUT: u32 = 120;

/// A set of query parameters. Cheap to clone; build with the chained methods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    fields: Vec<String>,
    params: Vec<(String, String)>,
    order_by: Vec<String>,
    max_records: Option<u64>,
    return_records: Option<bool>,
    return_timeout: Option<u32>,
}

impl Query {
    /// An empty query.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds fields to return: dotted paths (`space.size`), `*` (all standard fields) or
    /// `**` (all fields, including expensive ones).
    pub fn fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields.extend(fields.into_iter().map(Into::into));
        self
    }

    /// Adds a filter `field=expression`; ONTAP operators in `expression` are kept verbatim
    /// (`vol*`, `>1GB`, `!null`, `a|b`, `1..10`).
    pub fn filter(mut self, field: impl Into<String>, expression: impl Into<String>) -> Self {
        self.params.push((field.into(), expression.into()));
        self
    }

    /// Adds any other parameter (e.g. `continue_on_failure=true`); same encoding as filters.
    /// Filters and parameters are sent in the order they were added.
    pub fn param(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.filter(name, value)
    }

    /// Page size for collection GETs; number of records acted on for query PATCH/DELETE.
    pub fn max_records(mut self, n: u64) -> Self {
        self.max_records = Some(n);
        self
    }

    /// Adds a sort key such as `"size desc"` or `"name"`.
    pub fn order_by(mut self, key: impl Into<String>) -> Self {
        self.order_by.push(key.into());
        self
    }

    /// How long ONTAP may work before answering, in seconds (0..=120). A larger value is
    /// reported as [`QueryError::ReturnTimeoutOutOfRange`] when the query is encoded, so it
    /// is never sent.
    pub fn return_timeout(mut self, secs: u32) -> Self {
        self.return_timeout = Some(secs);
        self
    }

    /// Whether records are returned (`false` yields only `num_records`).
    pub fn return_records(mut self, yes: bool) -> Self {
        self.return_records = Some(yes);
        self
    }

    /// The `return_timeout` set on this query, if any.
    pub fn get_return_timeout(&self) -> Option<u32> {
        self.return_timeout
    }

    /// The `return_records` set on this query, if any.
    pub fn get_return_records(&self) -> Option<bool> {
        self.return_records
    }

    /// True when at least one filter or extra parameter is set.
    pub fn has_filters(&self) -> bool {
        !self.params.is_empty()
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Sets `return_timeout` only if the query does not already have one.
    pub(crate) fn with_default_return_timeout(mut self, secs: u32) -> Self {
        self.return_timeout.get_or_insert(secs);
        self
    }

    /// Sets `return_records` only if the query does not already have it.
    pub(crate) fn with_default_return_records(mut self, yes: bool) -> Self {
        self.return_records.get_or_insert(yes);
        self
    }

    /// Encodes the query string (without the leading `?`). Order: `fields`, filters and
    /// parameters as added, `order_by`, `max_records`, `return_records`, `return_timeout`.
    pub fn encode(&self) -> Result<String, QueryError> {
        let mut out = String::new();
        let mut push = |name: &str, value: &str| {
            if !out.is_empty() {
                out.push('&');
            }
            encode_into(&mut out, name);
            out.push('=');
            encode_into(&mut out, value);
        };
        if !self.fields.is_empty() {
            push("fields", &self.fields.join(","));
        }
        for (name, value) in &self.params {
            if name.is_empty() {
                return Err(QueryError::EmptyName);
            }
            push(name, value);
        }
        if !self.order_by.is_empty() {
            push("order_by", &self.order_by.join(","));
        }
        if let Some(n) = self.max_records {
            push("max_records", &n.to_string());
        }
        if let Some(b) = self.return_records {
            push("return_records", if b { "true" } else { "false" });
        }
        if let Some(t) = self.return_timeout {
            if t > MAX_RETURN_TIMEOUT {
                return Err(QueryError::ReturnTimeoutOutOfRange { value: t });
            }
            push("return_timeout", &t.to_string());
        }
        Ok(out)
    }

    /// `path` with this query appended (`?` or `&` as needed).
    pub fn append_to(&self, path: &str) -> Result<String, QueryError> {
        let q = self.encode()?;
        Ok(if q.is_empty() {
            path.to_owned()
        } else if path.contains('?') {
            format!("{path}&{q}")
        } else {
            format!("{path}?{q}")
        })
    }
}

/// Bytes kept readable in query names and values: unreserved characters plus the ONTAP
/// operator characters.
fn keep_in_query(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'~'
                | b'*'
                | b'|'
                | b'!'
                | b'<'
                | b'>'
                | b','
                | b':'
                | b'/'
                | b'@'
        )
}

fn encode_into(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        if keep_in_query(b) {
            out.push(b as char);
        } else {
            push_pct(out, b);
        }
    }
}

fn push_pct(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 0xf)] as char);
}

/// Percent-encodes one path segment: everything except `A-Z a-z 0-9 - . _ ~` is encoded,
/// so spaces (CIFS share names), `:` (IQNs) and `/` cannot change the path's shape.
pub fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            push_pct(&mut out, b);
        }
    }
    out
}

/// Encodes a resource key for use after a collection path: each `/`-separated part is
/// encoded with [`encode_path_segment`]; the `/` between the parts of a two-key path
/// (`"{lun.uuid}/{igroup.uuid}"`) is kept.
pub fn encode_key(key: &str) -> String {
    key.split('/')
        .map(encode_path_segment)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty() {
        assert_eq!(Query::new().encode().unwrap(), "");
        assert!(Query::new().is_empty());
        assert_eq!(Query::new().append_to("/api/a").unwrap(), "/api/a");
    }

    #[test]
    fn fields_with_wildcards_and_dots() {
        let q = Query::new().fields(["name", "space.size", "!svm.uuid"]);
        assert_eq!(q.encode().unwrap(), "fields=name,space.size,!svm.uuid");
        assert_eq!(Query::new().fields(["**"]).encode().unwrap(), "fields=**");
        assert_eq!(
            Query::new()
                .fields(["*"])
                .fields(["statistics"])
                .encode()
                .unwrap(),
            "fields=*,statistics"
        );
    }

    #[test]
    fn operators_stay_readable() {
        let q = Query::new()
            .filter("name", "vol*|!db*")
            .filter("space.size", ">=1GB")
            .filter("size", "<10")
            .filter("nsid", "1..10")
            .filter("comment", "!null");
        assert_eq!(
            q.encode().unwrap(),
            // `=` inside a value is always encoded; ONTAP decodes `>%3D` to `>=`.
            "name=vol*|!db*&space.size=>%3D1GB&size=<10&nsid=1..10&comment=!null"
        );
    }

    #[test]
    fn reserved_characters_are_encoded() {
        let q = Query::new().filter("comment", "a b&c#d+e%f=g\"h\"{i}");
        assert_eq!(
            q.encode().unwrap(),
            "comment=a%20b%26c%23d%2Be%25f%3Dg%22h%22%7Bi%7D"
        );
    }

    #[test]
    fn non_ascii_is_utf8_percent_encoded() {
        assert_eq!(
            Query::new().filter("comment", "é").encode().unwrap(),
            "comment=%C3%A9"
        );
    }

    #[test]
    fn iqn_and_paths_stay_readable() {
        let q = Query::new()
            .filter("initiators.name", "iqn.1993-08.org.debian:01:abc")
            .filter("name", "/vol/vol1/lun1");
        assert_eq!(
            q.encode().unwrap(),
            "initiators.name=iqn.1993-08.org.debian:01:abc&name=/vol/vol1/lun1"
        );
    }

    #[test]
    fn full_order() {
        let q = Query::new()
            .return_timeout(30)
            .return_records(false)
            .max_records(20)
            .order_by("size desc")
            .order_by("name")
            .filter("svm.name", "vs0")
            .fields(["uuid"]);
        assert_eq!(
            q.encode().unwrap(),
            "fields=uuid&svm.name=vs0&order_by=size%20desc,name&max_records=20&return_records=false&return_timeout=30"
        );
    }

    #[test]
    fn return_timeout_bounds() {
        assert_eq!(
            Query::new().return_timeout(120).encode().unwrap(),
            "return_timeout=120"
        );
        assert_eq!(
            Query::new().return_timeout(0).encode().unwrap(),
            "return_timeout=0"
        );
        assert_eq!(
            Query::new().return_timeout(121).encode(),
            Err(QueryError::ReturnTimeoutOutOfRange { value: 121 })
        );
        assert_eq!(
            Query::new().return_timeout(600).append_to("/api/x"),
            Err(QueryError::ReturnTimeoutOutOfRange { value: 600 })
        );
    }

    #[test]
    fn empty_name_rejected() {
        assert_eq!(
            Query::new().filter("", "x").encode(),
            Err(QueryError::EmptyName)
        );
    }

    #[test]
    fn defaults_do_not_override() {
        let q = Query::new()
            .return_timeout(5)
            .with_default_return_timeout(30)
            .with_default_return_records(true);
        assert_eq!(q.encode().unwrap(), "return_records=true&return_timeout=5");
    }

    #[test]
    fn append_to_path_with_query() {
        let q = Query::new().filter("name", "c1");
        assert_eq!(
            q.append_to("/api/storage/volumes").unwrap(),
            "/api/storage/volumes?name=c1"
        );
        assert_eq!(
            q.append_to("/api/storage/volumes?svm.name=vs0").unwrap(),
            "/api/storage/volumes?svm.name=vs0&name=c1"
        );
    }

    #[test]
    fn path_segments() {
        assert_eq!(encode_path_segment("my share"), "my%20share");
        assert_eq!(
            encode_path_segment("iqn.1993-08.org.debian:01:abc"),
            "iqn.1993-08.org.debian%3A01%3Aabc"
        );
        assert_eq!(encode_path_segment("a/b"), "a%2Fb");
        assert_eq!(encode_path_segment("a?b#c%d"), "a%3Fb%23c%25d");
        assert_eq!(
            encode_key("5a24ae5b-28af-47fb-b129-5adf6cfba0a6/40d98b2c-24c5-11e9-9ec1-005056bba643"),
            "5a24ae5b-28af-47fb-b129-5adf6cfba0a6/40d98b2c-24c5-11e9-9ec1-005056bba643"
        );
        assert_eq!(encode_key("svm-uuid/my share"), "svm-uuid/my%20share");
    }
}
