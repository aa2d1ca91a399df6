//! A real-shaped regular season: 82 games per team (41 home), late October to mid April, with
//! back-to-backs, no team playing three days running, and league-wide dark days (Thanksgiving,
//! Christmas Eve, the All-Star break).

use jiff::civil::{Date, DateTime};
use jiff::{Span, Timestamp};
use serde::Serialize;

use crate::league::League;
use crate::rng::Rng;

/// Opening night.
pub const SEASON_START: Date = Date::constant(2025, 10, 21);
/// Last day of the regular season.
pub const SEASON_END: Date = Date::constant(2026, 4, 12);
/// Season label.
pub const SEASON: &str = "2025-26";

/// Days with no games at all.
pub fn is_dark_day(d: Date) -> bool {
    let all_star = Date::constant(2026, 2, 13)..=Date::constant(2026, 2, 18);
    d == Date::constant(2025, 11, 27) || d == Date::constant(2025, 12, 24) || all_star.contains(&d)
}

/// One scheduled game.
#[derive(Debug, Clone, Serialize)]
pub struct Game {
    /// NBA.com game id, e.g. `0022500001`, in date order.
    pub game_id: String,
    /// Local (US Eastern) date.
    pub date: Date,
    /// Home team index.
    pub home: usize,
    /// Away team index.
    pub away: usize,
    /// Scheduled tip-off.
    pub tipoff: Timestamp,
    /// When the game ends (box scores and play-by-play become available).
    pub end: Timestamp,
}

/// US Eastern offset from UTC in hours for a date of this season.
fn eastern_offset_hours(d: Date) -> i64 {
    if d < Date::constant(2025, 11, 2) || d >= Date::constant(2026, 3, 8) {
        -4
    } else {
        -5
    }
}

/// Local tip-off (Eastern) by the home team's time zone.
fn tipoff_eastern(home_abbr: &str) -> (i8, i8) {
    match home_abbr {
        "LAL" | "LAC" | "GSW" | "SAC" | "POR" => (22, 0),
        "PHX" | "DEN" | "UTA" => (21, 0),
        "CHI" | "MIL" | "MIN" | "OKC" | "DAL" | "HOU" | "MEM" | "NOP" | "SAS" => (20, 0),
        "BOS" | "BKN" | "NYK" | "TOR" | "PHI" | "ATL" | "MIA" => (19, 30),
        _ => (19, 0),
    }
}

/// Converts an Eastern wall-clock time on `d` to an instant.
pub fn eastern(d: Date, hour: i8, minute: i8) -> Timestamp {
    let utc = DateTime::from_parts(d, jiff::civil::Time::constant(hour, minute, 0, 0))
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH);
    utc - Span::new().hours(eastern_offset_hours(d))
}

/// Every (home, away) pairing of the season: 30 games against the other conference (1 home,
/// 1 away each), 4 against ten conference rivals and 3 against four (circular neighbours).
fn matchups(league: &League) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for conf in ["East", "West"] {
        let members: Vec<usize> = (0..league.teams.len())
            .filter(|&t| league.teams[t].conference == conf)
            .collect();
        let n = members.len();
        for i in 0..n {
            for j in (i + 1)..n {
                let (a, b) = (members[i], members[j]);
                let dist = (j - i).min(n - (j - i));
                if dist <= 2 {
                    // Three games: the team "before" on the circle hosts two.
                    let forward = (j - i) <= 2;
                    let (two, one) = if forward { (a, b) } else { (b, a) };
                    out.extend([(two, one), (two, one), (one, two)]);
                } else {
                    out.extend([(a, b), (a, b), (b, a), (b, a)]);
                }
            }
        }
    }
    for a in 0..league.teams.len() {
        for b in 0..league.teams.len() {
            if league.teams[a].conference == "East" && league.teams[b].conference == "West" {
                out.extend([(a, b), (b, a)]);
            }
        }
    }
    out
}

/// Builds the season schedule for `seed`.
pub fn generate(league: &League, seed: u64) -> Vec<Game> {
    let mut rng = Rng::derive(seed, "schedule");
    let mut pool = matchups(league);
    rng.shuffle(&mut pool);
    let n_teams = league.teams.len();
    let days: Vec<Date> = SEASON_START
        .series(Span::new().days(1))
        .take_while(|d| *d <= SEASON_END)
        .filter(|d| !is_dark_day(*d))
        .collect();
    let mut remaining = vec![0usize; n_teams];
    for (h, a) in &pool {
        remaining[*h] += 1;
        remaining[*a] += 1;
    }
    // The last two days each team played, to forbid three games in three days.
    let mut last: Vec<[Option<Date>; 2]> = vec![[None, None]; n_teams];
    let mut scheduled: Vec<(Date, usize, usize)> = Vec::with_capacity(pool.len());
    for (di, day) in days.iter().enumerate() {
        let days_left = (days.len() - di) as f64;
        let need = pool.len() as f64 / days_left;
        let target = ((need * rng.range(0.55, 1.5)).round() as usize)
            .max(need.ceil() as usize)
            .clamp(1, n_teams / 2);
        let day_before = day.yesterday().ok();
        let two_before = day_before.and_then(|d| d.yesterday().ok());
        let tired = |t: usize| last[t][0] == day_before && last[t][1] == two_before;
        // Teams with the most games left go first; random jitter breaks ties.
        let mut order: Vec<(f64, usize)> = pool
            .iter()
            .enumerate()
            .map(|(i, (h, a))| {
                (
                    -((remaining[*h] + remaining[*a]) as f64) - rng.uniform() * 6.0,
                    i,
                )
            })
            .collect();
        order.sort_by(|x, y| x.0.total_cmp(&y.0));
        let mut busy = vec![false; n_teams];
        let mut chosen = Vec::new();
        for (_, i) in order {
            if chosen.len() >= target {
                break;
            }
            let (h, a) = pool[i];
            if busy[h] || busy[a] || tired(h) || tired(a) {
                continue;
            }
            // Back-to-backs happen, but not for everyone every week.
            let b2b = last[h][0] == day_before || last[a][0] == day_before;
            if b2b && rng.chance(0.97) && days_left > 20.0 {
                continue;
            }
            busy[h] = true;
            busy[a] = true;
            chosen.push(i);
        }
        chosen.sort_unstable_by(|a, b| b.cmp(a));
        for i in chosen {
            let (h, a) = pool.swap_remove(i);
            for t in [h, a] {
                remaining[t] -= 1;
                last[t] = [Some(*day), last[t][0]];
            }
            scheduled.push((*day, h, a));
        }
    }
    // Whatever could not be placed (rare) goes to the final days, still one game per team a day.
    for (h, a) in pool {
        let day = days
            .iter()
            .rev()
            .copied()
            .find(|d| {
                !scheduled
                    .iter()
                    .any(|(sd, sh, sa)| sd == d && [*sh, *sa].iter().any(|t| *t == h || *t == a))
            })
            .unwrap_or(SEASON_END);
        scheduled.push((day, h, a));
    }
    scheduled.sort_by_key(|(d, h, a)| (*d, tipoff_eastern(league.teams[*h].abbr), *h, *a));
    scheduled
        .into_iter()
        .enumerate()
        .map(|(i, (date, home, away))| {
            let (hh, mm) = tipoff_eastern(league.teams[home].abbr);
            let tipoff = eastern(date, hh, mm);
            Game {
                game_id: format!("00225{:05}", i + 1),
                date,
                home,
                away,
                tipoff,
                end: tipoff + Span::new().minutes(145),
            }
        })
        .collect()
}
