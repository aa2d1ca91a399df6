//! The date's evening replayed on an accelerated clock: `export-live` (which no date's run
//! includes: it follows games for hours, `docs/processors.md`) runs in-process against an
//! upstream of its own whose simulated clock starts just before the first tip-off and moves
//! ahead by [`STEP`] every [`TICK`], so a whole evening passes in seconds. The processor polls
//! every [`POLL`], rewrites `exports/v1/live/<D>.json` and `exports/v1/live-grading/<D>.json`
//! as games start and end, and exits when every game is final.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use serde::Serialize;
use tipoff_crds::Mode;
use tipoff_processors::contract::RunArgs;
use tipoff_processors::runner::{self, Config};
use tipoff_processors::upstream::RetryPolicy;
use tipoff_season::Season;
use tipoff_season::server::FaultConfig;

use crate::stack::{self, Paths};
use tipoff_cli::error::{CliError, Result};

/// Simulated time per tick.
const STEP: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);
/// Real time per tick.
const TICK: Duration = Duration::from_millis(100);
/// How often `export-live` polls (real time).
const POLL: Duration = Duration::from_millis(50);
/// The longest the replay may take (real time) before `export-live` gives up.
const MAX: Duration = Duration::from_secs(120);

/// What the replay did.
#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Live {
    /// Whether `export-live` exited 0 with every game final.
    pub completed: bool,
    /// Times it rewrote the files.
    pub updates: Option<i64>,
    /// Games final when it exited.
    pub games_final: Option<i64>,
    /// Simulated hours replayed.
    pub simulated_hours: f64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// The files, relative to the object store.
    pub files: Vec<String>,
}

/// Replays `date`'s evening with `export-live` into the demo's object store.
pub async fn replay(season: Arc<Season>, date: Date, paths: &Paths) -> Result<Live> {
    let games = season.by_date.get(&date).cloned().unwrap_or_default();
    let Some(first) = games.iter().map(|&g| season.games[g].tipoff).min() else {
        return Ok(Live::default());
    };
    let start = first - jiff::SignedDuration::from_mins(10);
    let key_file = paths.dir.join("live-api-key");
    let upstream = stack::start_upstream(season, start, FaultConfig::new(), &key_file).await?;
    let config = Config {
        warehouse_url: Some(format!("file://{}", paths.lake.display())),
        storage_url: Some(format!("file://{}", paths.objects.display())),
        upstream_url: Some(upstream.url.clone()),
        api_key_file: Some(key_file),
        retry: RetryPolicy {
            base_backoff: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        live_poll: Some(POLL),
        live_max: Some(MAX),
        ..Config::default()
    };
    let args = RunArgs {
        processor: "export-live".to_owned(),
        date,
        mode: Mode::SameDay,
    };
    let started = Instant::now();
    let task = tokio::spawn(runner::run(args, config));
    let state = Arc::clone(&upstream.state);
    let clock = tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            state.set_now(state.now() + STEP);
        }
    });
    let out = task
        .await
        .map_err(|e| CliError::Other(format!("export-live stopped: {e}")));
    clock.abort();
    let out = out?;
    let check = |name: &str| {
        out.result
            .checks
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.observed)
    };
    let files = ["live", "live-grading"]
        .iter()
        .map(|kind| format!("exports/v1/{kind}/{date}.json"))
        .filter(|rel| paths.objects.join(rel).is_file())
        .collect();
    Ok(Live {
        completed: out.failure.is_none(),
        updates: check("live-updates"),
        games_final: check("live-games-final"),
        simulated_hours: upstream.state.now().duration_since(start).as_secs_f64() / 3600.0,
        seconds: started.elapsed().as_secs_f64(),
        files,
    })
}
