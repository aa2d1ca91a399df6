//! `export-live`: follows D's games on the upstream while they are played and rewrites
//! `exports/v1/live/<D>.json` (each game's status and, once final, its score and every
//! player's points) and `exports/v1/live-grading/<D>.json` (D's published predictions against
//! those points: pending while the game is on, decided with its outcome once final) whenever
//! either changes. It exits 0 when every game of D is final, and fails (transient: a retry
//! picks up where it stopped) when they are not final after `TIPOFF_LIVE_MAX_SECS`.
//!
//! It needs no warehouse: scores come from the upstream (the schedule's status and final
//! scores, the box scores of the games that ended), predictions from the published
//! `exports/v1/predictions/<D>.json`. The dev upstream serves a game's box score only once the
//! game has ended, so points appear per game as it ends (docs/exports.md).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::export::{self, PredictionsFile, kind};
use super::grade;
use super::records::{GameResult, Prediction};
use crate::contract::Failure;
use crate::raw::parse;
use crate::runner::Ctx;
use crate::schedule::{self, Game};
use crate::tables::{BoxLine, Cells, Record};
use crate::upstream::Auth;

/// Default polling interval (the legacy ran every 3 minutes).
pub const DEFAULT_POLL: Duration = Duration::from_secs(180);
/// Default longest run: the legacy window, 7 PM to 2 AM Eastern, plus an hour.
pub const DEFAULT_MAX: Duration = Duration::from_secs(8 * 3600);

/// `exports/v1/live/<date>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveFile {
    /// `live`.
    pub kind: String,
    /// Export format version.
    pub version: String,
    /// The run's date.
    pub game_date: Date,
    /// Games of the date.
    pub games_total: u64,
    /// Games that are final.
    pub games_final: u64,
    /// By tip-off, then game id.
    pub games: Vec<LiveGame>,
}

/// One game as it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveGame {
    /// NBA.com game id.
    pub game_id: String,
    /// `AWY@HOM`.
    pub matchup: String,
    /// `scheduled`, `in_progress` or `final`.
    pub status: String,
    /// Tip-off (UTC).
    pub tipoff: Timestamp,
    /// Home tricode.
    pub home_team: String,
    /// Away tricode.
    pub away_team: String,
    /// Home score (final games).
    pub home_score: Option<i64>,
    /// Away score (final games).
    pub away_score: Option<i64>,
    /// Players' lines (once the upstream serves the game's box score), by team then player.
    pub players: Vec<LivePlayer>,
}

/// One player's line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivePlayer {
    /// Player key.
    pub player_lookup: String,
    /// Team.
    pub team_abbr: String,
    /// Points.
    pub points: i64,
    /// Minutes.
    pub minutes: f64,
    /// Did not play.
    pub dnp: bool,
}

/// `exports/v1/live-grading/<date>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveGradingFile {
    /// `live-grading`.
    pub kind: String,
    /// Export format version.
    pub version: String,
    /// The run's date.
    pub game_date: Date,
    /// Whether `exports/v1/predictions/<date>.json` was found (false: no predictions listed).
    pub predictions_published: bool,
    /// By system.
    pub systems: Vec<LiveSystem>,
}

/// One system's predictions as the games stand.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSystem {
    /// The system.
    pub system_id: String,
    /// Predictions whose game is final.
    pub decided: u64,
    /// Predictions whose game is not final.
    pub pending: u64,
    /// Decided WIN.
    pub wins: u64,
    /// Decided LOSS.
    pub losses: u64,
    /// Decided PUSH.
    pub pushes: u64,
    /// Decided VOID (DNP).
    pub voided: u64,
    /// By player, then game.
    pub predictions: Vec<LivePrediction>,
}

/// One prediction against the points so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivePrediction {
    /// The prediction.
    pub prediction_id: String,
    /// Player key.
    pub player_lookup: String,
    /// Game.
    pub game_id: String,
    /// OVER, UNDER or PASS.
    pub recommendation: String,
    /// The line.
    pub line: Option<f64>,
    /// Predicted points.
    pub predicted_points: f64,
    /// The game's status (`scheduled`, `in_progress`, `final`).
    pub game_status: String,
    /// Points so far (once the upstream has the player's line).
    pub points: Option<i64>,
    /// `pending` or `decided`.
    pub state: String,
    /// Once decided: WIN, LOSS, PUSH, PASS or VOID.
    pub outcome: Option<String>,
}

fn status_of(g: &Game) -> &'static str {
    match g.status {
        3 => "final",
        2 => "in_progress",
        _ => "scheduled",
    }
}

