//! HTTP(S) serving: TLS, the per-request wrapper (auth, request log, faults, headers,
//! path normalisation) and the admin endpoints under `/__sim`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::{HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::api::json_response;
use crate::error::{ApiError, SimError};
use crate::faults::{Fault, FaultAction};
use crate::sim::{RequestRecord, Sim};

/// A self-signed certificate and its key, PEM.
pub(crate) struct Cert {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

/// Generates a self-signed certificate for `localhost`, `127.0.0.1` and `::1`
/// (plus `extra` names).
pub(crate) fn self_signed(extra: &[String]) -> Result<Cert, SimError> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(extra.iter().cloned());
    let ck = rcgen::generate_simple_self_signed(names).map_err(SimError::Certificate)?;
    Ok(Cert {
        cert_pem: ck.cert.pem(),
        cert_der: ck.cert.der().to_vec(),
        key_der: ck.signing_key.serialize_der(),
    })
}

/// The certificates of a client CA PEM (at least one).
pub(crate) fn client_ca_certs(
    pem: &str,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, SimError> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SimError::ClientCa(Box::new(e)))?;
    if certs.is_empty() {
        return Err(SimError::ClientCa(Box::new(
            rustls_pki_types::pem::Error::NoItemsFound,
        )));
    }
    Ok(certs)
}

/// The server's TLS configuration. With `client_ca`, clients *may* present a certificate
/// and one that does not chain to these CAs fails the handshake (as ONTAP with
/// `security ssl modify -client-enabled true` and the CA installed as `client-ca`); a
/// client without one goes on to basic auth.
pub(crate) fn tls_config(
    cert: &Cert,
    client_ca: Option<Vec<rustls_pki_types::CertificateDer<'static>>>,
) -> Result<Arc<rustls::ServerConfig>, SimError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = vec![rustls_pki_types::CertificateDer::from(
        cert.cert_der.clone(),
    )];
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(rustls_pki_types::PrivatePkcs8KeyDer::from(
        cert.key_der.clone(),
    ));
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(SimError::Tls)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(cas) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in cas {
                roots.add(ca).map_err(|e| SimError::ClientCa(Box::new(e)))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| SimError::ClientCa(Box::new(e)))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(SimError::Tls)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Why a connection is dropped without an answer (a close-connection fault).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub(crate) struct Dropped;

