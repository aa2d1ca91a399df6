//! The catalog loader against its fixture corpus and the shipped catalogs.
//!
//! Each `fixtures/catalog/invalid/*.yaml` starts with `# expect: <text>`; loading it must fail
//! with an error whose message contains that text. Every `valid/*.yaml` must load.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::path::{Path, PathBuf};

use tipoff_operator::catalog::{Catalog, Enforcement, Mode};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/catalog")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn every_invalid_fixture_is_rejected_with_its_message() {
    let files = fixtures("invalid");
    assert!(
        files.len() >= 20,
        "expected a corpus of invalid catalogs, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks a `# expect:` first line", file.display()));
        match Catalog::from_yaml(&text) {
            Ok(_) => failures.push(format!("{}: accepted", file.display())),
            Err(e) if !e.to_string().contains(expected) => failures.push(format!(
                "{}: expected {expected:?}, got {:?}",
                file.display(),
                e.to_string()
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_valid_fixture_loads() {
    for file in fixtures("valid") {
        if let Err(e) = Catalog::load(&file) {
            panic!("{}: {e}", file.display());
        }
    }
}

#[test]
fn a_processor_sets_its_own_resources() {
    let catalog = Catalog::from_yaml(
        "phases:\n  - number: 1\n    name: scrape\n    processors:\n      - {name: a, resources: {requests: {cpu: 500m, memory: 1.5Gi}, limits: {memory: 2Gi}}}\n      - {name: b}\n",
    )
    .unwrap();
    let a = catalog.processor("a").unwrap();
    assert_eq!(a.resources.requests["cpu"], "500m");
    assert_eq!(a.resources.requests["memory"], "1.5Gi");
    assert_eq!(a.resources.limits["memory"], "2Gi");
    assert!(
        catalog
            .processor("b")
            .unwrap()
            .resources
            .requests
            .is_empty()
    );
}

#[test]
fn production_catalog_loads_and_lists_only_existing_processors() {
    let catalog = Catalog::load(&repo_file("config/pipeline.yaml")).unwrap();
    // Only processors tipoff-processor runs; each issue that builds more adds them here.
    let numbers: Vec<u8> = catalog.phases.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6]);
    let names: Vec<&str> = catalog
        .phases
        .iter()
        .flat_map(|p| p.processors.iter().map(|q| q.name.as_str()))
        .collect();
    // tipoff_processors::registry::PROCESSORS; the processors crate's own test
    // (`registry::tests::every_catalog_processor_is_registered_in_its_phase`) checks the two
    // agree.
    assert_eq!(
        names,
        [
            "scrape-schedule",
            "scrape-boxscores",
            "scrape-play-by-play",
            "scrape-injury-report",
            "scrape-player-props",
            "scrape-game-lines",
            "raw-schedule",
            "raw-boxscores",
            "raw-play-by-play",
            "raw-injury-report",
            "raw-player-props",
            "raw-game-lines",
            "player-game-summary",
            "team-offense-game-summary",
            "team-defense-game-summary",
            "upcoming-player-game-context",
            "upcoming-team-game-context",
            "team-defense-zone-analysis",
            "player-shot-zone-analysis",
            "player-daily-cache",
            "player-composite-factors",
            "ml-feature-store",
            "train-points-model",
            "player-prop-predictions",
            "grade-predictions",
            "export-predictions",
        ]
    );
    // The predictions run as an Indexed Job of four shards, after the model.
    let predictions = catalog.processor("player-prop-predictions").unwrap();
    assert_eq!(predictions.parallelism, 4);
    assert_eq!(
        predictions
            .dependencies(Mode::Production)
            .collect::<Vec<_>>(),
        ["train-points-model"]
    );
    // The feature store waits for the other four of its phase in every mode.
    let store = catalog.processor("ml-feature-store").unwrap();
    for mode in [Mode::Production, Mode::SameDay, Mode::Backfill] {
        let deps: Vec<&str> = store.dependencies(mode).collect();
        assert_eq!(deps.len(), 4, "{mode:?}: {deps:?}");
    }
    // Backfill's player list is who played: the context waits for the summary then only.
    let ctx = catalog.processor("upcoming-player-game-context").unwrap();
    assert_eq!(
        ctx.dependencies(Mode::Backfill).collect::<Vec<_>>(),
        ["player-game-summary"]
    );
    assert_eq!(ctx.dependencies(Mode::SameDay).count(), 0);
    // Same-day runs are not blocked by checks written for next-day runs (seed 001).
    let cache = catalog.processor("player-daily-cache").unwrap();
    let gap = cache.gate("history-gap").unwrap();
    assert_eq!(gap.policy.get(Mode::SameDay), Enforcement::Off);
    assert_eq!(gap.policy.get(Mode::Production), Enforcement::Blocking);
    let pgs = catalog.processor("player-game-summary").unwrap();
    let coverage = pgs.gate("player-coverage").unwrap();
    assert_eq!(coverage.policy.get(Mode::SameDay), Enforcement::Off);
    assert_eq!(coverage.policy.get(Mode::Production), Enforcement::Blocking);
    // Missing box scores block in Production only (the next day, when every game is final).
    let raw_box = catalog.processor("raw-boxscores").unwrap();
    let gate = raw_box
        .gates
        .iter()
        .find(|g| g.name == "boxscore-coverage")
        .unwrap();
    assert_eq!(gate.policy.get(Mode::Production), Enforcement::Blocking);
    assert_eq!(gate.policy.get(Mode::SameDay), Enforcement::Warning);
    assert_eq!(gate.policy.get(Mode::Backfill), Enforcement::Warning);
}

#[test]
fn test_catalog_has_six_phases_and_the_feature_store_inputs() {
    let catalog = Catalog::load(&repo_file("config/test/pipeline.yaml")).unwrap();
    let numbers: Vec<u8> = catalog.phases.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6]);
    assert_eq!(catalog.phase(3).unwrap().processors.len(), 5);
    assert_eq!(catalog.phase(4).unwrap().processors.len(), 5);

    let store = catalog.processor("ml-feature-store").unwrap();
    let same_phase = |mode| {
        store
            .dependencies(mode)
            .filter(|d| catalog.processor(d).unwrap().phase == 4)
            .count()
    };
    assert_eq!(same_phase(Mode::Production), 4);
    // The player source differs by mode (seed 001).
    let deps = |mode| {
        store
            .dependencies(mode)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(deps(Mode::Production).contains(&"upcoming-player-game-context".to_owned()));
    assert!(deps(Mode::SameDay).contains(&"upcoming-player-game-context".to_owned()));
    assert!(deps(Mode::Backfill).contains(&"player-game-summary".to_owned()));
    assert!(!deps(Mode::Backfill).contains(&"upcoming-player-game-context".to_owned()));

    let gap = store.gate("history-gap").unwrap();
    assert_eq!(gap.policy.get(Mode::SameDay), Enforcement::Off);
    assert_eq!(gap.policy.get(Mode::Production), Enforcement::Blocking);
    assert_eq!(store.retry.max_attempts, 4);
    assert_eq!(
        store.retry.backoff_seconds, 30,
        "unset retry fields come from defaults"
    );
    assert_eq!(
        catalog
            .processor("player-prop-predictions")
            .unwrap()
            .parallelism,
        4
    );
    assert!(
        !catalog
            .processor("odds-scraper")
            .unwrap()
            .required_in(Mode::Production)
    );
    let zones = catalog.processor("team-defense-zone-analysis").unwrap();
    assert!(zones.required_in(Mode::Production) && !zones.required_in(Mode::SameDay));
}

