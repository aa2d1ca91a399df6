//! The simulated season: every game's box scores, shots, injury reports and bookmaker lines,
//! all drawn from the league's latent parameters with a fixed seed.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::{Span, Timestamp};
use serde::Serialize;

use crate::league::{League, ZONE_POINTS, ZONES};
use crate::rng::Rng;
use crate::schedule::{self, Game};

/// Bookmakers quoting lines.
pub const BOOKMAKERS: [&str; 2] = ["draftkings", "fanduel"];

/// One player's line in one game (including players who did not play).
#[derive(Debug, Clone, Serialize)]
pub struct PlayerGame {
    /// Index into [`Season::games`].
    pub game: usize,
    /// Index into [`League::players`].
    pub player: usize,
    /// Index of his team.
    pub team: usize,
    /// Seconds played.
    pub seconds: u32,
    /// Points.
    pub pts: u32,
    /// Field goals made (threes included).
    pub fgm: u32,
    /// Field goals attempted.
    pub fga: u32,
    /// Threes made.
    pub fg3m: u32,
    /// Threes attempted.
    pub fg3a: u32,
    /// Free throws made.
    pub ftm: u32,
    /// Free throws attempted.
    pub fta: u32,
    /// Rebounds.
    pub reb: u32,
    /// Assists.
    pub ast: u32,
    /// Why he did not play, if he did not.
    pub dnp_reason: Option<String>,
    /// Shots: (zone index, made).
    #[serde(skip)]
    pub shots: Vec<(u8, bool)>,
    /// Ground truth: minutes expected before tip-off if he plays.
    pub expected_minutes: f64,
    /// Ground truth: points expected before tip-off if he plays.
    pub expected_points: f64,
    /// Ground truth: probability he plays, as known before tip-off.
    pub play_probability: f64,
}

/// One line of an injury report.
#[derive(Debug, Clone, Serialize)]
pub struct InjuryEntry {
    /// Game index.
    pub game: usize,
    /// Player index.
    pub player: usize,
    /// `Out`, `Doubtful`, `Questionable` or `Probable`.
    pub status: &'static str,
    /// Reported reason.
    pub reason: String,
}

/// A bookmaker's points prop for a player in a game.
#[derive(Debug, Clone, Serialize)]
pub struct PropLine {
    /// Game index.
    pub game: usize,
    /// Player index.
    pub player: usize,
    /// Bookmaker key.
    pub bookmaker: &'static str,
    /// The line (always x.5).
    pub line: f64,
    /// Over price, American odds.
    pub over_price: i32,
    /// Under price, American odds.
    pub under_price: i32,
}

/// A bookmaker's spread and total for a game.
#[derive(Debug, Clone, Serialize)]
pub struct GameLine {
    /// Game index.
    pub game: usize,
    /// Bookmaker key.
    pub bookmaker: &'static str,
    /// Home spread (negative: home favoured).
    pub home_spread: f64,
    /// Total points.
    pub total: f64,
}

/// The whole season.
#[derive(Debug, Clone)]
pub struct Season {
    /// Seed it was generated from.
    pub seed: u64,
    /// Teams and players.
    pub league: League,
    /// Games in date order.
    pub games: Vec<Game>,
    /// Player lines, grouped by game (see [`Season::player_games_of`]).
    pub player_games: Vec<PlayerGame>,
    /// `player_games[ranges[g]]` are game `g`'s lines.
    ranges: Vec<std::ops::Range<usize>>,
    /// Injury report lines.
    pub injuries: Vec<InjuryEntry>,
    /// Player points props.
    pub props: Vec<PropLine>,
    /// Spreads and totals.
    pub game_lines: Vec<GameLine>,
    /// Game indices by date.
    pub by_date: BTreeMap<Date, Vec<usize>>,
}

const INJURIES: [&str; 8] = [
    "Injury/Illness - Left Ankle; Sprain",
    "Injury/Illness - Right Hamstring; Strain",
    "Injury/Illness - Lower Back; Soreness",
    "Injury/Illness - Left Knee; Soreness",
    "Injury/Illness - Illness",
    "Injury/Illness - Right Calf; Tightness",
    "Injury/Illness - Left Foot; Contusion",
    "Injury/Illness - Right Wrist; Sprain",
];

/// American odds from a win probability.
pub fn american(p: f64) -> i32 {
    let p = p.clamp(0.02, 0.98);
    if p >= 0.5 {
        -(p / (1.0 - p) * 100.0).round() as i32
    } else {
        ((1.0 - p) / p * 100.0).round() as i32
    }
}

fn round_half(x: f64) -> f64 {
    (x * 2.0).round() / 2.0
}

/// Team state carried between games.
#[derive(Clone, Default)]
struct Health {
    /// Games still to miss.
    out_games: u32,
    reason: String,
}

