//! Phase 4: precompute and the ML feature store. Four processors build what the features need
//! as of D (`team-defense-zone-analysis`, `player-shot-zone-analysis`, `player-daily-cache`,
//! `player-composite-factors`), and `ml-feature-store` joins them into one versioned feature
//! vector per player expected on D ([`crate::features`]).
//!
//! Every table here is as of D: built from games before D and D's pre-tip-off context (phase
//! 3), never from D's results, in every mode (`docs/modes.md`). The arithmetic is in [`zones`]
//! and [`factors`]; this module reads, checks and writes.

pub mod factors;
pub mod minutes;
pub mod records;
pub mod zones;

use std::collections::{BTreeMap, BTreeSet};

use tipoff_warehouse::{Row, Value, Warehouse};

use crate::analytics::asof::{self, Calendar, day_before, days_before, rolling};
use crate::contract::Failure;
use crate::features::{self, FEATURE_COUNT, FEATURE_VERSION};
use crate::runner::Ctx;
use crate::tables::{self, InjuryLine, Shot, Summary, TeamDefense, row};

use self::records::{Composite, DailyCache, PlayerContext, PlayerZones, TeamContext, TeamZones};

const TEAM_DEFENSE_ZONES: &str =
    include_str!("../../../config/schemas/nba_precompute/team_defense_zone_analysis.json");
const PLAYER_SHOT_ZONES: &str =
    include_str!("../../../config/schemas/nba_precompute/player_shot_zone_analysis.json");
const PLAYER_DAILY_CACHE: &str =
    include_str!("../../../config/schemas/nba_precompute/player_daily_cache.json");
const COMPOSITE_FACTORS: &str =
    include_str!("../../../config/schemas/nba_precompute/player_composite_factors.json");
const FEATURE_STORE: &str =
    include_str!("../../../config/schemas/nba_predictions/ml_feature_store_v2.json");

/// Days of play-by-play the zone analyses read: enough for a team's last 10 games (teams play
/// three or four a week) and a player's last 10, the samples of [`zones`].
pub const ZONE_WINDOW_DAYS: i64 = 24;

/// D's player list (phase 3's `upcoming_player_game_context`): required, unless nobody can be
/// known for D yet (opening night, [`asof::players_knowable`]), when it is empty and the
/// second value says no rows are expected.
async fn players_of_the_date(
    ctx: &mut Ctx,
    wh: &dyn Warehouse,
    cal: &Calendar,
) -> Result<(Vec<PlayerContext>, bool), Failure> {
    let date = ctx.args.date;
    if !asof::players_knowable(cal, date, ctx.args.mode) {
        ctx.warn(format!(
            "no team of {date} has played yet this season: no player is expected, nothing to write"
        ));
        return Ok((Vec::new(), false));
    }
    let mut players =
        tables::read_required::<PlayerContext>(wh, date, "upcoming-player-game-context").await?;
    players.sort_by(|a, b| {
        (&a.game_id, &a.team, &a.player_lookup).cmp(&(&b.game_id, &b.team, &b.player_lookup))
    });
    Ok((players, true))
}

/// `None` (after reporting an empty date: no rows and no players expected) when D has no
/// games. Every gate is still reported, since the operator reads a gate that is not as failed.
async fn games_or_skip(ctx: &mut Ctx, cal: &Calendar, table: &str) -> Option<()> {
    if cal.on(ctx.args.date).is_empty() {
        ctx.warn(format!(
            "no games on {}: {table} has nothing to write",
            ctx.args.date
        ));
        asof::rows_written_check(ctx, table, 0, false);
        asof::player_coverage_check(ctx, &[], &BTreeSet::new());
        ctx.check("feature-sources", true, Some(0), Some(0), vec![]);
        return None;
    }
    Some(())
}

/// The zone sample's shots: play-by-play of the [`ZONE_WINDOW_DAYS`] before D. Whether rows
/// are expected: some date in the window had games.
async fn zone_window(
    wh: &dyn Warehouse,
    cal: &Calendar,
    date: jiff::civil::Date,
) -> Result<(Vec<Shot>, bool), Failure> {
    let from = days_before(date, ZONE_WINDOW_DAYS).max(cal.season_start(date));
    let shots = tables::read::<Shot>(wh, from, day_before(date)).await?;
    let expected = cal.game_dates_before(date).range(from..).next().is_some();
    Ok((shots, expected))
}

