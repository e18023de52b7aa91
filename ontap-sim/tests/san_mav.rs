//! Multi-admin verification: rules, the 262325 refusal, approval and one-time execution.

mod common;

use serde_json::json;

const MAV: &str = "/api/security/multi-admin-verify";

async fn lun(env: &common::Env, name: &str) -> anyhow::Result<String> {
    let r = env
        .post(
            "/api/storage/luns?return_records=true",
            json!({"svm": {"name": "svm1"}, "name": format!("/vol/mv/{name}"),
                     "os_type": "linux", "space": {"size": "1M"}}),
        )
        .await?;
    anyhow::ensure!(
        r.status == 201,
        "LUN create answered {}: {}",
        r.status,
        r.body
    );
    Ok(r.body["records"][0]["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

fn approval_index(r: &common::Resp) -> Option<u64> {
    let msg = r.body["error"]["message"].as_str()?;
    let rest = msg.strip_prefix("The security multi-admin-verify request (index ")?;
    rest.strip_suffix(") requires approval.")?.parse().ok()
}

#[tokio::test]
async fn protected_delete_needs_one_approval_per_execution() -> anyhow::Result<()> {
    let env = common::start().await?;
    env.create_volume(json!({"name": "mv", "svm": {"name": "svm1"},
                             "aggregates": [{"name": "aggr1"}], "size": "1GB"}))
        .await?;
    let cfg = env.get(MAV).await?;
    assert_eq!(cfg.status, 200);
    assert_eq!(cfg.body["enabled"], false);
    assert_eq!(cfg.body["required_approvers"], 1);

    let rule = env
        .post(
            &format!("{MAV}/rules"),
            json!({"operation": "lun delete", "query": "-vserver svm1"}),
        )
        .await?;
    assert_eq!(rule.status, 201, "{}", rule.body);
    let dup = env
        .post(&format!("{MAV}/rules"), json!({"operation": "lun delete"}))
        .await?;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("1"))
    );
    let other_svm = env
        .post(
            &format!("{MAV}/rules"),
            json!({"operation": "lun igroup delete", "query": "-vserver svm9"}),
        )
        .await?;
    assert_eq!(other_svm.status, 201);
    let rules = env.get(&format!("{MAV}/rules?fields=query")).await?;
    assert_eq!(rules.body["num_records"], 2);

    // While MAV is off, rules do nothing.
    let l0 = lun(&env, "l0").await?;
    assert_eq!(
        env.delete(&format!("/api/storage/luns/{l0}")).await?.status,
        200
    );
    assert_eq!(env.patch(MAV, json!({"enabled": true})).await?.status, 200);
    assert_eq!(env.get(MAV).await?.body["enabled"], true);

    let l1 = lun(&env, "l1").await?;
    let r = env.delete(&format!("/api/storage/luns/{l1}")).await?;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("262325"))
    );
    assert_eq!(approval_index(&r), Some(1));
    // Retrying before approval names the same pending request.
    let r = env.delete(&format!("/api/storage/luns/{l1}")).await?;
    assert_eq!(approval_index(&r), Some(1));
    let req = env.get(&format!("{MAV}/requests/1")).await?;
    assert_eq!(req.status, 200);
    assert_eq!(req.body["state"], "pending");
    assert_eq!(req.body["operation"], "lun delete");
    assert_eq!(req.body["query"], "-vserver svm1 -path /vol/mv/l1");
    assert_eq!(req.body["pending_approvers"], 1);
    assert_eq!(req.body["user_requested"], json!(env.sim.username()));
    assert_eq!(
        env.get(&format!("/api/storage/luns/{l1}")).await?.status,
        200
    );

    // An igroup delete in svm1 is not covered by the svm9 rule.
    let ig = env
        .post(
            "/api/protocols/san/igroups?return_records=true",
            json!({"svm": {"name": "svm1"}, "name": "ig", "os_type": "linux"}),
        )
        .await?;
    let ig = ig.body["records"][0]["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        env.delete(&format!("/api/protocols/san/igroups/{ig}"))
            .await?
            .status,
        200
    );

    let ok = env
        .patch(&format!("{MAV}/requests/1"), json!({"state": "approved"}))
        .await?;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let req = env.get(&format!("{MAV}/requests/1")).await?;
    assert_eq!(req.body["state"], "approved");
    assert_eq!(req.body["pending_approvers"], 0);
    assert_eq!(
        env.delete(&format!("/api/storage/luns/{l1}")).await?.status,
        200
    );
    assert_eq!(
        env.get(&format!("{MAV}/requests/1")).await?.body["state"],
        "executed"
    );
    assert_eq!(
        env.get(&format!("/api/storage/luns/{l1}")).await?.status,
        404
    );
    let late = env
        .patch(&format!("{MAV}/requests/1"), json!({"state": "approved"}))
        .await?;
    assert_eq!(
        (late.status, late.body["error"]["code"].as_str()),
        (400, Some("262326"))
    );

    // One approval covers one execution only; a veto blocks.
    let l2 = lun(&env, "l2").await?;
    let r = env.delete(&format!("/api/storage/luns/{l2}")).await?;
    assert_eq!(approval_index(&r), Some(2));
    let veto = env
        .patch(&format!("{MAV}/requests/2"), json!({"state": "vetoed"}))
        .await?;
    assert_eq!(veto.status, 200);
    let r = env.delete(&format!("/api/storage/luns/{l2}")).await?;
    assert_eq!(approval_index(&r), Some(3));
    let bad = env
        .patch(&format!("{MAV}/requests/3"), json!({"state": "bogus"}))
        .await?;
    assert_eq!(bad.body["error"]["code"], "262185");

    // Turning MAV off is itself protected while it is on.
    let off = env.patch(MAV, json!({"enabled": false})).await?;
    assert_eq!(
        (off.status, off.body["error"]["code"].as_str()),
        (403, Some("262325"))
    );
    let idx = approval_index(&off).unwrap();
    assert_eq!(idx, 4);
    let req = env.get(&format!("{MAV}/requests/{idx}")).await?;
    assert_eq!(req.body["operation"], "security multi-admin-verify modify");
    env.patch(
        &format!("{MAV}/requests/{idx}"),
        json!({"state": "approved"}),
    )
    .await?;
    assert_eq!(env.patch(MAV, json!({"enabled": false})).await?.status, 200);
    assert_eq!(
        env.delete(&format!("/api/storage/luns/{l2}")).await?.status,
        200
    );
    let all = env.get(&format!("{MAV}/requests?fields=state")).await?;
    assert_eq!(all.body["num_records"], 4);
    let states: Vec<&str> = all.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["executed", "vetoed", "pending", "executed"]);
    Ok(())
}

