//! Shared test harness: an in-process `tipoff-season` upstream server, a local lake and object
//! store in a temp dir, and helpers to run processors in-process or through the binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod phase6;
pub mod schema_check;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::{Value as Json, json};
use tipoff_crds::{Check, Mode, ProcessorResult};
use tipoff_processors::contract::RunArgs;
use tipoff_processors::runner::{self, Config, Outcome};
use tipoff_processors::upstream::RetryPolicy;
use tipoff_season::Season;
use tipoff_season::server::{AppState, FaultConfig, router};
use tipoff_warehouse::storage::ObjectStorage;
use tipoff_warehouse::{Row, TableRef, Value, Warehouse};

/// The first API key the server accepts.
pub const KEY: &str = "key-1";

/// The season every test uses (seed 2025).
pub fn season() -> Arc<Season> {
    static S: OnceLock<Arc<Season>> = OnceLock::new();
    Arc::clone(S.get_or_init(|| Arc::new(Season::generate(2025))))
}

/// A busy date: at least 6 games, not all ending at the same time.
pub fn busy_date() -> Date {
    let s = season();
    let from = jiff::civil::date(2026, 1, 5);
    *s.by_date
        .iter()
        .find(|(d, games)| {
            **d >= from
                && games.len() >= 6
                && games.iter().map(|&g| s.games[g].end).max()
                    != games.iter().map(|&g| s.games[g].end).min()
        })
        .unwrap()
        .0
}

/// `AWY@HOM` of a season game.
pub fn matchup(g: usize) -> String {
    let s = season();
    let game = &s.games[g];
    format!(
        "{}@{}",
        s.league.teams[game.away].abbr, s.league.teams[game.home].abbr
    )
}