/// The live file from D's games and the box-score lines served so far.
pub fn live_file(date: Date, games: &[Game], lines: &[BoxLine]) -> LiveFile {
    let mut games: Vec<&Game> = games.iter().collect();
    games.sort_by(|a, b| (a.tipoff, &a.game_id).cmp(&(b.tipoff, &b.game_id)));
    let out: Vec<LiveGame> = games
        .iter()
        .map(|g| {
            let mut players: Vec<LivePlayer> = lines
                .iter()
                .filter(|l| l.game_id == g.game_id)
                .map(|l| LivePlayer {
                    player_lookup: l.player_lookup.clone(),
                    team_abbr: l.team.clone(),
                    points: l.points,
                    minutes: export::round(l.minutes),
                    dnp: l.dnp_reason.is_some() || l.minutes <= 0.0,
                })
                .collect();
            players.sort_by(|a, b| {
                (&a.team_abbr, &a.player_lookup).cmp(&(&b.team_abbr, &b.player_lookup))
            });
            LiveGame {
                game_id: g.game_id.clone(),
                matchup: g.matchup(),
                status: status_of(g).into(),
                tipoff: g.tipoff,
                home_team: g.home.clone(),
                away_team: g.away.clone(),
                home_score: g.home_score,
                away_score: g.away_score,
                players,
            }
        })
        .collect();
    LiveFile {
        kind: kind::LIVE.into(),
        version: export::VERSION.into(),
        game_date: date,
        games_total: out.len() as u64,
        games_final: games.iter().filter(|g| g.is_final()).count() as u64,
        games: out,
    }
}

/// The live-grading file: each published prediction pending until its game is final, then
/// graded as `grade-predictions` will grade it (a DNP voids it).
pub fn live_grading_file(
    date: Date,
    games: &[Game],
    lines: &[BoxLine],
    predictions: Option<&[Prediction]>,
) -> Result<LiveGradingFile, String> {
    let status: BTreeMap<&str, &Game> = games.iter().map(|g| (g.game_id.as_str(), g)).collect();
    let by_player: BTreeMap<(&str, &str), &BoxLine> = lines
        .iter()
        .map(|l| ((l.game_id.as_str(), l.player_lookup.as_str()), l))
        .collect();
    let mut systems: BTreeMap<String, LiveSystem> = BTreeMap::new();
    let mut sorted: Vec<&Prediction> = predictions.unwrap_or_default().iter().collect();
    sorted.sort_by(|a, b| {
        (&a.system_id, &a.player_lookup, &a.game_id).cmp(&(
            &b.system_id,
            &b.player_lookup,
            &b.game_id,
        ))
    });
    for p in sorted {
        let game = status.get(p.game_id.as_str());
        let line = by_player.get(&(p.game_id.as_str(), p.player_lookup.as_str()));
        let s = systems
            .entry(p.system_id.clone())
            .or_insert_with(|| LiveSystem {
                system_id: p.system_id.clone(),
                ..LiveSystem::default()
            });
        let final_ = game.is_some_and(|g| g.is_final());
        let outcome = match (final_, line) {
            (true, Some(l)) => {
                let r = GameResult {
                    player_lookup: l.player_lookup.clone(),
                    game_id: l.game_id.clone(),
                    minutes: l.minutes,
                    points: l.points,
                    dnp_reason: l.dnp_reason.clone(),
                };
                let g = grade::grade(p, &r)
                    .map_err(|e| format!("prediction {}: {e}", p.prediction_id))?;
                Some(g.outcome)
            }
            _ => None,
        };
        match outcome {
            Some(o) => {
                s.decided += 1;
                match o {
                    grade::Outcome::Win => s.wins += 1,
                    grade::Outcome::Loss => s.losses += 1,
                    grade::Outcome::Push => s.pushes += 1,
                    grade::Outcome::Void => s.voided += 1,
                    grade::Outcome::Pass => {}
                }
            }
            None => s.pending += 1,
        }
        s.predictions.push(LivePrediction {
            prediction_id: p.prediction_id.clone(),
            player_lookup: p.player_lookup.clone(),
            game_id: p.game_id.clone(),
            recommendation: p.recommendation.clone(),
            line: p.line.map(export::round),
            predicted_points: export::round(p.predicted_points),
            game_status: game.map_or("unknown", |g| status_of(g)).into(),
            points: line.map(|l| l.points),
            state: if outcome.is_some() {
                "decided"
            } else {
                "pending"
            }
            .into(),
            outcome: outcome.map(|o| o.as_str().to_owned()),
        });
    }
    Ok(LiveGradingFile {
        kind: kind::LIVE_GRADING.into(),
        version: export::VERSION.into(),
        game_date: date,
        predictions_published: predictions.is_some(),
        systems: systems.into_values().collect(),
    })
}

/// The published predictions of D, if `export-predictions` wrote them.
async fn published_predictions(ctx: &Ctx) -> Result<Option<Vec<Prediction>>, Failure> {
    let date = ctx.args.date;
    let key = export::key(kind::PREDICTIONS, date)?;
    let Some(bytes) = ctx.get(&key).await? else {
        return Ok(None);
    };
    let file: PredictionsFile = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::Permanent(format!(
            "{key} is not a predictions export: {e}: rerun export-predictions for {date}"
        ))
    })?;
    if file.game_date != date {
        return Err(Failure::Permanent(format!(
            "{key} holds game_date {}: rerun export-predictions for {date}",
            file.game_date
        )));
    }
    Ok(Some(
        file.systems
            .iter()
            .flat_map(|s| {
                s.predictions
                    .iter()
                    .map(|p| p.to_prediction(&s.system_id, date))
            })
            .collect(),
    ))
}

