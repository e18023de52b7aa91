//! Paging through many volumes stays linear.

mod common;

use std::time::{Duration, Instant};

use ontap_sim::{Seed, SimServer};

#[tokio::test]
async fn page_through_20000_volumes() -> anyhow::Result<()> {
    let seed = Seed::from_json(
        r#"{"bulk_volumes":{"svm":"svm1","aggregate":"aggr1","prefix":"bench","count":20000,"size":1048576}}"#,
    )?;
    let env = common::start_with(SimServer::builder().seed(seed).http()).await?;
    let t = Instant::now();
    let mut path = "/api/storage/volumes?max_records=2000".to_string();
    let mut total = 0;
    let mut pages = 0;
    loop {
        let r = env.get(&path).await?;
        total += r.body["num_records"].as_u64().unwrap();
        pages += 1;
        match r.body["_links"]["next"]["href"].as_str() {
            Some(n) => path = n.to_string(),
            None => break,
        }
    }
    assert_eq!(total, 20000);
    assert_eq!(pages, 10);
    // Generous for debug builds on a shared machine; quadratic paging would take minutes.
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    Ok(())
}
