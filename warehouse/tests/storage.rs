//! Object storage contract: the same checks on the local-directory backend and on GCS through
//! fake-gcs-server (`TIPOFF_GCS_URL`; start it with `scripts/emulators.sh start`). Without that
//! variable the GCS tests fail; they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use jiff::civil::Date;
use tipoff_warehouse::storage::{ObjectKey, ObjectStorage};

async fn put_get_list_delete(s: ObjectStorage) {
    let d = Date::constant(2025, 12, 25);
    let k1 = ObjectKey::raw_payload("bdl_boxscores", d, "page-1.json").unwrap();
    let k2 = ObjectKey::raw_payload("bdl_boxscores", d, "page-2.json").unwrap();
    let other = ObjectKey::export("predictions", d, "all.json").unwrap();
    assert_eq!(s.get(&k1).await.unwrap(), None);
    s.put(&k1, b"{\"page\":1}".to_vec()).await.unwrap();
    s.put(&k2, b"{\"page\":2}".to_vec()).await.unwrap();
    s.put(&other, b"[]".to_vec()).await.unwrap();
    assert_eq!(s.get(&k1).await.unwrap().unwrap().as_ref(), b"{\"page\":1}");

    let prefix = ObjectKey::from_segments(["raw", "bdl_boxscores"]).unwrap();
    assert_eq!(
        s.list(Some(&prefix)).await.unwrap(),
        vec![k1.clone(), k2.clone()]
    );
    assert_eq!(s.list(None).await.unwrap().len(), 3);

    // Overwriting with the same key is idempotent: one object, the latest content.
    s.put(&k1, b"{\"page\":1,\"v\":2}".to_vec()).await.unwrap();
    s.put(&k1, b"{\"page\":1,\"v\":2}".to_vec()).await.unwrap();
    assert_eq!(s.list(Some(&prefix)).await.unwrap().len(), 2);
    assert_eq!(
        s.get(&k1).await.unwrap().unwrap().as_ref(),
        b"{\"page\":1,\"v\":2}"
    );

    s.delete(&k1).await.unwrap();
    s.delete(&k1).await.unwrap(); // deleting twice is fine
    assert_eq!(s.get(&k1).await.unwrap(), None);
    assert_eq!(s.list(Some(&prefix)).await.unwrap(), vec![k2]);

    // Binary content survives byte for byte.
    let blob: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let model = ObjectKey::model_artifact("points", "v1", "model.bin").unwrap();
    s.put(&model, blob.clone()).await.unwrap();
    assert_eq!(
        s.get(&model).await.unwrap().unwrap().as_ref(),
        blob.as_slice()
    );
}

#[tokio::test]
async fn local_directory_backend() {
    let dir = tempfile::tempdir().unwrap();
    let s = ObjectStorage::from_url(&format!("file://{}", dir.path().display())).unwrap();
    put_get_list_delete(s).await;
    // Keys map to plain files, so a person can inspect them.
    assert!(
        dir.path()
            .join("raw/bdl_boxscores/2025-12-25/page-2.json")
            .is_file()
    );
}

fn gcs_url() -> String {
    match std::env::var("TIPOFF_GCS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "TIPOFF_GCS_URL is not set: the GCS tests need fake-gcs-server. Run \
             `scripts/emulators.sh start && source .tipoff/emulators.env` first."
        ),
    }
}

/// fake-gcs-server starts empty; object_store cannot create buckets, so use the JSON API.
async fn create_bucket(base: &str, bucket: &str) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/storage/v1/b?project=local"))
        .json(&serde_json::json!({ "name": bucket }))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "creating bucket: {}",
        resp.status()
    );
}

#[tokio::test]
async fn gcs_backend_against_fake_gcs_server() {
    let base = gcs_url();
    let bucket = format!("tipoff-test-{}", jiff::Timestamp::now().as_nanosecond());
    create_bucket(&base, &bucket).await;
    let s = ObjectStorage::gcs_emulator(&base, &bucket).unwrap();
    put_get_list_delete(s).await;
}
