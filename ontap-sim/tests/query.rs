//! The generic query engine over HTTP: paging, fields, filters, order_by,
//! return_records, return_timeout, error bodies, auth and SVM tunnelling.

mod common;

use std::collections::BTreeSet;

use ontap_sim::{Seed, SimServer};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};

async fn with_volumes(n: usize) -> anyhow::Result<common::Env> {
    let mut seed = Seed::default();
    seed.volumes = (1..=n)
        .map(|i| {
            json!({"name": format!("v{i:02}"), "svm": {"name": "svm1"},
                   "aggregates": [{"name": if i % 2 == 0 { "aggr2" } else { "aggr1" }}],
                   "size": (i as u64) * 1024 * 1024 * 1024,
                   "state": if i == 3 { "offline" } else { "online" }})
        })
        .collect();
    common::start_with(SimServer::builder().seed(seed)).await
}

#[tokio::test]
async fn paging_follows_next_links_verbatim() -> anyhow::Result<()> {
    let env = with_volumes(7).await?;
    let mut path = "/api/storage/volumes?fields=size&max_records=3".to_string();
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let r = env.get(&path).await?;
        assert_eq!(r.status, 200);
        pages += 1;
        let recs = r.body["records"].as_array().unwrap();
        assert_eq!(r.body["num_records"], recs.len());
        for rec in recs {
            let keys: BTreeSet<&str> = rec
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, BTreeSet::from(["uuid", "name", "size", "_links"]));
            names.push(rec["name"].as_str().unwrap().to_string());
        }
        assert_eq!(r.body["_links"]["self"]["href"], json!(path));
        match r.body["_links"]["next"]["href"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with("/api/storage/volumes?fields=size&max_records=3&start.uuid=")
                );
                path = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    names.sort();
    assert_eq!(
        names,
        (1..=7).map(|i| format!("v{i:02}")).collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test]
async fn filters_operators_and_order_by() -> anyhow::Result<()> {
    let env = with_volumes(7).await?;
    let names = |b: &Value| -> Vec<String> {
        b["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = env
        .get("/api/storage/volumes?name=v0*&order_by=size%20desc&max_records=2")
        .await?;
    assert_eq!(names(&r.body), ["v07", "v06"]);
    let next = r.body["_links"]["next"]["href"].as_str().unwrap();
    assert_eq!(
        next,
        "/api/storage/volumes?name=v0*&order_by=size%20desc&max_records=2&start.offset=2"
    );
    let r = env.get(next).await?;
    assert_eq!(names(&r.body), ["v05", "v04"]);

    let r = env
        .get("/api/storage/volumes?size=>=5GB&order_by=name")
        .await?;
    assert_eq!(names(&r.body), ["v05", "v06", "v07"]);
    // Queried fields come back in the records.
    assert_eq!(r.body["records"][0]["size"], 5u64 * 1024 * 1024 * 1024);
    let r = env
        .get("/api/storage/volumes?size=2GB..3GB&order_by=name")
        .await?;
    assert_eq!(names(&r.body), ["v02", "v03"]);
    let r = env.get("/api/storage/volumes?state=!online").await?;
    assert_eq!(names(&r.body), ["v03"]);
    let r = env
        .get("/api/storage/volumes?name=v01|v04&order_by=name")
        .await?;
    assert_eq!(names(&r.body), ["v01", "v04"]);
    let r = env
        .get("/api/storage/volumes?aggregates.name=aggr2&order_by=name%20asc")
        .await?;
    assert_eq!(names(&r.body), ["v02", "v04", "v06"]);
    let r = env
        .get("/api/storage/volumes?size=<2GB&fields=!_links")
        .await?;
    assert_eq!(names(&r.body), ["v01"]);
    assert!(r.body["records"][0].get("_links").is_none());
    assert_eq!(r.body["records"][0]["svm"]["name"], "svm1");
    let r = env
        .get("/api/storage/volumes?fields=svm.name,aggregates.name&name=v02")
        .await?;
    let rec = &r.body["records"][0];
    assert_eq!(rec["svm"], json!({"name": "svm1"}));
    assert_eq!(rec["aggregates"], json!([{"name": "aggr2"}]));
    let r = env
        .get("/api/network/ip/interfaces?services=data_iscsi&fields=ip.address&order_by=name")
        .await?;
    let addrs: Vec<&str> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["ip"]["address"].as_str().unwrap())
        .collect();
    assert_eq!(addrs, ["192.0.2.21", "192.0.2.22"]);
    Ok(())
}

#[tokio::test]
async fn return_records_false_and_return_timeout_range() -> anyhow::Result<()> {
    let env = with_volumes(4).await?;
    let r = env.get("/api/storage/volumes?return_records=false").await?;
    assert_eq!(
        r.body,
        json!({"num_records": 4, "_links": {"self": {"href": "/api/storage/volumes?return_records=false"}}})
    );
    let r = env.get("/api/storage/volumes?return_timeout=600").await?;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"error": {"message": "The value \"600\" is invalid for field \"return_timeout\" (<0..120>)",
                         "code": "262197", "target": "return_timeout"}})
    );
    let r = env.get("/api/storage/volumes?return_timeout=120").await?;
    assert_eq!(r.status, 200);
    Ok(())
}

