//! Phase 1: the scrapers. Each calls the upstream over HTTP and stores every payload verbatim
//! at a deterministic key `raw/<source>/<date>/<name>`, so a re-run overwrites rather than
//! duplicates. Validation of the payloads is phase 2's job: a scraper keeps what it was given.
//!
//! A re-run never makes a date's raw data smaller: a payload that holds fewer of the date's
//! games or rows than the stored one (as phase 2 would load them; one that does not parse
//! holds none) is kept beside it at `held/<source>/<date>/<name>`, not over it, and the
//! `payloads-not-smaller` check fails naming it.

use std::collections::BTreeSet;

use bytes::Bytes;
use tipoff_crds::Mode;
use tipoff_warehouse::storage::ObjectKey;

use crate::contract::Failure;
use crate::runner::Ctx;
use crate::schedule::{self, Game, SCHEDULE_FILE};
use crate::upstream::Auth;

/// Object-store source names (`raw/<source>/...`).
pub mod source {
    /// NBA.com schedule.
    pub const SCHEDULE: &str = "schedule";
    /// balldontlie box scores.
    pub const BOXSCORES: &str = "boxscores";
    /// NBA.com play-by-play, one file per game.
    pub const PLAY_BY_PLAY: &str = "play-by-play";
    /// NBA official injury report.
    pub const INJURY_REPORT: &str = "injury-report";
    /// The Odds API player points props, one file per game.
    pub const PLAYER_PROPS: &str = "player-props";
    /// The Odds API game lines.
    pub const GAME_LINES: &str = "game-lines";
}

/// File name of the box-score payload.
pub const BOXSCORES_FILE: &str = "box_scores.json";
/// File name of the injury-report payload.
pub const INJURY_FILE: &str = "injury_report.json";
/// File name of the game-lines payload.
pub const GAME_LINES_FILE: &str = "odds.json";

/// A payload's key.
pub fn key(source: &str, ctx: &Ctx, name: &str) -> Result<ObjectKey, Failure> {
    ObjectKey::raw_payload(source, ctx.args.date, name)
        .map_err(|e| Failure::Permanent(format!("object key for {source}/{name}: {e}")))
}

/// The date's games from the stored schedule payload (the schedule scraper runs first).
pub async fn stored_games(ctx: &Ctx) -> Result<Vec<Game>, Failure> {
    let k = key(source::SCHEDULE, ctx, SCHEDULE_FILE)?;
    let Some(payload) = ctx.get(&k).await? else {
        return Err(Failure::Permanent(format!(
            "no schedule payload at {k}: run scrape-schedule for {} first",
            ctx.args.date
        )));
    };
    schedule::games_on(&payload, ctx.args.date)
        .map_err(|e| Failure::Permanent(format!("the stored schedule {k} is unusable: {e}")))
}

/// The games a scraper works on: the date's games, or the one game `TIPOFF_GAME` names.
async fn games_to_scrape(ctx: &Ctx) -> Result<Vec<Game>, Failure> {
    let games = stored_games(ctx).await?;
    only_game(ctx.config.game.as_deref(), games, ctx.args.date)
}

/// The games limited to `game` (`TIPOFF_GAME`: an NBA game id or `AWY@HOM`), if set. A game
/// that is not on the date is bad input (exit 65), not an empty run.
pub fn only_game(
    game: Option<&str>,
    games: Vec<Game>,
    date: jiff::civil::Date,
) -> Result<Vec<Game>, Failure> {
    let Some(game) = game else { return Ok(games) };
    let one: Vec<Game> = games
        .into_iter()
        .filter(|g| g.game_id == game || g.matchup() == game)
        .collect();
    if one.is_empty() {
        return Err(Failure::Permanent(format!(
            "TIPOFF_GAME={game} is not a game of {date} (give an NBA game id or AWY@HOM)"
        )));
    }
    Ok(one)
}