impl Season {
    /// Generates the full season for `seed`.
    pub fn generate(seed: u64) -> Self {
        let league = League::generate(seed);
        let games = schedule::generate(&league, seed);
        let mut health = vec![Health::default(); league.players.len()];
        let mut last_played: Vec<Option<Date>> = vec![None; league.teams.len()];
        let mut player_games = Vec::new();
        let mut ranges = Vec::with_capacity(games.len());
        let mut injuries = Vec::new();
        let mut props = Vec::new();
        let mut game_lines = Vec::new();
        for (g, game) in games.iter().enumerate() {
            let mut rng = Rng::derive(seed, &format!("game/{}", game.game_id));
            let start = player_games.len();
            let mut team_expected = [0.0f64; 2];
            for (side, (team, opp)) in [(game.home, game.away), (game.away, game.home)]
                .into_iter()
                .enumerate()
            {
                let rest_days = last_played[team].map(|d| (game.date - d).get_days());
                let b2b = rest_days == Some(1);
                let rest_mult = match rest_days {
                    Some(1) => 0.97,
                    Some(d) if d >= 3 => 1.01,
                    _ => 1.0,
                };
                let home_mult = if side == 0 {
                    league.teams[team].home_edge
                } else {
                    2.0 - league.teams[team].home_edge
                };
                let mult = rest_mult * home_mult;
                let pace = (league.teams[team].pace + league.teams[opp].pace) / 2.0;
                let defence = league.teams[opp].defence.map(|d| d * mult);
                let roster: Vec<usize> = league.roster(team).collect();
                // Availability as known before tip-off.
                let mut status: Vec<(Option<&'static str>, String, f64)> = Vec::new();
                for &p in &roster {
                    let h = &health[p];
                    let pl = &league.players[p];
                    let entry = if h.out_games >= 2 {
                        (Some("Out"), h.reason.clone(), 0.0)
                    } else if h.out_games == 1 {
                        (Some("Questionable"), h.reason.clone(), 0.5)
                    } else if b2b && pl.minutes_mean > 31.0 && rng.chance(0.08) {
                        (Some("Out"), "Rest".to_owned(), 0.0)
                    } else if rng.chance(0.015) {
                        (
                            Some("Probable"),
                            INJURIES[rng.below(INJURIES.len())].to_owned(),
                            1.0,
                        )
                    } else {
                        (None, String::new(), 1.0)
                    };
                    status.push(entry);
                }
                for (k, &p) in roster.iter().enumerate() {
                    if let (Some(s), reason, _) = &status[k] {
                        injuries.push(InjuryEntry {
                            game: g,
                            player: p,
                            status: s,
                            reason: reason.clone(),
                        });
                    }
                }
                // Expected minutes: healthy players' means rescaled to 240 team minutes.
                let avail_mass: f64 = roster
                    .iter()
                    .enumerate()
                    .map(|(k, &p)| status[k].2 * league.players[p].minutes_mean)
                    .sum();
                let scale = if avail_mass > 0.0 {
                    240.0 / avail_mass
                } else {
                    0.0
                };
                // Who actually plays.
                let mut plays = Vec::new();
                for (k, &p) in roster.iter().enumerate() {
                    let pl = &league.players[p];
                    let exp_min = (pl.minutes_mean * scale).min(42.0);
                    let prob = status[k].2;
                    let mut reason = None;
                    let mut played = rng.chance(prob);
                    if !played {
                        reason = Some(if status[k].1 == "Rest" {
                            "DNP - Rest".to_owned()
                        } else {
                            format!("DNP - {}", status[k].1)
                        });
                    } else if pl.minutes_mean < 6.0 && rng.chance(0.35) {
                        played = false;
                        reason = Some("DNP - Coach's Decision".to_owned());
                    }
                    let exp_pts = exp_min
                        * (pace * pl.fga_per_min * pl.points_per_fga(&defence)
                            + pl.fta_per_min * mult * pl.ft_pct);
                    team_expected[side] += prob * exp_pts;
                    plays.push((p, played, exp_min, exp_pts, prob, reason));
                }
                // Realised minutes, rescaled so the team plays exactly 240.
                let mut mins: Vec<f64> = plays
                    .iter()
                    .map(|(_, played, exp_min, ..)| {
                        if *played {
                            rng.normal(*exp_min, 0.12 * exp_min + 1.0).clamp(1.0, 46.0)
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let total: f64 = mins.iter().sum();
                if total > 0.0 {
                    mins.iter_mut().for_each(|m| *m *= 240.0 / total);
                }
                for ((p, _played, exp_min, exp_pts, prob, reason), minutes) in
                    plays.into_iter().zip(mins)
                {
                    let pl = &league.players[p];
                    let mut line = PlayerGame {
                        game: g,
                        player: p,
                        team,
                        seconds: (minutes * 60.0).round() as u32,
                        pts: 0,
                        fgm: 0,
                        fga: 0,
                        fg3m: 0,
                        fg3a: 0,
                        ftm: 0,
                        fta: 0,
                        reb: 0,
                        ast: 0,
                        dnp_reason: reason,
                        shots: Vec::new(),
                        expected_minutes: exp_min,
                        expected_points: exp_pts,
                        play_probability: prob,
                    };
                    if line.dnp_reason.is_none() {
                        let fga = rng.poisson(minutes * pl.fga_per_min * pace);
                        for _ in 0..fga {
                            let z = rng.weighted(&pl.zone_mix);
                            let made = rng.chance((pl.zone_pct[z] * defence[z]).min(0.95));
                            line.shots.push((z as u8, made));
                            line.fga += 1;
                            if ZONE_POINTS[z] == 3 {
                                line.fg3a += 1;
                            }
                            if made {
                                line.fgm += 1;
                                if ZONE_POINTS[z] == 3 {
                                    line.fg3m += 1;
                                }
                            }
                        }
                        line.fta = rng.poisson(minutes * pl.fta_per_min * mult);
                        line.ftm = (0..line.fta).filter(|_| rng.chance(pl.ft_pct)).count() as u32;
                        line.reb = rng.poisson(minutes * pl.reb_per_min);
                        line.ast = rng.poisson(minutes * pl.ast_per_min);
                        line.pts = 2 * line.fgm + line.fg3m + line.ftm;
                    }
                    player_games.push(line);
                }
                last_played[team] = Some(game.date);
            }
            ranges.push(start..player_games.len());
            // Lines, set from a noisy estimate before tip-off.
            for book in BOOKMAKERS {
                let mut r = Rng::derive(seed, &format!("odds/{}/{book}", game.game_id));
                let home = team_expected[0] * (1.0 + r.normal(0.0, 0.03));
                let away = team_expected[1] * (1.0 + r.normal(0.0, 0.03));
                game_lines.push(GameLine {
                    game: g,
                    bookmaker: book,
                    home_spread: round_half(away - home),
                    total: round_half(home + away),
                });
                for pg in &player_games[start..] {
                    if pg.play_probability < 0.5 || pg.expected_minutes < 14.0 {
                        continue;
                    }
                    let est = pg.expected_points * (1.0 + r.normal(0.0, 0.07)) + r.normal(0.0, 0.8);
                    let line = est.max(1.0).floor() + 0.5;
                    let p_over = (0.5 + r.normal(0.0, 0.03)).clamp(0.35, 0.65);
                    let vig = 1.045;
                    props.push(PropLine {
                        game: g,
                        player: pg.player,
                        bookmaker: book,
                        line,
                        over_price: american(p_over * vig / (p_over * vig + (1.0 - p_over))),
                        under_price: american(
                            (1.0 - p_over) * vig / ((1.0 - p_over) * vig + p_over),
                        ),
                    });
                }
            }
            // Injuries picked up in this game; absences count down.
            let mut r = Rng::derive(seed, &format!("injury/{}", game.game_id));
            for pg in &player_games[start..] {
                let h = &mut health[pg.player];
                if pg.dnp_reason.is_none() {
                    h.out_games = 0;
                    if r.chance(league.players[pg.player].injury_proneness) {
                        h.out_games = 1 + r.poisson(3.0).min(20);
                        h.reason = INJURIES[r.below(INJURIES.len())].to_owned();
                    }
                } else if h.out_games > 0 {
                    h.out_games -= 1;
                }
            }
        }
        let mut by_date: BTreeMap<Date, Vec<usize>> = BTreeMap::new();
        for (g, game) in games.iter().enumerate() {
            by_date.entry(game.date).or_default().push(g);
        }
        Self {
            seed,
            league,
            games,
            player_games,
            ranges,
            injuries,
            props,
            game_lines,
            by_date,
        }
    }

    /// Game `g`'s player lines.
    pub fn player_games_of(&self, g: usize) -> &[PlayerGame] {
        self.ranges
            .get(g)
            .map_or(&[], |r| &self.player_games[r.clone()])
    }

    /// Final score (home, away) of game `g`.
    pub fn score(&self, g: usize) -> (u32, u32) {
        let game = &self.games[g];
        let (mut h, mut a) = (0, 0);
        for pg in self.player_games_of(g) {
            if pg.team == game.home {
                h += pg.pts
            } else {
                a += pg.pts
            }
        }
        (h, a)
    }

    /// Game index by NBA.com id.
    pub fn game_index(&self, game_id: &str) -> Option<usize> {
        self.games.iter().position(|g| g.game_id == game_id)
    }

    /// When game `g`'s injury report is published (11:00 Eastern on game day).
    pub fn injury_report_time(&self, g: usize) -> Timestamp {
        schedule::eastern(self.games[g].date, 11, 0)
    }

    /// When bookmakers open game `g`'s markets (20 hours before tip-off).
    pub fn odds_open_time(&self, g: usize) -> Timestamp {
        self.games[g].tipoff - Span::new().hours(20)
    }

    /// Total rows the season would put in the raw tables (for the generation benchmark).
    pub fn row_counts(&self) -> BTreeMap<&'static str, usize> {
        let shots: usize = self
            .player_games
            .iter()
            .map(|p| p.shots.len() + p.fta as usize)
            .sum();
        BTreeMap::from([
            ("games", self.games.len()),
            ("player_games", self.player_games.len()),
            ("pbp_events", shots),
            ("injury_report_lines", self.injuries.len()),
            ("player_points_props", self.props.len()),
            ("game_lines", self.game_lines.len()),
        ])
    }

    /// The zone name of a shot.
    pub fn zone_name(z: u8) -> &'static str {
        ZONES[usize::from(z)]
    }
}
