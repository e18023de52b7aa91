//! Shared helpers for the simulator's integration tests.
#![allow(dead_code)]

use std::time::Duration;

use anyhow::Context;
use ontap_sim::SimServer;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::Value;

/// A running simulator plus a client that trusts its certificate.
pub struct Env {
    pub sim: SimServer,
    pub http: reqwest::Client,
}

/// A response: status, headers and JSON body (Null when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn client_for(sim: &SimServer) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder().no_proxy();
    if let Some(pem) = sim.ca_pem() {
        let cert = reqwest::Certificate::from_pem(pem.as_bytes())?;
        b = b.tls_certs_only([cert]);
    }
    Ok(b.build()?)
}

/// Starts a default simulator with fast jobs.
pub async fn start() -> anyhow::Result<Env> {
    start_with(SimServer::builder().job_duration(Duration::ZERO, Duration::from_millis(20))).await
}

pub async fn start_with(b: ontap_sim::SimServerBuilder) -> anyhow::Result<Env> {
    let sim = b.start().await?;
    let http = client_for(&sim)?;
    Ok(Env { sim, http })
}

impl Env {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Resp> {
        self.call_with(method, path, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Resp> {
        let url = format!("{}{}", self.sim.url(), path);
        let mut rb = self.http.request(method, &url).basic_auth(
            self.sim.username(),
            Some(self.sim.password().expose_secret()),
        );
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb
            .send()
            .await
            .with_context(|| format!("sending to {url}"))?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .with_context(|| format!("decoding {}", String::from_utf8_lossy(&bytes)))?
        };
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Resp> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Resp> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> anyhow::Result<Resp> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Resp> {
        self.call(Method::DELETE, path, None).await
    }

    /// Polls a job until it is terminal; returns the job record.
    pub async fn wait_job(&self, uuid: &str) -> anyhow::Result<Value> {
        for _ in 0..500 {
            let r = self.get(&format!("/api/cluster/jobs/{uuid}")).await?;
            anyhow::ensure!(r.status == 200, "job GET answered {}: {}", r.status, r.body);
            let state = r.body["state"].as_str().unwrap_or_default().to_string();
            if state == "success" || state == "failure" {
                return Ok(r.body);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        anyhow::bail!("job {uuid} did not finish")
    }

    /// Sends a mutation that returns a job, waits for it, returns (response, job).
    pub async fn run_job(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(Resp, Value)> {
        let r = self.call(method, path, body).await?;
        anyhow::ensure!(
            r.status == 202,
            "expected 202, got {}: {}",
            r.status,
            r.body
        );
        let uuid = r.body["job"]["uuid"]
            .as_str()
            .context("job uuid")?
            .to_string();
        let job = self.wait_job(&uuid).await?;
        Ok((r, job))
    }

    /// Creates a volume and waits; returns its UUID.
    pub async fn create_volume(&self, body: Value) -> anyhow::Result<String> {
        let name = body["name"].as_str().context("name")?.to_string();
        let (_, job) = self
            .run_job(Method::POST, "/api/storage/volumes", Some(body))
            .await?;
        anyhow::ensure!(job["state"] == "success", "volume job failed: {job}");
        let r = self
            .get(&format!("/api/storage/volumes?name={name}"))
            .await?;
        r.body["records"][0]["uuid"]
            .as_str()
            .map(str::to_string)
            .context("created volume uuid")
    }

    /// `(uuid, record)` of a named record in a collection path.
    pub async fn find(&self, path: &str, name: &str) -> anyhow::Result<Value> {
        let r = self.get(&format!("{path}?name={name}&fields=*")).await?;
        anyhow::ensure!(
            r.body["num_records"] == 1,
            "{name} not found under {path}: {}",
            r.body
        );
        Ok(r.body["records"][0].clone())
    }
}