#[tokio::test]
async fn instance_fields_and_cluster() -> anyhow::Result<()> {
    let env = common::start().await?;
    let r = env.get("/api/cluster?fields=version").await?;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "sim-cluster");
    assert_eq!(r.body["version"]["generation"], 9);
    assert_eq!(r.body["version"]["major"], 16);
    assert_eq!(r.body["version"]["minor"], 1);
    assert!(r.body["version"]["full"]
        .as_str()
        .unwrap()
        .starts_with("NetApp Release 9.16.1:"));
    assert!(r.body.get("dns_domains").is_none());
    let r = env.get("/api/cluster/nodes").await?;
    assert_eq!(r.body["num_records"], 2);
    let r = env
        .get("/api/svm/svms?name=svm1&fields=nfs,cifs,iscsi,nvme,fcp")
        .await?;
    let svm = &r.body["records"][0];
    for p in ["nfs", "cifs", "iscsi", "nvme", "fcp"] {
        assert_eq!(svm[p]["enabled"], true, "{p}");
    }
    let r = env
        .get("/api/network/fc/interfaces?fields=wwpn&order_by=name")
        .await?;
    assert_eq!(r.body["records"][0]["wwpn"], "20:01:00:50:56:bb:00:01");
    let r = env.get("/api/storage/nonexistent").await?;
    assert_eq!(r.status, 404);
    let r = env.call(Method::PUT, "/api/storage/volumes", None).await?;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["error"]["code"], "3");
    Ok(())
}

#[tokio::test]
async fn credentials_and_bearer_tokens() -> anyhow::Result<()> {
    let env = common::start_with(SimServer::builder().bearer_token(SecretString::from("tok-123")))
        .await?;
    let url = format!("{}/api/cluster", env.sim.url());
    let r = env
        .http
        .get(&url)
        .basic_auth("admin", Some("wrong"))
        .send()
        .await?;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["server"], "libzapid-httpd");
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], "6");
    let r = env.http.get(&url).send().await?;
    assert_eq!(r.status(), 401);
    let r = env.http.get(&url).bearer_auth("tok-123").send().await?;
    assert_eq!(r.status(), 200);
    let r = env.http.get(&url).bearer_auth("tok-124").send().await?;
    assert_eq!(r.status(), 401);
    // The Debug form of the server never shows the password.
    assert!(!format!("{:?}", env.sim).contains("netapp1!"));
    Ok(())
}

#[tokio::test]
async fn svm_tunnelling_scopes_lists_and_creates() -> anyhow::Result<()> {
    let env = common::start().await?;
    let (_, job) = env
        .run_job(
            Method::POST,
            "/api/svm/svms",
            Some(json!({"name": "svm2", "nfs": {"enabled": true}})),
        )
        .await?;
    assert_eq!(job["state"], "success");
    // Create in svm2 through the header, without svm in the body.
    let r = env
        .call_with(
            Method::POST,
            "/api/storage/volumes",
            Some(json!({"name": "t1", "aggregates": [{"name": "aggr1"}]})),
            &[("X-Dot-SVM-Name", "svm2")],
        )
        .await?;
    assert_eq!(r.status, 202);
    env.wait_job(r.body["job"]["uuid"].as_str().unwrap())
        .await?;
    env.create_volume(
        json!({"name": "t1", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
    )
    .await?;
    let r = env
        .get("/api/storage/volumes?name=t1&fields=svm.name")
        .await?;
    assert_eq!(r.body["num_records"], 2);
    let r = env
        .call_with(
            Method::GET,
            "/api/storage/volumes?fields=svm.name",
            None,
            &[("X-Dot-SVM-Name", "svm2")],
        )
        .await?;
    assert_eq!(r.body["num_records"], 1);
    assert_eq!(r.body["records"][0]["svm"]["name"], "svm2");
    let r = env
        .call_with(
            Method::GET,
            "/api/storage/volumes",
            None,
            &[("X-Dot-SVM-Name", "nope")],
        )
        .await?;
    assert_eq!(r.status, 400);
    Ok(())
}

#[tokio::test]
async fn plain_json_accept_drops_hal_links_but_next() -> anyhow::Result<()> {
    let env = with_volumes(3).await?;
    let r = env
        .call_with(
            Method::GET,
            "/api/storage/volumes?max_records=2&fields=svm",
            None,
            &[("Accept", "application/json")],
        )
        .await?;
    assert_eq!(r.header("content-type"), Some("application/json"));
    let rec = &r.body["records"][0];
    assert!(rec.get("_links").is_none());
    assert!(rec["svm"].get("_links").is_none());
    assert_eq!(rec["svm"]["name"], "svm1");
    let links = r.body["_links"].as_object().unwrap();
    assert_eq!(links.keys().collect::<Vec<_>>(), ["next"]);
    let r = env
        .call_with(
            Method::GET,
            "/api/storage/volumes?max_records=2",
            None,
            &[("Accept", "application/hal+json")],
        )
        .await?;
    assert_eq!(r.header("content-type"), Some("application/hal+json"));
    assert!(r.body["records"][0]["_links"]["self"]["href"].is_string());
    Ok(())
}
