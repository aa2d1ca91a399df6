//! The date's games, read from the stored NBA.com schedule payload. Scrapers use it to know
//! which games to fetch; raw processors use it for completeness checks and to map events and
//! team names to games.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Source name and file of the stored schedule payload (`raw/schedule/<date>/<FILE>`).
pub const SCHEDULE_FILE: &str = "scheduleLeagueV2.json";

/// Where the upstream serves the league schedule (the whole season in one document).
pub const SCHEDULE_PATH: &str = "/nba/static/json/staticData/scheduleLeagueV2.json";

/// One game of the date.
#[derive(Debug, Clone, PartialEq)]
pub struct Game {
    /// NBA.com game id.
    pub game_id: String,
    /// Local game date.
    pub game_date: Date,
    /// 1 scheduled, 2 in progress, 3 final.
    pub status: u8,
    /// Tip-off.
    pub tipoff: Timestamp,
    /// Home tricode.
    pub home: String,
    /// Away tricode.
    pub away: String,
    /// Home "City Name".
    pub home_full: String,
    /// Away "City Name".
    pub away_full: String,
    /// Final home score.
    pub home_score: Option<i64>,
    /// Final away score.
    pub away_score: Option<i64>,
    /// Arena.
    pub arena: Option<String>,
}

impl Game {
    /// `AWY@HOM`, the name used for missing games in results.
    pub fn matchup(&self) -> String {
        format!("{}@{}", self.away, self.home)
    }

    /// Whether the game is final.
    pub fn is_final(&self) -> bool {
        self.status == 3
    }

    /// The Odds API event id of this game. The dev upstream derives it from the game id (the
    /// first 16 bytes of its SHA-256, in hex); see docs/processors.md for the limitation.
    pub fn event_id(&self) -> String {
        let d = Sha256::digest(self.game_id.as_bytes());
        d[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    league_schedule: League,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct League {
    game_dates: Vec<GameDate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GameDate {
    game_date: String,
    games: Vec<RawGame>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGame {
    game_id: String,
    game_status: u8,
    #[serde(rename = "gameDateTimeUTC")]
    game_date_time_utc: Timestamp,
    arena_name: Option<String>,
    home_team: RawTeam,
    away_team: RawTeam,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTeam {
    team_tricode: String,
    team_city: String,
    team_name: String,
    score: Option<i64>,
}

/// The season year of the schedule payload (e.g. `2025-26`), if present.
pub fn season_label(payload: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v.get("leagueSchedule")?
        .get("seasonYear")?
        .as_str()
        .map(str::to_owned)
}

fn parse_game_date(s: &str) -> Result<Date, String> {
    // "MM/DD/YYYY 00:00:00"
    let day = s.split_whitespace().next().unwrap_or_default();
    let parts: Vec<&str> = day.split('/').collect();
    if parts.len() != 3 {
        return Err(format!("gameDate {s:?} is not MM/DD/YYYY"));
    }
    let num = |p: &str| p.parse::<i16>().map_err(|e| format!("gameDate {s:?}: {e}"));
    let (m, d, y) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
    Date::new(y, m as i8, d as i8).map_err(|e| format!("gameDate {s:?}: {e}"))
}

/// Parses a schedule payload and returns the games of `date`, in game-id order. A payload that
/// is not valid JSON of the expected shape is an error naming what is wrong.
pub fn games_on(payload: &[u8], date: Date) -> Result<Vec<Game>, String> {
    games_where(payload, |d| d == date)
}

/// Every game of the season the payload lists (the league schedule is one document for the
/// whole season), in date and game-id order. Phases 3 and 4 use it for rest days and to know
/// which dates before D had games.
pub fn season_games(payload: &[u8]) -> Result<Vec<Game>, String> {
    games_where(payload, |_| true)
}

fn games_where(payload: &[u8], keep: impl Fn(Date) -> bool) -> Result<Vec<Game>, String> {
    let doc: Doc = serde_json::from_slice(payload).map_err(|e| format!("schedule: {e}"))?;
    let mut out = Vec::new();
    for gd in doc.league_schedule.game_dates {
        let date = parse_game_date(&gd.game_date)?;
        if !keep(date) {
            continue;
        }
        for g in gd.games {
            let final_ = g.game_status == 3;
            out.push(Game {
                game_id: g.game_id,
                game_date: date,
                status: g.game_status,
                tipoff: g.game_date_time_utc,
                home_full: format!("{} {}", g.home_team.team_city, g.home_team.team_name),
                away_full: format!("{} {}", g.away_team.team_city, g.away_team.team_name),
                home: g.home_team.team_tricode,
                away: g.away_team.team_tricode,
                home_score: g.home_team.score.filter(|_| final_),
                away_score: g.away_team.score.filter(|_| final_),
                arena: g.arena_name,
            });
        }
    }
    out.sort_by(|a, b| (a.game_date, &a.game_id).cmp(&(b.game_date, &b.game_id)));
    Ok(out)
}

/// The normalized player key the pipeline joins on: lowercase ASCII letters only.
pub fn player_lookup(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn lookup_keeps_letters_only() {
        assert_eq!(player_lookup("D'Angelo Russell Jr."), "dangelorusselljr");
    }

    #[test]
    fn game_dates_parse_and_bad_ones_are_errors() {
        assert_eq!(
            parse_game_date("12/25/2025 00:00:00").unwrap(),
            jiff::civil::date(2025, 12, 25)
        );
        assert!(parse_game_date("2025-12-25").is_err());
        assert!(games_on(b"{\"leagueSchedule\": 1}", jiff::civil::date(2025, 1, 1)).is_err());
    }
}
