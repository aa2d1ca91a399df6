//! `tipoff-demo --json`: the happy path and every scenario, each checked for the detection the
//! scenario exists to show, from the machine-readable summary (and the files it points at).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tipoff_warehouse::TableRef;

/// The export files' JSON Schema checker, shared with the processors' tests.
#[path = "../../../processors/tests/support/schema_check.rs"]
#[allow(dead_code)]
mod schema_check;

const SYSTEMS: [&str; 4] = [
    "ensemble_v1",
    "line_consensus_v1",
    "points_model_v1",
    "rolling_avg_v1",
];

fn demo(scenario: Option<&str>, dir: &Path) -> (i32, Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tipoff-demo"));
    cmd.args(["--json", "--timeout", "300", "--dir"]).arg(dir);
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

/// The `tipoff` CLI, for the commands a user runs after the demo.
fn tipoff() -> std::path::PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    tipoff_devcluster::cargo::binary(&workspace, "tipoff-cli", "tipoff").unwrap()
}

fn catalog_phases() -> usize {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/pipeline.yaml"),
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
    assert!(stderr.contains("phase 4 precompute: Succeeded"), "{stderr}");
    assert!(stderr.contains("phase 5 predict: Succeeded"), "{stderr}");
    assert!(stderr.contains("phase 6 publish: Succeeded"), "{stderr}");

    // What the pipeline is for: predictions from every system, graded, exported.
    let per_system = s["predictions"]["rowsPerSystem"].as_object().unwrap();
    assert_eq!(
        per_system.keys().collect::<Vec<_>>(),
        SYSTEMS,
        "{per_system:#?}"
    );
    assert!(
        per_system.values().all(|n| n.as_u64().unwrap() > 50),
        "{per_system:#?}"
    );
    assert!(!s["predictions"]["topCalls"].as_array().unwrap().is_empty());
    let accuracy = s["accuracy"].as_object().unwrap();
    assert_eq!(
        accuracy.keys().collect::<Vec<_>>(),
        SYSTEMS,
        "{accuracy:#?}"
    );
    for (system, a) in accuracy {
        assert!(a["count"].as_i64().unwrap() > 50, "{system}: {a}");
        let mae = a["mae"].as_f64().unwrap();
        assert!(mae > 1.0 && mae < 10.0, "{system}: {a}");
    }
    let objects = Path::new(s["paths"]["objects"].as_str().unwrap());
    let exports: Vec<&str> = s["predictions"]["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(
        exports,
        [
            "exports/v1/predictions/2026-01-14.json",
            "exports/v1/results/2026-01-14.json"
        ]
    );
    for (kind, rel) in ["predictions", "results"].iter().zip(&exports) {
        let bytes = std::fs::read(objects.join(rel)).unwrap();
        schema_check::assert_valid(kind, &bytes);
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["game_date"], "2026-01-14", "{rel}");
    }
    // The evening replayed on an accelerated clock: export-live followed the games and exited
    // once every game was final, leaving both live files valid.
    let live = &s["live"];
    assert_eq!(live["completed"], true, "{live}");
    let games = s["rowsPerTable"]["nba_raw.nbac_schedule"]["reported"].clone();
    assert_eq!(live["gamesFinal"], games, "{live}");
    // At least before tip-off and once all are final.
    assert!(live["updates"].as_i64().unwrap() >= 2, "{live}");
    for kind in ["live", "live-grading"] {
        let bytes =
            std::fs::read(objects.join(format!("exports/v1/{kind}/2026-01-14.json"))).unwrap();
        schema_check::assert_valid(kind, &bytes);
    }
    // The model was trained on the history, walk-forward, and stored with its report.
    let models: Vec<String> = std::fs::read_dir(objects.join("models/points"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(models.len(), 1, "{models:?}");
    assert!(models[0].starts_with("2026-01-13-"), "{models:?}");

    // The season before the date was loaded first, so rolling features are real.
    let history = &s["history"];
    assert!(history["dates"].as_u64().unwrap() > 60, "{history}");
    assert_eq!(history["to"], "2026-01-13");
    // All ten tables of phases 3 and 4 hold the date, in the lake.
    for t in [
        "nba_analytics.player_game_summary",
        "nba_analytics.team_offense_game_summary",
        "nba_analytics.team_defense_game_summary",
        "nba_analytics.upcoming_player_game_context",
        "nba_analytics.upcoming_team_game_context",
        "nba_precompute.team_defense_zone_analysis",
        "nba_precompute.player_shot_zone_analysis",
        "nba_precompute.player_daily_cache",
        "nba_precompute.player_composite_factors",
        "nba_predictions.ml_feature_store_v2",
    ] {
        assert!(
            tables[t]["reported"].as_i64().unwrap() > 0,
            "{t}: {tables:#?}"
        );
        assert_eq!(tables[t]["lakeFiles"], 1, "{t}");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake_url = format!("file://{}", lake.display());
    let date = jiff::civil::date(2026, 1, 14);
    rt.block_on(async {
        let wh = tipoff_warehouse::open(&lake_url).await.unwrap();
        // player_game_summary's points and minutes equal the raw box scores, player by player.
        let raw = wh
            .read_range(
                &TableRef::new("nba_raw", "bdl_player_boxscores"),
                date,
                date,
                None,
            )
            .await
            .unwrap();
        let pgs = wh
            .read_range(
                &TableRef::new("nba_analytics", "player_game_summary"),
                date,
                date,
                None,
            )
            .await
            .unwrap();
        assert_eq!(raw.len(), pgs.len());
        let key =
            |r: &tipoff_warehouse::Row| format!("{:?} {:?}", r["game_id"], r["player_lookup"]);
        for r in &raw {
            let p = pgs
                .iter()
                .find(|p| key(p) == key(r))
                .unwrap_or_else(|| panic!("no summary row for {r:?}"));
            assert_eq!(p["points"], r["points"], "{r:?}");
            assert_eq!(p["minutes_played"], r["minutes"], "{r:?}");
        }
    });

    // `tipoff validate` recomputes rolling averages and usage from the raw box scores: it
    // passes on the demo's date ...
    let validate = |extra: &[&str]| {
        Command::new(tipoff())
            .args([
                "validate",
                "2026-01-14",
                "--sample",
                "5",
                "--warehouse",
                &lake_url,
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = validate(&[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = text.lines().last().unwrap_or_default();
    let counts: Vec<&str> = last.split(" of ").collect();
    assert_eq!(counts.len(), 2, "{text}");
    assert_eq!(format!("{} match", counts[0]), counts[1], "{text}");
    assert!(counts[0].parse::<usize>().unwrap() >= 30, "{text}");
    // ... and fails, naming the value, once a stored row is altered.
    let out = validate(&["-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let player = report["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == "player_daily_cache.points_avg_last_10" && c["stored"].is_number())
        .expect("a sampled player with a last-10 average")["player"]
        .as_str()
        .unwrap()
        .to_owned();
    rt.block_on(async {
        let wh = tipoff_warehouse::open(&lake_url).await.unwrap();
        let t = TableRef::new("nba_precompute", "player_daily_cache");
        let mut rows = wh.read_range(&t, date, date, None).await.unwrap();
        for r in &mut rows {
            if r["player_lookup"] == tipoff_warehouse::Value::String(player.clone())
                && let tipoff_warehouse::Value::Float(v) = r["points_avg_last_10"]
            {
                r.insert(
                    "points_avg_last_10".into(),
                    tipoff_warehouse::Value::Float(v + 0.5),
                );
            }
        }
        wh.replace_partition(&t, date, &rows).await.unwrap();
    });
    let out = validate(&[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(8), "{text}");
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("FAIL"))
        .collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(
        failed[0].contains(&player) && failed[0].contains("player_daily_cache.points_avg_last_10")
    );
}

#[test]
fn a_range_of_dates_runs_as_one_backfill_date_after_date_and_reports_accuracy_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tipoff-demo"))
        .args([
            "--json",
            "--timeout",
            "300",
            "--dates",
            "2025-11-24..2025-11-26",
        ])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let s: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON ({e}):\n{stderr}"));
    assert_eq!(out.status.code(), Some(0), "{s:#}\n{stderr}");
    let range: Vec<(&str, &str)> = s["range"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["date"].as_str().unwrap(), d["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        range,
        [
            ("2025-11-24", "Succeeded"),
            ("2025-11-25", "Succeeded"),
            ("2025-11-26", "Succeeded")
        ]
    );
    assert_eq!(s["date"], "2025-11-26");
    assert_eq!(s["history"]["to"], "2025-11-23");
    // One PipelineBackfill ran the range: every date's run is its own, one at a time, oldest
    // first (from the runs' timestamps), and its progress was shown as it went.
    let b = &s["backfill"];
    assert_eq!(b["name"], "backfill-2025-11-24-2025-11-26-missing", "{b:#}");
    assert_eq!(b["state"], "Succeeded", "{b:#}");
    assert_eq!(b["progress"], "3/3", "{b:#}");
    assert_eq!(b["counts"]["succeeded"], 3, "{b:#}");
    assert_eq!(b["counts"]["skipped"], 0, "{b:#}");
    assert_eq!(b["maxConcurrent"], 1, "{b:#}");
    assert_eq!(b["maxInFlight"], 1, "{b:#}");
    assert_eq!(b["oldestFirst"], true, "{b:#}");
    for d in s["range"].as_array().unwrap() {
        assert_eq!(
            d["run"],
            format!(
                "backfill-2025-11-24-2025-11-26-missing-{}",
                d["date"].as_str().unwrap()
            ),
            "{d}"
        );
    }
    assert_eq!(
        s["run"]["name"],
        "backfill-2025-11-24-2025-11-26-missing-2025-11-26"
    );
    assert_eq!(s["detection"]["kind"], "Backfill");
    assert_eq!(s["detection"]["detected"], true);
    assert!(
        stderr.contains("[########################] 3/3 Succeeded"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2025-11-25 phase 6 publish: Succeeded"),
        "{stderr}"
    );
    // Accuracy over the three dates: more graded than the last date alone.
    let last: u64 = s["predictions"]["rowsPerSystem"]["ensemble_v1"]
        .as_u64()
        .unwrap();
    let graded = s["accuracy"]["ensemble_v1"]["count"].as_u64().unwrap();
    assert!(
        graded > last,
        "{graded} graded over the range, {last} on the last date"
    );
    // Every system is graded; whether it makes calls is its calibration's business (early in
    // the season the line system sees no edge), but some system does.
    for system in SYSTEMS {
        let a = &s["accuracy"][system];
        assert!(
            a["count"].as_u64().unwrap() > 0 && a["mae"].is_number(),
            "{system}: {a}"
        );
    }
    assert!(
        SYSTEMS
            .iter()
            .any(|system| s["accuracy"][system]["hitRate"].is_number()),
        "{:#}",
        s["accuracy"]
    );
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
fn the_operator_down_for_three_game_days_catches_up_each_once_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (code, s, stderr) = demo(Some("orchestrator-down"), dir.path());
    assert_eq!(code, 0, "{s:#}\n{stderr}");
    let d = &s["detection"];
    assert_eq!(d["detected"], true, "{d:#}");
    assert_eq!(d["kind"], "CatchUp");
    let c = &s["catchUp"];
    // Seed 003: the 28th ran, the operator went down on the 29th and came back on Feb 1.
    let due = ["2026-01-29", "2026-01-30", "2026-01-31"];
    assert_eq!(c["dueWhileDown"], serde_json::json!(due), "{c:#}");
    assert_eq!(c["createdWhileDown"], 0, "{c:#}");
    assert_eq!(c["downAt"], "2026-01-29T12:00:00Z");
    assert_eq!(c["backAt"], "2026-02-01T12:00:00Z");
    let caught: Vec<(&str, &str, &str)> = c["caughtUp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["date"].as_str().unwrap(),
                r["run"].as_str().unwrap(),
                r["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        caught,
        [
            ("2026-01-29", "nba-2026-01-29", "Succeeded"),
            ("2026-01-30", "nba-2026-01-30", "Succeeded"),
            ("2026-01-31", "nba-2026-01-31", "Succeeded"),
        ],
        "{c:#}"
    );
    // Each created once the previous had ended (Forbid), by the runs' own timestamps.
    let at = |r: &Value, k: &str| r[k].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    for w in c["caughtUp"].as_array().unwrap().windows(2) {
        assert!(
            at(&w[1], "created").as_second() >= at(&w[0], "ended").as_second(),
            "{w:#?}"
        );
    }
    assert_eq!(c["oldestFirst"], true);
    // Exactly one run per date, the 28th included; nothing missed inside the 72h window.
    assert_eq!(
        c["runsPerDate"],
        serde_json::json!({"2026-01-28": 1, "2026-01-29": 1, "2026-01-30": 1, "2026-01-31": 1}),
        "{c:#}"
    );
    assert_eq!(c["catchUpWindow"], "72h");
    assert_eq!(c["missed"], serde_json::json!([]), "{c:#}");
    assert_eq!(c["lastScheduledDate"], "2026-01-31");
    // The summary describes the last caught-up run, with every phase of the real pipeline.
    assert_eq!(s["run"]["name"], "nba-2026-01-31");
    assert_eq!(s["run"]["state"], "Succeeded");
    assert_eq!(s["phases"].as_array().unwrap().len(), catalog_phases());
    assert_eq!(s["jobs"]["duplicates"], 0);
    // The operator was down while the days fell due, and came back before the runs appeared.
    let stopped = stderr.find("operator stopped").unwrap();
    let back = stderr.find("operator back").unwrap();
    let first = stderr
        .find("2026-01-29: pipelinerun nba-2026-01-29 created")
        .unwrap();
    assert!(stopped < back && back < first, "{stderr}");
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
    let out = Command::new(env!("CARGO_BIN_EXE_tipoff-demo"))
        .args(["--json", "--date", "2026-02-15", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no games on 2026-02-15"));
    let out = Command::new(env!("CARGO_BIN_EXE_tipoff-demo"))
        .args(["--scenario", "meteor-strike"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
