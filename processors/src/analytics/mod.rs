//! Phase 3: analytics. Five processors turn the raw tables into per-game summaries (after the
//! games: `player-game-summary`, `team-offense-game-summary`, `team-defense-game-summary`) and
//! pre-game contexts (`upcoming-player-game-context`, `upcoming-team-game-context`).
//!
//! The summaries are D's results: Production and Backfill write them; SameDay, before
//! tip-off, has none to write and says so. The contexts follow the as-of rule ([`asof`]): they
//! read only games before D and what was published before D's first tip-off, so the same
//! context comes out whichever mode computes it (Backfill's player list aside, see
//! [`asof::PlayerSource`]). The arithmetic is in [`summary`] and [`context`], pure functions
//! of their rows; this module reads, checks and writes.

pub mod asof;
pub mod context;
pub mod summary;

use std::collections::BTreeSet;

use tipoff_crds::Mode;

use crate::contract::Failure;
use crate::runner::Ctx;
use crate::tables::{
    self, BoxLine, InjuryLine, LineOutcome, Prop, Summary, TeamDefense, TeamOffense,
};

use self::asof::{Calendar, PlayerSource, day_before, days_before};

/// The processors of phase 3 that summarise D's own results. Later dates read their tables;
/// they read nothing of earlier dates (the demo loads history with them, and the benchmark
/// runs them a date ahead of the as-of processors).
pub const POST_GAME_PROCESSORS: [&str; 3] = [
    "player-game-summary",
    "team-offense-game-summary",
    "team-defense-game-summary",
];

const PLAYER_GAME_SUMMARY: &str =
    include_str!("../../../config/schemas/nba_analytics/player_game_summary.json");
const TEAM_OFFENSE: &str =
    include_str!("../../../config/schemas/nba_analytics/team_offense_game_summary.json");
const TEAM_DEFENSE: &str =
    include_str!("../../../config/schemas/nba_analytics/team_defense_game_summary.json");
const UPCOMING_PLAYER: &str =
    include_str!("../../../config/schemas/nba_analytics/upcoming_player_game_context.json");
const UPCOMING_TEAM: &str =
    include_str!("../../../config/schemas/nba_analytics/upcoming_team_game_context.json");

/// Reports a date without games: a warning, and `rows-written` expecting no rows.
fn nothing_to_write(ctx: &mut Ctx, table: &str) {
    ctx.warn(format!(
        "no games on {}: {table} has nothing to write",
        ctx.args.date
    ));
    asof::rows_written_check(ctx, table, 0, false);
}

/// D's box scores for a post-game summary, or `None` when the mode has none to summarise
/// (SameDay, or a date without games), after saying so in the result.
async fn post_game_inputs(
    ctx: &mut Ctx,
    wh: &dyn tipoff_warehouse::Warehouse,
    cal: &Calendar,
    table: &str,
) -> Result<Option<Vec<BoxLine>>, Failure> {
    let date = ctx.args.date;
    if cal.on(date).is_empty() {
        nothing_to_write(ctx, table);
        return Ok(None);
    }
    if ctx.args.mode == Mode::SameDay {
        // Before tip-off D's results do not exist and nothing downstream needs them: the
        // contexts and features for D read only earlier games (docs/modes.md).
        ctx.warn(format!(
            "SameDay: {date}'s results are loaded by the Production run the next day; {table} not written"
        ));
        asof::rows_written_check(ctx, table, 0, false);
        return Ok(None);
    }
    tables::read_required::<BoxLine>(wh, date, "raw-boxscores")
        .await
        .map(Some)
}

/// `player-game-summary`: D's box scores as one row per player-game (DNPs flagged, usage rate,
/// the closing consensus line and the over/under result against it).
pub async fn player_game_summary(ctx: &mut Ctx) -> Result<(), Failure> {
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let table = "nba_analytics.player_game_summary";
    let Some(lines) = post_game_inputs(ctx, wh.as_ref(), &cal, table).await? else {
        return Ok(());
    };
    let date = ctx.args.date;
    let props = tables::read::<Prop>(wh.as_ref(), date, date).await?;
    let rows = summary::player_rows(&lines, &props, date, ctx.processed_at())?;
    let n = tables::write_partition(ctx, wh.as_ref(), PLAYER_GAME_SUMMARY, &rows).await?;
    asof::rows_written_check(ctx, table, n, true);

    // Coverage: every player expected before tip-off has a line (a DNP line counts: he was
    // there, with 0 minutes).
    let games = cal.on(date);
    let recent = tables::read::<Summary>(
        wh.as_ref(),
        days_before(date, asof::ROSTER_WINDOW_DAYS),
        day_before(date),
    )
    .await?;
    let injuries = tables::read::<InjuryLine>(wh.as_ref(), date, date).await?;
    let expected: Vec<String> = asof::expected_players(&games, &recent, &injuries)
        .into_iter()
        .map(|p| p.player_lookup)
        .collect();
    let covered: BTreeSet<String> = lines.iter().map(|l| l.player_lookup.clone()).collect();
    asof::player_coverage_check(ctx, &expected, &covered);
    let dnp = lines.iter().filter(|l| l.minutes <= 0.0).count();
    ctx.check(
        "dnp-players",
        true,
        Some(i64::try_from(dnp).unwrap_or(i64::MAX)),
        None,
        vec![],
    );
    Ok(())
}

/// The builder of a team summary's rows from D's box-score lines.
type TeamRows = fn(&[BoxLine], jiff::civil::Date, jiff::Timestamp) -> Vec<tipoff_warehouse::Row>;