/// The games whose post-game data (box scores, play-by-play) must exist: every game in
/// Production (next day) and Backfill, only the final ones in SameDay.
pub fn games_expected_final(mode: Mode, games: &[Game]) -> Vec<&Game> {
    games
        .iter()
        .filter(|g| mode != Mode::SameDay || g.is_final())
        .collect()
}

#[derive(Default)]
struct Written {
    files: i64,
    bytes: i64,
    /// Payloads kept under `held/` because they were smaller than the stored ones.
    held: Vec<String>,
    /// The date's games from the stored schedule, read once for the size comparison.
    games: Option<Vec<Game>>,
}

impl Written {
    /// Stores a payload at `k` (`raw/<source>/<date>/<name>`), unless a stored payload there
    /// holds more of the date: then the new one goes to `held/<source>/<date>/<name>`.
    async fn store(&mut self, ctx: &Ctx, k: &ObjectKey, body: Bytes) -> Result<(), Failure> {
        let key_s = k.to_string();
        let segments: Vec<&str> = key_s.split('/').collect();
        if let [_, source, date, name] = segments.as_slice()
            && let Some(stored) = ctx.get(k).await?
        {
            let games = match (&self.games, *source == source::SCHEDULE) {
                (_, true) => Vec::new(),
                (Some(g), false) => g.clone(),
                (None, false) => {
                    let g = stored_games(ctx).await?;
                    self.games = Some(g.clone());
                    g
                }
            };
            let size = |b: &[u8]| crate::raw::extent(source, name, b, ctx.args.date, &games);
            let (old, new) = (size(&stored), size(&body));
            if smaller(new, old) {
                let held = key_of_held(source, date, name)?;
                let show = |e: Option<(usize, usize)>| match e {
                    Some((g, r)) => format!("{g} games, {r} rows"),
                    None => "unparseable".to_owned(),
                };
                self.held
                    .push(format!("{name} ({} < stored {})", show(new), show(old)));
                return ctx.put(&held, body).await;
            }
        }
        self.files += 1;
        self.bytes += i64::try_from(body.len()).unwrap_or(i64::MAX);
        ctx.put(k, body).await
    }
}

/// Whether a payload of extent `new` would lose data over a stored one of extent `old`: fewer
/// games or fewer rows, or it does not parse while the stored one does.
fn smaller(new: Option<(usize, usize)>, old: Option<(usize, usize)>) -> bool {
    match (new, old) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some((ng, nr)), Some((og, or))) => ng < og || nr < or,
    }
}

fn key_of_held(source: &str, date: &str, name: &str) -> Result<ObjectKey, Failure> {
    ObjectKey::from_segments(["held", source, date, name])
        .map_err(|e| Failure::Permanent(format!("object key held/{source}/{name}: {e}")))
}

/// The scrapers, one per upstream source.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scraper {
    Schedule,
    Boxscores,
    PlayByPlay,
    InjuryReport,
    PlayerProps,
    GameLines,
}

/// Runs one scraper with what every scraper shares: the `TIPOFF_GAME` warning and the
/// `files-written` / `bytes-written` checks.
async fn scraping(ctx: &mut Ctx, scraper: Scraper) -> Result<(), Failure> {
    let mut w = Written::default();
    if let Some(game) = ctx.config.game.clone() {
        if scraper == Scraper::Schedule {
            ctx.warn(format!(
                "TIPOFF_GAME={game} ignored: the schedule is one payload for the date"
            ));
        } else {
            ctx.warn(format!("limited to game {game} (TIPOFF_GAME)"));
        }
    }
    let r = match scraper {
        Scraper::Schedule => scrape_schedule(ctx, &mut w).await,
        Scraper::Boxscores => scrape_boxscores(ctx, &mut w).await,
        Scraper::PlayByPlay => scrape_pbp(ctx, &mut w).await,
        Scraper::InjuryReport => scrape_injuries(ctx, &mut w).await,
        Scraper::PlayerProps => scrape_props(ctx, &mut w).await,
        Scraper::GameLines => scrape_game_lines(ctx, &mut w).await,
    };
    ctx.check("files-written", true, Some(w.files), None, vec![]);
    ctx.check("bytes-written", true, Some(w.bytes), None, vec![]);
    let held = i64::try_from(w.held.len()).unwrap_or(i64::MAX);
    if held > 0 {
        ctx.warn(format!(
            "{held} payloads smaller than the stored ones kept under held/, not over them: {}",
            w.held.join(", ")
        ));
    }
    ctx.check(
        "payloads-not-smaller",
        held == 0,
        Some(held),
        Some(0),
        w.held,
    );
    r
}

