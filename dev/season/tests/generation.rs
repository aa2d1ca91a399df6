//! The generated season: determinism, schedule shape, box-score arithmetic and the link between
//! latents and outcomes.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use jiff::civil::Date;
use tipoff_season::Season;
use tipoff_season::schedule::{SEASON_END, SEASON_START};
use tipoff_season::truth::{self, Format};

fn season() -> &'static Season {
    static S: OnceLock<Season> = OnceLock::new();
    S.get_or_init(|| Season::generate(2025))
}

#[test]
fn same_seed_gives_the_same_bytes() {
    for format in [Format::Json, Format::Csv] {
        let a = truth::render(&Season::generate(11), format).unwrap();
        let b = truth::render(&Season::generate(11), format).unwrap();
        assert_eq!(a, b);
        let c = truth::render(&Season::generate(12), format).unwrap();
        assert_ne!(a, c, "a different seed must give a different season");
    }
}

#[test]
fn schedule_has_a_real_shape() {
    for seed in [2025, 1, 2, 3] {
        check_schedule(&Season::generate(seed));
    }
}

fn check_schedule(s: &Season) {
    assert_eq!(s.league.teams.len(), 30);
    assert_eq!(s.games.len(), 1230);
    let mut per_team: BTreeMap<usize, Vec<Date>> = BTreeMap::new();
    let mut home = [0; 30];
    for g in &s.games {
        assert!(g.date >= SEASON_START && g.date <= SEASON_END, "{}", g.date);
        assert_ne!(g.home, g.away);
        per_team.entry(g.home).or_default().push(g.date);
        per_team.entry(g.away).or_default().push(g.date);
        home[g.home] += 1;
        assert!(g.end > g.tipoff);
    }
    let dates: BTreeSet<Date> = s.games.iter().map(|g| g.date).collect();
    for dark in [
        Date::constant(2025, 12, 24),
        Date::constant(2025, 11, 27),
        Date::constant(2026, 2, 15),
    ] {
        assert!(!dates.contains(&dark), "games on {dark}");
    }
    assert!(
        dates.contains(&Date::constant(2025, 12, 25)),
        "Christmas Day games are a tradition"
    );
    assert!(*dates.first().unwrap() <= Date::constant(2025, 10, 25));
    assert!(*dates.last().unwrap() >= Date::constant(2026, 4, 10));
    for (t, mut days) in per_team {
        let abbr = s.league.teams[t].abbr;
        assert_eq!(days.len(), 82, "{abbr} games");
        assert_eq!(home[t], 41, "{abbr} home games");
        days.sort();
        let gaps: Vec<i32> = days.windows(2).map(|w| (w[1] - w[0]).get_days()).collect();
        assert!(gaps.iter().all(|g| *g >= 1), "{abbr} plays twice in a day");
        let b2b = gaps.iter().filter(|g| **g == 1).count();
        assert!((6..=24).contains(&b2b), "{abbr} has {b2b} back-to-backs");
        let three_in_three = gaps.windows(2).any(|w| w[0] == 1 && w[1] == 1);
        assert!(!three_in_three, "{abbr} plays three days running");
    }
}

