//! Fault injection through the Rust API and the `/_dev/faults` endpoint,
//! and the `/metrics` endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

fn code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn fail_next_requests_matching_method_and_path() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    // 500 (kube-client retries 429/503/504 by itself).
    cluster
        .faults()
        .fail_next(2, Some("GET"), "/configmaps/a", 500);
    // A non-matching request is unaffected.
    assert!(cms.list(&ListParams::default()).await.is_ok());
    assert_eq!(code(cms.get("a").await.unwrap_err()), 500);
    assert_eq!(code(cms.get("a").await.unwrap_err()), 500);
    assert!(cms.get("a").await.is_ok());
    cluster.shutdown().await;
}

#[tokio::test]
async fn admin_endpoint_injects_conflicts_and_latency() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    let (status, _) = raw(
        &cluster,
        "POST",
        "/_dev/faults/fail",
        Some(&json!({"method": "POST", "path": "configmaps", "status": 409, "count": 1})),
        "application/json",
    )
    .await;
    assert_eq!(status, 200);
    let err = cms
        .create(&PostParams::default(), &cm("b"))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("{other:?}"),
    }
    cms.create(&PostParams::default(), &cm("b")).await.unwrap();

    let (status, _) = raw(
        &cluster,
        "POST",
        "/_dev/faults/latency",
        Some(&json!({"path": "/configmaps/b", "millis": 300})),
        "application/json",
    )
    .await;
    assert_eq!(status, 200);
    let started = Instant::now();
    cms.get("b").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let (_, state) = get_json(&cluster, "/_dev/faults").await;
    assert_eq!(state["latency"][0]["millis"], 300);
    let (status, _) = raw(&cluster, "DELETE", "/_dev/faults", None, "application/json").await;
    assert_eq!(status, 200);
    let (_, state) = get_json(&cluster, "/_dev/faults").await;
    assert_eq!(state["latency"], json!([]));
    cluster.shutdown().await;
}

fn sleeping_job(name: &str) -> Job {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "args": ["sleep 60"]}]}}},
    }))
    .unwrap()
}

#[tokio::test]
async fn kill_a_running_pod_and_pause_the_runner() {
    let cluster =
        start_with_runner("images:\n- image: busybox\n  command: [\"/bin/sh\", \"-c\"]\n").await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    jobs.create(&PostParams::default(), &sleeping_job("victim"))
        .await
        .unwrap();
    let running = eventually(Duration::from_secs(20), "pod running", || async {
        pods.list(&ListParams::default().labels("job-name=victim"))
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
    assert!(cluster.faults().kill_pod("default", &running.name_any()));
    let failed = eventually(Duration::from_secs(20), "job failed", || async {
        let job = jobs.get("victim").await.ok()?;
        job.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Failed")
            .and_then(|c| c.reason)
    })
    .await;
    assert_eq!(failed, "BackoffLimitExceeded");
    let pod = pods.get(&running.name_any()).await.unwrap();
    let terminated = pod.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(terminated.exit_code, 137);

    // Paused: a new Job gets no Pods until resumed.
    cluster.faults().pause_runner();
    jobs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "waits"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox", "args": ["true"]}]}}},
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    // Several runner cycles (200 ms each) pass while paused.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        pods.list(&ListParams::default().labels("job-name=waits"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    cluster.faults().resume_runner();
    eventually(
        Duration::from_secs(20),
        "job completes after resume",
        || async {
            let job = jobs.get("waits").await.ok()?;
            job.status?.succeeded.filter(|s| *s == 1)
        },
    )
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn metrics_count_requests() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    cms.create(&PostParams::default(), &cm("m")).await.unwrap();
    let _ = cms.get("missing").await;
    let (status, text) = raw_text(&cluster, "GET", "/metrics", None, "text/plain").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(
            r#"devcluster_requests_total{method="POST",resource="configmaps",code="201"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"devcluster_requests_total{method="GET",resource="configmaps",code="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("devcluster_request_duration_seconds_bucket"),
        "{text}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn watch_delay_and_dropped_watches() {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{WatchEvent, WatchParams};
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    let rv = cluster.store().current_rv().to_string();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(60), &rv)
        .await
        .unwrap()
        .boxed();
    cluster.faults().set_watch_delay(Duration::from_millis(400));
    let written = Instant::now();
    cms.create(&PostParams::default(), &cm("slow"))
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Added(o)) => assert_eq!(o.name_any(), "slow"),
        other => panic!("expected ADDED, got {other:?}"),
    }
    assert!(
        written.elapsed() >= Duration::from_millis(400),
        "event was delayed"
    );
    cluster.faults().set_watch_delay(Duration::ZERO);

    // Dropping watches ends the stream long before its 60 s timeout (over HTTP this time).
    let dropped = Instant::now();
    let (status, _) = raw(
        &cluster,
        "POST",
        "/_dev/faults/drop-watches",
        None,
        "application/json",
    )
    .await;
    assert_eq!(status, 200);
    let end = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("stream ended");
    assert!(matches!(end, Ok(None)), "{end:?}");
    assert!(dropped.elapsed() < Duration::from_secs(10));
    cluster.shutdown().await;
}
