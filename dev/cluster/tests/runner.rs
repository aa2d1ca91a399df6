//! The Job runner: Jobs become Pods become local processes, with retries,
//! deadlines, Indexed completion, termination messages, TTL deletion,
//! suspend, and a configurable imageID for drift tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

const RUNNER: &str = r#"
images:
- image: busybox
  command: ["/bin/sh", "-c"]
- image: drift.example/proc
  command: ["/bin/sh", "-c"]
  imageID: drift.example/proc@sha256:bbbb
"#;

const WAIT: Duration = Duration::from_secs(20);

/// A Job running `script` in `/bin/sh -c`, with `RESULT_PATH` pointing at the termination-message file.
fn job(name: &str, script: &str, spec: Value) -> Job {
    job_with_image(name, script, spec, "busybox:1.36")
}

fn job_with_image(name: &str, script: &str, spec: Value, image: &str) -> Job {
    let mut body = json!({
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "main",
                    "image": image,
                    "args": [script],
                    "env": [{"name": "RESULT_PATH", "value": "/dev/termination-log"}],
                }],
            }},
        },
    });
    json_patch::merge(&mut body["spec"], &spec);
    serde_json::from_value(body).unwrap()
}

fn has_condition(job: &Job, type_: &str) -> Option<String> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| c.reason.clone().unwrap_or_default())
}

async fn wait_condition(jobs: &Api<Job>, name: &str, type_: &str) -> (Job, String) {
    eventually(WAIT, &format!("job {name} condition {type_}"), || async {
        let job = jobs.get(name).await.ok()?;
        let reason = has_condition(&job, type_)?;
        Some((job, reason))
    })
    .await
}

async fn pods_of(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .unwrap()
        .items
}

fn terminated(pod: &Pod) -> k8s_openapi::api::core::v1::ContainerStateTerminated {
    pod.status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .terminated
        .clone()
        .expect("terminated state")
}

#[tokio::test]
async fn successful_job_records_pod_status_message_and_logs() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    let script = "echo hello from $HOSTNAME; printf 'all good' > \"$RESULT_PATH\"";
    jobs.create(&PostParams::default(), &job("ok", script, json!({})))
        .await
        .unwrap();
    let (done, reason) = wait_condition(&jobs, "ok", "Complete").await;
    assert_eq!(reason, "CompletionsReached");
    assert!(has_condition(&done, "SuccessCriteriaMet").is_some());
    let status = done.status.unwrap();
    assert_eq!(status.succeeded, Some(1));
    assert!(status.start_time.is_some() && status.completion_time.is_some());

    let list = pods_of(&pods, "ok").await;
    assert_eq!(list.len(), 1);
    let pod = &list[0];
    assert_eq!(
        pod.labels().get("batch.kubernetes.io/controller-uid"),
        done.metadata.uid.as_ref()
    );
    assert_eq!(
        pod.owner_references()[0].uid,
        done.metadata.uid.clone().unwrap()
    );
    let status = pod.status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Succeeded"));
    let cs = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.image, "busybox:1.36");
    assert_eq!(cs.image_id, "busybox:1.36");
    let t = terminated(pod);
    assert_eq!(
        (t.exit_code, t.reason.as_deref(), t.message.as_deref()),
        (0, Some("Completed"), Some("all good"))
    );
    assert!(t.started_at.is_some() && t.finished_at.is_some());

    let logs = pods
        .logs(&pod.name_any(), &Default::default())
        .await
        .unwrap();
    assert_eq!(logs, format!("hello from {}\n", pod.name_any()));
    cluster.shutdown().await;
}

