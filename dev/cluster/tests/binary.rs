//! The `tipoff-devcluster` binary: flags, kubeconfig output and a kubectl
//! session against it, as a person would use it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::eventually;

#[tokio::test]
async fn binary_serves_kubectl_with_the_written_kubeconfig_and_runner_config() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kc");
    let runner = dir.path().join("runner.yaml");
    let data = dir.path().join("data");
    std::fs::write(
        &runner,
        "images:\n- image: busybox\n  command: [\"/bin/sh\", \"-c\"]\n",
    )
    .unwrap();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_tipoff-devcluster"))
        .args(["--port", "0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .arg("--runner-config")
        .arg(&runner)
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(20), "kubeconfig written", || async {
        kubeconfig.exists().then_some(())
    })
    .await;
    let kubectl = |args: &'static [&'static str]| {
        let kubeconfig = kubeconfig.clone();
        let home = dir.path().to_path_buf();
        async move {
            let out = tokio::process::Command::new("/usr/bin/kubectl")
                .args(args)
                .env("KUBECONFIG", kubeconfig)
                .env("HOME", home)
                .output()
                .await
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        }
    };
    let (ok, out) = kubectl(&["get", "namespaces", "-o", "name"]).await;
    assert!(ok);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "namespace/default",
            "namespace/kube-public",
            "namespace/kube-system"
        ]
    );
    let job = dir.path().join("job.yaml");
    std::fs::write(
        &job,
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: hi}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox, args: [\"echo from-binary\"]}]\n",
    )
    .unwrap();
    let out = tokio::process::Command::new("/usr/bin/kubectl")
        .args(["apply", "-f"])
        .arg(&job)
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", dir.path())
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let logs = eventually(Duration::from_secs(20), "job logs", || async {
        let (ok, out) = kubectl(&["logs", "job/hi"]).await;
        (ok && !out.is_empty()).then_some(out)
    })
    .await;
    assert_eq!(logs, "from-binary\n");
    assert!(
        data.join("pods/default").is_dir(),
        "pod files under --data-dir"
    );
    server.start_kill().unwrap();
    server.wait().await.unwrap();
}
