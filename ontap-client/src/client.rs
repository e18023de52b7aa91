//! The HTTP transport: configuration, authentication, headers, deadlines, the in-flight cap,
//! retries and tracing.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::error::{from_error_response, BuildError, Error, Result, TimeoutKind};
use crate::job::JobWaitConfig;
use crate::retry::{is_retry_safe, Failure, RetryPolicy};
use crate::tls::{ca_certificates, ClientIdentity};

/// Header naming the calling application, for ONTAP's usage tracking.
pub const HEADER_CLIENT_APP: &str = "x-dot-client-app";
/// Header scoping a cluster-admin call to one SVM by name.
pub const HEADER_SVM_NAME: &str = "x-dot-svm-name";
/// Header scoping a cluster-admin call to one SVM by UUID.
pub const HEADER_SVM_UUID: &str = "x-dot-svm-uuid";

/// Default cap on concurrent requests per client (as Trident does per management LIF).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 20;
/// Default time to set up a TCP/TLS connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time for one HTTP exchange. A request carrying `return_timeout=N` is always
/// allowed at least N + 15 seconds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time for one operation, all retries included.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(300);

/// Slack added to `return_timeout` for the per-request deadline.
const RETURN_TIMEOUT_SLACK: Duration = Duration::from_secs(15);

/// Which SVM calls are tunnelled to (`X-Dot-SVM-Name` / `X-Dot-SVM-UUID`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SvmScope {
    /// By SVM name.
    Name(String),
    /// By SVM UUID.
    Uuid(String),
}

#[derive(Clone)]
enum Auth {
    None,
    Basic {
        username: String,
        password: SecretString,
    },
    Bearer(SecretString),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"[redacted]")
                .finish(),
            Auth::Bearer(_) => f.write_str("Bearer([redacted])"),
        }
    }
}

/// Configures and builds a [`Client`].
///
/// Defaults: TLS verification on, no authentication, `X-Dot-Client-App: kvmstor/<version>`,
/// connect timeout 10 s, request timeout 60 s, operation timeout 300 s, 20 requests in
/// flight, [`RetryPolicy::default`], [`JobWaitConfig::default`].
#[derive(Clone)]
pub struct ClientBuilder {
    base_url: String,
    auth: Auth,
    identity: Option<ClientIdentity>,
    ca_pems: Vec<Vec<u8>>,
    only_added_cas: bool,
    accept_invalid_certs: bool,
    app: String,
    svm: Option<SvmScope>,
    connect_timeout: Duration,
    request_timeout: Duration,
    operation_timeout: Duration,
    max_in_flight: usize,
    retry: RetryPolicy,
    job: JobWaitConfig,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("auth", &self.auth)
            .field("identity", &self.identity)
            .field("extra_cas", &self.ca_pems.len())
            .field("only_added_cas", &self.only_added_cas)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("app", &self.app)
            .field("svm", &self.svm)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("retry", &self.retry)
            .field("job", &self.job)
            .finish()
    }
}