#[tokio::test]
async fn retries_until_backoff_limit() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    jobs.create(
        &PostParams::default(),
        &job("flaky", "echo failing; exit 3", json!({"backoffLimit": 2})),
    )
    .await
    .unwrap();
    let (failed, reason) = wait_condition(&jobs, "flaky", "Failed").await;
    assert_eq!(reason, "BackoffLimitExceeded");
    assert!(has_condition(&failed, "FailureTarget").is_some());
    assert_eq!(failed.status.unwrap().failed, Some(3));
    let list = pods_of(&pods, "flaky").await;
    assert_eq!(
        list.len(),
        3,
        "one pod per attempt: the first try plus backoffLimit retries"
    );
    for pod in &list {
        assert_eq!(terminated(pod).exit_code, 3);
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Failed")
        );
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn active_deadline_kills_and_fails_the_job() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    jobs.create(
        &PostParams::default(),
        &job(
            "slow",
            "sleep 60",
            json!({"activeDeadlineSeconds": 1, "backoffLimit": 5}),
        ),
    )
    .await
    .unwrap();
    let (_, reason) = wait_condition(&jobs, "slow", "Failed").await;
    assert_eq!(reason, "DeadlineExceeded");
    let pod = eventually(WAIT, "pod terminated", || async {
        pods_of(&pods, "slow")
            .await
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
    })
    .await;
    let t = terminated(&pod);
    assert_eq!(t.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(t.exit_code, 137);
    assert_eq!(
        pods_of(&pods, "slow").await.len(),
        1,
        "no retry after the deadline"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn indexed_job_completes_four_indexes() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    let spec = json!({"completionMode": "Indexed", "completions": 4, "parallelism": 2});
    jobs.create(
        &PostParams::default(),
        &job(
            "idx",
            "printf \"index-$JOB_COMPLETION_INDEX\" > \"$RESULT_PATH\"",
            spec,
        ),
    )
    .await
    .unwrap();
    let (done, _) = wait_condition(&jobs, "idx", "Complete").await;
    let status = done.status.unwrap();
    assert_eq!(status.succeeded, Some(4));
    assert_eq!(status.completed_indexes.as_deref(), Some("0-3"));
    let mut messages: Vec<(String, String)> = pods_of(&pods, "idx")
        .await
        .iter()
        .map(|p| {
            let index = p.labels()["batch.kubernetes.io/job-completion-index"].clone();
            (index, terminated(p).message.unwrap_or_default())
        })
        .collect();
    messages.sort();
    let expected: Vec<(String, String)> = (0..4)
        .map(|i| (i.to_string(), format!("index-{i}")))
        .collect();
    assert_eq!(messages, expected);
    cluster.shutdown().await;
}

#[tokio::test]
async fn termination_message_keeps_the_last_4096_bytes() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    // HEAD, 5000 x, TAIL: the kubelet keeps the end of an oversized message, not its start.
    let script =
        "{ printf HEAD; head -c 5000 /dev/zero | tr '\\0' x; printf TAIL; } > \"$RESULT_PATH\"";
    jobs.create(&PostParams::default(), &job("big", script, json!({})))
        .await
        .unwrap();
    wait_condition(&jobs, "big", "Complete").await;
    let message = terminated(&pods_of(&pods, "big").await[0])
        .message
        .unwrap_or_default();
    assert_eq!(message.len(), 4096);
    assert!(message.ends_with("TAIL"), "{message}");
    assert!(message[..4092].chars().all(|c| c == 'x'));
    cluster.shutdown().await;
}

#[tokio::test]
async fn ttl_after_finished_deletes_job_and_pods() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    jobs.create(
        &PostParams::default(),
        &job("short-lived", "true", json!({"ttlSecondsAfterFinished": 1})),
    )
    .await
    .unwrap();
    wait_condition(&jobs, "short-lived", "Complete").await;
    assert_eq!(pods_of(&pods, "short-lived").await.len(), 1);
    eventually(WAIT, "job and pods deleted", || async {
        (jobs.get_opt("short-lived").await.unwrap().is_none()
            && pods_of(&pods, "short-lived").await.is_empty())
        .then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn configured_image_id_simulates_digest_drift() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    let pinned = "drift.example/proc@sha256:aaaa";
    jobs.create(
        &PostParams::default(),
        &job_with_image("drift", "true", json!({}), pinned),
    )
    .await
    .unwrap();
    wait_condition(&jobs, "drift", "Complete").await;
    let pod = &pods_of(&pods, "drift").await[0];
    let cs = &pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    assert_eq!(cs.image, pinned);
    assert_eq!(cs.image_id, "drift.example/proc@sha256:bbbb");
    cluster.shutdown().await;
}

#[tokio::test]
async fn unmapped_image_waits_with_err_image_pull() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    jobs.create(
        &PostParams::default(),
        &job_with_image("nope", "true", json!({}), "unknown/image:1"),
    )
    .await
    .unwrap();
    let reason = eventually(WAIT, "pod waiting", || async {
        let pod = pods_of(&pods, "nope").await.into_iter().next()?;
        let cs = pod.status?.container_statuses?.into_iter().next()?;
        cs.state?.waiting?.reason
    })
    .await;
    assert_eq!(reason, "ErrImagePull");
    cluster.shutdown().await;
}

#[tokio::test]
async fn suspended_job_starts_when_resumed() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    jobs.create(
        &PostParams::default(),
        &job("later", "true", json!({"suspend": true})),
    )
    .await
    .unwrap();
    let (_, reason) = wait_condition(&jobs, "later", "Suspended").await;
    assert_eq!(reason, "JobSuspended");
    assert!(pods_of(&pods, "later").await.is_empty());
    jobs.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    wait_condition(&jobs, "later", "Complete").await;
    assert_eq!(pods_of(&pods, "later").await.len(), 1);
    cluster.shutdown().await;
}

