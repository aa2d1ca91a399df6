//! Phases 1 and 2 of the production catalog through the operator on `dev/cluster`, with Jobs
//! run as the real `tipoff-processor` against an in-process `tipoff-season` upstream and a
//! local lake. Phases 3 and 4 read the season before the date, which this test does not load:
//! `tipoff-demo` (dev/demo/tests/demo.rs) runs every phase of the catalog through the operator
//! after loading that history.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tipoff_crds::{Mode, RunState};
use tipoff_devcluster::ImageMapping;
use tipoff_season::Season;
use tipoff_season::server::{AppState, FaultConfig, router};

use crate::harness::{Env, REPO, real_processor, state};

/// The commit compiled into the real processor (`tipoff-processor --version`).
fn compiled_commit(bin: &std::path::Path) -> String {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split('(')
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_phases_one_and_two_run_the_real_processors() {
    let season = Arc::new(Season::generate(2025));
    let date = jiff::civil::date(2026, 1, 14);
    let games = season.by_date[&date].clone();
    assert!(!games.is_empty());
    let (upstream, _) = serve_upstream(&season, date, "e2e-key").await;

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("api-key");
    std::fs::write(&key_file, "e2e-key").unwrap();
    let lake = dir.path().join("lake");
    let objects = dir.path().join("objects");
    let bin = real_processor();
    let commit = compiled_commit(&bin);
    let mapping = ImageMapping {
        image: REPO.into(),
        command: vec![bin.display().to_string()],
        args: vec![],
        image_id: None,
        env: {
            let mut env = processor_env(&lake, &objects, upstream);
            env.insert(
                "TIPOFF_UPSTREAM_API_KEY_FILE".to_owned(),
                key_file.display().to_string(),
            );
            env
        },
    };
    let env = Env::start_mapping(dir, mapping).await;
    let catalog = phases_one_and_two(env.dir.path());
    let op = env.operator_on("op-real", false, &catalog);
    env.create_run_on("nba-2026-01-14", Mode::Production, "2026-01-14", &commit)
        .await;
    let run = env
        .wait_for("nba-2026-01-14", Duration::from_secs(180), |r| {
            matches!(
                state(r),
                Some(RunState::Succeeded | RunState::Failed | RunState::Blocked)
            )
        })
        .await;
    assert_eq!(
        state(&run),
        Some(RunState::Succeeded),
        "{:#?}\noperator log:\n{}",
        run.status,
        op.log()
    );
    // The raw tables were written by the Jobs: one box-score row per player-game.
    let players: usize = games.iter().map(|&g| season.player_games_of(g).len()).sum();
    let part = lake.join("nba_raw/bdl_player_boxscores/game_date=2026-01-14/part-00000.parquet");
    assert!(part.exists(), "{} missing", part.display());
    assert!(players > 0);
    assert!(
        objects
            .join("raw/boxscores/2026-01-14/box_scores.json")
            .exists()
    );
}

/// The production catalog cut to its phases 1 and 2, written under `dir`.
fn phases_one_and_two(dir: &std::path::Path) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/pipeline.yaml");
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let phases = doc["phases"].as_sequence_mut().unwrap();
    phases.retain(|p| p["number"].as_u64().unwrap() <= 2);
    assert_eq!(phases.len(), 2);
    let out = dir.join("pipeline-phases-1-2.yaml");
    std::fs::write(&out, serde_yaml::to_string(&doc).unwrap()).unwrap();
    out
}

/// The API keys come from a Secret, one key per upstream service, mounted by the operator
/// (`--upstream-secret`) as one file per service: the box-score and odds scrapers read theirs
/// from the mounted files (the processors get no other key file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapers_read_their_api_keys_from_the_mounted_secret() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, PostParams};

    let season = Arc::new(Season::generate(2025));
    let date = jiff::civil::date(2026, 1, 14);
    let (upstream, state_) = serve_upstream(&season, date, "bdl-key-7c1").await;
    state_.add_key("odds-key-52e");

    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let objects = dir.path().join("objects");
    let bin = real_processor();
    let commit = compiled_commit(&bin);
    let mapping = ImageMapping {
        image: REPO.into(),
        command: vec![bin.display().to_string()],
        args: vec![],
        image_id: None,
        // No TIPOFF_UPSTREAM_API_KEY_FILE: the keys can only come from the Secret.
        env: processor_env(&lake, &objects, upstream),
    };
    let env = Env::start_mapping(dir, mapping).await;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("upstream-keys".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            ("bdl".to_owned(), "bdl-key-7c1".to_owned()),
            ("odds-api".to_owned(), "odds-key-52e".to_owned()),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(env.client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let catalog = phases_one_and_two(env.dir.path());
    let op = env.operator_with(
        "op-real",
        false,
        &catalog,
        &[
            "--upstream-secret",
            "balldontlie=upstream-keys/bdl",
            "--upstream-secret",
            "odds=upstream-keys/odds-api",
        ],
    );
    env.create_run_with("nba-2026-01-14", Mode::Production, |spec| {
        spec.date = "2026-01-14".into();
        spec.release.commit = commit.clone();
        spec.subset = Some(tipoff_crds::Subset {
            phases: vec![1],
            processors: vec![
                "scrape-schedule".into(),
                "scrape-boxscores".into(),
                "scrape-player-props".into(),
            ],
        });
    })
    .await;
    let run = env
        .wait_for("nba-2026-01-14", Duration::from_secs(120), |r| {
            matches!(
                state(r),
                Some(RunState::Succeeded | RunState::Failed | RunState::Blocked)
            )
        })
        .await;
    assert_eq!(
        state(&run),
        Some(RunState::Succeeded),
        "{:#?}\noperator log:\n{}",
        run.status,
        op.log()
    );
    for payload in [
        "boxscores/2026-01-14/box_scores.json",
        "player-props/2026-01-14",
    ] {
        assert!(
            objects.join("raw").join(payload).exists(),
            "{payload} missing"
        );
    }
}

/// Serves the season's upstream on loopback at noon UTC the day after `date` (every game
/// final), accepting `key`; its URL and state (to add keys).
async fn serve_upstream(
    season: &Arc<Season>,
    date: jiff::civil::Date,
    key: &str,
) -> (String, Arc<AppState>) {
    let now = date
        .tomorrow()
        .unwrap()
        .at(12, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    let state = AppState::new(Arc::clone(season), now, key, FaultConfig::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::clone(&state);
    tokio::spawn(async move { axum::serve(listener, router(served)).await });
    (url, state)
}

/// The processors' environment: the lake, object storage and the upstream.
fn processor_env(
    lake: &std::path::Path,
    objects: &std::path::Path,
    upstream: String,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "TIPOFF_WAREHOUSE_URL".to_owned(),
            format!("file://{}", lake.display()),
        ),
        (
            "TIPOFF_STORAGE_URL".to_owned(),
            format!("file://{}", objects.display()),
        ),
        ("TIPOFF_UPSTREAM_URL".to_owned(), upstream),
    ])
}