/// `team-defense-zone-analysis`: each team's defence by shot zone over its last 10 games.
pub async fn team_defense_zone_analysis(ctx: &mut Ctx) -> Result<(), Failure> {
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let table = "nba_precompute.team_defense_zone_analysis";
    if games_or_skip(ctx, &cal, table).await.is_none() {
        return Ok(());
    }
    let date = ctx.args.date;
    let (shots, expected) = zone_window(wh.as_ref(), &cal, date).await?;
    let from = days_before(date, ZONE_WINDOW_DAYS);
    let defense = tables::read::<TeamDefense>(wh.as_ref(), from, day_before(date)).await?;
    let rows =
        zones::team_defense_rows(&shots, &defense, &cal.teams_of(), date, ctx.processed_at());
    let n = tables::write_partition(ctx, wh.as_ref(), TEAM_DEFENSE_ZONES, &rows).await?;
    asof::rows_written_check(ctx, table, n, expected);
    Ok(())
}

/// `player-shot-zone-analysis`: each player's shot mix and efficiency over his last 10 games.
pub async fn player_shot_zone_analysis(ctx: &mut Ctx) -> Result<(), Failure> {
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let table = "nba_precompute.player_shot_zone_analysis";
    if games_or_skip(ctx, &cal, table).await.is_none() {
        return Ok(());
    }
    let date = ctx.args.date;
    let (shots, expected) = zone_window(wh.as_ref(), &cal, date).await?;
    let rows = zones::player_rows(&shots, date, ctx.processed_at());
    let n = tables::write_partition(ctx, wh.as_ref(), PLAYER_SHOT_ZONES, &rows).await?;
    asof::rows_written_check(ctx, table, n, expected);
    Ok(())
}

/// `player-daily-cache`: rolling statistics before D for every player of D.
pub async fn player_daily_cache(ctx: &mut Ctx) -> Result<(), Failure> {
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let table = "nba_precompute.player_daily_cache";
    asof::history_gap_check(ctx, wh.as_ref(), &cal).await?;
    if games_or_skip(ctx, &cal, table).await.is_none() {
        return Ok(());
    }
    let date = ctx.args.date;
    let (players, expected) = players_of_the_date(ctx, wh.as_ref(), &cal).await?;
    let history = asof::season_history(wh.as_ref(), &cal, date).await?;
    let processed_at = ctx.processed_at();
    let rows: Vec<Row> = players
        .iter()
        .map(|p| {
            let games: Vec<&Summary> = history
                .get(&p.player_lookup)
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            let r = rolling(&games, date);
            row(vec![
                ("player_lookup", p.player_lookup.as_str().into()),
                ("cache_date", date.into()),
                ("team_abbr", p.team.as_str().into()),
                ("games_played_season", r.games_played_season.into()),
                ("points_avg_last_5", r.points_avg_last_5.into()),
                ("points_avg_last_10", r.points_avg_last_10.into()),
                ("points_avg_season", r.points_avg_season.into()),
                ("points_std_last_10", r.points_std_last_10.into()),
                ("minutes_avg_last_10", r.minutes_avg_last_10.into()),
                ("usage_rate_last_10", r.usage_rate_last_10.into()),
                ("processed_at", Value::timestamp(processed_at)),
            ])
        })
        .collect();
    let n = tables::write_partition(ctx, wh.as_ref(), PLAYER_DAILY_CACHE, &rows).await?;
    asof::rows_written_check(ctx, table, n, expected);
    coverage(ctx, &players, &rows);
    let no_history = players
        .iter()
        .filter(|p| {
            history
                .get(&p.player_lookup)
                .is_none_or(|v| v.iter().all(|s| !s.is_active))
        })
        .count();
    ctx.check(
        "players-without-history",
        true,
        Some(i64::try_from(no_history).unwrap_or(i64::MAX)),
        None,
        vec![],
    );
    Ok(())
}

