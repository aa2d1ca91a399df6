//! The real `/usr/bin/kubectl` against the dev cluster: apply, get with
//! printer columns, `-o yaml`, describe, `get -w`, delete with cascade,
//! events and `logs job/NAME`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};

const KUBECTL: &str = "/usr/bin/kubectl";
const TIMEOUT: Duration = Duration::from_secs(30);

struct Kubectl {
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(cluster: &tipoff_devcluster::DevCluster) -> Self {
        let dir = tempfile::tempdir().unwrap();
        cluster
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        Self { dir }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(KUBECTL);
        cmd.args(args)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = tokio::time::timeout(TIMEOUT, self.command(args).output())
            .await
            .expect("kubectl finished in time")
            .expect("kubectl ran");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs kubectl and expects success; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed: {err}\n{out}");
        out
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[tokio::test]
async fn kubectl_apply_get_describe_watch_delete_custom_resources() {
    let cluster = start().await;
    let k = Kubectl::new(&cluster);
    let crd = fixture("widget-crd.yaml");
    let out = k.ok(&["apply", "-f", crd.to_str().unwrap()]).await;
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
    );
    let out = k
        .ok(&["apply", "-f", fixture("widget.yaml").to_str().unwrap()])
        .await;
    assert_eq!(out.trim(), "widget.example.com/small created");

    // Printer columns from the CRD.
    let out = k.ok(&["get", "widgets"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(words(lines[0]), ["NAME", "SIZE", "COLOR", "READY", "AGE"]);
    assert_eq!(&words(lines[1])[..3], ["small", "3", "green"]);
    // Short name and category resolution through discovery.
    assert!(k.ok(&["get", "wd"]).await.contains("small"));
    assert!(k.ok(&["api-resources"]).await.contains("widgets"));

    let yaml = k.ok(&["get", "widget", "small", "-o", "yaml"]).await;
    let object: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(object["spec"]["size"], 3);
    assert_eq!(object["metadata"]["generation"], 1);
    assert!(object["metadata"]["uid"].is_string());

    let described = k.ok(&["describe", "widget", "small"]).await;
    assert!(
        described.lines().any(|l| words(l) == ["Name:", "small"]),
        "{described}"
    );
    assert!(
        described.lines().any(|l| words(l) == ["Size:", "3"]),
        "{described}"
    );

    // get -w sees a change made while it watches.
    let mut watch = k
        .command(&["get", "widgets", "-w"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(TIMEOUT, async {
        loop {
            let line = lines.next_line().await.unwrap().expect("watch output");
            if line.starts_with("small") {
                return line;
            }
        }
    })
    .await
    .expect("initial row");
    assert_eq!(words(&first)[1], "3");
    k.ok(&[
        "patch",
        "widget",
        "small",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":7}}"#,
    ])
    .await;
    let changed = tokio::time::timeout(TIMEOUT, async {
        loop {
            let line = lines.next_line().await.unwrap().expect("watch output");
            if line.starts_with("small") && words(&line)[1] == "7" {
                return line;
            }
        }
    })
    .await
    .expect("watch saw the change");
    assert_eq!(&words(&changed)[..3], ["small", "7", "green"]);
    watch.start_kill().unwrap();

    let out = k.ok(&["delete", "widget", "small"]).await;
    assert_eq!(out.trim(), "widget.example.com \"small\" deleted");
    let (_, out, err) = k.run(&["get", "widgets"]).await;
    assert!(
        out.is_empty() && err.contains("No resources found"),
        "{out}{err}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn kubectl_jobs_logs_events_and_cascading_delete() {
    let cluster =
        start_with_runner("images:\n- image: busybox\n  command: [\"/bin/sh\", \"-c\"]\n").await;
    let k = Kubectl::new(&cluster);
    k.ok(&["apply", "-f", fixture("hello-job.yaml").to_str().unwrap()])
        .await;
    eventually(TIMEOUT, "job succeeded", || async {
        let out = k
            .ok(&["get", "job", "hello", "-o", "jsonpath={.status.succeeded}"])
            .await;
        (out.trim() == "1").then_some(())
    })
    .await;
    let jobs = k.ok(&["get", "jobs"]).await;
    let lines: Vec<&str> = jobs.lines().collect();
    assert_eq!(
        words(lines[0]),
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    );
    assert_eq!(&words(lines[1])[..3], ["hello", "Complete", "1/1"]);
    let pods = k.ok(&["get", "pods"]).await;
    let lines: Vec<&str> = pods.lines().collect();
    assert_eq!(
        words(lines[0]),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert_eq!(&words(lines[1])[1..4], ["0/1", "Completed", "0"]);

    assert_eq!(k.ok(&["logs", "job/hello"]).await, "hello world\n");

    let events = k.ok(&["get", "events"]).await;
    assert!(
        events
            .lines()
            .any(|l| l.contains("SuccessfulCreate") && l.contains("job/hello")),
        "{events}"
    );
    assert!(
        events
            .lines()
            .any(|l| l.contains("Completed") && l.contains("job/hello")),
        "{events}"
    );

    k.ok(&["delete", "job", "hello", "--cascade=foreground"])
        .await;
    eventually(TIMEOUT, "job and pods deleted", || async {
        let out = k.ok(&["get", "jobs,pods", "-o", "name"]).await;
        out.trim().is_empty().then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn kubectl_rejects_invalid_custom_resources_with_the_rule_message() {
    let cluster = start().await;
    let k = Kubectl::new(&cluster);
    k.ok(&["apply", "-f", fixture("widget-crd.yaml").to_str().unwrap()])
        .await;
    let bad = k.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: huge\nspec:\n  size: 50\n",
    )
    .unwrap();
    let (ok, _, err) = k.run(&["apply", "-f", bad.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(
        err.contains(r#"The Widget "huge" is invalid: spec: Invalid value: "object": size must be at most 10"#),
        "{err}"
    );
    cluster.shutdown().await;
}

/// The tipoff CRDs generated on main, applied the way the README tells a person to.
#[tokio::test]
async fn kubectl_applies_the_tipoff_crds_and_shows_pipelinerun_columns() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let generated = repo.join("crds/generated");
    let cluster = start().await;
    let k = Kubectl::new(&cluster);
    k.ok(&["apply", "-f", generated.to_str().unwrap()]).await;
    let valid = repo.join("crds/tests/fixtures/valid/01-production-minimal.yaml");
    let out = k.ok(&["apply", "-f", valid.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "pipelinerun.tipoff.dev/nba-2026-01-29 created");
    let out = k.ok(&["get", "pipelineruns"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&words(lines[0])[..3], ["NAME", "DATE", "MODE"]);
    assert_eq!(
        &words(lines[1])[..3],
        ["nba-2026-01-29", "2026-01-29", "Production"]
    );
    k.ok(&["delete", "pipelinerun", "nba-2026-01-29"]).await;
    let invalid = repo.join("crds/tests/fixtures/invalid/13-image-uppercase-digest.yaml");
    let (ok, _, err) = k.run(&["apply", "-f", invalid.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(
        err.contains(r#"The PipelineRun "nba-2026-01-29" is invalid: spec.release.image: Invalid value: "string": must be pinned by digest"#),
        "{err}"
    );
    cluster.shutdown().await;
}