#[test]
fn rosters_have_about_fifteen_players_with_latents() {
    let s = season();
    for t in 0..30 {
        let n = s.league.roster(t).count();
        assert!((14..=16).contains(&n), "{n}");
    }
    for p in &s.league.players {
        assert!((p.zone_mix.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(p.points_per_min > 0.0 && p.minutes_mean > 0.0 && p.injury_proneness > 0.0);
    }
    let lookups: BTreeSet<String> = s.league.players.iter().map(|p| p.lookup()).collect();
    assert_eq!(
        lookups.len(),
        s.league.players.len(),
        "player_lookup must be unique"
    );
}

#[test]
fn box_scores_add_up() {
    let s = season();
    for (g, game) in s.games.iter().enumerate() {
        let mut team_seconds = [0u32; 2];
        for pg in s.player_games_of(g) {
            assert_eq!(
                pg.pts,
                2 * pg.fgm + pg.fg3m + pg.ftm,
                "{} {}",
                game.game_id,
                pg.player
            );
            assert!(
                pg.fgm <= pg.fga && pg.fg3m <= pg.fg3a && pg.fg3a <= pg.fga && pg.ftm <= pg.fta
            );
            assert!(pg.fg3m <= pg.fgm);
            assert_eq!(pg.shots.len() as u32, pg.fga);
            assert_eq!(pg.shots.iter().filter(|s| s.1).count() as u32, pg.fgm);
            if pg.dnp_reason.is_some() {
                assert_eq!(
                    (pg.seconds, pg.pts, pg.fga, pg.fta, pg.reb),
                    (0, 0, 0, 0, 0)
                );
            }
            team_seconds[usize::from(pg.team != game.home)] += pg.seconds;
        }
        for secs in team_seconds {
            assert!(secs.abs_diff(240 * 60) <= 60, "{}: {secs} s", game.game_id);
        }
        let (h, a) = s.score(g);
        assert!(h > 40 && a > 40, "{}: {h}-{a}", game.game_id);
    }
}

#[test]
fn outcomes_follow_the_latents() {
    let s = season();
    let played: Vec<_> = s
        .player_games
        .iter()
        .filter(|p| p.dnp_reason.is_none())
        .collect();
    let n = played.len() as f64;
    let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in &played {
        let (x, y) = (p.expected_points, f64::from(p.pts));
        sx += x;
        sy += y;
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
    }
    let corr = (n * sxy - sx * sy) / ((n * sxx - sx * sx).sqrt() * (n * syy - sy * sy).sqrt());
    assert!(corr > 0.6, "expected vs actual points correlation {corr}");
    assert!((sy / sx - 1.0).abs() < 0.05, "actual/expected {}", sy / sx);
    // Home teams score more on average.
    let (mut home, mut away) = (0u64, 0u64);
    for g in 0..s.games.len() {
        let (h, a) = s.score(g);
        home += u64::from(h);
        away += u64::from(a);
    }
    assert!(home > away, "home {home} away {away}");
}

#[test]
fn injury_reports_and_lines_are_consistent() {
    let s = season();
    for e in &s.injuries {
        if e.status == "Out" {
            let pg = s
                .player_games_of(e.game)
                .iter()
                .find(|p| p.player == e.player)
                .unwrap();
            assert!(pg.dnp_reason.is_some(), "a player listed Out played");
        }
    }
    assert!(s.injuries.iter().any(|e| e.status == "Questionable"));
    assert!(!s.props.is_empty() && !s.game_lines.is_empty());
    for p in &s.props {
        assert_eq!(p.line.fract(), 0.5, "lines are x.5");
        let implied = |a: i32| {
            if a < 0 {
                f64::from(-a) / f64::from(100 - a)
            } else {
                100.0 / f64::from(100 + a)
            }
        };
        let overround = implied(p.over_price) + implied(p.under_price);
        assert!(overround > 1.0 && overround < 1.1, "vig {overround}");
        let pg = s
            .player_games_of(p.game)
            .iter()
            .find(|x| x.player == p.player)
            .unwrap();
        assert!(
            (p.line - pg.expected_points).abs() < 12.0,
            "line far from estimate"
        );
    }
    for l in &s.game_lines {
        assert_eq!((l.total * 2.0).fract(), 0.0);
        assert!(l.total > 180.0 && l.total < 280.0, "{}", l.total);
    }
}

#[test]
fn export_writes_one_truth_row_per_player_game() {
    let dir = std::env::temp_dir().join(format!("tipoff-truth-{}", std::process::id()));
    let s = season();
    let files = truth::write(s, &dir, Format::Csv).unwrap();
    assert_eq!(files.len(), 2);
    let games = std::fs::read_to_string(dir.join("player_games.csv")).unwrap();
    assert_eq!(games.lines().count(), s.player_games.len() + 1);
    assert!(games.starts_with("game_id,game_date,player_lookup,"));
    let players = std::fs::read_to_string(dir.join("players.csv")).unwrap();
    assert_eq!(players.lines().count(), s.league.players.len() + 1);
    truth::write(s, &dir, Format::Json).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("player_games.json")).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), s.player_games.len());
    std::fs::remove_dir_all(&dir).unwrap();
}
