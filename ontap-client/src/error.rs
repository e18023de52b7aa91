//! The one error type of this crate and the parsing of ONTAP error bodies.
//!
//! Every failing call returns [`Error`]. Callers ask questions through predicates
//! ([`Error::is_not_found`], [`Error::is_conflict`], [`Error::is_retryable`],
//! [`Error::ontap_code`]) instead of matching on numbers.
//!
//! No variant carries a credential: paths are relative to the base URL (which may not hold
//! userinfo), and request headers are never recorded.

use std::fmt;
use std::time::Duration;

use http::Method;
use serde::Deserialize;

use crate::job::JobState;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// ONTAP error code: the entry does not exist.
pub const CODE_ENTRY_DOESNT_EXIST: &str = "4";
/// ONTAP error code: an entry with the same identifiers already exists.
pub const CODE_DUPLICATE_ENTRY: &str = "1";
/// ONTAP error code: the operation needs multi-admin-verify approval.
pub const CODE_APPROVAL_REQUIRED: &str = "262325";

/// Everything that can go wrong talking to ONTAP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client configuration is invalid; nothing was sent.
    #[error("invalid ONTAP client configuration: {0}")]
    Build(#[from] BuildError),

    /// A query could not be encoded; nothing was sent.
    #[error("invalid query: {0}")]
    Query(#[from] QueryError),

    /// A request body could not be serialized to JSON; nothing was sent.
    #[error("{method} {path}: cannot serialize the request body")]
    Encode {
        /// HTTP method of the request.
        method: Method,
        /// Path (and query) relative to the base URL.
        path: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// A path given to the raw API does not start with `/api/`.
    #[error("path {path:?} is not an ONTAP REST path (it must start with /api/)")]
    InvalidPath {
        /// The rejected path.
        path: String,
    },

    /// The connection failed or broke.
    #[error(
        "{method} {path}: transport error ({})",
        if *may_have_been_sent { "the request may have reached the server" } else { "the request was not sent" }
    )]
    Transport {
        /// HTTP method of the request.
        method: Method,
        /// Path (and query) relative to the base URL.
        path: String,
        /// False only when the failure happened before any byte of the request was written
        /// (for example the TCP or TLS connection could not be set up).
        may_have_been_sent: bool,
        /// The HTTP stack's error (its URL is removed).
        #[source]
        source: reqwest::Error,
    },

    /// A deadline expired.
    #[error("{method} {path}: {which} timeout expired")]
    Timeout {
        /// HTTP method of the request.
        method: Method,
        /// Path (and query) relative to the base URL.
        path: String,
        /// Which of the deadlines expired.
        which: TimeoutKind,
    },

    /// A response body did not have the expected shape.
    #[error("{method} {path}: cannot decode the response at `{json_path}`")]
    Decode {
        /// HTTP method of the request.
        method: Method,
        /// Path (and query) relative to the base URL.
        path: String,
        /// Where in the JSON document decoding failed, e.g. `records[3].space.size`.
        json_path: String,
        /// The deserializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// ONTAP answered with an error status.
    #[error(transparent)]
    Api(Box<ApiError>),

    /// The operation is protected by multi-admin verification and needs approval
    /// (ONTAP code `262325`). An approver must approve request `request_index` on
    /// `/api/security/multi-admin-verify/requests/{index}`; then the call can be repeated.
    #[error("{method} {path}: approval required (multi-admin verify request {}): {message}",
        request_index.map_or_else(|| "with unknown index".to_owned(), |i| i.to_string()))]
    ApprovalRequired {
        /// HTTP method of the request.
        method: Method,
        /// Path (and query) relative to the base URL.
        path: String,
        /// The index of the multi-admin-verify request, when ONTAP named it.
        request_index: Option<u64>,
        /// ONTAP's message.
        message: String,
    },

    /// A job ended in `failure`, `cancelled` or `expired`.
    #[error("job {uuid} ended in state {state}{}: {}",
        code.as_deref().map(|c| format!(" with code {c}")).unwrap_or_default(),
        message.as_deref().unwrap_or("no message"))]
    JobFailed {
        /// Job UUID.
        uuid: String,
        /// The terminal state.
        state: JobState,
        /// ONTAP's code for the failure (job codes are integers; kept as text like error codes).
        code: Option<String>,
        /// ONTAP's message.
        message: Option<String>,
        /// The job description, usually the request that started it.
        description: Option<String>,
    },

    /// The job did not reach a terminal state before the wait deadline.
    #[error("job {uuid} still {last_state} after waiting {waited:?}")]
    JobTimeout {
        /// Job UUID.
        uuid: String,
        /// The last state seen.
        last_state: JobState,
        /// How long the client waited.
        waited: Duration,
    },

    /// The job record returned 404 while waiting: ONTAP deletes job records some minutes after
    /// they finish, so the record expired or was deleted and the outcome is unknown. Check the
    /// target resource to learn what happened.
    #[error("job {uuid}: job record expired or was deleted; outcome unknown")]
    JobGone {
        /// Job UUID.
        uuid: String,
    },

    /// A lookup expected at most one record and found more.
    #[error("{path}: expected at most one matching record, found {found} or more")]
    NotUnique {
        /// Path (and query) of the lookup.
        path: String,
        /// How many records were seen (the lookup stops early).
        found: u64,
    },

    /// A created record could not be found where the `Location` header pointed.
    #[error("created record not found at {location}")]
    CreatedRecordMissing {
        /// The `Location` header value.
        location: String,
    },

    /// A success response that this client cannot interpret (e.g. a 202 without a job link).
    #[error("{method} {path}: unexpected response (HTTP {status}): {problem}")]
    UnexpectedResponse {
        /// HTTP method of the request.
        method: Method,
        /// Path (and query) relative to the base URL.
        path: String,
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        problem: ResponseProblem,
    },
}

