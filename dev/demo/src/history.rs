//! The season before the demo's date, loaded quickly and in-process so that the date's rolling
//! features are real and the points model has games to train on: for every earlier game date,
//! phases 1 and 2 and the three post-game summaries of phase 3 (what the as-of features of the
//! date read), then the rest of phases 3 and 4 (the feature store the model trains on), run as
//! the same processor code the Jobs run, against an upstream of its own (no injected faults,
//! no latency). The second stage starts once every date's summaries exist, since a date's
//! features read the summaries of all the dates before it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::civil::Date;
use serde::Serialize;
use tipoff_crds::Mode;
use tipoff_processors::contract::RunArgs;
use tipoff_processors::registry;
use tipoff_processors::runner::{self, Config};
use tipoff_processors::upstream::RetryPolicy;
use tipoff_season::Season;
use tipoff_season::server::FaultConfig;

use crate::stack::{self, Paths};
use tipoff_cli::error::{CliError, Result};

use tipoff_processors::analytics::POST_GAME_PROCESSORS as POST_GAME;

/// Dates loaded at once.
const CONCURRENT_DATES: usize = 3;

/// What the history load did.
#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// Game dates loaded.
    pub dates: usize,
    /// The first and last of them.
    pub from: Option<String>,
    /// The last.
    pub to: Option<String>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Processor runs.
    pub processor_runs: usize,
}

/// The game dates of the season before `date`.
pub fn dates_before(season: &Season, date: Date) -> Vec<Date> {
    season
        .by_date
        .keys()
        .filter(|d| **d < date)
        .copied()
        .collect()
}

/// The processors of the first stage: phases 1-2 and the post-game summaries.
fn results_stage() -> Vec<&'static str> {
    let mut names: Vec<&str> = registry::names_in_phase(1);
    names.extend(registry::names_in_phase(2));
    names.extend(POST_GAME);
    names
}

/// The processors of the second stage: the rest of phases 3 and 4.
fn features_stage() -> Vec<&'static str> {
    registry::names_in_phase(3)
        .into_iter()
        .filter(|p| !POST_GAME.contains(p))
        .chain(registry::names_in_phase(4))
        .collect()
}

async fn load_date(config: Config, date: Date, names: Vec<&'static str>) -> Result<usize> {
    for p in &names {
        let args = RunArgs {
            processor: (*p).to_owned(),
            date,
            mode: Mode::Production,
        };
        let out = runner::run(args, config.clone()).await;
        if let Some(f) = out.failure {
            return Err(CliError::Other(format!(
                "loading the history: {p} for {date} failed: {f}"
            )));
        }
    }
    Ok(names.len())
}

/// Loads every game date of the season before `date` into the demo's lake and object store,
/// printing progress through `progress`.
pub async fn load(
    season: Arc<Season>,
    date: Date,
    paths: &Paths,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<History> {
    let dates = dates_before(&season, date);
    if dates.is_empty() {
        return Ok(History::default());
    }
    let started = Instant::now();
    // Noon UTC the day after the date: every earlier game is long final.
    let clock = date
        .tomorrow()
        .and_then(|d| d.at(12, 0, 0, 0).to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|e| CliError::Other(format!("the clock: {e}")))?;
    let key_file = paths.dir.join("history-api-key");
    let upstream =
        stack::start_upstream(Arc::clone(&season), clock, FaultConfig::new(), &key_file).await?;
    let config = Config {
        warehouse_url: Some(file_url(&paths.lake)),
        storage_url: Some(file_url(&paths.objects)),
        upstream_url: Some(upstream.url.clone()),
        api_key_file: Some(key_file),
        retry: RetryPolicy {
            base_backoff: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        disabled_checks: Vec::new(),
        game: None,
        ..Config::default()
    };
    progress(&format!(
        "history: loading the {} game dates before {date} ({} .. {}): phases 1-4",
        dates.len(),
        dates[0],
        dates[dates.len() - 1]
    ));
    let total = dates.len();
    let mut runs = 0usize;
    for (stage, names) in [("results", results_stage()), ("features", features_stage())] {
        let mut done = 0usize;
        let mut stream = futures::stream::iter(dates.iter().copied())
            .map(|d| load_date(config.clone(), d, names.clone()))
            .buffer_unordered(CONCURRENT_DATES);
        while let Some(r) = stream.next().await {
            runs += r?;
            done += 1;
            if done.is_multiple_of(20) || done == total {
                progress(&format!(
                    "history: {stage} {done}/{total} dates ({:.1} s)",
                    started.elapsed().as_secs_f64()
                ));
            }
        }
    }
    Ok(History {
        dates: total,
        from: dates.first().map(ToString::to_string),
        to: dates.last().map(ToString::to_string),
        seconds: started.elapsed().as_secs_f64(),
        processor_runs: runs,
    })
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}