/// `player-coverage` of a per-player table against D's players.
fn coverage(ctx: &mut Ctx, players: &[PlayerContext], rows: &[Row]) {
    let expected: Vec<String> = players.iter().map(|p| p.player_lookup.clone()).collect();
    let covered: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| match r.get("player_lookup") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        })
        .collect();
    asof::player_coverage_check(ctx, &expected, &covered);
}

fn keyed<T>(rows: Vec<T>, key: impl Fn(&T) -> String) -> BTreeMap<String, T> {
    rows.into_iter().map(|r| (key(&r), r)).collect()
}

/// The phase 4 and phase 3 inputs of the composite factors and the feature store, keyed.
struct Joined {
    cache: BTreeMap<String, DailyCache>,
    player_zones: BTreeMap<String, PlayerZones>,
    team_zones: BTreeMap<String, TeamZones>,
    team_context: BTreeMap<String, TeamContext>,
}

impl Joined {
    async fn read(wh: &dyn Warehouse, date: jiff::civil::Date) -> Result<Self, Failure> {
        Ok(Self {
            cache: keyed(tables::read::<DailyCache>(wh, date, date).await?, |r| {
                r.player_lookup.clone()
            }),
            player_zones: keyed(tables::read::<PlayerZones>(wh, date, date).await?, |r| {
                r.player_lookup.clone()
            }),
            team_zones: keyed(tables::read::<TeamZones>(wh, date, date).await?, |r| {
                r.team.clone()
            }),
            team_context: keyed(tables::read::<TeamContext>(wh, date, date).await?, |r| {
                r.team.clone()
            }),
        })
    }

    /// The source tables with no rows for the date.
    fn empty_sources(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.cache.is_empty() {
            out.push("nba_precompute.player_daily_cache");
        }
        if self.player_zones.is_empty() {
            out.push("nba_precompute.player_shot_zone_analysis");
        }
        if self.team_zones.is_empty() {
            out.push("nba_precompute.team_defense_zone_analysis");
        }
        if self.team_context.is_empty() {
            out.push("nba_analytics.upcoming_team_game_context");
        }
        out
    }
}