#[test]
fn per_processor_gate_policy_overrides_the_catalog_policy() {
    let catalog = Catalog::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/catalog/valid/per-mode-dependencies.yaml"),
    )
    .unwrap();
    let b = catalog.processor("b").unwrap();
    assert_eq!(
        b.gate("history-gap").unwrap().policy.get(Mode::Production),
        Enforcement::Warning
    );
    assert_eq!(
        catalog.gates["history-gap"].policy.get(Mode::Production),
        Enforcement::Blocking
    );
}

#[test]
fn the_benchmark_catalogs_load_and_the_dag_has_the_shape_of_issue_22() {
    Catalog::load(&repo_file("config/bench/pipeline.yaml")).unwrap();
    let dag = Catalog::load(&repo_file("config/bench/dag28.yaml")).unwrap();
    let sizes: Vec<usize> = dag.phases.iter().map(|p| p.processors.len()).collect();
    assert_eq!(sizes, [6, 6, 5, 5, 3, 3]);
    let feature_store = dag.processor("precompute-e").unwrap();
    assert_eq!(
        feature_store
            .dependencies(Mode::Production)
            .collect::<Vec<_>>(),
        [
            "precompute-a",
            "precompute-b",
            "precompute-c",
            "precompute-d"
        ]
    );
}
