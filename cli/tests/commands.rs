//! The CLI against dev/cluster with the operator running and the real processors: each
//! command's output for a finished, an in-progress, a failed and a drifted run, reruns, and
//! the error paths with their exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use tipoff_season::server::EndpointFaults;

use support::{DATE, Options, RUN, Stack, first_game, run_tipoff};

fn json(out: &support::Out) -> Value {
    assert_eq!(out.code, 0, "{out:?}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

fn processors(v: &Value) -> Vec<(String, String)> {
    v["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["processors"].as_array().unwrap().clone())
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_through_run_status_drift_logs_and_rerun() {
    let stack = Stack::start(Options::default()).await;

    // run --wait: created, followed live to the end.
    let out = stack.run_and_wait().await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .starts_with(&format!("pipelinerun.tipoff.dev/{RUN} created")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("phase 1 scrape: Succeeded (6/6)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("phase 2 raw: Succeeded (6/6)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("raw-boxscores attempt 1 succeeded"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("run {RUN} is Succeeded (12/12)")),
        "{}",
        out.stdout
    );

    // The same command again is the same run.
    let again = stack.run_and_wait().await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stdout
            .starts_with(&format!("pipelinerun.tipoff.dev/{RUN} unchanged")),
        "{}",
        again.stdout
    );

    // A backfill of the date on the same stack (it runs the backfill controller too, as the
    // operator binary does): the date's run succeeded, so it is skipped and no run is added.
    let release = stack.release_file.display().to_string();
    let bf = stack
        .tipoff(&[
            "backfill",
            DATE,
            DATE,
            "--mode",
            "production",
            "--release",
            &release,
            "--wait",
            "--timeout",
            "60",
        ])
        .await;
    assert_eq!(bf.code, 0, "{bf:?}");
    assert!(bf.stdout.contains("0 failed, 1 skipped"), "{}", bf.stdout);

    // status without a date: one line per run.
    let list = stack.tipoff(&["status"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", list.stdout);
    assert!(lines[0].starts_with("NAME") && lines[0].contains("STATE"));
    assert!(
        lines[1].starts_with(RUN) && lines[1].contains("Succeeded") && lines[1].contains("12/12")
    );
    let list = json(&stack.tipoff(&["status", "-o", "json"]).await);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // status DATE: the tree, JSON and YAML.
    let tree = stack.tipoff(&["status", DATE]).await;
    assert_eq!(tree.code, 0, "{tree:?}");
    for want in [
        "Succeeded  12/12 processors succeeded",
        "├─ phase 1 scrape",
        "└─ phase 2 raw",
        "scrape-boxscores",
        "gates: boxscore-coverage ok 7/7",
        "a1 Succeeded",
        "rows written: nba_raw.bdl_player_boxscores",
    ] {
        assert!(
            tree.stdout.contains(want),
            "missing {want:?} in\n{}",
            tree.stdout
        );
    }
    let v = json(&stack.tipoff(&["status", DATE, "-o", "json"]).await);
    assert_eq!(v["state"], "Succeeded");
    assert_eq!(v["name"], RUN);
    let procs = processors(&v);
    assert_eq!(procs.len(), 12);
    assert!(procs.iter().all(|(_, s)| s == "Succeeded"), "{procs:?}");
    assert!(
        v["rowsWritten"]["nba_raw.bdl_player_boxscores"]
            .as_i64()
            .unwrap()
            > 0
    );
    let yaml = stack.tipoff(&["status", DATE, "-o", "yaml"]).await;
    assert_eq!(yaml.code, 0);
    let y: Value = serde_yaml::from_str(&yaml.stdout).unwrap();
    assert_eq!(y, v);

    // The same binary as a kubectl plugin: `kubectl tipoff status` finds `kubectl-tipoff` on
    // the PATH and passes KUBECONFIG through.
    let plugin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_kubectl-tipoff"))
        .parent()
        .unwrap()
        .to_owned();
    let kubeconfig = stack.paths.kubeconfig.clone();
    let plugin = tokio::task::spawn_blocking(move || {
        let path = format!(
            "{}:{}",
            plugin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::process::Command::new("kubectl")
            .args(["tipoff", "status"])
            .env("PATH", path)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("kubectl is needed by the tests (README, Requirements)")
    })
    .await
    .unwrap();
    let plugin_out = String::from_utf8_lossy(&plugin.stdout);
    assert!(plugin.status.success(), "{plugin:?}");
    assert!(
        plugin_out
            .lines()
            .nth(1)
            .unwrap_or_default()
            .starts_with(RUN),
        "{plugin_out}"
    );

    // drift: every processor ran the pinned code.
    let drift = stack.tipoff(&["drift"]).await;
    assert_eq!(drift.code, 0, "{drift:?}");
    assert_eq!(drift.stdout.lines().count(), 13, "{}", drift.stdout);
    assert!(
        drift
            .stdout
            .lines()
            .skip(1)
            .all(|l| l.trim_end().ends_with('-')),
        "{}",
        drift.stdout
    );
    let rows = json(&stack.tipoff(&["drift", "-o", "json"]).await);
    let commit = tipoff_processors::contract::COMMIT;
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["ranCommit"] == commit && r["drift"].as_array().unwrap().is_empty())
    );

    // logs: the processor's own output.
    let logs = stack
        .tipoff(&["logs", DATE, "--processor", "scrape-schedule"])
        .await;
    assert_eq!(logs.code, 0, "{logs:?}");
    assert!(
        logs.stdout.contains(&format!(
            "tipoff-processor: scrape-schedule date={DATE} mode=production"
        )),
        "{}",
        logs.stdout
    );
    assert!(
        logs.stdout.contains("scrape-schedule succeeded"),
        "{}",
        logs.stdout
    );

    // rerun one game: a new attempt, recorded in status. The first append meets a conflict
    // (another writer in between) and is redone on the fresh object.
    stack
        .cluster
        .faults()
        .fail_next(1, Some("PATCH"), "/pipelineruns/", 409);
    let game = first_game();
    let out = stack
        .tipoff(&[
            "rerun",
            DATE,
            "--processor",
            "scrape-play-by-play",
            "--game",
            &game,
            "--reason",
            "test",
            "--wait",
            "--timeout",
            "120",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "rerun r1 of scrape-play-by-play for game {game} requested"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("scrape-play-by-play attempt 2 started (rerun r1)")
            || out
                .stdout
                .contains("scrape-play-by-play attempt 2 succeeded (rerun r1)"),
        "{}",
        out.stdout
    );
    let v = stack
        .status_until(60, |v| v["reruns"][0]["state"] == "Succeeded")
        .await;
    assert_eq!(v["reruns"][0]["attempt"], 2);
    // The processor got the game: its coverage check counted that one game.
    let pbp = v["phases"][0]["processors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "scrape-play-by-play")
        .unwrap();
    assert_eq!(pbp["gates"][0]["name"], "pbp-coverage");
    assert_eq!(
        (&pbp["gates"][0]["observed"], &pbp["gates"][0]["expected"]),
        (&Value::from(1), &Value::from(1))
    );
    assert_eq!(v["reruns"][0]["game"], game.as_str());
    let tree = stack.tipoff(&["status", DATE]).await;
    assert!(
        tree.stdout.contains(&format!(
            "r1 scrape-play-by-play game {game}  Succeeded (attempt 2)"
        )),
        "{}",
        tree.stdout
    );
    assert!(
        tree.stdout.contains("a2 Succeeded (rerun r1)"),
        "{}",
        tree.stdout
    );
    // The rerun's log is the latest; the first attempt's is still there.
    let logs = stack
        .tipoff(&["logs", DATE, "--processor", "scrape-play-by-play"])
        .await;
    assert_eq!(logs.code, 0, "{logs:?}");
    let first = stack
        .tipoff(&[
            "logs",
            DATE,
            "--processor",
            "scrape-play-by-play",
            "--attempt",
            "1",
        ])
        .await;
    assert_eq!(first.code, 0, "{first:?}");
    // A processor that has not run cannot be rerun; an unknown attempt has no logs.
    let bad = stack
        .tipoff(&["rerun", DATE, "--processor", "no-such-processor"])
        .await;
    assert_eq!(bad.code, 3, "{bad:?}");
    assert!(
        bad.stderr
            .contains("processor no-such-processor has not run"),
        "{}",
        bad.stderr
    );
    let none = stack
        .tipoff(&[
            "logs",
            DATE,
            "--processor",
            "scrape-schedule",
            "--attempt",
            "9",
        ])
        .await;
    assert_eq!(none.code, 3, "{none:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_progress_shows_its_running_processor() {
    // A slow upstream keeps the schedule scraper running for a few seconds.
    let mut faults = support::FaultConfig::new();
    faults.insert(
        "schedule".into(),
        EndpointFaults {
            delay_ms: 4000,
            ..EndpointFaults::default()
        },
    );
    let stack = Stack::start(Options {
        faults,
        ..Options::default()
    })
    .await;
    let release = stack.release_file.display().to_string();
    let out = stack.tipoff(&["run", DATE, "--release", &release]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let v = stack
        .status_until(30, |v| {
            v["state"] == "Running"
                && processors(v)
                    .iter()
                    .any(|(n, s)| n == "scrape-schedule" && s == "Running")
        })
        .await;
    assert_eq!(v["state"], "Running");
    assert_eq!(v["phases"][0]["state"], "Running");
    let tree = stack.tipoff(&["status", DATE]).await;
    assert!(tree.stdout.contains("Running"), "{}", tree.stdout);
    assert!(
        tree.stdout
            .contains("scrape-schedule        Running    a1 Running"),
        "{}",
        tree.stdout
    );
    let list = stack.tipoff(&["status"]).await;
    assert!(
        list.stdout.lines().nth(1).unwrap().contains("Running"),
        "{}",
        list.stdout
    );
    // Logs of the live attempt so far, and no drift verdict yet for an unfinished attempt.
    let logs = stack
        .tipoff(&["logs", DATE, "--processor", "scrape-schedule"])
        .await;
    assert_eq!(logs.code, 0, "{logs:?}");
    assert!(
        logs.stdout.contains("tipoff-processor: scrape-schedule"),
        "{}",
        logs.stdout
    );
    let drift = stack.tipoff(&["drift"]).await;
    assert_eq!(drift.code, 0, "{drift:?}");
    assert!(
        drift.stdout.contains("no finished processor attempts"),
        "{}",
        drift.stdout
    );
    // Then it finishes, and `run --wait` on the existing run follows it to the end.
    let out = stack
        .tipoff(&["run", DATE, "--wait", "--timeout", "120"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("is Succeeded"), "{}", out.stdout);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_exits_6_and_says_why() {
    // Object storage that cannot be opened: a permanent failure (exit 65), not retried.
    let extra_env = BTreeMap::from([(
        "TIPOFF_STORAGE_URL".to_owned(),
        "bogus://nowhere".to_owned(),
    )]);
    let stack = Stack::start(Options {
        extra_env,
        ..Options::default()
    })
    .await;
    let out = stack.run_and_wait().await;
    assert_eq!(out.code, 6, "{out:?}");
    assert!(
        out.stdout
            .contains("scrape-schedule attempt 1 failed: ExitPermanent"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(&format!("tipoff: run {RUN} is Failed")),
        "{}",
        out.stderr
    );
    let v = json(&stack.tipoff(&["status", DATE, "-o", "json"]).await);
    assert_eq!(v["state"], "Failed");
    let attempt = &v["phases"][0]["processors"][0]["attempts"][0];
    assert_eq!(attempt["state"], "Failed");
    assert_eq!(attempt["exitCode"], 65);
    let tree = stack.tipoff(&["status", DATE]).await;
    assert!(
        tree.stdout.contains("a1 Failed ExitPermanent exit 65"),
        "{}",
        tree.stdout
    );
    let logs = stack
        .tipoff(&["logs", DATE, "--processor", "scrape-schedule"])
        .await;
    assert_eq!(logs.code, 0, "{logs:?}");
    assert!(logs.stdout.contains("bogus://nowhere"), "{}", logs.stdout);
    // A rerun of the failed processor fails the same way: exit 6, recorded, not retried.
    let out = stack
        .tipoff(&[
            "rerun",
            DATE,
            "--processor",
            "scrape-schedule",
            "--wait",
            "--timeout",
            "60",
        ])
        .await;
    assert_eq!(out.code, 6, "{out:?}");
    assert!(
        out.stderr.contains("rerun r1 is Failed: ExitPermanent"),
        "{}",
        out.stderr
    );
    let v = json(&stack.tipoff(&["status", DATE, "-o", "json"]).await);
    assert_eq!(v["reruns"][0]["state"], "Failed");
    assert_eq!(v["reruns"][0]["attempt"], 2);
    let attempts = v["phases"][0]["processors"][0]["attempts"]
        .as_array()
        .unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifted_run_blocks_and_drift_exits_7() {
    let other = format!(
        "{}@{}",
        tipoff_demo::stack::REPO,
        tipoff_demo::stack::digest_of("someone else's build")
    );
    let stack = Stack::start(Options {
        image_id: Some(other.clone()),
        ..Options::default()
    })
    .await;
    let out = stack.run_and_wait().await;
    assert_eq!(out.code, 6, "{out:?}");
    assert!(
        out.stdout.contains("scrape-schedule held: code drift"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("is Blocked"), "{}", out.stderr);
    let drift = stack.tipoff(&["drift"]).await;
    assert_eq!(drift.code, 7, "{drift:?}");
    let row = drift
        .stdout
        .lines()
        .find(|l| l.contains("scrape-schedule"))
        .unwrap();
    assert!(row.trim_end().ends_with("Image"), "{row}");
    assert!(
        drift
            .stderr
            .contains("code drift: scrape-schedule in nba-2026-01-14"),
        "{}",
        drift.stderr
    );
    let rows = json(&{
        let mut o = stack.tipoff(&["drift", "-o", "json"]).await;
        o.code = if o.code == 7 { 0 } else { o.code };
        o
    });
    assert_eq!(rows[0]["ranImage"], other.as_str());
    let tree = stack.tipoff(&["status", DATE]).await;
    assert!(tree.stdout.contains("CodeDrift=True"), "{}", tree.stdout);
    assert!(
        tree.stdout
            .contains("scrape-schedule attempt 1: Image pinned"),
        "{}",
        tree.stdout
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_short_with_documented_exit_codes() {
    // No cluster at all: a kubeconfig pointing at a closed port.
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &kc,
        tipoff_devcluster::kubeconfig_yaml(&format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    let out = run_tipoff(&["status".into()], Some(&kc));
    assert_eq!(out.code, 4, "{out:?}");
    assert!(
        out.stderr.contains("cannot reach the cluster"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // No kubeconfig.
    let out = run_tipoff(&["status".into()], None);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(
        out.stderr.contains("no usable kubeconfig"),
        "{}",
        out.stderr
    );
    // Invalid dates are usage errors before anything is contacted.
    for bad in ["2026-02-30", "14-01-2026", "tomorrow"] {
        let out = run_tipoff(&["status".into(), bad.into()], Some(&kc));
        assert_eq!(out.code, 2, "{bad}: {out:?}");
        assert!(out.stderr.contains("invalid date"), "{}", out.stderr);
    }
    let out = run_tipoff(
        &["run".into(), DATE.into(), "--mode".into(), "weekly".into()],
        Some(&kc),
    );
    assert_eq!(out.code, 2, "{out:?}");
    let out = run_tipoff(&["frobnicate".into()], Some(&kc));
    assert_eq!(out.code, 2, "{out:?}");

    // A cluster without the CRDs.
    let stack = Stack::start(Options {
        no_crds: true,
        no_operator: true,
        ..Options::default()
    })
    .await;
    let out = stack.tipoff(&["status"]).await;
    assert_eq!(out.code, 5, "{out:?}");
    assert!(
        out.stderr.contains("kubectl apply -f crds/generated/"),
        "{}",
        out.stderr
    );
    stack.stop().await;

    // With the CRDs: no run for the date; no --release for a new run.
    let stack = Stack::start(Options {
        no_operator: true,
        ..Options::default()
    })
    .await;
    let out = stack.tipoff(&["status", DATE]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains(&format!("no PipelineRun for {DATE}")),
        "{}",
        out.stderr
    );
    let out = stack
        .tipoff(&["logs", DATE, "--processor", "scrape-schedule"])
        .await;
    assert_eq!(out.code, 3, "{out:?}");
    let out = stack.tipoff(&["run", DATE]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--release FILE"), "{}", out.stderr);
    let out = stack
        .tipoff(&["run", DATE, "--override", "AcceptDrift"])
        .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("--override needs --reason"),
        "{}",
        out.stderr
    );
    let out = stack.tipoff(&["status"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("no PipelineRuns in namespace default"),
        "{}",
        out.stdout
    );
    stack.stop().await;
}