#[tokio::test]
async fn follow_logs_stream_until_the_process_exits() {
    use futures::AsyncBufReadExt;
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    jobs.create(
        &PostParams::default(),
        &job("chatty", "echo first; sleep 1; echo second", json!({})),
    )
    .await
    .unwrap();
    let pod = eventually(WAIT, "pod running", || async {
        pods_of(&pods, "chatty")
            .await
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
    let params = kube::api::LogParams {
        follow: true,
        ..Default::default()
    };
    let stream = pods.log_stream(&pod.name_any(), &params).await.unwrap();
    let lines: Vec<String> =
        tokio::time::timeout(WAIT, stream.lines().map(|l| l.unwrap()).collect())
            .await
            .expect("log stream ends when the process exits");
    assert_eq!(lines, ["first", "second"]);
    cluster.shutdown().await;
}

#[tokio::test]
async fn deleting_a_running_pod_kills_its_process() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    jobs.create(
        &PostParams::default(),
        &job("long", "sleep 60", json!({"parallelism": 1})),
    )
    .await
    .unwrap();
    let pod = eventually(WAIT, "pod running", || async {
        pods_of(&pods, "long")
            .await
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
    let key = ("default".to_string(), pod.name_any());
    assert!(cluster.running_pods().contains(&key));
    pods.delete(&pod.name_any(), &Default::default())
        .await
        .unwrap();
    eventually(WAIT, "process gone", || async {
        (!cluster.running_pods().contains(&key)).then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn tipoff_result_path_defaults_to_the_per_pod_termination_file() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    let mut j = job(
        "result",
        r#"printf '{"ok":true}' > "$TIPOFF_RESULT_PATH""#,
        json!({}),
    );
    // No env at all: the runner still gives the process a result path.
    j.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .env = None;
    jobs.create(&PostParams::default(), &j).await.unwrap();
    wait_condition(&jobs, "result", "Complete").await;
    let message = terminated(&pods_of(&pods, "result").await[0]).message;
    assert_eq!(message.as_deref(), Some(r#"{"ok":true}"#));
    cluster.shutdown().await;
}

fn with_failure_policy(name: &str, script: &str, rules: Value) -> Job {
    job(
        name,
        script,
        json!({"backoffLimit": 3, "podFailurePolicy": {"rules": rules}}),
    )
}

#[tokio::test]
async fn pod_failure_policy_fail_job_and_ignore() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    let rules = json!([
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [65]}},
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [75]}},
    ]);
    // A permanent failure fails the Job at once, without retries.
    jobs.create(
        &PostParams::default(),
        &with_failure_policy("permanent", "exit 65", rules.clone()),
    )
    .await
    .unwrap();
    let (failed, reason) = wait_condition(&jobs, "permanent", "Failed").await;
    assert_eq!(reason, "PodFailurePolicy");
    let pod = &pods_of(&pods, "permanent").await[0];
    let message = failed
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .unwrap()
        .message;
    assert_eq!(
        message.as_deref(),
        Some(format!("Container main for pod default/{} failed with exit code 65 matching FailJob rule at index 0", pod.name_any()).as_str())
    );
    assert_eq!(pods_of(&pods, "permanent").await.len(), 1);

    // Ignored failures are retried without counting towards backoffLimit (0
    // here): the first two attempts exit 75, the third succeeds.
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("attempts");
    let script = format!(
        "c=$(cat {f} 2>/dev/null || echo 0); c=$((c+1)); echo $c > {f}; [ $c -le 2 ] && exit 75; exit 0",
        f = counter.display()
    );
    let mut flaky = with_failure_policy("transient", &script, rules);
    flaky.spec.as_mut().unwrap().backoff_limit = Some(0);
    jobs.create(&PostParams::default(), &flaky).await.unwrap();
    let (done, _) = wait_condition(&jobs, "transient", "Complete").await;
    assert_eq!(
        done.status.unwrap().failed,
        None,
        "ignored failures are not counted"
    );
    assert_eq!(pods_of(&pods, "transient").await.len(), 3);
    cluster.shutdown().await;
}

#[tokio::test]
async fn env_from_config_maps_and_secrets_waits_for_missing_sources() {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let mut j = job(
        "env",
        r#"printf "$P_ENDPOINT $TOKEN $FROM_ENV" > "$RESULT_PATH""#,
        json!({}),
    );
    let container = &mut j
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0];
    container.env_from = Some(
        serde_json::from_value(json!([
            {"configMapRef": {"name": "proc-env"}, "prefix": "P_"},
            {"secretRef": {"name": "proc-secret"}},
            {"configMapRef": {"name": "absent", "optional": true}},
        ]))
        .unwrap(),
    );
    container
        .env
        .as_mut()
        .unwrap()
        .push(serde_json::from_value(json!({"name": "FROM_ENV", "value": "wins"})).unwrap());
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let reason = eventually(WAIT, "pod waiting for its ConfigMap", || async {
        let pod = pods_of(&pods, "env").await.into_iter().next()?;
        let waiting = pod
            .status?
            .container_statuses?
            .into_iter()
            .next()?
            .state?
            .waiting?;
        Some((waiting.reason?, waiting.message?))
    })
    .await;
    assert_eq!(
        reason,
        (
            "CreateContainerConfigError".to_string(),
            "configmap \"proc-env\" not found".to_string()
        )
    );
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    cms.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "proc-env"}, "data": {"ENDPOINT": "http://127.0.0.1:9050"}})).unwrap()).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(c, "default");
    secrets.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "proc-secret"}, "stringData": {"TOKEN": "s3cret", "FROM_ENV": "loses"}})).unwrap()).await.unwrap();
    wait_condition(&jobs, "env", "Complete").await;
    let message = terminated(&pods_of(&pods, "env").await[0]).message;
    assert_eq!(
        message.as_deref(),
        Some("http://127.0.0.1:9050 s3cret wins")
    );
    cluster.shutdown().await;
}