/// What was wrong with a success response, in [`Error::UnexpectedResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseProblem {
    /// A 202 Accepted response carried no job link.
    AcceptedWithoutJob,
    /// The status code is a success this client does not handle (e.g. 204 on a GET).
    UnhandledStatus,
}

impl fmt::Display for ResponseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AcceptedWithoutJob => "202 Accepted without a job link",
            Self::UnhandledStatus => "unhandled success status",
        })
    }
}

/// Which deadline expired, in [`Error::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Setting up the TCP/TLS connection took too long; the request was not sent.
    Connect,
    /// One HTTP exchange took too long; the request may have been processed.
    Request,
    /// The whole operation (all retries included) took too long.
    Overall,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Request => "request",
            Self::Overall => "overall operation",
        })
    }
}

/// An error answer from ONTAP (HTTP status 4xx/5xx), with the decoded error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} {path}: ONTAP error (HTTP {status}{}): {message}{}",
    code.as_deref().map(|c| format!(", code {c}")).unwrap_or_default(),
    target.as_deref().map(|t| format!(" (target: {t})")).unwrap_or_default())]
#[non_exhaustive]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// ONTAP's error code (a string on the wire, e.g. `"4"`).
    pub code: Option<String>,
    /// ONTAP's message, or a summary of the body if it was not an ONTAP error document.
    pub message: String,
    /// The field the error is about, when given.
    pub target: Option<String>,
    /// Extra details.
    pub arguments: Vec<ErrorArgument>,
    /// HTTP method of the request.
    pub method: Method,
    /// Path (and query) relative to the base URL.
    pub path: String,
}

/// One entry of `error.arguments`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ErrorArgument {
    /// Argument code.
    #[serde(default)]
    pub code: Option<String>,
    /// Argument message.
    #[serde(default)]
    pub message: Option<String>,
}

