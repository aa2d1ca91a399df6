//! Parsers from stored payloads to typed `nba_raw` rows. Each deserializes into strict types
//! (a missing or mistyped field is an error naming it), checks the payload belongs to the date,
//! and returns rows in a deterministic order. An error means the payload is quarantined.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Deserialize;
use tipoff_warehouse::{Row, Value};

use crate::schedule::{Game, player_lookup};

/// What a parser gets besides the payload.
pub struct Input<'a> {
    /// The payload's key (for `source_file_path`).
    pub key: &'a str,
    /// The payload's file name (last key segment).
    pub name: &'a str,
    /// The date being loaded.
    pub date: Date,
    /// The date's games from the stored schedule.
    pub games: &'a [Game],
    /// The time written to `processed_at`.
    pub processed_at: Timestamp,
}

fn row(pairs: Vec<(&str, Value)>) -> Row {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn json<'de, T: Deserialize<'de>>(payload: &'de [u8]) -> Result<T, String> {
    serde_json::from_slice(payload).map_err(|e| format!("not the expected JSON shape: {e}"))
}

/// `nba_raw.nbac_schedule` rows: the date's games.
pub fn schedule(payload: &[u8], inp: &Input<'_>) -> Result<Vec<Row>, String> {
    let games = crate::schedule::games_on(payload, inp.date)?;
    let season = crate::schedule::season_label(payload).unwrap_or_default();
    if season.is_empty() {
        return Err("leagueSchedule.seasonYear is missing".into());
    }
    Ok(games
        .iter()
        .map(|g| {
            let status = match g.status {
                3 => "final",
                _ => "scheduled",
            };
            row(vec![
                ("game_id", g.game_id.as_str().into()),
                ("game_date", inp.date.into()),
                ("season", season.as_str().into()),
                ("game_status", status.into()),
                ("tipoff_utc", Value::timestamp(g.tipoff)),
                ("home_team_abbr", g.home.as_str().into()),
                ("away_team_abbr", g.away.as_str().into()),
                ("home_score", g.home_score.into()),
                ("away_score", g.away_score.into()),
                ("arena", g.arena.clone().into()),
                ("source_file_path", inp.key.into()),
                ("processed_at", Value::timestamp(inp.processed_at)),
            ])
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BdlDoc {
    data: Vec<BdlGame>,
}

#[derive(Deserialize)]
struct BdlGame {
    date: Date,
    nba_game_id: String,
    home_team: BdlTeam,
    visitor_team: BdlTeam,
}

#[derive(Deserialize)]
struct BdlTeam {
    abbreviation: String,
    players: Vec<BdlLine>,
}

#[derive(Deserialize)]
struct BdlLine {
    player: BdlPlayer,
    min: String,
    pts: i64,
    fgm: i64,
    fga: i64,
    fg3m: i64,
    fg3a: i64,
    ftm: i64,
    fta: i64,
    reb: i64,
    ast: i64,
    comment: Option<String>,
}

#[derive(Deserialize)]
struct BdlPlayer {
    id: i64,
    first_name: String,
    last_name: String,
}

fn minutes(min: &str) -> Result<f64, String> {
    let bad = || format!("minutes {min:?} are not MM:SS");
    match min.split_once(':') {
        Some((m, s)) => {
            let m: f64 = m.parse().map_err(|_| bad())?;
            let s: f64 = s.parse().map_err(|_| bad())?;
            Ok(((m + s / 60.0) * 100.0).round() / 100.0)
        }
        None => min.parse().map_err(|_| bad()),
    }
}

/// `nba_raw.bdl_player_boxscores` rows: one per player per game.
pub fn boxscores(payload: &[u8], inp: &Input<'_>) -> Result<Vec<Row>, String> {
    let doc: BdlDoc = json(payload)?;
    let mut out = Vec::new();
    for g in &doc.data {
        if g.date != inp.date {
            return Err(format!(
                "game {} is dated {}, not {}",
                g.nba_game_id, g.date, inp.date
            ));
        }
        if !inp.games.iter().any(|s| s.game_id == g.nba_game_id) {
            return Err(format!("game {} is not on the schedule", g.nba_game_id));
        }
        for (team, opp, home) in [
            (&g.home_team, &g.visitor_team, true),
            (&g.visitor_team, &g.home_team, false),
        ] {
            for p in &team.players {
                let name = format!("{} {}", p.player.first_name, p.player.last_name);
                if p.pts != 2 * p.fgm + p.fg3m + p.ftm {
                    return Err(format!(
                        "{name} in {}: points {} != 2*FGM + 3PM + FTM",
                        g.nba_game_id, p.pts
                    ));
                }
                out.push(row(vec![
                    ("game_id", g.nba_game_id.as_str().into()),
                    ("game_date", inp.date.into()),
                    ("bdl_player_id", p.player.id.into()),
                    ("player_lookup", player_lookup(&name).into()),
                    ("player_name", name.into()),
                    ("team_abbr", team.abbreviation.as_str().into()),
                    ("opponent_team_abbr", opp.abbreviation.as_str().into()),
                    ("is_home", home.into()),
                    ("minutes", minutes(&p.min)?.into()),
                    ("points", p.pts.into()),
                    ("fgm", p.fgm.into()),
                    ("fga", p.fga.into()),
                    ("fg3m", p.fg3m.into()),
                    ("fg3a", p.fg3a.into()),
                    ("ftm", p.ftm.into()),
                    ("fta", p.fta.into()),
                    ("rebounds", p.reb.into()),
                    ("assists", p.ast.into()),
                    ("dnp_reason", p.comment.clone().into()),
                    ("source_file_path", inp.key.into()),
                    ("processed_at", Value::timestamp(inp.processed_at)),
                ]));
            }
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct PbpDoc {
    game: PbpGame,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PbpGame {
    game_id: String,
    actions: Vec<PbpAction>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PbpAction {
    action_number: i64,
    period: i64,
    clock: String,
    action_type: String,
    shot_result: String,
    area: Option<String>,
    shot_distance: Option<f64>,
    player_name: String,
    team_tricode: String,
    points_total: i64,
    score_home: String,
    score_away: String,
}

/// `nba_raw.nbac_play_by_play` rows: one per shot or free throw of one game.
pub fn play_by_play(payload: &[u8], inp: &Input<'_>) -> Result<Vec<Row>, String> {
    let doc: PbpDoc = json(payload)?;
    let game_id = doc.game.game_id;
    if inp.name != format!("{game_id}.json") {
        return Err(format!("file {} holds game {game_id}", inp.name));
    }
    if !inp.games.iter().any(|g| g.game_id == game_id) {
        return Err(format!("game {game_id} is not on the schedule"));
    }
    let mut out = Vec::with_capacity(doc.game.actions.len());
    for a in doc.game.actions {
        let event_type = match a.action_type.as_str() {
            "2pt" | "3pt" => "shot",
            "freethrow" => "free_throw",
            other => {
                return Err(format!(
                    "action {}: unknown type {other:?}",
                    a.action_number
                ));
            }
        };
        let score = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| format!("action {}: score {s:?}", a.action_number))
        };
        out.push(row(vec![
            ("game_id", game_id.as_str().into()),
            ("game_date", inp.date.into()),
            ("event_num", a.action_number.into()),
            ("period", a.period.into()),
            ("clock", a.clock.into()),
            ("event_type", event_type.into()),
            ("player_lookup", player_lookup(&a.player_name).into()),
            ("team_abbr", a.team_tricode.into()),
            ("shot_zone", a.area.into()),
            ("shot_distance_ft", a.shot_distance.into()),
            ("shot_made", (a.shot_result == "Made").into()),
            ("points", a.points_total.into()),
            ("home_score", score(&a.score_home)?.into()),
            ("away_score", score(&a.score_away)?.into()),
            ("processed_at", Value::timestamp(inp.processed_at)),
        ]));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InjuryDoc {
    report_date: Date,
    report_time: Option<Timestamp>,
    entries: Vec<InjuryEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InjuryEntry {
    game_id: String,
    team: String,
    player_name: String,
    current_status: String,
    reason: Option<String>,
}

/// `nba_raw.nbac_injury_report` rows.
pub fn injury_report(payload: &[u8], inp: &Input<'_>) -> Result<Vec<Row>, String> {
    let doc: InjuryDoc = json(payload)?;
    if doc.report_date != inp.date {
        return Err(format!(
            "report is for {}, not {}",
            doc.report_date, inp.date
        ));
    }
    let Some(report_time) = doc.report_time else {
        return if doc.entries.is_empty() {
            Ok(Vec::new())
        } else {
            Err("entries without a reportTime".into())
        };
    };
    let mut out = Vec::new();
    for e in doc.entries {
        let game = inp
            .games
            .iter()
            .find(|g| g.game_id == e.game_id)
            .ok_or_else(|| format!("entry for unknown game {}", e.game_id))?;
        let team = if e.team == game.home_full {
            &game.home
        } else if e.team == game.away_full {
            &game.away
        } else {
            return Err(format!("team {:?} does not play in {}", e.team, e.game_id));
        };
        let name = match e.player_name.split_once(", ") {
            Some((last, first)) => format!("{first} {last}"),
            None => e.player_name.clone(),
        };
        out.push(row(vec![
            ("game_date", inp.date.into()),
            ("report_time", Value::timestamp(report_time)),
            ("game_id", e.game_id.as_str().into()),
            ("team_abbr", team.as_str().into()),
            ("player_lookup", player_lookup(&name).into()),
            ("player_name", name.into()),
            ("status", e.current_status.into()),
            ("reason", e.reason.into()),
            ("processed_at", Value::timestamp(inp.processed_at)),
        ]));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct OddsEvent {
    id: String,
    bookmakers: Vec<Bookmaker>,
}

#[derive(Deserialize)]
struct Bookmaker {
    key: String,
    last_update: Timestamp,
    markets: Vec<Market>,
}

#[derive(Deserialize)]
struct Market {
    key: String,
    last_update: Option<Timestamp>,
    outcomes: Vec<Outcome>,
}

#[derive(Deserialize)]
struct Outcome {
    name: String,
    description: Option<String>,
    price: i64,
    point: f64,
}

/// `nba_raw.odds_api_player_points_props` rows from one game's event odds (live, or a
/// historical snapshot `{timestamp, data}`).
pub fn player_props(payload: &[u8], inp: &Input<'_>) -> Result<Vec<Row>, String> {
    let v: serde_json::Value = json(payload)?;
    let event_v = match v.get("data") {
        Some(d) if v.get("timestamp").is_some() => d.clone(),
        _ => v,
    };
    let event: OddsEvent =
        serde_json::from_value(event_v).map_err(|e| format!("not an odds event: {e}"))?;
    let game = inp
        .games
        .iter()
        .find(|g| format!("{}.json", g.game_id) == inp.name)
        .ok_or_else(|| format!("file {} names no game of {}", inp.name, inp.date))?;
    if event.id != game.event_id() {
        return Err(format!("event {} is not game {}", event.id, game.game_id));
    }
    let mut out = Vec::new();
    for b in &event.bookmakers {
        // player -> (line, over, under)
        let mut lines: BTreeMap<&str, (f64, Option<i64>, Option<i64>)> = BTreeMap::new();
        for m in b.markets.iter().filter(|m| m.key == "player_points") {
            for o in &m.outcomes {
                let player = o
                    .description
                    .as_deref()
                    .ok_or("outcome without a player description")?;
                let e = lines.entry(player).or_insert((o.point, None, None));
                if e.0 != o.point {
                    return Err(format!("{player}: Over and Under lines differ"));
                }
                match o.name.as_str() {
                    "Over" => e.1 = Some(o.price),
                    "Under" => e.2 = Some(o.price),
                    other => return Err(format!("{player}: unknown outcome {other:?}")),
                }
            }
        }
        let snapshot = b
            .markets
            .iter()
            .find_map(|m| m.last_update)
            .unwrap_or(b.last_update);
        for (player, (line, over, under)) in lines {
            let (Some(over), Some(under)) = (over, under) else {
                return Err(format!("{player} at {}: Over or Under missing", b.key));
            };
            out.push(row(vec![
                ("game_id", game.game_id.as_str().into()),
                ("game_date", inp.date.into()),
                ("event_id", event.id.as_str().into()),
                ("bookmaker", b.key.as_str().into()),
                ("player_lookup", player_lookup(player).into()),
                ("player_name", player.into()),
                ("points_line", line.into()),
                ("over_price_american", over.into()),
                ("under_price_american", under.into()),
                ("snapshot_time", Value::timestamp(snapshot)),
                ("processed_at", Value::timestamp(inp.processed_at)),
            ]));
        }
    }
    Ok(out)
}

/// `nba_raw.odds_api_game_lines` rows for the date's games from the odds payload (the live
/// list of events, or a historical snapshot `{timestamp, data: [events]}`).
pub fn game_lines(payload: &[u8], inp: &Input<'_>) -> Result<Vec<Row>, String> {
    let v: serde_json::Value = json(payload)?;
    let events_v = match v.get("data") {
        Some(d) if v.get("timestamp").is_some() => d.clone(),
        _ => v,
    };
    let events: Vec<OddsEvent> =
        serde_json::from_value(events_v).map_err(|e| format!("not a list of odds events: {e}"))?;
    let mut out = Vec::new();
    for e in &events {
        let Some(game) = inp.games.iter().find(|g| g.event_id() == e.id) else {
            continue; // another date's event, open at scrape time
        };
        for b in &e.bookmakers {
            for m in &b.markets {
                if m.key != "spreads" && m.key != "totals" {
                    continue;
                }
                for o in &m.outcomes {
                    out.push(row(vec![
                        ("game_id", game.game_id.as_str().into()),
                        ("game_date", inp.date.into()),
                        ("event_id", e.id.as_str().into()),
                        ("bookmaker", b.key.as_str().into()),
                        ("market_key", m.key.as_str().into()),
                        ("outcome_name", o.name.as_str().into()),
                        ("outcome_point", o.point.into()),
                        ("outcome_price", o.price.into()),
                        ("snapshot_time", Value::timestamp(b.last_update)),
                        ("processed_at", Value::timestamp(inp.processed_at)),
                    ]));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn minutes_parse() {
        assert_eq!(minutes("34:30").unwrap(), 34.5);
        assert_eq!(minutes("00").unwrap(), 0.0);
        assert!(minutes("x:1").is_err());
    }
}