/// `scrape-schedule`.
pub async fn schedule(ctx: &mut Ctx) -> Result<(), Failure> {
    scraping(ctx, Scraper::Schedule).await
}

/// `scrape-boxscores`.
pub async fn boxscores(ctx: &mut Ctx) -> Result<(), Failure> {
    scraping(ctx, Scraper::Boxscores).await
}

/// `scrape-play-by-play`.
pub async fn play_by_play(ctx: &mut Ctx) -> Result<(), Failure> {
    scraping(ctx, Scraper::PlayByPlay).await
}

/// `scrape-injury-report`.
pub async fn injury_report(ctx: &mut Ctx) -> Result<(), Failure> {
    scraping(ctx, Scraper::InjuryReport).await
}

/// `scrape-player-props`.
pub async fn player_props(ctx: &mut Ctx) -> Result<(), Failure> {
    scraping(ctx, Scraper::PlayerProps).await
}

/// `scrape-game-lines`.
pub async fn game_lines(ctx: &mut Ctx) -> Result<(), Failure> {
    scraping(ctx, Scraper::GameLines).await
}

fn unexpected(path: &str, status: u16, body: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    Failure::Permanent(format!("GET {path}: unexpected HTTP {status}: {text}"))
}

async fn scrape_schedule(ctx: &mut Ctx, w: &mut Written) -> Result<(), Failure> {
    let up = ctx.upstream()?;
    let path = schedule::SCHEDULE_PATH;
    let f = up.get(path, Auth::None).await?;
    if !f.is_ok() {
        return Err(unexpected(path, f.status, &f.body));
    }
    let k = key(source::SCHEDULE, ctx, SCHEDULE_FILE)?;
    w.store(ctx, &k, f.body.clone()).await?;
    // The schedule is what every other processor keys on: check it is usable now.
    match schedule::games_on(&f.body, ctx.args.date) {
        Ok(games) => {
            let n = i64::try_from(games.len()).unwrap_or(i64::MAX);
            ctx.check("schedule-parsed", true, Some(n), None, vec![]);
            if games.is_empty() {
                ctx.warn(format!("no games scheduled on {}", ctx.args.date));
            }
            Ok(())
        }
        Err(e) => {
            ctx.check("schedule-parsed", false, None, None, vec![e.clone()]);
            // A bad schedule blocks the whole date; upstream glitches are worth a retry.
            Err(Failure::Transient(format!(
                "schedule payload unusable: {e}"
            )))
        }
    }
}