/// A problem with the client configuration, in [`Error::Build`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The base URL does not parse.
    #[error("the base URL does not parse")]
    InvalidBaseUrl(#[source] url::ParseError),
    /// The base URL scheme is not `http` or `https`.
    #[error("unsupported base URL scheme {scheme:?} (use https, or http for tests)")]
    UnsupportedScheme {
        /// The rejected scheme.
        scheme: String,
    },
    /// The base URL has credentials in it; use the authentication options instead.
    #[error("the base URL must not contain a user name or password")]
    CredentialsInUrl,
    /// The base URL has a path, query or fragment; give only `https://host[:port]`.
    #[error("the base URL must be https://host[:port] without path, query or fragment")]
    UnexpectedUrlPart,
    /// A PEM certificate could not be read.
    #[error("cannot read a CA certificate from PEM")]
    InvalidCaCertificate(#[source] reqwest::Error),
    /// The client certificate or key could not be read (the key is not shown).
    #[error("cannot read the client certificate and key from PEM")]
    InvalidClientIdentity(#[source] reqwest::Error),
    /// The client application name is not a valid header value.
    #[error("invalid value for header {header}")]
    InvalidHeaderValue {
        /// The header name.
        header: &'static str,
    },
    /// The in-flight limit must be at least one.
    #[error("max_in_flight must be at least 1")]
    ZeroInFlight,
    /// The HTTP stack refused the configuration.
    #[error("the HTTP client could not be built")]
    Http(#[source] reqwest::Error),
}

/// A query that cannot be sent, in [`Error::Query`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// `return_timeout` must be in `0..=120`.
    #[error("return_timeout {value} is out of range 0..=120")]
    ReturnTimeoutOutOfRange {
        /// The rejected value.
        value: u32,
    },
    /// A query-based PATCH or DELETE needs at least one filter, so that it cannot hit
    /// every record of a collection by accident.
    #[error("a query-based PATCH or DELETE needs at least one filter")]
    MissingFilter,
    /// A parameter name is empty.
    #[error("empty parameter name")]
    EmptyName,
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(Box::new(e))
    }
}

impl Error {
    /// The ONTAP error code, when ONTAP gave one (API errors, failed jobs, approval required).
    pub fn ontap_code(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.code.as_deref(),
            Error::JobFailed { code, .. } => code.as_deref(),
            Error::ApprovalRequired { .. } => Some(CODE_APPROVAL_REQUIRED),
            _ => None,
        }
    }

    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            _ => None,
        }
    }

    /// True when the object does not exist: HTTP 404, or ONTAP code `"4"` (also as a job failure).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) || self.ontap_code() == Some(CODE_ENTRY_DOESNT_EXIST)
    }

    /// True when the object already exists or conflicts: HTTP 409, or ONTAP code `"1"`.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409) || self.ontap_code() == Some(CODE_DUPLICATE_ENTRY)
    }

    /// True when repeating the same call later may succeed and cannot do harm: the request
    /// was not sent, a connect timeout, or ONTAP refused before acting (HTTP 429/503).
    ///
    /// Errors after which the request may have been processed (a broken connection after
    /// sending, a request timeout) are not retryable by this predicate; only idempotent
    /// reads are repeated in those cases (see [`crate::RetryPolicy`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport {
                may_have_been_sent, ..
            } => !may_have_been_sent,
            Error::Timeout { which, .. } => *which == TimeoutKind::Connect,
            Error::Api(e) => matches!(e.status, 429 | 503),
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, deserialize_with = "crate::job::lenient_code")]
    code: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    arguments: Vec<ErrorArgument>,
}

/// How much of a non-ONTAP error body is kept in the message.
const BODY_SNIPPET: usize = 200;

/// Turns an error response into an [`Error`]: an [`ApiError`], or
/// [`Error::ApprovalRequired`] for multi-admin-verify code 262325.
pub(crate) fn from_error_response(method: Method, path: String, status: u16, body: &[u8]) -> Error {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(ErrorEnvelope { error }) => {
            let message = error.message.unwrap_or_default();
            if error.code.as_deref() == Some(CODE_APPROVAL_REQUIRED) {
                return Error::ApprovalRequired {
                    method,
                    path,
                    request_index: parse_mav_index(&message),
                    message,
                };
            }
            ApiError {
                status,
                code: error.code,
                message,
                target: error.target,
                arguments: error.arguments,
                method,
                path,
            }
            .into()
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                format!("HTTP {status} with no ONTAP error body")
            } else {
                let snippet: String = text.chars().take(BODY_SNIPPET).collect();
                format!("HTTP {status} with a non-ONTAP body: {snippet}")
            };
            ApiError {
                status,
                code: None,
                message,
                target: None,
                arguments: Vec::new(),
                method,
                path,
            }
            .into()
        }
    }
}

