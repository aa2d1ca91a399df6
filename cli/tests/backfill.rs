//! `tipoff backfill` against dev/cluster with both of the operator's controllers in-process
//! (runs and backfills) and the test processor on the six-phase test catalog: it creates the
//! backfill, follows it with progress lines to the end, and `tipoff status` names the backfill
//! that created each run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use tipoff_demo::stack::Operator;
use tipoff_devcluster::{Config, DevCluster, ImageMapping, RunnerConfig};
use tipoff_operator::catalog::Catalog;

const REPO: &str = "ghcr.io/tipoff/processor";
const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const COMMIT: &str = "c4f8f339";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `tipoff-test-processor`, built beside the binary under test if it is not there yet.
fn test_processor() -> PathBuf {
    tipoff_devcluster::cargo::binary(
        &workspace(),
        "tipoff-test-processor",
        "tipoff-test-processor",
    )
    .unwrap()
}

/// Every processor sleeps 20 ms, reports the pinned commit and passes every gate.
fn behaviour() -> String {
    let checks: String = [
        "rows-written",
        "history-gap",
        "player-coverage",
        "boxscore-coverage",
        "odds-coverage",
    ]
    .iter()
    .map(|g| format!("    - {{name: {g}, passed: true, observed: 10, expected: 10}}\n"))
    .collect();
    format!(
        "default:\n  sleepMs: 20\n  commit: {COMMIT}\n  rows: {{nba_test.rows: 10}}\n  checks:\n{checks}processors: {{}}\n"
    )
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
async fn backfill_wait_shows_progress_to_the_end_and_status_names_the_backfill() {
    tipoff_operator::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("behaviour.yaml");
    std::fs::write(&script, behaviour()).unwrap();
    let cluster = DevCluster::start(Config {
        runner: RunnerConfig {
            images: vec![ImageMapping {
                image: REPO.into(),
                command: vec![test_processor().display().to_string()],
                args: vec![],
                image_id: None,
                env: BTreeMap::from([(
                    "TIPOFF_TEST_BEHAVIOUR".to_owned(),
                    script.display().to_string(),
                )]),
            }],
        },
        ..Config::default()
    })
    .await
    .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let client = kube::Client::try_from(kube::Config::new(cluster.url().parse().unwrap())).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in [
        "pipelineruns.tipoff.dev.yaml",
        "phasecompletions.tipoff.dev.yaml",
        "pipelinebackfills.tipoff.dev.yaml",
    ] {
        let text = std::fs::read_to_string(workspace().join("crds/generated").join(file)).unwrap();
        crds.create(
            &PostParams::default(),
            &serde_yaml::from_str(&text).unwrap(),
        )
        .await
        .unwrap();
    }

    // Both controllers, in-process, as the operator binary runs them (the demo's stack).
    let catalog = Catalog::load(&workspace().join("config/test/pipeline.yaml")).unwrap();
    let operator = Operator::start(client.clone(), catalog);

    let release = dir.path().join("release.yaml");
    std::fs::write(
        &release,
        format!("image: {REPO}@{DIGEST}\ncommit: {COMMIT}\n"),
    )
    .unwrap();
    let release = release.display().to_string();
    let kc = kubeconfig.clone();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        tipoff(
            &[
                "backfill",
                "2026-01-01",
                "2026-01-04",
                "--max-concurrent",
                "2",
                "--release",
                &release,
                "--wait",
                "--timeout",
                "180",
            ],
            &kc,
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let name = "backfill-2026-01-01-2026-01-04-missing";
    assert!(
        stdout.starts_with(&format!("pipelinebackfill.tipoff.dev/{name} created\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 running, 2 pending, 0 succeeded"),
        "the first progress line counts the runs in flight: {stdout}"
    );
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "[{}] 4/4 Succeeded: 0 running, 0 pending, 4 succeeded, 0 failed, 0 skipped",
            "#".repeat(24)
        )),
        "{stdout}"
    );

    // status: every run, with the backfill that created it.
    let (code, list, _) = tipoff(&["status"], &kubeconfig);
    assert_eq!(code, 0);
    let header = list.lines().next().unwrap();
    assert!(header.contains("CREATED BY"), "{list}");
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{list}");
    for row in rows {
        assert!(row.contains(&format!("backfill/{name}")), "{list}");
        assert!(row.contains("Succeeded"), "{list}");
    }
    let (_, json, _) = tipoff(&["status", "-o", "json"], &kubeconfig);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["createdBy"], format!("backfill/{name}"));

    // status DATE --mode backfill: the backfill's run of the date.
    let (code, tree, _) = tipoff(
        &["status", "2026-01-02", "--mode", "backfill", "-o", "json"],
        &kubeconfig,
    );
    assert_eq!(code, 0, "{tree}");
    let v: serde_json::Value = serde_json::from_str(&tree).unwrap();
    assert_eq!(v["name"], format!("{name}-2026-01-02"));

    // The same command again is the same backfill; a range backwards is a usage error.
    let (code, again, _) = tipoff(
        &["backfill", "2026-01-01", "2026-01-04", "--wait"],
        &kubeconfig,
    );
    assert_eq!(code, 0, "{again}");
    assert!(
        again.starts_with(&format!("pipelinebackfill.tipoff.dev/{name} unchanged")),
        "{again}"
    );
    let (code, _, err) = tipoff(&["backfill", "2026-01-04", "2026-01-01"], &kubeconfig);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("TO (2026-01-01) is before FROM (2026-01-04)"),
        "{err}"
    );

    // With the namespace's game-day list (the one a PipelineSchedule reads), a date the list
    // covers without listing is skipped as without games; a date after `through` is run.
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "default");
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "nba-game-days", "labels": {"tipoff.dev/game-days": "true"}},
                "data": {"dates": "through: 2026-01-07\n2026-01-05\n2026-01-07\n"}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let (release, kc) = (
        dir.path().join("release.yaml").display().to_string(),
        kubeconfig.clone(),
    );
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        tipoff(
            &[
                "backfill",
                "2026-01-05",
                "2026-01-08",
                "--release",
                &release,
                "--wait",
                "--timeout",
                "180",
            ],
            &kc,
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("dates without games are skipped (game days: ConfigMap nba-game-days"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap();
    assert!(
        last.contains("3/3 Succeeded: 0 running, 0 pending, 3 succeeded, 0 failed, 1 skipped"),
        "{stdout}"
    );
    let backfills: Api<tipoff_crds::PipelineBackfill> = Api::namespaced(client.clone(), "default");
    let b = backfills
        .get("backfill-2026-01-05-2026-01-08-missing")
        .await
        .unwrap();
    let jan6 = b
        .status
        .unwrap()
        .dates
        .into_iter()
        .find(|d| d.date == "2026-01-06")
        .unwrap();
    assert_eq!(jan6.reason, Some(tipoff_crds::DateReason::NoGames));

    operator.stop().await;
    cluster.shutdown().await;
}