impl ClientBuilder {
    /// Starts a builder for `https://host[:port]` (a trailing `/` is accepted; the client
    /// appends `/api/...` itself).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            auth: Auth::None,
            identity: None,
            ca_pems: Vec::new(),
            only_added_cas: false,
            accept_invalid_certs: false,
            app: format!("kvmstor/{}", env!("CARGO_PKG_VERSION")),
            svm: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            retry: RetryPolicy::default(),
            job: JobWaitConfig::default(),
        }
    }

    /// HTTP basic authentication. Replaces a bearer token.
    pub fn basic_auth(mut self, username: impl Into<String>, password: SecretString) -> Self {
        self.auth = Auth::Basic {
            username: username.into(),
            password,
        };
        self
    }

    /// OAuth 2.0 bearer token (ONTAP 9.14 and later). Replaces basic authentication.
    pub fn bearer_token(mut self, token: SecretString) -> Self {
        self.auth = Auth::Bearer(token);
        self
    }

    /// Client-certificate (mutual TLS) authentication.
    pub fn client_identity(mut self, identity: ClientIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Trusts the CA certificate(s) in this PEM bundle in addition to the platform's
    /// trust store (or instead of it, with [`Self::trust_only_added_cas`]).
    pub fn add_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pems.push(pem.into());
        self
    }

    /// Trusts only the CAs added with [`Self::add_ca_pem`], not the platform's store.
    pub fn trust_only_added_cas(mut self, yes: bool) -> Self {
        self.only_added_cas = yes;
        self
    }

    /// **Disables TLS certificate verification.** Anyone on the path can then read the
    /// credentials. Only for throw-away labs; `build()` logs a warning when this is on.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.accept_invalid_certs = yes;
        self
    }

    /// Sets `X-Dot-Client-App` to `<name>/<version>`.
    pub fn application(mut self, name: &str, version: &str) -> Self {
        self.app = format!("{name}/{version}");
        self
    }

    /// Tunnels every call to this SVM by name (`X-Dot-SVM-Name`).
    pub fn svm_name(mut self, name: impl Into<String>) -> Self {
        self.svm = Some(SvmScope::Name(name.into()));
        self
    }

    /// Tunnels every call to this SVM by UUID (`X-Dot-SVM-UUID`).
    pub fn svm_uuid(mut self, uuid: impl Into<String>) -> Self {
        self.svm = Some(SvmScope::Uuid(uuid.into()));
        self
    }

    /// Deadline for setting up a connection.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Deadline for one HTTP exchange (raised to `return_timeout + 15 s` when needed).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Deadline for one operation, retries and backoff included (raised to
    /// `return_timeout + 15 s` when needed). Job waits have their own deadline
    /// ([`JobWaitConfig::deadline`]); each poll is one operation.
    pub fn operation_timeout(mut self, d: Duration) -> Self {
        self.operation_timeout = d;
        self
    }

    /// At most this many requests of this client (and its clones) in flight at once.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// How failed requests are repeated.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How jobs are awaited.
    pub fn job_wait(mut self, config: JobWaitConfig) -> Self {
        self.job = config;
        self
    }

    /// Validates the configuration and builds the client. Performs no I/O.
    pub fn build(self) -> Result<Client> {
        let base = parse_base_url(&self.base_url)?;
        if self.max_in_flight == 0 {
            return Err(BuildError::ZeroInFlight.into());
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/hal+json"));
        headers.insert(
            HEADER_CLIENT_APP,
            HeaderValue::from_str(&self.app).map_err(|_| BuildError::InvalidHeaderValue {
                header: "X-Dot-Client-App",
            })?,
        );
        let mut http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(self.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(self.max_in_flight);
        let mut cas = Vec::new();
        for pem in &self.ca_pems {
            cas.extend(ca_certificates(pem)?);
        }
        http = if self.only_added_cas {
            http.tls_certs_only(cas)
        } else {
            http.tls_certs_merge(cas)
        };
        if let Some(id) = &self.identity {
            http = http.identity(id.to_reqwest()?);
        }
        if self.accept_invalid_certs {
            tracing::warn!(
                base_url = %base,
                "TLS certificate verification is DISABLED for this ONTAP client \
                 (danger_accept_invalid_certs); credentials can be intercepted"
            );
            http = http.danger_accept_invalid_certs(true);
        }
        let http = http.build().map_err(BuildError::Http)?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                auth: self.auth,
                retry: self.retry,
                request_timeout: self.request_timeout,
                operation_timeout: self.operation_timeout,
                max_in_flight: self.max_in_flight,
                limiter: Semaphore::new(self.max_in_flight),
                job: self.job,
                app: self.app,
            }),
            svm: self.svm,
        })
    }
}