async fn scrape_boxscores(ctx: &mut Ctx, w: &mut Written) -> Result<(), Failure> {
    let games = games_to_scrape(ctx).await?;
    let up = ctx.upstream()?;
    let path = format!("/bdl/v1/box_scores?date={}", ctx.args.date);
    let f = up.get(&path, Auth::Header).await?;
    if !f.is_ok() {
        return Err(unexpected(&path, f.status, &f.body));
    }
    let k = key(source::BOXSCORES, ctx, BOXSCORES_FILE)?;
    w.store(ctx, &k, f.body.clone()).await?;
    // Which games the payload covers (by NBA game id), if it parses at all.
    let covered: BTreeSet<String> = serde_json::from_slice::<serde_json::Value>(&f.body)
        .ok()
        .and_then(|v| v.get("data").and_then(|d| d.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|g| {
            g.get("nba_game_id")
                .and_then(|i| i.as_str())
                .map(str::to_owned)
        })
        .collect();
    let expected = games_expected_final(ctx.args.mode, &games);
    coverage_check(ctx, "boxscore-coverage", &expected, |g| {
        covered.contains(&g.game_id)
    });
    Ok(())
}

/// Adds a coverage check over `expected` games, naming the missing ones `AWY@HOM`.
pub fn coverage_check(ctx: &mut Ctx, name: &str, expected: &[&Game], has: impl Fn(&Game) -> bool) {
    let missing: Vec<String> = expected
        .iter()
        .filter(|g| !has(g))
        .map(|g| g.matchup())
        .collect();
    let n = i64::try_from(expected.len()).unwrap_or(i64::MAX);
    let observed = n - i64::try_from(missing.len()).unwrap_or(i64::MAX);
    ctx.check(name, missing.is_empty(), Some(observed), Some(n), missing);
}

async fn scrape_pbp(ctx: &mut Ctx, w: &mut Written) -> Result<(), Failure> {
    let games = games_to_scrape(ctx).await?;
    let up = ctx.upstream()?;
    let expected = games_expected_final(ctx.args.mode, &games);
    let mut have = BTreeSet::new();
    for g in &expected {
        let path = format!(
            "/nba/static/json/liveData/playbyplay/playbyplay_{}.json",
            g.game_id
        );
        let f = up.get(&path, Auth::None).await?;
        match f.status {
            200 => {
                let k = key(source::PLAY_BY_PLAY, ctx, &format!("{}.json", g.game_id))?;
                w.store(ctx, &k, f.body).await?;
                have.insert(g.game_id.clone());
            }
            404 => {}
            s => return Err(unexpected(&path, s, &f.body)),
        }
    }
    coverage_check(ctx, "pbp-coverage", &expected, |g| {
        have.contains(&g.game_id)
    });
    Ok(())
}

async fn scrape_injuries(ctx: &mut Ctx, w: &mut Written) -> Result<(), Failure> {
    let up = ctx.upstream()?;
    let path = format!("/nba/injury-report?date={}", ctx.args.date);
    let f = up.get(&path, Auth::None).await?;
    match f.status {
        200 => {
            let k = key(source::INJURY_REPORT, ctx, INJURY_FILE)?;
            w.store(ctx, &k, f.body).await?;
            ctx.check("injury-report-published", true, Some(1), Some(1), vec![]);
        }
        404 => {
            ctx.check(
                "injury-report-published",
                false,
                Some(0),
                Some(1),
                vec![format!("injury report {}", ctx.args.date)],
            );
        }
        s => return Err(unexpected(&path, s, &f.body)),
    }
    Ok(())
}

/// Props: the live event odds for games whose markets are open now, otherwise the historical
/// snapshot one hour before tip-off (Production runs the next day, Backfill later still).
async fn scrape_props(ctx: &mut Ctx, w: &mut Written) -> Result<(), Failure> {
    let games = games_to_scrape(ctx).await?;
    let up = ctx.upstream()?;
    let events_path = "/odds-api/v4/sports/basketball_nba/events";
    let f = up.get(events_path, Auth::Query).await?;
    if !f.is_ok() {
        return Err(unexpected(events_path, f.status, &f.body));
    }
    let open: BTreeSet<String> = serde_json::from_slice::<Vec<serde_json::Value>>(&f.body)
        .map_err(|e| Failure::Transient(format!("odds events payload unusable: {e}")))?
        .iter()
        .filter_map(|e| e.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .collect();
    let mut have = BTreeSet::new();
    let mut historical = 0i64;
    for g in &games {
        let eid = g.event_id();
        let path = if open.contains(&eid) {
            format!(
                "/odds-api/v4/sports/basketball_nba/events/{eid}/odds?markets=player_points&oddsFormat=american"
            )
        } else {
            let at = g
                .tipoff
                .checked_sub(jiff::SignedDuration::from_hours(1))
                .unwrap_or(g.tipoff);
            historical += 1;
            format!(
                "/odds-api/v4/historical/sports/basketball_nba/events/{eid}/odds?markets=player_points&oddsFormat=american&date={}",
                at.strftime("%Y-%m-%dT%H:%M:%SZ")
            )
        };
        let f = up.get(&path, Auth::Query).await?;
        match f.status {
            200 => {
                let k = key(source::PLAYER_PROPS, ctx, &format!("{}.json", g.game_id))?;
                w.store(ctx, &k, f.body).await?;
                have.insert(g.game_id.clone());
            }
            // Not open yet (or the snapshot time is in the upstream's future).
            400 | 404 | 422 => {}
            s => return Err(unexpected(&path, s, &f.body)),
        }
    }
    ctx.check("props-historical", true, Some(historical), None, vec![]);
    let all: Vec<&Game> = games.iter().collect();
    coverage_check(ctx, "props-coverage", &all, |g| have.contains(&g.game_id));
    Ok(())
}

/// Game lines: the live odds while the date's markets are open; once they are closed (the next
/// day, a backfill) the historical snapshot one hour before the date's first tip-off, which
/// holds every game of the date (markets open 20 h before tip-off).
async fn scrape_game_lines(ctx: &mut Ctx, w: &mut Written) -> Result<(), Failure> {
    let games = games_to_scrape(ctx).await?;
    let up = ctx.upstream()?;
    let path = "/odds-api/v4/sports/basketball_nba/odds?markets=spreads,totals&oddsFormat=american";
    let f = up.get(path, Auth::Query).await?;
    if !f.is_ok() {
        return Err(unexpected(path, f.status, &f.body));
    }
    let event_ids = |events: &serde_json::Value| -> BTreeSet<String> {
        events
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.get("id").and_then(|i| i.as_str()).map(str::to_owned))
            .collect()
    };
    let live: serde_json::Value = serde_json::from_slice(&f.body).unwrap_or_default();
    let mut ids = event_ids(&live);
    let all: Vec<&Game> = games.iter().collect();
    let k = key(source::GAME_LINES, ctx, GAME_LINES_FILE)?;
    let mut historical = 0i64;
    if all.iter().any(|g| ids.contains(&g.event_id())) || games.is_empty() {
        w.store(ctx, &k, f.body).await?;
    } else if let Some(first) = games.iter().map(|g| g.tipoff).min() {
        // No game of the date is live: closed (or not open yet). Ask for the snapshot.
        let at = first
            .checked_sub(jiff::SignedDuration::from_hours(1))
            .unwrap_or(first);
        let hist = format!(
            "/odds-api/v4/historical/sports/basketball_nba/odds?markets=spreads,totals&oddsFormat=american&date={}",
            at.strftime("%Y-%m-%dT%H:%M:%SZ")
        );
        let h = up.get(&hist, Auth::Query).await?;
        match h.status {
            200 => {
                let snapshot: serde_json::Value =
                    serde_json::from_slice(&h.body).unwrap_or_default();
                ids = event_ids(snapshot.get("data").unwrap_or(&serde_json::Value::Null));
                if all.iter().any(|g| ids.contains(&g.event_id())) {
                    historical = 1;
                    w.store(ctx, &k, h.body).await?;
                } else {
                    ctx.warn(format!(
                        "no game lines for {}: neither live nor in the snapshot at {at}",
                        ctx.args.date
                    ));
                }
            }
            // The snapshot time is still in the upstream's future (markets not open yet).
            400 | 404 | 422 => {
                if ctx.args.mode != Mode::SameDay {
                    ctx.warn(format!(
                        "no game lines for {}: not live and no snapshot at {at} (HTTP {})",
                        ctx.args.date, h.status
                    ));
                }
            }
            s => return Err(unexpected(&hist, s, &h.body)),
        }
    }
    ctx.check(
        "game-lines-historical",
        true,
        Some(historical),
        None,
        vec![],
    );
    coverage_check(ctx, "game-lines-coverage", &all, |g| {
        ids.contains(&g.event_id())
    });
    Ok(())
}