/// Extracts N from "The security multi-admin-verify request (index N) requires approval."
pub(crate) fn parse_mav_index(message: &str) -> Option<u64> {
    let rest = &message[message.find("(index ")? + "(index ".len()..];
    let end = rest.find(')')?;
    rest[..end].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, body: &str) -> Error {
        from_error_response(Method::GET, "/api/x".to_owned(), status, body.as_bytes())
    }

    #[test]
    fn not_found_code_4() {
        let e = parse(
            404,
            r#"{"error": {"message": "entry doesn't exist", "code": "4"}}"#,
        );
        let Error::Api(api) = &e else { panic!("{e:?}") };
        assert_eq!(api.status, 404);
        assert_eq!(api.code.as_deref(), Some("4"));
        assert_eq!(api.message, "entry doesn't exist");
        assert_eq!(api.target, None);
        assert!(e.is_not_found());
        assert!(!e.is_conflict());
        assert!(!e.is_retryable());
        assert_eq!(e.ontap_code(), Some("4"));
        assert_eq!(
            e.to_string(),
            "GET /api/x: ONTAP error (HTTP 404, code 4): entry doesn't exist"
        );
    }

    #[test]
    fn code_4_with_other_status_is_not_found() {
        let e = parse(
            400,
            r#"{"error": {"message": "entry doesn't exist", "code": "4"}}"#,
        );
        assert!(e.is_not_found());
    }

    #[test]
    fn invalid_uuid_404_with_target() {
        let body = r#"{
          "error": {
            "message": "\"1\" is an invalid value for field \"uuid\" (<UUID>)",
            "code": "2",
            "target": "uuid"
          }
        }"#;
        let e = parse(404, body);
        let Error::Api(api) = &e else { panic!("{e:?}") };
        assert_eq!(api.code.as_deref(), Some("2"));
        assert_eq!(api.target.as_deref(), Some("uuid"));
        assert_eq!(
            api.message,
            "\"1\" is an invalid value for field \"uuid\" (<UUID>)"
        );
        assert!(e.is_not_found(), "HTTP 404 counts as not found");
    }

    #[test]
    fn return_timeout_out_of_range() {
        let body = r#"{"error": {"message": "The value \"600\" is invalid for field \"return_timeout\" (<0..120>)", "code": "262197", "target": "return_timeout"}}"#;
        let e = parse(400, body);
        assert_eq!(e.ontap_code(), Some("262197"));
        assert_eq!(e.status(), Some(400));
        let Error::Api(api) = &e else { panic!("{e:?}") };
        assert_eq!(api.target.as_deref(), Some("return_timeout"));
        assert!(!e.is_not_found());
    }

    #[test]
    fn duplicate_is_conflict() {
        let e = parse(
            409,
            r#"{"error":{"message":"duplicate entry","code":"1","arguments":[{"code":"1","message":"vol1"}]}}"#,
        );
        assert!(e.is_conflict());
        let Error::Api(api) = &e else { panic!("{e:?}") };
        assert_eq!(
            api.arguments,
            vec![ErrorArgument {
                code: Some("1".into()),
                message: Some("vol1".into())
            }]
        );
    }

    #[test]
    fn rbac_denied() {
        let e = parse(
            403,
            r#"{"error": {"message": "not authorized for that command", "code": "6"}}"#,
        );
        assert_eq!(e.ontap_code(), Some("6"));
        assert!(!e.is_not_found() && !e.is_conflict() && !e.is_retryable());
    }

    #[test]
    fn multi_admin_verify() {
        let e = parse(
            403,
            r#"{"error": {"message": "The security multi-admin-verify request (index 1) requires approval.", "code": "262325"}}"#,
        );
        match &e {
            Error::ApprovalRequired {
                request_index,
                message,
                ..
            } => {
                assert_eq!(*request_index, Some(1));
                assert_eq!(
                    message,
                    "The security multi-admin-verify request (index 1) requires approval."
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.ontap_code(), Some("262325"));
        assert_eq!(
            parse_mav_index("The security multi-admin-verify request (index 3) requires approval."),
            Some(3)
        );
        assert_eq!(parse_mav_index("requires approval"), None);
        assert_eq!(parse_mav_index("(index x)"), None);
    }

    #[test]
    fn numeric_code_is_accepted() {
        let e = parse(500, r#"{"error":{"message":"RPC timed out","code":65541}}"#);
        assert_eq!(e.ontap_code(), Some("65541"));
    }

    #[test]
    fn non_json_body() {
        let e = parse(503, "<html>busy</html>");
        let Error::Api(api) = &e else { panic!("{e:?}") };
        assert_eq!(api.code, None);
        assert_eq!(
            api.message,
            "HTTP 503 with a non-ONTAP body: <html>busy</html>"
        );
        assert!(e.is_retryable());
        let e = parse(502, "");
        let Error::Api(api) = &e else { panic!("{e:?}") };
        assert_eq!(api.message, "HTTP 502 with no ONTAP error body");
    }

    #[test]
    fn job_failed_predicates() {
        let e = Error::JobFailed {
            uuid: "u".into(),
            state: JobState::Failure,
            code: Some("4".into()),
            message: Some("entry doesn't exist".into()),
            description: None,
        };
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "job u ended in state failure with code 4: entry doesn't exist"
        );
    }

    #[test]
    fn error_is_small() {
        // Keeps Result<T> cheap to move around.
        assert!(
            std::mem::size_of::<Error>() <= 128,
            "{}",
            std::mem::size_of::<Error>()
        );
    }
}