/// One look at the upstream: D's games and the box-score lines served so far.
async fn poll(ctx: &mut Ctx) -> Result<(Vec<Game>, Vec<BoxLine>), Failure> {
    let date = ctx.args.date;
    let up = ctx.upstream()?;
    let path = "/nba/static/json/staticData/scheduleLeagueV2.json";
    let f = up.get(path, Auth::None).await?;
    if !f.is_ok() {
        return Err(Failure::Transient(format!("GET {path}: HTTP {}", f.status)));
    }
    let games = schedule::games_on(&f.body, date)
        .map_err(|e| Failure::Transient(format!("GET {path}: unusable schedule: {e}")))?;
    let path = format!("/bdl/v1/box_scores?date={date}");
    let f = up.get(&path, Auth::Header).await?;
    if !f.is_ok() {
        return Err(Failure::Transient(format!("GET {path}: HTTP {}", f.status)));
    }
    let input = parse::Input {
        key: &path,
        name: "box_scores.json",
        date,
        games: &games,
        processed_at: ctx.processed_at(),
    };
    let rows = parse::boxscores(&f.body, &input)
        .map_err(|e| Failure::Transient(format!("GET {path}: unusable box scores: {e}")))?;
    let lines = rows
        .iter()
        .map(|r| BoxLine::from_cells(&Cells::new(r)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::Transient(format!("GET {path}: {e}")))?;
    Ok((games, lines))
}

/// `export-live`: polls every `TIPOFF_LIVE_POLL_SECS` until every game of D is final, for at
/// most `TIPOFF_LIVE_MAX_SECS`.
pub async fn export_live(ctx: &mut Ctx) -> Result<(), Failure> {
    let started = Instant::now();
    let date = ctx.args.date;
    let every = ctx.config.live_poll.unwrap_or(DEFAULT_POLL);
    let max = ctx.config.live_max.unwrap_or(DEFAULT_MAX);
    let predictions = published_predictions(ctx).await?;
    if predictions.is_none() {
        ctx.warn(format!(
            "exports/{}/predictions/{date}.json not found: live grading lists no predictions (run export-predictions for {date})",
            export::VERSION
        ));
    }
    ctx.check(
        "live-predictions-published",
        predictions.is_some(),
        None,
        None,
        vec![],
    );
    let live_key = export::key(kind::LIVE, date)?;
    let grading_key = export::key(kind::LIVE_GRADING, date)?;
    let mut last: Option<(bytes::Bytes, bytes::Bytes)> = None;
    let mut updates = 0i64;
    let mut polls = 0i64;
    loop {
        polls += 1;
        let (games, lines) = poll(ctx).await?;
        if games.is_empty() {
            ctx.warn(format!("no games on {date}: nothing to follow"));
            break;
        }
        let live = export::to_bytes(&live_file(date, &games, &lines))?;
        let grading =
            live_grading_file(date, &games, &lines, predictions.as_deref()).map_err(|e| {
                Failure::Permanent(format!(
                    "exports/{}/predictions/{date}.json: {e}: rerun export-predictions for {date}",
                    export::VERSION
                ))
            })?;
        let grading = export::to_bytes(&grading)?;
        if last.as_ref() != Some(&(live.clone(), grading.clone())) {
            ctx.put(&live_key, live.clone()).await?;
            ctx.put(&grading_key, grading.clone()).await?;
            updates += 1;
            last = Some((live, grading));
        }
        let not_final: Vec<String> = games
            .iter()
            .filter(|g| !g.is_final())
            .map(Game::matchup)
            .collect();
        let total = i64::try_from(games.len()).unwrap_or(i64::MAX);
        let finals = total - i64::try_from(not_final.len()).unwrap_or(i64::MAX);
        if not_final.is_empty() {
            ctx.check("live-games-final", true, Some(finals), Some(total), vec![]);
            break;
        }
        if started.elapsed() + every > max {
            ctx.check(
                "live-games-final",
                false,
                Some(finals),
                Some(total),
                not_final,
            );
            ctx.check("live-updates", true, Some(updates), Some(polls), vec![]);
            return Err(Failure::Transient(format!(
                "{} of {total} games of {date} not final after {} s (TIPOFF_LIVE_MAX_SECS)",
                total - finals,
                max.as_secs()
            )));
        }
        tokio::time::sleep(every).await;
    }
    ctx.check("live-updates", true, Some(updates), Some(polls), vec![]);
    let written = if last.is_some() {
        vec![live_key, grading_key]
    } else {
        vec![]
    };
    super::date_check(ctx, &written).await
}