/// Returns `scheme://host[:port]` or a typed error.
fn parse_base_url(s: &str) -> Result<String, BuildError> {
    let url = url::Url::parse(s).map_err(BuildError::InvalidBaseUrl)?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(BuildError::UnsupportedScheme {
            scheme: url.scheme().to_owned(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BuildError::CredentialsInUrl);
    }
    if url.path() != "/" && !url.path().is_empty()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(BuildError::UnexpectedUrlPart);
    }
    Ok(url.origin().ascii_serialization())
}

struct Inner {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    retry: RetryPolicy,
    request_timeout: Duration,
    operation_timeout: Duration,
    max_in_flight: usize,
    limiter: Semaphore,
    job: JobWaitConfig,
    app: String,
}

/// A connection to one ONTAP cluster. Cheap to clone: clones share the connection pool and
/// the in-flight cap.
///
/// ```no_run
/// # async fn demo() -> ontap_client::Result<()> {
/// use ontap_client::{Client, SecretString};
/// let client = Client::builder("https://cluster1.example.com")
///     .basic_auth("admin", SecretString::from("…"))
///     .build()?;
/// let svm1 = client.with_svm_name("svm1"); // same pool, calls tunnelled to svm1
/// # let _ = svm1; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    svm: Option<SvmScope>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base)
            .field("auth", &self.inner.auth)
            .field("app", &self.inner.app)
            .field("svm", &self.svm)
            .field("max_in_flight", &self.inner.max_in_flight)
            .finish_non_exhaustive()
    }
}

/// A successful (2xx) HTTP answer, body fully read.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) body: Bytes,
}