/// `player-composite-factors`: fatigue, shot-zone mismatch, pace and usage spike, in points.
pub async fn player_composite_factors(ctx: &mut Ctx) -> Result<(), Failure> {
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let table = "nba_precompute.player_composite_factors";
    if games_or_skip(ctx, &cal, table).await.is_none() {
        return Ok(());
    }
    let date = ctx.args.date;
    let (players, expected) = players_of_the_date(ctx, wh.as_ref(), &cal).await?;
    let joined = Joined::read(wh.as_ref(), date).await?;
    if joined.cache.is_empty() && expected {
        return Err(Failure::Permanent(format!(
            "nba_precompute.player_daily_cache has no rows for {date}: run player-daily-cache for {date} first"
        )));
    }
    // Teammates listed Out: their last-10 points are the usage the others may absorb.
    let injuries = tables::read::<InjuryLine>(wh.as_ref(), date, date).await?;
    let recent = tables::read::<Summary>(
        wh.as_ref(),
        days_before(date, asof::ROSTER_WINDOW_DAYS),
        day_before(date),
    )
    .await?;
    let recent = tables::by_key(recent, |s| s.player_lookup.as_str());
    let mut out_points: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for i in injuries.iter().filter(|i| i.status == "Out") {
        let games: Vec<&Summary> = recent
            .get(&i.player_lookup)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        if let Some(p) = rolling(&games, date).points_avg_last_10 {
            out_points.entry(i.team.clone()).or_default().push(p);
        }
    }
    let mut team_usage: BTreeMap<String, f64> = BTreeMap::new();
    for p in &players {
        if let Some(u) = joined
            .cache
            .get(&p.player_lookup)
            .and_then(|c| c.usage_rate_last_10)
        {
            *team_usage.entry(p.team.clone()).or_default() += u;
        }
    }
    let inputs = factors::Inputs {
        cache: &joined.cache,
        player_zones: &joined.player_zones,
        team_zones: &joined.team_zones,
        team_context: &joined.team_context,
        out_points: &out_points,
        team_usage: &team_usage,
    };
    let processed_at = ctx.processed_at();
    let mut missing: BTreeSet<&'static str> = BTreeSet::new();
    let rows: Vec<Row> = players
        .iter()
        .map(|p| {
            let f = factors::factors(p, &inputs);
            missing.extend(f.missing.iter().copied());
            row(vec![
                ("player_lookup", p.player_lookup.as_str().into()),
                ("game_id", p.game_id.as_str().into()),
                ("game_date", date.into()),
                ("fatigue_score", f.fatigue.into()),
                ("shot_zone_mismatch_score", f.shot_zone_mismatch.into()),
                ("pace_score", f.pace.into()),
                ("usage_spike_score", f.usage_spike.into()),
                ("total_composite_adjustment", f.total().into()),
                ("processed_at", Value::timestamp(processed_at)),
            ])
        })
        .collect();
    let n = tables::write_partition(ctx, wh.as_ref(), COMPOSITE_FACTORS, &rows).await?;
    asof::rows_written_check(ctx, table, n, expected);
    coverage(ctx, &players, &rows);
    if !missing.is_empty() {
        ctx.warn(format!(
            "some factors are 0 for lack of input: {}",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// `ml-feature-store`: one versioned feature vector per player of D. A missing source does not
/// stop it: the features fall back to their defaults, `feature_quality_score` drops, and the
/// `feature-sources` check names the source (the legacy store wrote 273 rows while team
/// defence zones had none, and nobody was told).
pub async fn ml_feature_store(ctx: &mut Ctx) -> Result<(), Failure> {
    let wh = ctx.warehouse().await?;
    let cal = Calendar::load(ctx).await?;
    let table = "nba_predictions.ml_feature_store_v2";
    asof::history_gap_check(ctx, wh.as_ref(), &cal).await?;
    if games_or_skip(ctx, &cal, table).await.is_none() {
        return Ok(());
    }
    let date = ctx.args.date;
    let (players, expected) = players_of_the_date(ctx, wh.as_ref(), &cal).await?;
    let joined = Joined::read(wh.as_ref(), date).await?;
    let composite = keyed(
        tables::read::<Composite>(wh.as_ref(), date, date).await?,
        |r| r.player_lookup.clone(),
    );
    let history = asof::season_history(wh.as_ref(), &cal, date).await?;
    let available: Vec<minutes::Available> = players
        .iter()
        .map(|p| minutes::Available {
            player_lookup: &p.player_lookup,
            team: &p.team,
            injury_status: p.injury_status.as_deref(),
        })
        .collect();
    let minutes = minutes::expected_minutes(&available, &history, date);
    // Without players (opening night) every player source is empty by design.
    let mut empty = if expected {
        joined.empty_sources()
    } else {
        Vec::new()
    };
    if composite.is_empty() && expected {
        empty.push("nba_precompute.player_composite_factors");
    }
    let processed_at = ctx.processed_at();
    let mut rows = Vec::with_capacity(players.len());
    let mut qualities = Vec::with_capacity(players.len());
    for p in &players {
        let v = vector(
            p,
            &joined,
            composite.get(&p.player_lookup),
            minutes.get(&p.player_lookup),
        )
        .map_err(|e| Failure::Permanent(format!("building features: {e}")))?;
        // `players=<source>` then the tables that gave at least one feature.
        let data_source: Vec<String> = std::iter::once(format!("players={}", p.player_source))
            .chain(
                v.sources_used()
                    .into_iter()
                    .map(|s| s.split_once('.').map_or(s, |(_, t)| t).to_owned()),
            )
            .collect();
        let data_source = data_source.join(",");
        qualities.push(v.quality_score());
        rows.push(row(vec![
            ("player_lookup", p.player_lookup.as_str().into()),
            ("game_id", p.game_id.as_str().into()),
            ("game_date", date.into()),
            ("feature_version", FEATURE_VERSION.into()),
            (
                "feature_count",
                i64::try_from(FEATURE_COUNT).unwrap_or(i64::MAX).into(),
            ),
            ("features_json", v.to_json().into()),
            ("feature_quality_score", v.quality_score().into()),
            ("data_source", data_source.into()),
            ("processed_at", Value::timestamp(processed_at)),
        ]));
    }
    let n = tables::write_partition(ctx, wh.as_ref(), FEATURE_STORE, &rows).await?;
    asof::rows_written_check(ctx, table, n, expected);
    coverage(ctx, &players, &rows);
    let sources = features::sources();
    let present = i64::try_from(sources.len() - empty.len().min(sources.len())).unwrap_or(0);
    ctx.check(
        "feature-sources",
        empty.is_empty(),
        Some(present),
        Some(i64::try_from(sources.len()).unwrap_or(i64::MAX)),
        empty.iter().map(|s| (*s).to_owned()).collect(),
    );
    if !empty.is_empty() {
        ctx.warn(format!(
            "features defaulted for missing sources: {}",
            empty.join(", ")
        ));
    }
    let mean_quality = if qualities.is_empty() {
        0.0
    } else {
        qualities.iter().sum::<f64>() / qualities.len() as f64
    };
    ctx.check(
        "feature-quality-mean",
        true,
        Some(mean_quality.round() as i64),
        Some(100),
        vec![],
    );
    Ok(())
}

/// One player's feature vector from the joined sources.
fn vector(
    p: &PlayerContext,
    j: &Joined,
    composite: Option<&Composite>,
    minutes: Option<&minutes::MinutesView>,
) -> Result<features::Vector, String> {
    let mut v = features::Vector::new();
    let c = j.cache.get(&p.player_lookup);
    v.set("points_avg_last_5", c.and_then(|c| c.points_avg_last_5))?;
    v.set("points_avg_last_10", c.and_then(|c| c.points_avg_last_10))?;
    v.set("points_avg_season", c.and_then(|c| c.points_avg_season))?;
    v.set("points_std_last_10", c.and_then(|c| c.points_std_last_10))?;
    v.set("minutes_avg_last_10", c.and_then(|c| c.minutes_avg_last_10))?;
    v.set("usage_rate_last_10", c.and_then(|c| c.usage_rate_last_10))?;
    v.set(
        "games_played_season",
        c.map(|c| c.games_played_season as f64),
    )?;
    v.set("days_rest", p.days_rest.map(|d| d as f64))?;
    v.set(
        "is_back_to_back",
        Some(f64::from(u8::from(p.is_back_to_back))),
    )?;
    v.set("is_home", Some(f64::from(u8::from(p.is_home))))?;
    let questionable = matches!(
        p.injury_status.as_deref(),
        Some("Questionable" | "Doubtful")
    );
    v.set(
        "injury_questionable",
        Some(f64::from(u8::from(questionable))),
    )?;
    v.set("current_points_line", p.current_points_line)?;
    v.set("game_spread", p.game_spread)?;
    v.set("game_total", p.game_total)?;
    let tc = j.team_context.get(&p.team);
    v.set(
        "implied_team_points",
        tc.and_then(|t| t.implied_team_points),
    )?;
    v.set("team_pace_last_10", tc.and_then(|t| t.pace_last_10))?;
    v.set(
        "opp_defensive_rating_last_10",
        tc.and_then(|t| t.opponent_defensive_rating_last_10),
    )?;
    v.set("fatigue_score", composite.map(|c| c.fatigue_score))?;
    v.set(
        "shot_zone_mismatch_score",
        composite.map(|c| c.shot_zone_mismatch_score),
    )?;
    v.set("pace_score", composite.map(|c| c.pace_score))?;
    v.set("usage_spike_score", composite.map(|c| c.usage_spike_score))?;
    let pz = j.player_zones.get(&p.player_lookup);
    v.set("paint_rate", pz.and_then(|z| z.rates[0]))?;
    v.set("three_pt_rate", pz.and_then(|z| z.rates[2]))?;
    let tz = j.team_zones.get(&p.opponent);
    v.set("opp_paint_pct_allowed", tz.and_then(|z| z.pct_allowed[0]))?;
    v.set(
        "opp_three_pt_pct_allowed",
        tz.and_then(|z| z.pct_allowed[2]),
    )?;
    v.set(
        "minutes_avg_season",
        minutes.and_then(|m| m.minutes_avg_season),
    )?;
    v.set(
        "points_per_minute_season",
        minutes.and_then(|m| m.points_per_minute_season),
    )?;
    v.set("expected_minutes", minutes.and_then(|m| m.expected_minutes))?;
    Ok(v)
}
