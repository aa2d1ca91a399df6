//! The upstream-API server over real HTTP: clock gating, auth, and every fault mode.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use jiff::{Span, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tipoff_season::Season;
use tipoff_season::server::{AppState, EndpointFaults, FaultConfig, event_id, router};

const KEY: &str = "test-key";

fn season() -> Arc<Season> {
    static S: OnceLock<Arc<Season>> = OnceLock::new();
    Arc::clone(S.get_or_init(|| Arc::new(Season::generate(2025))))
}

struct Server {
    base: String,
    http: reqwest::Client,
    season: Arc<Season>,
}

impl Server {
    async fn start(now: Timestamp, faults: FaultConfig) -> Self {
        let season = season();
        let state = AppState::new(Arc::clone(&season), now, KEY, faults);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        Self {
            base,
            http: reqwest::Client::new(),
            season,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn bdl(&self, date: &str, key: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .get(format!("{}/bdl/v1/box_scores?date={date}", self.base));
        if let Some(k) = key {
            req = req.header("Authorization", k);
        }
        req.send().await.unwrap()
    }

    async fn set_clock(&self, now: Timestamp) {
        let r = self
            .http
            .put(format!("{}/admin/clock", self.base))
            .json(&json!({ "now": now.to_string() }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    async fn set_faults(&self, faults: Value) {
        let r = self
            .http
            .put(format!("{}/admin/faults", self.base))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}

fn christmas() -> (jiff::civil::Date, Vec<usize>) {
    let d = jiff::civil::Date::constant(2025, 12, 25);
    (d, season().by_date[&d].clone())
}

#[tokio::test]
async fn box_scores_and_play_by_play_appear_only_after_the_games_end() {
    let (date, games) = christmas();
    let s = season();
    let first_tip = games.iter().map(|&g| s.games[g].tipoff).min().unwrap();
    let last_end = games.iter().map(|&g| s.games[g].end).max().unwrap();
    let srv = Server::start(first_tip - Span::new().hours(1), FaultConfig::default()).await;

    let body: Value = srv
        .bdl(&date.to_string(), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        0,
        "no box scores before the games"
    );
    let g0 = &srv.season.games[games[0]];
    let pbp_path = format!(
        "/nba/static/json/liveData/playbyplay/playbyplay_{}.json",
        g0.game_id
    );
    assert_eq!(srv.get(&pbp_path).await.status(), StatusCode::NOT_FOUND);
    let sched: Value = srv
        .get("/nba/static/json/staticData/scheduleLeagueV2.json")
        .await
        .json()
        .await
        .unwrap();
    let day = sched["leagueSchedule"]["gameDates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["gameDate"] == "12/25/2025 00:00:00")
        .unwrap()
        .clone();
    assert!(
        day["games"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["gameStatus"] == 1)
    );

    // When the first game ends, only the games that have ended by then are final.
    srv.set_clock(g0.end).await;
    let ended = games.iter().filter(|&&g| s.games[g].end <= g0.end).count();
    assert!(
        ended >= 1 && ended < games.len(),
        "the test needs a date with staggered games"
    );
    let body: Value = srv
        .bdl(&date.to_string(), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), ended);
    assert_eq!(srv.get(&pbp_path).await.status(), StatusCode::OK);

    srv.set_clock(last_end).await;
    let body: Value = srv
        .bdl(&date.to_string(), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), games.len());
    // The box score and the play-by-play tell the same story.
    let g = games[0];
    let (home, away) = s.score(g);
    let bdl_game = data
        .iter()
        .find(|x| x["nba_game_id"] == g0.game_id)
        .unwrap();
    assert_eq!(bdl_game["home_team_score"], home);
    assert_eq!(bdl_game["visitor_team_score"], away);
    let pts: u64 = bdl_game["home_team"]["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pts"].as_u64().unwrap())
        .sum();
    assert_eq!(pts, u64::from(home));
    let pbp: Value = srv.get(&pbp_path).await.json().await.unwrap();
    let last = pbp["game"]["actions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["scoreHome"], home.to_string());
    assert_eq!(last["scoreAway"], away.to_string());
    let sched: Value = srv
        .get("/nba/static/json/staticData/scheduleLeagueV2.json")
        .await
        .json()
        .await
        .unwrap();
    let game = sched["leagueSchedule"]["gameDates"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["games"].as_array().unwrap().clone())
        .find(|x| x["gameId"] == g0.game_id)
        .unwrap();
    assert_eq!(game["gameStatus"], 3);
    assert_eq!(game["homeTeam"]["score"], home);
}

#[tokio::test]
async fn injury_reports_and_odds_are_visible_before_tip_off_only() {
    let (date, games) = christmas();
    let s = season();
    let g = games[0];
    let game = &s.games[g];
    let eid = event_id(&game.game_id);
    let props_path = format!(
        "/odds-api/v4/sports/basketball_nba/events/{eid}/odds?apiKey={KEY}&markets=player_points&oddsFormat=american"
    );

    // The evening before: markets not open, no injury report yet.
    let srv = Server::start(
        s.odds_open_time(g) - Span::new().minutes(1),
        FaultConfig::default(),
    )
    .await;
    assert_eq!(srv.get(&props_path).await.status(), StatusCode::NOT_FOUND);
    let report = format!("/nba/injury-report?date={date}");
    assert_eq!(srv.get(&report).await.status(), StatusCode::NOT_FOUND);

    // Markets open: the event is listed with props and game lines.
    srv.set_clock(s.odds_open_time(g)).await;
    let events: Value = srv
        .get(&format!(
            "/odds-api/v4/sports/basketball_nba/events?apiKey={KEY}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert!(events.as_array().unwrap().iter().any(|e| e["id"] == eid));
    let r = srv.get(&props_path).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-requests-remaining"));
    let props: Value = r.json().await.unwrap();
    let outcomes = props["bookmakers"][0]["markets"][0]["outcomes"]
        .as_array()
        .unwrap();
    assert!(!outcomes.is_empty());
    assert!(
        outcomes
            .iter()
            .all(|o| o["point"].as_f64().unwrap().fract() == 0.5)
    );
    let lines: Value = srv
        .get(&format!(
            "/odds-api/v4/sports/basketball_nba/odds?apiKey={KEY}&markets=spreads,totals"
        ))
        .await
        .json()
        .await
        .unwrap();
    let ev = lines
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == eid)
        .unwrap();
    assert_eq!(ev["bookmakers"][0]["markets"].as_array().unwrap().len(), 2);

    // Game day, after publication: the injury report lists this date's games.
    srv.set_clock(s.injury_report_time(g)).await;
    let r: Value = srv.get(&report).await.json().await.unwrap();
    let expected = s
        .injuries
        .iter()
        .filter(|e| games.contains(&e.game))
        .count();
    assert_eq!(r["entries"].as_array().unwrap().len(), expected);

    // After tip-off the live markets are gone, but the historical snapshot remains.
    srv.set_clock(game.tipoff).await;
    assert_eq!(srv.get(&props_path).await.status(), StatusCode::NOT_FOUND);
    let at = (game.tipoff - Span::new().hours(1)).to_string();
    let hist = format!(
        "/odds-api/v4/historical/sports/basketball_nba/events/{eid}/odds?apiKey={KEY}&date={at}"
    );
    let r = srv.get(&hist).await;
    assert_eq!(r.status(), StatusCode::OK);
    let h: Value = r.json().await.unwrap();
    assert_eq!(h["data"]["id"], eid);
    // A historical request for a time still in the simulated future is refused.
    let future = (game.tipoff + Span::new().hours(30)).to_string();
    let hist = format!(
        "/odds-api/v4/historical/sports/basketball_nba/events/{eid}/odds?apiKey={KEY}&date={future}"
    );
    assert_eq!(srv.get(&hist).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn api_keys_are_required_where_the_real_apis_need_them() {
    let srv = Server::start(
        Timestamp::from_second(1_767_000_000).unwrap(),
        FaultConfig::default(),
    )
    .await;
    assert_eq!(
        srv.bdl("2025-12-25", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        srv.bdl("2025-12-25", Some("wrong")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        srv.bdl("2025-12-25", Some(KEY)).await.status(),
        StatusCode::OK
    );
    let events = "/odds-api/v4/sports/basketball_nba/events";
    assert_eq!(srv.get(events).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        srv.get(&format!("{events}?apiKey={KEY}")).await.status(),
        StatusCode::OK
    );
    // NBA.com's public feeds need none.
    assert_eq!(
        srv.get("/nba/static/json/staticData/scheduleLeagueV2.json")
            .await
            .status(),
        StatusCode::OK
    );
}

fn faults(group: &str, f: EndpointFaults) -> FaultConfig {
    FaultConfig::from([(group.to_owned(), f)])
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let f = EndpointFaults {
        rate_limit: Some(3),
        rate_window_secs: Some(30),
        ..Default::default()
    };
    let srv = Server::start(
        Timestamp::from_second(1_767_000_000).unwrap(),
        faults("boxscores", f),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            srv.bdl("2025-12-25", Some(KEY)).await.status(),
            StatusCode::OK
        );
    }
    let r = srv.bdl("2025-12-25", Some(KEY)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    // Other endpoint groups are not limited.
    assert_eq!(
        srv.get("/nba/injury-report?date=2025-12-25").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn keys_expire_mid_run_until_rotated() {
    let f = EndpointFaults {
        key_expires_after: Some(2),
        ..Default::default()
    };
    let srv = Server::start(
        Timestamp::from_second(1_767_000_000).unwrap(),
        faults("boxscores", f),
    )
    .await;
    assert_eq!(
        srv.bdl("2025-12-25", Some(KEY)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        srv.bdl("2025-12-25", Some(KEY)).await.status(),
        StatusCode::OK
    );
    let r = srv.bdl("2025-12-25", Some(KEY)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "API key expired");
    assert_eq!(
        srv.bdl("2025-12-25", Some(KEY)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = srv
        .http
        .post(format!("{}/admin/keys", srv.base))
        .json(&json!({ "api_key": "rotated" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        srv.bdl("2025-12-25", Some("rotated")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn injected_server_errors() {
    let f = EndpointFaults {
        fail_first: 2,
        error_status: Some(502),
        ..Default::default()
    };
    let srv = Server::start(
        Timestamp::from_second(1_767_000_000).unwrap(),
        faults("schedule", f),
    )
    .await;
    let path = "/nba/static/json/staticData/scheduleLeagueV2.json";
    assert_eq!(srv.get(path).await.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(srv.get(path).await.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(srv.get(path).await.status(), StatusCode::OK);

    // A failure rate fails about that share of requests, the same ones every run.
    srv.set_faults(json!({ "*": { "error_rate": 0.5 } })).await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(srv.get("/nba/injury-report?date=2025-12-25").await.status());
    }
    let failed = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!((8..=32).contains(&failed), "{failed} of 40 failed");
    srv.set_faults(json!({ "*": { "error_rate": 0.5 } })).await;
    let mut again = Vec::new();
    for _ in 0..40 {
        again.push(srv.get("/nba/injury-report?date=2025-12-25").await.status());
    }
    assert_eq!(statuses, again, "fault sequence is reproducible");
}

#[tokio::test]
async fn slow_responses() {
    let f = EndpointFaults {
        delay_ms: 700,
        ..Default::default()
    };
    let srv = Server::start(
        Timestamp::from_second(1_767_000_000).unwrap(),
        faults("injuries", f),
    )
    .await;
    let t = Instant::now();
    assert_eq!(
        srv.get("/nba/injury-report?date=2025-12-25").await.status(),
        StatusCode::OK
    );
    assert!(
        t.elapsed() >= Duration::from_millis(700),
        "{:?}",
        t.elapsed()
    );
    // Other groups are not delayed (a small payload: no games in July).
    let t = Instant::now();
    assert_eq!(
        srv.bdl("2025-07-01", Some(KEY)).await.status(),
        StatusCode::OK
    );
    assert!(
        t.elapsed() < Duration::from_millis(700),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn malformed_and_truncated_payloads() {
    let f = EndpointFaults {
        malformed_first: 1,
        truncated_first: 1,
        ..Default::default()
    };
    let srv = Server::start(
        Timestamp::from_second(1_767_000_000).unwrap(),
        faults("boxscores", f),
    )
    .await;
    let good = {
        srv.set_faults(json!({})).await;
        srv.bdl("2025-12-25", Some(KEY))
            .await
            .bytes()
            .await
            .unwrap()
    };
    srv.set_faults(json!({ "boxscores": { "malformed_first": 1, "truncated_first": 1 } }))
        .await;
    let malformed = srv.bdl("2025-12-25", Some(KEY)).await;
    assert_eq!(malformed.status(), StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&malformed.bytes().await.unwrap()).is_err());
    let truncated = srv
        .bdl("2025-12-25", Some(KEY))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&truncated).is_err());
    assert_eq!(truncated.len(), good.len() / 2);
    assert_eq!(&good[..truncated.len()], &truncated[..]);
    let ok = srv
        .bdl("2025-12-25", Some(KEY))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(ok, good);
}

#[test]
fn example_fault_file_parses() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/faults.example.json"))
        .unwrap();
    let cfg: FaultConfig = serde_json::from_str(&text).unwrap();
    assert!(cfg.contains_key("boxscores") && cfg.contains_key("odds"));
    // Unknown fields are rejected, so a typo cannot silently disable a fault.
    assert!(serde_json::from_str::<FaultConfig>(r#"{"odds": {"fail_frist": 2}}"#).is_err());
}