impl Client {
    /// Starts a [`ClientBuilder`].
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(base_url)
    }

    /// `scheme://host[:port]` this client talks to.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The SVM calls are tunnelled to, if any.
    pub fn svm(&self) -> Option<&SvmScope> {
        self.svm.as_ref()
    }

    /// A clone whose calls are tunnelled to the SVM with this name.
    pub fn with_svm_name(&self, name: impl Into<String>) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            svm: Some(SvmScope::Name(name.into())),
        }
    }

    /// A clone whose calls are tunnelled to the SVM with this UUID.
    pub fn with_svm_uuid(&self, uuid: impl Into<String>) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            svm: Some(SvmScope::Uuid(uuid.into())),
        }
    }

    /// A clone without SVM tunnelling (cluster scope).
    pub fn without_svm(&self) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            svm: None,
        }
    }

    /// The job-wait configuration.
    pub fn job_config(&self) -> &JobWaitConfig {
        &self.inner.job
    }

    /// The cap on concurrent requests.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight
    }

    /// GETs `path_and_query` (relative to the base URL) and decodes the JSON body.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T> {
        let resp = self
            .execute(Method::GET, path_and_query, None, None)
            .await?;
        decode(&Method::GET, path_and_query, &resp.body)
    }

    /// Sends one request (with retries per the policy, under the operation deadline).
    /// `path_and_query` starts with `/`. `return_timeout` raises the per-request deadline.
    pub(crate) async fn execute(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
        return_timeout: Option<u32>,
    ) -> Result<Response> {
        let mut request_timeout = self.inner.request_timeout;
        let mut operation_timeout = self.inner.operation_timeout;
        if let Some(rt) = return_timeout {
            // ONTAP may legitimately take `return_timeout` seconds before answering.
            let needed = Duration::from_secs(rt.into()) + RETURN_TIMEOUT_SLACK;
            request_timeout = request_timeout.max(needed);
            operation_timeout = operation_timeout.max(needed);
        }
        let work = self.execute_with_retries(&method, path_and_query, body, request_timeout);
        match tokio::time::timeout(operation_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                method,
                path: path_and_query.to_owned(),
                which: TimeoutKind::Overall,
            }),
        }
    }

    async fn execute_with_retries(
        &self,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
        request_timeout: Duration,
    ) -> Result<Response> {
        let policy = &self.inner.retry;
        let mut attempt = 1u32;
        loop {
            let span = tracing::debug_span!(
                "ontap_request",
                method = %method,
                path = %path,
                attempt,
                status = tracing::field::Empty,
                elapsed_ms = tracing::field::Empty,
            );
            let result = self
                .attempt(method, path, body.clone(), request_timeout)
                .instrument(span)
                .await;
            let (err, failure, retry_after) = match result {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            if attempt >= policy.max_attempts() || !is_retry_safe(method, failure) {
                return Err(err);
            }
            let wait = policy.wait(attempt, retry_after);
            tracing::debug!(
                method = %method,
                path = %path,
                attempt,
                failure = ?failure,
                wait_ms = wait.as_millis() as u64,
                "retrying ONTAP request"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One HTTP exchange under the in-flight cap.
    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
        request_timeout: Duration,
    ) -> std::result::Result<Response, (Error, Failure, Option<Duration>)> {
        let build_err = |header| {
            (
                Error::Build(BuildError::InvalidHeaderValue { header }),
                Failure::Status(0),
                None,
            )
        };
        let mut rb = self
            .inner
            .http
            .request(method.clone(), format!("{}{}", self.inner.base, path))
            .timeout(request_timeout);
        match &self.inner.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                rb = rb.basic_auth(username, Some(password.expose_secret()));
            }
            Auth::Bearer(token) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                    .map_err(|_| build_err("Authorization"))?;
                v.set_sensitive(true);
                rb = rb.header(http::header::AUTHORIZATION, v);
            }
        }
        match &self.svm {
            None => {}
            Some(SvmScope::Name(n)) => {
                let v = HeaderValue::from_str(n).map_err(|_| build_err("X-Dot-SVM-Name"))?;
                rb = rb.header(HEADER_SVM_NAME, v);
            }
            Some(SvmScope::Uuid(u)) => {
                let v = HeaderValue::from_str(u).map_err(|_| build_err("X-Dot-SVM-UUID"))?;
                rb = rb.header(HEADER_SVM_UUID, v);
            }
        }
        if let Some(b) = body {
            rb = rb
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(b);
        }

        // The semaphore is never closed, so `acquire` cannot fail.
        let _permit = self.inner.limiter.acquire().await.ok();
        let started = Instant::now();
        let span = tracing::Span::current();
        let transport = |e: reqwest::Error| -> (Error, Failure, Option<Duration>) {
            let e = e.without_url();
            let sent = !e.is_connect();
            let failure = if sent {
                Failure::MaybeSent
            } else {
                Failure::NotSent
            };
            let err = if e.is_timeout() {
                Error::Timeout {
                    method: method.clone(),
                    path: path.to_owned(),
                    which: if sent {
                        TimeoutKind::Request
                    } else {
                        TimeoutKind::Connect
                    },
                }
            } else {
                Error::Transport {
                    method: method.clone(),
                    path: path.to_owned(),
                    may_have_been_sent: sent,
                    source: e,
                }
            };
            tracing::debug!(error = %err, "ONTAP request failed");
            (err, failure, None)
        };
        let resp = rb.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.bytes().await.map_err(transport)?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        span.record("status", status);
        span.record("elapsed_ms", elapsed_ms);
        tracing::debug!(status, elapsed_ms, "ONTAP response");
        if (200..300).contains(&status) {
            Ok(Response {
                status,
                location,
                body,
            })
        } else {
            let err = from_error_response(method.clone(), path.to_owned(), status, &body);
            Err((err, Failure::Status(status), retry_after))
        }
    }
}

