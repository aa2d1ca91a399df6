//! `tipoff demo --json`: the happy path and every scenario, each checked for the detection the
//! scenario exists to show, from the machine-readable summary (and the files it points at).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn demo(scenario: Option<&str>, dir: &Path) -> (i32, Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tipoff"));
    cmd.args(["demo", "--json", "--timeout", "300", "--dir"])
        .arg(dir);
    if let Some(s) = scenario {
        cmd.args(["--scenario", s]);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "demo --json printed no JSON ({e}):\n{}\nstderr:\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), summary, stderr)
}

fn catalog_phases() -> usize {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/pipeline.yaml"),
    )
    .unwrap();
    tipoff_operator::catalog::Catalog::from_yaml(&text)
        .unwrap()
        .phases
        .len()
}

#[test]
fn the_demo_runs_every_phase_of_the_catalog_into_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let (code, s, stderr) = demo(None, dir.path());
    assert_eq!(code, 0, "{s:#}\n{stderr}");
    assert_eq!(s["run"]["state"], "Succeeded");
    assert_eq!(s["detection"]["detected"], true);
    let phases = s["phases"].as_array().unwrap();
    assert_eq!(phases.len(), catalog_phases());
    assert!(
        phases
            .iter()
            .all(|p| p["state"] == "Succeeded" && p["done"] == p["expected"]),
        "{phases:#?}"
    );
    // Rows per table: reported by the processors and present in the lake.
    let tables = s["rowsPerTable"].as_object().unwrap();
    for t in [
        "nba_raw.bdl_player_boxscores",
        "nba_raw.nbac_play_by_play",
        "nba_raw.nbac_schedule",
    ] {
        assert!(
            tables[t]["reported"].as_i64().unwrap() > 0,
            "{t}: {tables:#?}"
        );
        assert_eq!(tables[t]["lakeFiles"], 1, "{t}");
    }
    let lake = Path::new(s["paths"]["lake"].as_str().unwrap());
    assert!(
        lake.join("nba_raw/nbac_schedule/game_date=2026-01-14")
            .is_dir()
    );
    assert_eq!(s["drift"].as_array().unwrap().len(), 0);
    assert_eq!(s["jobs"]["duplicates"], 0);
    assert_eq!(s["jobs"]["created"], s["jobs"]["processors"]);
    // The kubeconfig it printed points at a server (gone now) the user could have used.
    let kc = std::fs::read_to_string(s["paths"]["kubeconfig"].as_str().unwrap()).unwrap();
    assert!(kc.contains("server: http://127.0.0.1:"));
    // Progress went to stderr, phase by phase.
    assert!(stderr.contains("phase 1 scrape: Succeeded"), "{stderr}");
    assert!(stderr.contains("phase 2 raw: Succeeded"), "{stderr}");
}

#[test]
fn wrong_code_deployed_is_caught_by_code_drift_before_the_next_phase() {
    let dir = tempfile::tempdir().unwrap();
    let (code, s, stderr) = demo(Some("wrong-code-deployed"), dir.path());
    assert_eq!(code, 0, "{s:#}\n{stderr}");
    let d = &s["detection"];
    assert_eq!(d["detected"], true);
    assert_eq!(d["kind"], "Condition");
    assert_eq!(d["detail"]["condition"]["type"], "CodeDrift");
    assert_eq!(d["detail"]["condition"]["status"], "True");
    assert_eq!(d["detail"]["stoppedBeforePhase"], 2);
    assert_eq!(s["run"]["state"], "Blocked");
    assert_eq!(s["drift"][0]["field"], "Image");
    assert!(
        s["warningEvents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "CodeDrift")
    );
    // Phase 2 never started.
    assert_eq!(s["phases"][1]["state"], "Pending");
}

#[test]
fn an_orchestrator_crash_mid_run_completes_with_no_duplicate_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (code, s, stderr) = demo(Some("orchestrator-crash"), dir.path());
    assert_eq!(code, 0, "{s:#}\n{stderr}");
    assert_eq!(s["detection"]["detected"], true);
    assert_eq!(s["operatorRestarts"], 1);
    assert_eq!(s["run"]["state"], "Succeeded");
    assert_eq!(s["jobs"]["duplicates"], 0);
    assert_eq!(s["jobs"]["retries"], 0);
    assert_eq!(s["jobs"]["created"], s["jobs"]["processors"]);
    // The crash landed while Jobs existed and before the run ended.
    let stopped = stderr.find("operator stopped").unwrap();
    let ended = stderr.find("is Succeeded").unwrap();
    assert!(stopped < ended, "{stderr}");
}

#[test]
fn an_expired_token_is_refreshed_and_reported_in_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let (code, s, stderr) = demo(Some("expired-token"), dir.path());
    assert_eq!(code, 0, "{s:#}\n{stderr}");
    let d = &s["detection"];
    assert_eq!(d["detected"], true);
    assert!(d["detail"]["keyRotations"].as_u64().unwrap() >= 1);
    let by = d["detail"]["refreshedBy"].as_array().unwrap();
    assert!(!by.is_empty());
    assert!(by.iter().all(|r| r["keyRefreshes"].as_i64().unwrap() >= 1));
    assert_eq!(s["run"]["state"], "Succeeded");
    // Nothing was lost: every props payload loaded.
    assert!(
        s["rowsPerTable"]["nba_raw.odds_api_player_points_props"]["reported"]
            .as_i64()
            .unwrap()
            > 0
    );
}

#[test]
fn a_missing_game_is_named_in_a_failed_gate() {
    let dir = tempfile::tempdir().unwrap();
    let (code, s, stderr) = demo(Some("missing-game"), dir.path());
    assert_eq!(code, 0, "{s:#}\n{stderr}");
    let d = &s["detection"];
    assert_eq!(d["detected"], true);
    assert_eq!(d["kind"], "Gate");
    let late = d["detail"]["inProgress"].as_array().unwrap();
    assert!(!late.is_empty());
    let gates = d["detail"]["gates"].as_array().unwrap();
    assert!(
        gates
            .iter()
            .any(|g| g["gate"] == "boxscore-coverage" && g["missing"].as_array() == Some(late))
    );
    assert_eq!(d["detail"]["condition"]["status"], "False");
    assert_eq!(s["run"]["state"], "Blocked");
    assert!(
        s["warningEvents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "GateFailed")
    );
}

#[test]
fn a_malformed_payload_is_quarantined_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (code, s, stderr) = demo(Some("malformed-payload"), dir.path());
    assert_eq!(code, 0, "{s:#}\n{stderr}");
    let d = &s["detection"];
    assert_eq!(d["detected"], true);
    assert_eq!(d["kind"], "Quarantine");
    let q = d["detail"]["quarantined"].as_array().unwrap();
    assert_eq!(q.len(), 1);
    let file =
        Path::new(d["detail"]["quarantineDir"].as_str().unwrap()).join(q[0].as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        serde_json::from_slice::<Value>(&bytes).is_err(),
        "the quarantined payload is the malformed one"
    );
    assert!(
        d["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("raw-play-by-play")
    );
    assert_eq!(d["detail"]["gate"][0]["gate"], "payloads-valid");
    assert_eq!(d["detail"]["gate"][0]["policy"], "Blocking");
}

#[test]
fn an_unknown_date_or_scenario_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tipoff"))
        .args(["demo", "--json", "--date", "2026-02-15", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no games on 2026-02-15"));
    let out = Command::new(env!("CARGO_BIN_EXE_tipoff"))
        .args(["demo", "--scenario", "meteor-strike"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
