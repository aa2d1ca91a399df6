//! `tipoff schedule` and `tipoff status` against dev/cluster: a PipelineSchedule with the status
//! the operator writes (its controller is tested end to end in `operator/tests/e2e/schedule.rs`)
//! and runs labelled with the schedule, read back through the `tipoff` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tipoff_crds::{PipelineRun, PipelineSchedule};
use tipoff_devcluster::{Config, DevCluster};

const IMAGE: &str = "ghcr.io/tipoff/processor@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tipoff(args: &[&str], kubeconfig: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tipoff"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_shows_next_run_and_missed_dates_and_status_names_the_schedule() {
    tipoff_operator::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(Config::default()).await.unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let client = kube::Client::try_from(kube::Config::new(cluster.url().parse().unwrap())).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in [
        "pipelineruns.tipoff.dev.yaml",
        "phasecompletions.tipoff.dev.yaml",
        "pipelineschedules.tipoff.dev.yaml",
    ] {
        let text = std::fs::read_to_string(workspace().join("crds/generated").join(file)).unwrap();
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text).unwrap();
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }

    // No schedule yet.
    let (code, out, err) = tipoff(&["schedule"], &kubeconfig);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("no PipelineSchedules in namespace default"),
        "{out}"
    );

    let schedules: Api<PipelineSchedule> = Api::namespaced(client.clone(), "default");
    let schedule: PipelineSchedule = serde_json::from_value(serde_json::json!({
        "apiVersion": "tipoff.dev/v1alpha1",
        "kind": "PipelineSchedule",
        "metadata": {"name": "nba"},
        "spec": {
            "gameDays": {"configMap": "games"},
            "release": {"image": IMAGE, "commit": "c4f8f339"},
        },
    }))
    .unwrap();
    schedules
        .create(&PostParams::default(), &schedule)
        .await
        .unwrap();
    // The status the operator writes after the seed-003 catch-up.
    let status = serde_json::json!({
        "apiVersion": "tipoff.dev/v1alpha1",
        "kind": "PipelineSchedule",
        "status": {
            "lastScheduledDate": "2026-01-31",
            "nextScheduledDate": "2026-02-01",
            "nextScheduledMode": "Production",
            "nextScheduleTime": "2026-02-02T11:00:00Z",
            "overdue": 0,
            "missed": [
                {"date": "2026-01-28", "mode": "Production", "reason": "OutsideCatchUpWindow"},
                {"date": "2026-01-26", "mode": "Production", "reason": "OutsideCatchUpWindow"},
            ],
            "missedCount": 2,
            "skipped": [{"date": "2026-01-27", "reason": "NoGames"}],
            "recentRuns": [{"name": "nba-2026-01-31", "date": "2026-01-31", "mode": "Production", "state": "Succeeded"}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "Scheduled",
                "message": "next: 2026-02-01 Production due 2026-02-02T11:00:00Z",
                "lastTransitionTime": "2026-02-01T12:00:00Z"}],
        },
    });
    schedules
        .patch_status(
            "nba",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    let runs: Api<PipelineRun> = Api::namespaced(client.clone(), "default");
    let run: PipelineRun = serde_json::from_value(serde_json::json!({
        "apiVersion": "tipoff.dev/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": "nba-2026-01-31", "labels": {"tipoff.dev/schedule": "nba"}},
        "spec": {"date": "2026-01-31", "mode": "Production",
                 "release": {"image": IMAGE, "commit": "c4f8f339"}},
    }))
    .unwrap();
    runs.create(&PostParams::default(), &run).await.unwrap();

    let (code, out, err) = tipoff(&["schedule"], &kubeconfig);
    assert_eq!(code, 0, "{err}");
    let header = out.lines().next().unwrap();
    for column in [
        "NAME", "TIME", "ZONE", "LAST", "NEXT", "OVERDUE", "MISSED", "READY",
    ] {
        assert!(header.contains(column), "{out}");
    }
    // The next run in the schedule's own time zone (06:00 EST on Feb 2).
    assert!(
        out.contains("2026-02-01 Production at 2026-02-02 06:00 EST"),
        "{out}"
    );
    assert!(
        out.contains("nba: missed 2 game day(s): 2026-01-28 Production (OutsideCatchUpWindow), 2026-01-26 Production (OutsideCatchUpWindow)"),
        "{out}"
    );

    let (code, out, err) = tipoff(&["schedule", "nba", "-o", "json"], &kubeconfig);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["missedCount"], 2);
    assert_eq!(v[0]["lastScheduledDate"], "2026-01-31");
    assert_eq!(v[0]["skipped"][0]["reason"], "NoGames");

    let (code, _, err) = tipoff(&["schedule", "west"], &kubeconfig);
    assert_eq!(code, 3, "not found: {err}");

    // `tipoff status` names the schedule that created the run.
    let (code, out, err) = tipoff(&["status"], &kubeconfig);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().next().unwrap().contains("CREATED BY"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("nba-2026-01-31") && l.contains("schedule/nba")),
        "{out}"
    );
    let (code, out, err) = tipoff(&["status", "-o", "json"], &kubeconfig);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["createdBy"], "schedule/nba");
}