/// Decodes JSON, naming the path of the first mismatch.
pub(crate) fn decode<T: DeserializeOwned>(method: &Method, path: &str, body: &[u8]) -> Result<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Decode {
        method: method.clone(),
        path: path.to_owned(),
        json_path: e.path().to_string(),
        source: e.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_err(url: &str) -> BuildError {
        match Client::builder(url).build() {
            Err(Error::Build(b)) => b,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn base_url_forms() {
        assert_eq!(
            parse_base_url("https://c1.example.com").unwrap(),
            "https://c1.example.com"
        );
        assert_eq!(
            parse_base_url("https://c1.example.com/").unwrap(),
            "https://c1.example.com"
        );
        assert_eq!(
            parse_base_url("https://10.0.0.1:8443/").unwrap(),
            "https://10.0.0.1:8443"
        );
        assert_eq!(
            parse_base_url("https://[::1]:443").unwrap(),
            "https://[::1]"
        );
        assert_eq!(
            parse_base_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn base_url_rejections() {
        assert!(matches!(
            build_err("ftp://c1"),
            BuildError::UnsupportedScheme { scheme } if scheme == "ftp"
        ));
        assert!(matches!(
            build_err("not a url"),
            BuildError::InvalidBaseUrl(_)
        ));
        let e = build_err("https://admin:PLANTED@c1/");
        assert!(matches!(e, BuildError::CredentialsInUrl));
        assert!(!e.to_string().contains("PLANTED"));
        assert!(matches!(
            build_err("https://c1/api"),
            BuildError::UnexpectedUrlPart
        ));
        assert!(matches!(
            build_err("https://c1/?a=b"),
            BuildError::UnexpectedUrlPart
        ));
        assert!(matches!(
            Client::builder("https://c1").max_in_flight(0).build(),
            Err(Error::Build(BuildError::ZeroInFlight))
        ));
        assert!(matches!(
            Client::builder("https://c1")
                .application("bad\napp", "1")
                .build(),
            Err(Error::Build(BuildError::InvalidHeaderValue { .. }))
        ));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let b = Client::builder("https://c1")
            .basic_auth("admin", SecretString::from("PLANTED-PW"))
            .client_identity(ClientIdentity::from_pem(
                b"cert".to_vec(),
                SecretString::from("PLANTED-KEY"),
            ));
        let dbg = format!("{b:?}");
        assert!(dbg.contains("admin") && dbg.contains("[redacted]"), "{dbg}");
        let bearer = Client::builder("https://c1").bearer_token(SecretString::from("PLANTED-TOK"));
        let client = bearer.clone().build().unwrap();
        for text in [dbg, format!("{bearer:?}"), format!("{client:?}")] {
            for secret in ["PLANTED-PW", "PLANTED-KEY", "PLANTED-TOK"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
    }

    #[test]
    fn svm_scoped_clone_shares_inner() {
        let c = Client::builder("https://c1")
            .svm_uuid("u-1")
            .build()
            .unwrap();
        assert_eq!(c.svm(), Some(&SvmScope::Uuid("u-1".into())));
        let s = c.with_svm_name("svm1");
        assert!(Arc::ptr_eq(&c.inner, &s.inner));
        assert_eq!(s.svm(), Some(&SvmScope::Name("svm1".into())));
        assert_eq!(c.svm(), Some(&SvmScope::Uuid("u-1".into())));
        assert_eq!(s.without_svm().svm(), None);
    }

    #[test]
    fn decode_names_json_path() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Space {
            size: u64,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Vol {
            space: Space,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Page {
            records: Vec<Vol>,
        }
        let body = br#"{"records":[{"space":{"size":1}},{"space":{"size":"big"}}]}"#;
        match decode::<Page>(&Method::GET, "/api/storage/volumes", body) {
            Err(Error::Decode {
                json_path, path, ..
            }) => {
                assert_eq!(json_path, "records[1].space.size");
                assert_eq!(path, "/api/storage/volumes");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decode_empty_body_as_empty_object() {
        let v: serde_json::Value = decode(&Method::PATCH, "/api/x", b"").unwrap();
        assert_eq!(v, serde_json::json!({}));
    }
}
