//! Test helpers: fixtures and a tiny recording HTTP server that plays canned ONTAP answers.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

/// Reads `tests/fixtures/{name}` as JSON.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// JSON body, if any.
    pub body: Option<Value>,
}

impl Recorded {
    /// Query parameters as sorted `name=value` pairs (still percent-encoded).
    pub fn params(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    }
}

/// A canned answer for one `(method, path)`.
#[derive(Debug, Clone)]
struct Canned {
    method: Method,
    path: String,
    status: u16,
    body: Value,
    location: Option<String>,
}

#[derive(Default)]
struct Inner {
    recorded: Vec<Recorded>,
    canned: VecDeque<Canned>,
}

/// A recording server; answers are consumed in order of registration per `(method, path)`.
#[derive(Clone)]
pub struct MockOntap {
    inner: Arc<Mutex<Inner>>,
    addr: SocketAddr,
}

impl MockOntap {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { inner, addr }
    }

    /// Base URL for the client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client pointed at this server.
    pub fn client(&self) -> ontap_client::Client {
        ontap_client::Client::builder(self.url())
            .basic_auth("admin", ontap_client::SecretString::from("pw"))
            .build()
            .unwrap()
    }

    /// Answers the next `method path` with `status` and `body`.
    pub fn on(&self, method: &str, path: &str, status: u16, body: Value) -> &Self {
        self.on_with_location(method, path, status, body, None)
    }

    /// Like [`Self::on`], with a `Location` header.
    pub fn on_with_location(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: Value,
        location: Option<&str>,
    ) -> &Self {
        self.inner.lock().unwrap().canned.push_back(Canned {
            method: method.parse().unwrap(),
            path: path.to_owned(),
            status,
            body,
            location: location.map(str::to_owned),
        });
        self
    }

    /// Answers a 202 with a job link for `method path`, and the job poll with success.
    pub fn on_job(&self, method: &str, path: &str, job_uuid: &str) -> &Self {
        self.on(
            method,
            path,
            202,
            serde_json::json!({"job": {"uuid": job_uuid,
                "_links": {"self": {"href": format!("/api/cluster/jobs/{job_uuid}")}}}}),
        );
        self.on(
            "GET",
            &format!("/api/cluster/jobs/{job_uuid}"),
            200,
            serde_json::json!({"uuid": job_uuid, "state": "success", "message": "success", "code": 0}),
        )
    }

    /// Every request seen so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().recorded.clone()
    }

    /// The only request seen; panics if there were several.
    pub fn single(&self) -> Recorded {
        let all = self.recorded();
        assert_eq!(all.len(), 1, "expected one request, got {all:#?}");
        all.into_iter().next().unwrap()
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    _headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body_json = if body.is_empty() {
        None
    } else {
        Some(serde_json::from_slice(&body).expect("request body is JSON"))
    };
    let mut inner = inner.lock().unwrap();
    inner.recorded.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        body: body_json,
    });
    let found = inner
        .canned
        .iter()
        .position(|c| c.method == method && c.path == uri.path());
    let Some(index) = found else {
        let body = serde_json::json!({"error": {"message": "entry doesn't exist", "code": "4"}});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    let canned = inner.canned.remove(index).unwrap();
    let mut response = (
        StatusCode::from_u16(canned.status).unwrap(),
        axum::Json(canned.body),
    )
        .into_response();
    if let Some(location) = canned.location {
        response
            .headers_mut()
            .insert("location", HeaderValue::from_str(&location).unwrap());
    }
    response
}
