//! Errors: the ONTAP error bodies the simulator answers with, job failures, and the
//! errors of starting a simulator.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{json, Value};

/// An ONTAP REST error as sent on the wire:
/// `{"error":{"message":…,"code":"<string>","target":…}}` with an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ONTAP error {code} (HTTP {status}): {message}")]
#[non_exhaustive]
pub struct ApiError {
    /// HTTP status code of the response.
    pub status: u16,
    /// ONTAP error code, a decimal number sent as a JSON string.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// The field the error is about, if any.
    pub target: Option<String>,
}

impl ApiError {
    /// An error with the given HTTP status, ONTAP code and message.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            target: None,
        }
    }

    /// Sets the `target` field.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// 404, code 4: `entry doesn't exist`.
    pub fn not_found() -> Self {
        Self::new(404, "4", "entry doesn't exist")
    }

    /// 404, code 4 with a specific message.
    pub fn not_found_msg(message: impl Into<String>) -> Self {
        Self::new(404, "4", message)
    }

    /// 409, code 1: an entry with the same identifiers already exists.
    pub fn duplicate(message: impl Into<String>) -> Self {
        Self::new(409, "1", message)
    }

    /// 409, code 8: the resource is in use.
    pub fn in_use(message: impl Into<String>) -> Self {
        Self::new(409, "8", message)
    }

    /// 400, code 262179: `Unexpected argument "FIELD".`
    pub fn unexpected_argument(field: &str) -> Self {
        Self::new(400, "262179", format!("Unexpected argument \"{field}\".")).with_target(field)
    }

    /// 400, code 262177: a required field is missing.
    pub fn missing_value(field: &str) -> Self {
        Self::new(
            400,
            "262177",
            format!("Missing value for field \"{field}\"; it is required."),
        )
        .with_target(field)
    }

    /// 400, code 262185: `"VALUE" is an invalid value for field "FIELD"`.
    pub fn invalid_value(field: &str, value: &str) -> Self {
        Self::new(
            400,
            "262185",
            format!("\"{value}\" is an invalid value for field \"{field}\""),
        )
        .with_target(field)
    }

    /// 400, code 262185 for an enum field, listing the allowed values.
    pub fn invalid_enum(field: &str, value: &str, allowed: &[&str]) -> Self {
        Self::new(
            400,
            "262185",
            format!(
                "\"{value}\" is an invalid value for field \"{field}\" (<{}>)",
                allowed.join("|")
            ),
        )
        .with_target(field)
    }

    /// 400, code 2: generic invalid input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "2", message)
    }

    /// 405, code 3: the operation is not supported.
    pub fn not_supported(message: impl Into<String>) -> Self {
        Self::new(405, "3", message)
    }

    /// 401, code 6: authentication failed.
    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "6",
            "The credentials provided are invalid or the user is not authorized.",
        )
    }

    /// The JSON body `{"error":{...}}`.
    pub fn to_body(&self) -> Value {
        let mut err = json!({"message": self.message, "code": self.code});
        if let Some(t) = &self.target {
            err["target"] = Value::String(t.clone());
        }
        json!({ "error": err })
    }

    /// The HTTP status as a [`StatusCode`] (500 when the stored number is not a status).
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_body()).unwrap_or_default();
        (
            self.status_code(),
            [(http::header::CONTENT_TYPE, "application/hal+json")],
            body,
        )
            .into_response()
    }
}

/// Why a job ended in state `failure`: the job's integer `code` and its `message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job failed with code {code}: {message}")]
#[non_exhaustive]
pub struct JobFailure {
    /// The job's `code` (an integer in job records).
    pub code: i64,
    /// The job's `message`.
    pub message: String,
}

impl JobFailure {
    /// A failure with the given code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<ApiError> for JobFailure {
    fn from(e: ApiError) -> Self {
        Self {
            code: e.code.parse().unwrap_or(2),
            message: e.message,
        }
    }
}

/// Errors of building, starting or persisting a simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Generating the self-signed certificate failed.
    #[error("cannot generate the self-signed certificate")]
    Certificate(#[source] rcgen::Error),
    /// Building the TLS configuration failed.
    #[error("cannot build the TLS configuration")]
    Tls(#[source] rustls::Error),
    /// Reading or writing a file failed.
    #[error("cannot {action} {path}")]
    File {
        /// What was being done ("read", "write").
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A seed or state document could not be decoded.
    #[error("invalid {what} document {path}")]
    Document {
        /// "seed" or "state".
        what: &'static str,
        /// The file ("-" for an in-memory document).
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The backend refused to start with the initial state.
    #[error("backend refused the initial state")]
    Backend(#[source] crate::backend::BackendError),
    /// The seed described something inconsistent (an unknown SVM, a duplicate name, ...).
    #[error("seed rejected: {0}")]
    Seed(#[source] ApiError),
    /// The client CA (`--client-ca`, [`crate::SimServerBuilder::client_ca_pem`]) holds no
    /// certificate rustls accepts as a trust anchor.
    #[error("cannot use the client CA")]
    ClientCa(#[source] Box<dyn std::error::Error + Send + Sync>),
}