/// Accepts connections until `stop` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    sim: Sim,
    mut stop: watch::Receiver<bool>,
) {
    let app = crate::resources::router()
        .merge(admin_routes())
        .fallback(unknown_api)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(sim.clone());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let app = app.clone();
        let sim = sim.clone();
        let acceptor = acceptor.clone();
        conns.spawn(async move {
            let service = |cert_user: Option<Arc<str>>| {
                hyper::service::service_fn(move |req: Request<Incoming>| {
                    handle(sim.clone(), app.clone(), cert_user.clone(), req)
                })
            };
            let builder = hyper::server::conn::http1::Builder::new();
            let res = match acceptor {
                Some(acc) => match acc.accept(stream).await {
                    Ok(tls) => {
                        // Only a certificate that chained to the client CA gets this far.
                        let user = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|c| common_name(c))
                            .map(Arc::<str>::from);
                        builder
                            .serve_connection(TokioIo::new(tls), service(user))
                            .await
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                },
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service(None))
                        .await
                }
            };
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
        // Reap finished connections.
        while conns.try_join_next().is_some() {}
    }
    conns.abort_all();
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buf = (buf << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One DER element of `input`: its tag, its contents and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The subject's common name (OID 2.5.4.3) of an X.509 certificate (DER): the account a
/// client certificate authenticates as, as ONTAP maps it.
pub(crate) fn common_name(cert_der: &[u8]) -> Option<String> {
    const CN: [u8; 3] = [0x55, 0x04, 0x03];
    let (_, cert, _) = der(cert_der)?;
    let (_, tbs, _) = der(cert)?;
    let mut rest = tbs;
    // The optional [0] version, then serial, signature algorithm, issuer, validity.
    if der(rest)?.0 == 0xa0 {
        rest = der(rest)?.2;
    }
    for _ in 0..4 {
        rest = der(rest)?.2;
    }
    let (_, mut rdns, _) = der(rest)?;
    while !rdns.is_empty() {
        let (_, mut set, next) = der(rdns)?;
        rdns = next;
        while !set.is_empty() {
            let (_, atv, next) = der(set)?;
            set = next;
            let (_, oid, value) = der(atv)?;
            if oid == CN {
                let (_, text, _) = der(value)?;
                return String::from_utf8(text.to_vec()).ok();
            }
        }
    }
    None
}

/// Whether the request may proceed: a verified client certificate whose CN is the
/// account (ONTAP's `certificate` authentication method), else basic auth or a token.
fn authorised(sim: &Sim, req: &Request<Incoming>, cert_user: Option<&str>) -> bool {
    let cfg = &sim.inner.cfg;
    if cert_user.is_some_and(|u| same(u.as_bytes(), cfg.username.as_bytes())) {
        return true;
    }
    let Some(h) = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if let Some(b) = h.strip_prefix("Basic ") {
        let Some(raw) = decode_base64(b.trim()) else {
            return false;
        };
        let Some(colon) = raw.iter().position(|c| *c == b':') else {
            return false;
        };
        let (user, pass) = (&raw[..colon], &raw[colon + 1..]);
        return same(user, cfg.username.as_bytes())
            && same(pass, cfg.password.expose_secret().as_bytes());
    }
    if let Some(t) = h.strip_prefix("Bearer ") {
        return cfg
            .tokens
            .iter()
            .any(|k| same(k.expose_secret().as_bytes(), t.trim().as_bytes()));
    }
    false
}

/// Replaces values of keys that look secret before a body enters the request log.
fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let k = k.to_ascii_lowercase();
                if k.contains("password") || k.contains("secret") || k.contains("token") {
                    *x = Value::String("<redacted>".into());
                } else {
                    redact(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

fn finish(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        http::header::SERVER,
        HeaderValue::from_static("libzapid-httpd"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache,no-store,must-revalidate"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Whether the client asked for plain JSON (`Accept: application/json` without HAL).
fn wants_plain_json<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|a| a.contains("application/json"))
        && !req
            .headers()
            .get_all(http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|a| a.contains("hal+json"))
}

/// Plain JSON carries no HAL links except the collection's `next`.
fn strip_links(v: &mut Value, top: bool) {
    match v {
        Value::Object(m) => {
            if let Some(links) = m.remove("_links") {
                if let (true, Some(next)) = (top, links.get("next")) {
                    m.insert("_links".into(), json!({ "next": next }));
                }
            }
            for x in m.values_mut() {
                strip_links(x, false);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip_links(x, false)),
        _ => {}
    }
}

async fn to_plain_json(resp: Response) -> Result<Response, Dropped> {
    let is_hal = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/hal+json");
    if !is_hal {
        return Ok(resp);
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| Dropped)?;
    let out = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut v) => {
            strip_links(&mut v, true);
            serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec())
        }
        Err(_) => bytes.to_vec(),
    };
    parts.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, Body::from(out)))
}