#[tokio::test]
async fn volume_and_snapshot_deletes_are_protected() -> anyhow::Result<()> {
    let env = common::start().await?;
    let vol = env
        .create_volume(json!({"name": "mvv", "svm": {"name": "svm1"},
                              "aggregates": [{"name": "aggr1"}], "size": "1GB"}))
        .await?;
    let snap = env
        .post(
            &format!("/api/storage/volumes/{vol}/snapshots?return_timeout=10&return_records=true"),
            json!({"name": "s1"}),
        )
        .await?;
    assert!(snap.status == 201 || snap.status == 200, "{}", snap.body);
    let snap = env
        .find(&format!("/api/storage/volumes/{vol}/snapshots"), "s1")
        .await?;
    let snap = snap["uuid"].as_str().unwrap().to_string();
    for op in ["volume delete", "volume snapshot delete"] {
        let r = env
            .post(&format!("{MAV}/rules"), json!({"operation": op}))
            .await?;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    assert_eq!(env.patch(MAV, json!({"enabled": true})).await?.status, 200);

    let r = env
        .delete(&format!("/api/storage/volumes/{vol}/snapshots/{snap}"))
        .await?;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("262325"))
    );
    let idx = approval_index(&r).unwrap();
    let req = env.get(&format!("{MAV}/requests/{idx}")).await?;
    assert_eq!(req.body["operation"], "volume snapshot delete");
    assert_eq!(req.body["query"], "-vserver svm1 -volume mvv -snapshot s1");

    let r = env.delete(&format!("/api/storage/volumes/{vol}")).await?;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("262325"))
    );
    let idx = approval_index(&r).unwrap();
    let req = env.get(&format!("{MAV}/requests/{idx}")).await?;
    assert_eq!(req.body["operation"], "volume delete");
    assert_eq!(req.body["query"], "-vserver svm1 -volume mvv");
    // Nothing was deleted while approval is pending.
    assert_eq!(
        env.get(&format!("/api/storage/volumes/{vol}"))
            .await?
            .status,
        200
    );
    Ok(())
}