/// Noon UTC the day after `date`: every game of `date` is final (Production runs next day).
pub fn next_day(date: Date) -> Timestamp {
    date.tomorrow()
        .unwrap()
        .at(12, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
}

/// 17:00 UTC on `date` (noon Eastern): injury report out, markets open, no game started.
pub fn same_day(date: Date) -> Timestamp {
    date.at(17, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
}

/// One test's world: upstream server, storage dir, lake dir, key file.
pub struct World {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub key_file: PathBuf,
    pub warehouse_url: String,
    http: reqwest::Client,
}

impl World {
    pub async fn start(now: Timestamp) -> Self {
        let state = AppState::new(season(), now, KEY, FaultConfig::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("api-key");
        std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
        let warehouse_url = format!("file://{}", dir.path().join("lake").display());
        Self {
            base,
            dir,
            key_file,
            warehouse_url,
            http: reqwest::Client::new(),
        }
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("objects")
    }

    pub fn storage(&self) -> ObjectStorage {
        ObjectStorage::local(&self.storage_dir()).unwrap()
    }

    pub fn config(&self) -> Config {
        Config {
            warehouse_url: Some(self.warehouse_url.clone()),
            storage_url: Some(format!("file://{}", self.storage_dir().display())),
            upstream_url: Some(self.base.clone()),
            api_key_file: Some(self.key_file.clone()),
            retry: RetryPolicy {
                base_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
                timeout: Duration::from_secs(10),
                ..RetryPolicy::default()
            },
            disabled_checks: Vec::new(),
            game: None,
            live_poll: Some(Duration::from_millis(50)),
            live_max: Some(Duration::from_secs(60)),
            ..Config::default()
        }
    }

    pub async fn run(&self, processor: &str, date: Date, mode: Mode) -> Outcome {
        self.run_with(processor, date, mode, self.config()).await
    }

    pub async fn run_with(
        &self,
        processor: &str,
        date: Date,
        mode: Mode,
        config: Config,
    ) -> Outcome {
        let args = RunArgs {
            processor: processor.into(),
            date,
            mode,
        };
        let out = runner::run(args, config).await;
        // Every result must fit the contract.
        out.result.to_message().unwrap();
        out
    }

    /// Runs and asserts exit 0.
    pub async fn ok(&self, processor: &str, date: Date, mode: Mode) -> ProcessorResult {
        let out = self.run(processor, date, mode).await;
        assert!(
            out.failure.is_none(),
            "{processor} failed: {:?}\n{:#?}",
            out.failure,
            out.result
        );
        out.result
    }

    pub async fn set_clock(&self, now: Timestamp) {
        let r = self
            .http
            .put(format!("{}/admin/clock", self.base))
            .json(&json!({ "now": now.to_string() }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    pub async fn set_faults(&self, faults: Json) {
        let r = self
            .http
            .put(format!("{}/admin/faults", self.base))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }

    pub async fn add_key(&self, key: &str) {
        let r = self
            .http
            .post(format!("{}/admin/keys", self.base))
            .json(&json!({ "api_key": key }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// Every object under the storage root: key -> bytes.
    pub async fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        let st = self.storage();
        let mut out = BTreeMap::new();
        for k in st.list(None).await.unwrap() {
            let b = st.get(&k).await.unwrap().unwrap();
            out.insert(k.to_string(), b.to_vec());
        }
        out
    }
}

/// The six scrapers then the six raw processors, in catalog order.
pub const PHASE1: [&str; 6] = [
    "scrape-schedule",
    "scrape-boxscores",
    "scrape-play-by-play",
    "scrape-injury-report",
    "scrape-player-props",
    "scrape-game-lines",
];
pub const PHASE2: [&str; 6] = [
    "raw-schedule",
    "raw-boxscores",
    "raw-play-by-play",
    "raw-injury-report",
    "raw-player-props",
    "raw-game-lines",
];

/// The raw tables.
pub fn raw_tables() -> Vec<TableRef> {
    [
        "nbac_schedule",
        "bdl_player_boxscores",
        "nbac_play_by_play",
        "nbac_injury_report",
        "odds_api_player_points_props",
        "odds_api_game_lines",
    ]
    .iter()
    .map(|t| TableRef::new("nba_raw", *t))
    .collect()
}

/// A check by name.
pub fn check<'a>(r: &'a ProcessorResult, name: &str) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {:#?}", r.checks))
}

/// A table's rows for one date as sorted JSON strings, without `processed_at` (the one column
/// that records when the row was written, so it differs between runs by design).
pub async fn table_rows(wh: &dyn Warehouse, table: &TableRef, date: Date) -> Vec<String> {
    let rows = match wh.read_range(table, date, date, None).await {
        Ok(r) => r,
        Err(e) if e.category() == "TableNotFound" => return Vec::new(),
        Err(e) => panic!("reading {table}: {e}"),
    };
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|mut r: Row| {
            assert!(
                matches!(r.remove("processed_at"), Some(Value::Timestamp(_))),
                "{table}: processed_at must be set"
            );
            serde_json::to_string(&r).unwrap()
        })
        .collect();
    out.sort();
    out
}

/// The BigQuery emulator URL, or a clear failure.
pub fn bigquery_url() -> String {
    match std::env::var("TIPOFF_BIGQUERY_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "TIPOFF_BIGQUERY_URL is not set: start the emulators with \
             `scripts/emulators.sh start && source .tipoff/emulators.env` (this test never skips)"
        ),
    }
}

/// The ten tables of phases 3 and 4.
pub fn analytics_tables() -> Vec<TableRef> {
    [
        ("nba_analytics", "player_game_summary"),
        ("nba_analytics", "team_offense_game_summary"),
        ("nba_analytics", "team_defense_game_summary"),
        ("nba_analytics", "upcoming_player_game_context"),
        ("nba_analytics", "upcoming_team_game_context"),
        ("nba_precompute", "team_defense_zone_analysis"),
        ("nba_precompute", "player_shot_zone_analysis"),
        ("nba_precompute", "player_daily_cache"),
        ("nba_precompute", "player_composite_factors"),
        ("nba_predictions", "ml_feature_store_v2"),
    ]
    .iter()
    .map(|(d, t)| TableRef::new(*d, *t))
    .collect()
}

/// The registered processors of a phase, in catalog order.
pub fn phase(n: u8) -> Vec<&'static str> {
    tipoff_processors::registry::names_in_phase(n)
}

/// The season's game dates from `first` on, `n` of them.
pub fn game_dates_from(first: Date, n: usize) -> Vec<Date> {
    season()
        .by_date
        .keys()
        .filter(|d| **d >= first)
        .take(n)
        .copied()
        .collect()
}

impl World {
    /// Runs every processor of `phases` for `date`, each asserted to exit 0; the results by
    /// processor.
    pub async fn phases(
        &self,
        date: Date,
        mode: Mode,
        phases: &[u8],
    ) -> BTreeMap<&'static str, ProcessorResult> {
        let mut out = BTreeMap::new();
        for n in phases {
            for p in phase(*n) {
                out.insert(p, self.ok(p, date, mode).await);
            }
        }
        out
    }

    /// Phases 1-4 in Production for each date, in order (the history later dates read).
    pub async fn history(&self, dates: &[Date]) {
        for d in dates {
            self.phases(*d, Mode::Production, &[1, 2, 3, 4]).await;
        }
    }

    /// The lake.
    pub async fn lake(&self) -> Arc<dyn Warehouse> {
        tipoff_warehouse::open(&self.warehouse_url).await.unwrap()
    }
}

/// Processor name -> the gates `config/pipeline.yaml` attaches to it, in catalog order.
pub fn catalog_gates() -> Vec<(String, Vec<String>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/pipeline.yaml");
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for phase in doc["phases"].as_sequence().unwrap() {
        for p in phase["processors"].as_sequence().unwrap() {
            let gates = p["gates"]
                .as_sequence()
                .map(|gs| {
                    gs.iter()
                        .map(|g| match g.as_str() {
                            Some(name) => name.to_owned(),
                            None => g["name"].as_str().unwrap().to_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((p["name"].as_str().unwrap().to_owned(), gates));
        }
    }
    assert_eq!(
        out.len(),
        tipoff_processors::registry::PROCESSORS.len()
            - tipoff_processors::registry::NOT_IN_CATALOG.len()
    );
    out
}