async fn handle(
    sim: Sim,
    app: Router,
    cert_user: Option<Arc<str>>,
    req: Request<Incoming>,
) -> Result<Response, Dropped> {
    let method = req.method().clone();
    let plain_json = wants_plain_json(&req);
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    if !authorised(&sim, &req, cert_user.as_deref()) {
        let mut r = ApiError::unauthorized().into_response();
        r.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ontap-sim\""),
        );
        return Ok(finish(r));
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(Body::new(body), 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return Err(Dropped),
    };
    let is_api = path.starts_with("/api");
    if is_api {
        let mut logged: Option<Value> = serde_json::from_slice(&bytes).ok();
        if let Some(b) = logged.as_mut() {
            redact(b);
        }
        sim.log_request(RequestRecord {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            svm_name: parts
                .headers
                .get("x-dot-svm-name")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: logged,
        });
        let trimmed = path.trim_end_matches('/');
        for action in sim.faults().on_request(method.as_str(), trimmed) {
            match action {
                FaultAction::Delay { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
                FaultAction::CloseConnection => return Err(Dropped),
                FaultAction::Error {
                    status,
                    code,
                    message,
                    target,
                } => {
                    let mut e = ApiError::new(status, code, message);
                    e.target = target;
                    return Ok(finish(e.into_response()));
                }
                FaultAction::FailJob { .. } => {}
            }
        }
        let routed = path_keys_plus_as_space(if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            &path
        });
        if routed != path {
            let pq = match &query {
                Some(q) => format!("{routed}?{q}"),
                None => routed,
            };
            if let Ok(uri) = pq.parse() {
                parts.uri = uri;
            }
        }
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    let resp: Result<Response, Infallible> = app.oneshot(req).await;
    let resp = match resp {
        Ok(r) => r,
        Err(never) => match never {},
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    let resp = if plain_json && is_api {
        to_plain_json(resp).await?
    } else {
        resp
    };
    Ok(finish(resp))
}

/// The path as routed: a raw `+` becomes `%20`, because clients put keys into paths with
/// form encoding (netapp-ontap uses `quote_plus`, so the share `a b` arrives as `a+b`
/// while a literal `+` arrives as `%2B`). Every `Path` extractor then sees the space.
fn path_keys_plus_as_space(path: &str) -> String {
    path.replace('+', "%20")
}

async fn unknown_api() -> Response {
    ApiError::new(404, "3", "API not found").into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::not_supported("The method is not allowed for this API.").into_response()
}

fn admin_routes() -> Router<Sim> {
    Router::new()
        .route(
            "/__sim/faults",
            get(faults_get).post(faults_post).delete(faults_delete),
        )
        .route("/__sim/requests", get(requests_get).delete(requests_delete))
        .route("/__sim/reset", post(reset))
        .route("/__sim/state", get(state_get))
        .route("/__sim/files", post(files_post))
}

async fn faults_get(State(sim): State<Sim>) -> Response {
    json_response(StatusCode::OK, &json!(sim.faults().active()))
}

async fn faults_post(State(sim): State<Sim>, body: axum::body::Bytes) -> Response {
    let parsed: Result<Vec<Fault>, _> = serde_json::from_slice::<Vec<Fault>>(&body)
        .or_else(|_| serde_json::from_slice::<Fault>(&body).map(|f| vec![f]));
    match parsed {
        Ok(faults) => {
            let n = faults.len();
            for f in faults {
                sim.faults().add(f);
            }
            json_response(StatusCode::CREATED, &json!({"num_records": n}))
        }
        Err(e) => ApiError::invalid(format!("Invalid fault: {e}")).into_response(),
    }
}

async fn faults_delete(State(sim): State<Sim>) -> Response {
    sim.faults().clear();
    json_response(StatusCode::OK, &json!({}))
}

async fn requests_get(State(sim): State<Sim>) -> Response {
    let reqs = sim.requests();
    json_response(
        StatusCode::OK,
        &json!({"num_records": reqs.len(), "records": reqs}),
    )
}

async fn requests_delete(State(sim): State<Sim>) -> Response {
    sim.clear_requests();
    json_response(StatusCode::OK, &json!({}))
}

async fn reset(State(sim): State<Sim>) -> Response {
    match sim.reset() {
        Ok(()) => json_response(StatusCode::OK, &json!({})),
        Err(e) => ApiError::new(500, "1", e.to_string()).into_response(),
    }
}

async fn state_get(State(sim): State<Sim>) -> Response {
    let v = sim.read(|s| serde_json::to_value(s).unwrap_or(Value::Null));
    json_response(StatusCode::OK, &v)
}

/// `POST /__sim/files {"volume":{"name"|"uuid"},"svm":{"name"}?,"path":"dir/file"}`:
/// records a file in a volume, as if a client had written it over NFS.
async fn files_post(State(sim): State<Sim>, body: axum::body::Bytes) -> Response {
    let res = (|| {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("Invalid JSON input: {e}")))?;
        let path = v["path"]
            .as_str()
            .ok_or_else(|| ApiError::missing_value("path"))?
            .to_string();
        sim.write(|s| {
            let svm = match v.get("svm") {
                Some(r) => Some(s.resolve_svm(r)?.0),
                None => None,
            };
            let (uuid, _) = crate::resources::volumes::resolve_volume(
                s,
                svm.as_deref(),
                &v["volume"],
                "volume",
            )?;
            s.add_file(&uuid, &path);
            Ok::<_, ApiError>(())
        })
    })();
    match res {
        Ok(()) => json_response(StatusCode::CREATED, &json!({})),
        Err(e) => e.into_response(),
    }
}

/// The bound address of a listener.
pub(crate) fn local_addr(l: &TcpListener, asked: SocketAddr) -> Result<SocketAddr, SimError> {
    l.local_addr().map_err(|source| SimError::Bind {
        addr: asked,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::{common_name, path_keys_plus_as_space};

    #[test]
    fn common_name_of_a_client_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "kvmstor");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "vsadmin");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(common_name(cert.der()).as_deref(), Some("vsadmin"));
        let mut params = rcgen::CertificateParams::new(vec!["h".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(common_name(cert.der()), None);
        assert_eq!(common_name(&[0x30, 0x05, 0x01]), None);
    }

    #[test]
    fn plus_in_a_path_key_means_space() {
        assert_eq!(
            path_keys_plus_as_space("/api/protocols/cifs/shares/1234/x+share"),
            "/api/protocols/cifs/shares/1234/x%20share"
        );
        assert_eq!(
            path_keys_plus_as_space("/api/protocols/cifs/shares/1234/a%2Bb"),
            "/api/protocols/cifs/shares/1234/a%2Bb"
        );
        assert_eq!(
            path_keys_plus_as_space("/api/storage/volumes"),
            "/api/storage/volumes"
        );
    }
}