/// A team summary: D's box scores, one row per team per game, into `schema`'s table.
async fn team_summary(
    ctx: &mut Ctx,
    schema: &str,
    table: &str,
    build: TeamRows,
) -> Result<(), Failure> {
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let Some(lines) = post_game_inputs(ctx, wh.as_ref(), &cal, table).await? else {
        return Ok(());
    };
    let rows = build(&lines, ctx.args.date, ctx.processed_at());
    let n = tables::write_partition(ctx, wh.as_ref(), schema, &rows).await?;
    asof::rows_written_check(ctx, table, n, true);
    Ok(())
}

/// `team-offense-game-summary`: per team per game, points, shooting, estimated possessions
/// and offensive rating.
pub async fn team_offense_game_summary(ctx: &mut Ctx) -> Result<(), Failure> {
    let table = "nba_analytics.team_offense_game_summary";
    team_summary(ctx, TEAM_OFFENSE, table, summary::team_offense_rows).await
}

/// `team-defense-game-summary`: per team per game, what the opponent scored and shot, and the
/// defensive rating.
pub async fn team_defense_game_summary(ctx: &mut Ctx) -> Result<(), Failure> {
    let table = "nba_analytics.team_defense_game_summary";
    team_summary(ctx, TEAM_DEFENSE, table, summary::team_defense_rows).await
}

/// `upcoming-player-game-context`: one row per player expected on D (Backfill: per player who
/// played), with rest, injury status, the consensus line, spread and total, and rolling
/// averages before D.
pub async fn upcoming_player_game_context(ctx: &mut Ctx) -> Result<(), Failure> {
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let date = ctx.args.date;
    let table = "nba_analytics.upcoming_player_game_context";
    let games = cal.on(date);
    asof::history_gap_check(ctx, wh.as_ref(), &cal).await?;
    if games.is_empty() {
        nothing_to_write(ctx, table);
        return Ok(());
    }
    let history = asof::season_history(wh.as_ref(), &cal, date).await?;
    let injuries = tables::read::<InjuryLine>(wh.as_ref(), date, date).await?;
    let source = PlayerSource::for_mode(ctx.args.mode);
    let players = match source {
        PlayerSource::Expected => {
            let since = days_before(date, asof::ROSTER_WINDOW_DAYS);
            let recent: Vec<Summary> = history
                .values()
                .flatten()
                .filter(|s| s.game_date >= since)
                .cloned()
                .collect();
            asof::expected_players(&games, &recent, &injuries)
        }
        PlayerSource::Played => {
            let on_d =
                tables::read_required::<Summary>(wh.as_ref(), date, "player-game-summary").await?;
            asof::played_players(&games, &on_d, &injuries)
        }
    };
    let props = tables::read::<Prop>(wh.as_ref(), date, date).await?;
    let lines = tables::read::<LineOutcome>(wh.as_ref(), date, date).await?;
    let market = context::Market::new(&games, &props, &lines);
    let rows = context::player_rows(
        &players,
        &history,
        &cal,
        &market,
        source,
        date,
        ctx.processed_at(),
    );
    let n = tables::write_partition(ctx, wh.as_ref(), UPCOMING_PLAYER, &rows).await?;
    let knowable = asof::players_knowable(&cal, date, ctx.args.mode);
    if !knowable {
        ctx.warn(format!(
            "no team of {date} has played yet this season: nobody can be expected before tip-off"
        ));
    }
    asof::rows_written_check(ctx, table, n, knowable);
    let with_line = players
        .iter()
        .filter(|p| market.player_line(&p.player_lookup).is_some())
        .count();
    ctx.check(
        "players-with-line",
        true,
        Some(i64::try_from(with_line).unwrap_or(i64::MAX)),
        Some(i64::try_from(players.len()).unwrap_or(i64::MAX)),
        vec![],
    );
    if source == PlayerSource::Played {
        ctx.warn(format!(
            "Backfill: players are who actually played on {date} (player_game_summary), not who was expected"
        ));
    }
    Ok(())
}

/// `upcoming-team-game-context`: one row per team playing on D, with rest, spread, total,
/// implied points and rolling team ratings before D.
pub async fn upcoming_team_game_context(ctx: &mut Ctx) -> Result<(), Failure> {
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let date = ctx.args.date;
    let table = "nba_analytics.upcoming_team_game_context";
    let games = cal.on(date);
    asof::history_gap_check(ctx, wh.as_ref(), &cal).await?;
    if games.is_empty() {
        nothing_to_write(ctx, table);
        return Ok(());
    }
    let from = cal.season_start(date);
    let offense = tables::read::<TeamOffense>(wh.as_ref(), from, day_before(date)).await?;
    let defense = tables::read::<TeamDefense>(wh.as_ref(), from, day_before(date)).await?;
    let injuries = tables::read::<InjuryLine>(wh.as_ref(), date, date).await?;
    let props = tables::read::<Prop>(wh.as_ref(), date, date).await?;
    let lines = tables::read::<LineOutcome>(wh.as_ref(), date, date).await?;
    let market = context::Market::new(&games, &props, &lines);
    let rows = context::team_rows(
        &games,
        &offense,
        &defense,
        &injuries,
        &cal,
        &market,
        date,
        ctx.processed_at(),
    );
    let n = tables::write_partition(ctx, wh.as_ref(), UPCOMING_TEAM, &rows).await?;
    asof::rows_written_check(ctx, table, n, true);
    Ok(())
}