// The runner is incremental: a pass looks only at Jobs and Pods that changed, or whose clock
// ran out. These check the cases where nothing else changes to wake a Job or a Pod.

#[tokio::test]
async fn deadline_fails_a_job_when_nothing_else_changes() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    jobs.create(
        &PostParams::default(),
        &job("quiet", "sleep 60", json!({"activeDeadlineSeconds": 3})),
    )
    .await
    .unwrap();
    eventually(WAIT, "pod running", || async {
        pods_of(&pods, "quiet")
            .await
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
    // Let the runner settle: from here on only the clock can fail the Job.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let quiet_rv = cluster.store().current_rv();
    let job_now = jobs.get("quiet").await.unwrap();
    assert!(has_condition(&job_now, "Failed").is_none());
    let (_, reason) = wait_condition(&jobs, "quiet", "Failed").await;
    assert_eq!(reason, "DeadlineExceeded");
    assert!(cluster.store().current_rv() > quiet_rv);
    cluster.shutdown().await;
}

#[tokio::test]
async fn deleting_a_pod_without_a_job_kills_its_process() {
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let pods: Api<Pod> = Api::namespaced(c, "default");
    let bare: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bare"},
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "main", "image": "busybox", "args": ["sleep 60"]},
        ]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &bare).await.unwrap();
    let key = ("default".to_string(), "bare".to_string());
    eventually(WAIT, "process running", || async {
        cluster.running_pods().contains(&key).then_some(())
    })
    .await;
    pods.delete("bare", &Default::default()).await.unwrap();
    eventually(WAIT, "process gone", || async {
        (!cluster.running_pods().contains(&key)).then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_jobs_each_get_exactly_their_pods() {
    const N: usize = 40;
    let cluster = start_with_runner(RUNNER).await;
    let c = client(&cluster);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    // Every third Job is Indexed with three completions, every third has two completions
    // two at a time, the rest one Pod.
    let spec = |i: usize| match i % 3 {
        0 => json!({"completionMode": "Indexed", "completions": 3, "parallelism": 3}),
        1 => json!({"completions": 2, "parallelism": 2}),
        _ => json!({}),
    };
    futures::stream::iter(0..N)
        .for_each_concurrent(N, |i| {
            let jobs = jobs.clone();
            async move {
                jobs.create(
                    &PostParams::default(),
                    &job(&format!("burst-{i}"), "exit 0", spec(i)),
                )
                .await
                .unwrap();
            }
        })
        .await;
    let mut total = 0;
    for i in 0..N {
        let name = format!("burst-{i}");
        let (done, _) = wait_condition(&jobs, &name, "Complete").await;
        let uid = done.metadata.uid.clone().unwrap();
        let expected = match i % 3 {
            0 => 3,
            1 => 2,
            _ => 1,
        };
        total += expected;
        let mine = pods_of(&pods, &name).await;
        assert_eq!(mine.len(), expected, "{name}: pods {mine:?}");
        for pod in &mine {
            let owners = pod.metadata.owner_references.clone().unwrap_or_default();
            assert_eq!(owners.len(), 1);
            assert_eq!(owners[0].uid, uid, "{name}: pod owned by another Job");
        }
        if i % 3 == 0 {
            let mut indexes: Vec<String> = mine
                .iter()
                .filter_map(|p| {
                    p.annotations()
                        .get("batch.kubernetes.io/job-completion-index")
                        .cloned()
                })
                .collect();
            indexes.sort();
            assert_eq!(indexes, ["0", "1", "2"]);
        }
        assert_eq!(done.status.unwrap().succeeded, Some(expected as i32));
    }
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        total,
        "no stray Pods"
    );
    cluster.shutdown().await;
}
