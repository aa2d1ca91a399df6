//! Ground truth: the latent parameters and, per player-game, the points the best possible
//! predictor would expect before tip-off (it knows the latents, the matchup, rest and the
//! injury report, but not the game's randomness). Prediction quality can then be compared with
//! this ceiling.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::season::Season;

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON arrays.
    Json,
    /// CSV with a header row.
    Csv,
}

/// One player's latents.
#[derive(Debug, Serialize)]
pub struct PlayerTruth {
    /// Normalised key.
    pub player_lookup: String,
    /// Display name.
    pub player_name: String,
    /// Team tricode.
    pub team_abbr: &'static str,
    /// Mean minutes at full roster.
    pub minutes_mean: f64,
    /// Expected points per minute against an average defence.
    pub points_per_min: f64,
    /// Field-goal attempts per minute.
    pub fga_per_min: f64,
    /// Free-throw attempts per minute.
    pub fta_per_min: f64,
    /// Free-throw percentage.
    pub ft_pct: f64,
    /// Usage proxy.
    pub usage: f64,
    /// Attempt share per zone (restricted area, paint, mid-range, corner three, above-break three).
    pub zone_mix: [f64; 5],
    /// Make probability per zone.
    pub zone_pct: [f64; 5],
    /// Per-game injury probability.
    pub injury_proneness: f64,
}

/// One player-game's truth.
#[derive(Debug, Serialize)]
pub struct PlayerGameTruth {
    /// NBA.com game id.
    pub game_id: String,
    /// Game date.
    pub game_date: String,
    /// Player key.
    pub player_lookup: String,
    /// Team.
    pub team_abbr: &'static str,
    /// Opponent.
    pub opponent_team_abbr: &'static str,
    /// At home.
    pub is_home: bool,
    /// Probability of playing known before tip-off.
    pub play_probability: f64,
    /// Expected minutes if he plays.
    pub expected_minutes: f64,
    /// Expected points if he plays.
    pub expected_points: f64,
    /// Whether he played.
    pub played: bool,
    /// Minutes played.
    pub minutes: f64,
    /// Points scored.
    pub points: u32,
}

/// Latents of every player.
pub fn players(season: &Season) -> Vec<PlayerTruth> {
    season
        .league
        .players
        .iter()
        .map(|p| PlayerTruth {
            player_lookup: p.lookup(),
            player_name: p.name(),
            team_abbr: season.league.teams[p.team].abbr,
            minutes_mean: p.minutes_mean,
            points_per_min: p.points_per_min,
            fga_per_min: p.fga_per_min,
            fta_per_min: p.fta_per_min,
            ft_pct: p.ft_pct,
            usage: p.usage,
            zone_mix: p.zone_mix,
            zone_pct: p.zone_pct,
            injury_proneness: p.injury_proneness,
        })
        .collect()
}

/// Truth for every player-game.
pub fn player_games(season: &Season) -> Vec<PlayerGameTruth> {
    season
        .player_games
        .iter()
        .map(|pg| {
            let game = &season.games[pg.game];
            let opp = if pg.team == game.home {
                game.away
            } else {
                game.home
            };
            PlayerGameTruth {
                game_id: game.game_id.clone(),
                game_date: game.date.to_string(),
                player_lookup: season.league.players[pg.player].lookup(),
                team_abbr: season.league.teams[pg.team].abbr,
                opponent_team_abbr: season.league.teams[opp].abbr,
                is_home: pg.team == game.home,
                play_probability: pg.play_probability,
                expected_minutes: pg.expected_minutes,
                expected_points: pg.expected_points,
                played: pg.dnp_reason.is_none(),
                minutes: f64::from(pg.seconds) / 60.0,
                points: pg.pts,
            }
        })
        .collect()
}

fn csv_players(rows: &[PlayerTruth]) -> String {
    let mut out = String::from(
        "player_lookup,player_name,team_abbr,minutes_mean,points_per_min,fga_per_min,fta_per_min,ft_pct,usage,\
         zone_mix_restricted_area,zone_mix_paint,zone_mix_mid_range,zone_mix_corner_three,zone_mix_above_break_three,\
         zone_pct_restricted_area,zone_pct_paint,zone_pct_mid_range,zone_pct_corner_three,zone_pct_above_break_three,injury_proneness\n",
    );
    for r in rows {
        let _ = write!(
            out,
            "{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6}",
            r.player_lookup,
            r.player_name,
            r.team_abbr,
            r.minutes_mean,
            r.points_per_min,
            r.fga_per_min,
            r.fta_per_min,
            r.ft_pct,
            r.usage
        );
        for v in r.zone_mix.iter().chain(&r.zone_pct) {
            let _ = write!(out, ",{v:.6}");
        }
        let _ = writeln!(out, ",{:.6}", r.injury_proneness);
    }
    out
}

fn csv_player_games(rows: &[PlayerGameTruth]) -> String {
    let mut out = String::from(
        "game_id,game_date,player_lookup,team_abbr,opponent_team_abbr,is_home,play_probability,\
         expected_minutes,expected_points,played,minutes,points\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{:.4},{:.4},{:.4},{},{:.4},{}",
            r.game_id,
            r.game_date,
            r.player_lookup,
            r.team_abbr,
            r.opponent_team_abbr,
            r.is_home,
            r.play_probability,
            r.expected_minutes,
            r.expected_points,
            r.played,
            r.minutes,
            r.points
        );
    }
    out
}

/// The export as (file name, bytes) pairs, without touching the filesystem.
pub fn render(
    season: &Season,
    format: Format,
) -> Result<Vec<(String, Vec<u8>)>, serde_json::Error> {
    let players = players(season);
    let games = player_games(season);
    Ok(match format {
        Format::Json => vec![
            ("players.json".into(), serde_json::to_vec_pretty(&players)?),
            ("player_games.json".into(), serde_json::to_vec(&games)?),
        ],
        Format::Csv => vec![
            ("players.csv".into(), csv_players(&players).into_bytes()),
            (
                "player_games.csv".into(),
                csv_player_games(&games).into_bytes(),
            ),
        ],
    })
}

/// Writes the export into `dir`; returns the files written.
pub fn write(season: &Season, dir: &Path, format: Format) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, bytes) in render(season, format)? {
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        written.push(path);
    }
    Ok(written)
}
