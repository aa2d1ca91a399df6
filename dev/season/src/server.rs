//! The upstream-API server: the season in the shapes the legacy scrapers consumed, behind a
//! simulated clock, with API keys, rate limits, token expiry and injectable faults.
//!
//! Routes (all GET unless noted; `dev/season/README.md` documents shapes and fault modes):
//!
//! | Route | Upstream it imitates | Key | Visible |
//! |---|---|---|---|
//! | `/nba/static/json/staticData/scheduleLeagueV2.json` | NBA.com schedule | no | always; scores once final |
//! | `/nba/static/json/liveData/playbyplay/playbyplay_{gameId}.json` | NBA.com play-by-play | no | after the game ends |
//! | `/bdl/v1/box_scores?date=D` | balldontlie box scores | `Authorization` header | games of D that ended |
//! | `/nba/injury-report?date=D` | NBA official injury report | no | from 11:00 ET on D |
//! | `/odds-api/v4/sports/basketball_nba/events` | The Odds API events | `apiKey` | 20 h before tip-off until tip-off |
//! | `/odds-api/v4/sports/basketball_nba/odds?markets=spreads,totals` | The Odds API game lines | `apiKey` | same |
//! | `/odds-api/v4/sports/basketball_nba/events/{id}/odds?markets=player_points` | The Odds API props | `apiKey` | same |
//! | `/odds-api/v4/historical/sports/basketball_nba/events/{id}/odds?date=T` | historical props | `apiKey` | T in the open window, T <= now |
//! | `/odds-api/v4/historical/sports/basketball_nba/odds?markets=spreads,totals&date=T` | historical game lines | `apiKey` | games open at T, T <= now |
//! | `GET/PUT /admin/clock`, `GET/PUT /admin/faults`, `POST /admin/keys`, `GET /admin/stats` | control | no | |

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::league::{ZONE_DISTANCE, ZONE_POINTS};
use crate::rng::Rng;
use crate::season::{BOOKMAKERS, Season};

/// Fault injection for one endpoint group (`schedule`, `pbp`, `boxscores`, `injuries`, `odds`)
/// or for all of them (`*`). Every field defaults to "no fault".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointFaults {
    /// The first N requests fail with `error_status` (default 503).
    pub fail_first: u32,
    /// After those, this fraction of requests fails (a fixed pseudo-random sequence).
    pub error_rate: f64,
    /// Status for injected errors (500-599; default 503).
    pub error_status: Option<u16>,
    /// Every response is delayed by this many milliseconds.
    pub delay_ms: u64,
    /// The first N successful payloads are replaced by invalid JSON.
    pub malformed_first: u32,
    /// The next N successful payloads are cut off half-way.
    pub truncated_first: u32,
    /// At most this many requests per `rate_window_secs`; more get 429 with `Retry-After`.
    pub rate_limit: Option<u32>,
    /// Rate-limit window in seconds (default 60).
    pub rate_window_secs: Option<u64>,
    /// A key expires (401) after this many authenticated requests; add a new key with
    /// `POST /admin/keys` to continue.
    pub key_expires_after: Option<u32>,
}

/// Fault configuration: endpoint group name (or `*`) to its faults.
pub type FaultConfig = BTreeMap<String, EndpointFaults>;

/// Mutable per-group counters.
#[derive(Debug, Default)]
struct GroupState {
    requests: u64,
    successes: u64,
    window_start: Option<Instant>,
    window_count: u32,
    key_uses: BTreeMap<String, u32>,
}

/// Server state shared by all handlers.
#[derive(Debug)]
pub struct AppState {
    season: Arc<Season>,
    clock: RwLock<Timestamp>,
    faults: RwLock<FaultConfig>,
    keys: RwLock<Vec<String>>,
    expired: RwLock<Vec<String>>,
    groups: Mutex<BTreeMap<&'static str, GroupState>>,
}

impl AppState {
    /// State serving `season` with the clock at `now`, accepting `api_key`.
    pub fn new(
        season: Arc<Season>,
        now: Timestamp,
        api_key: &str,
        faults: FaultConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            season,
            clock: RwLock::new(now),
            faults: RwLock::new(faults),
            keys: RwLock::new(vec![api_key.to_owned()]),
            expired: RwLock::new(Vec::new()),
            groups: Mutex::new(BTreeMap::new()),
        })
    }

    /// The simulated time.
    pub fn now(&self) -> Timestamp {
        self.clock
            .read()
            .map(|t| *t)
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Sets the simulated time.
    pub fn set_now(&self, now: Timestamp) {
        if let Ok(mut c) = self.clock.write() {
            *c = now;
        }
    }

    /// Accepts another API key (what `POST /admin/keys` does), e.g. one per upstream service.
    pub fn add_key(&self, key: &str) {
        if let Ok(mut k) = self.keys.write() {
            k.push(key.to_owned());
        }
    }

    fn faults_for(&self, group: &str) -> EndpointFaults {
        let faults = self.faults.read().map(|f| f.clone()).unwrap_or_default();
        faults
            .get(group)
            .or_else(|| faults.get("*"))
            .cloned()
            .unwrap_or_default()
    }
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/nba/static/json/staticData/scheduleLeagueV2.json",
            get(schedule),
        )
        .route(
            "/nba/static/json/liveData/playbyplay/{file}",
            get(play_by_play),
        )
        .route("/bdl/v1/box_scores", get(box_scores))
        .route("/nba/injury-report", get(injury_report))
        .route(
            "/odds-api/v4/sports/basketball_nba/events",
            get(odds_events),
        )
        .route(
            "/odds-api/v4/sports/basketball_nba/odds",
            get(odds_game_lines),
        )
        .route(
            "/odds-api/v4/sports/basketball_nba/events/{id}/odds",
            get(odds_event_props),
        )
        .route(
            "/odds-api/v4/historical/sports/basketball_nba/events/{id}/odds",
            get(odds_historical_props),
        )
        .route(
            "/odds-api/v4/historical/sports/basketball_nba/odds",
            get(odds_historical_game_lines),
        )
        .route("/admin/clock", get(get_clock).put(put_clock))
        .route("/admin/faults", get(get_faults).put(put_faults))
        .route("/admin/keys", post(add_key))
        .route("/admin/stats", get(stats))
        .with_state(state)
}

/// Where a request's API key is.
#[derive(Clone, Copy)]
enum Auth {
    None,
    /// balldontlie: the raw key in the `Authorization` header.
    Header,
    /// The Odds API: `?apiKey=`.
    Query,
}

type Produced = Result<Value, (StatusCode, String)>;

enum Verdict {
    Go {
        payload_fault: Option<PayloadFault>,
        success_no: u64,
    },
    Limited(u64),
    Unauthorized(&'static str),
    Fail(StatusCode),
}

#[derive(Clone, Copy)]
enum PayloadFault {
    Malformed,
    Truncated,
}

fn error_body(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

/// Decides what happens to request number `n` of a group: rate limit, then auth, then
/// injected failures, then payload faults.
fn decide(
    state: &AppState,
    g: &mut GroupState,
    faults: &EndpointFaults,
    group: &str,
    key: Option<&str>,
) -> Verdict {
    g.requests += 1;
    let n = g.requests;
    if let Some(limit) = faults.rate_limit {
        let window = Duration::from_secs(faults.rate_window_secs.unwrap_or(60).max(1));
        let now = Instant::now();
        let start = match g.window_start {
            Some(start) if now.duration_since(start) < window => start,
            _ => {
                g.window_start = Some(now);
                g.window_count = 0;
                now
            }
        };
        g.window_count += 1;
        if g.window_count > limit {
            let left = window.saturating_sub(now.duration_since(start));
            return Verdict::Limited(left.as_secs().max(1));
        }
    }
    if let Some(key) = key {
        let valid = state
            .keys
            .read()
            .map(|k| k.iter().any(|x| x == key))
            .unwrap_or(false);
        let expired = state
            .expired
            .read()
            .map(|k| k.iter().any(|x| x == key))
            .unwrap_or(false);
        if key.is_empty() {
            return Verdict::Unauthorized("missing API key");
        }
        if expired {
            return Verdict::Unauthorized("API key expired");
        }
        if !valid {
            return Verdict::Unauthorized("invalid API key");
        }
        if let Some(limit) = faults.key_expires_after {
            let uses = g.key_uses.entry(key.to_owned()).or_default();
            *uses += 1;
            if *uses > limit {
                if let Ok(mut e) = state.expired.write() {
                    e.push(key.to_owned());
                }
                if let Ok(mut k) = state.keys.write() {
                    k.retain(|x| x != key);
                }
                return Verdict::Unauthorized("API key expired");
            }
        }
    }
    let status = StatusCode::from_u16(faults.error_status.unwrap_or(503))
        .ok()
        .filter(StatusCode::is_server_error)
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let random_fail = faults.error_rate > 0.0 && {
        let mut h = Sha256::new();
        h.update(group.as_bytes());
        h.update(n.to_le_bytes());
        let d = h.finalize();
        let x = f64::from(u32::from_le_bytes([d[0], d[1], d[2], d[3]])) / f64::from(u32::MAX);
        x < faults.error_rate
    };
    if n <= u64::from(faults.fail_first) || random_fail {
        return Verdict::Fail(status);
    }
    g.successes += 1;
    let s = g.successes;
    let malformed = u64::from(faults.malformed_first);
    let payload_fault = if s <= malformed {
        Some(PayloadFault::Malformed)
    } else if s <= malformed + u64::from(faults.truncated_first) {
        Some(PayloadFault::Truncated)
    } else {
        None
    };
    Verdict::Go {
        payload_fault,
        success_no: s,
    }
}

/// Applies rate limits, auth and faults around `produce`.
async fn respond(
    state: &AppState,
    group: &'static str,
    auth: Auth,
    headers: &HeaderMap,
    query_key: Option<&str>,
    produce: impl FnOnce(&Season, Timestamp) -> Produced,
) -> Response {
    let faults = state.faults_for(group);
    let key = match auth {
        Auth::None => None,
        Auth::Header => Some(
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        ),
        Auth::Query => Some(query_key.unwrap_or("")),
    };
    let verdict = match state.groups.lock() {
        Ok(mut groups) => decide(state, groups.entry(group).or_default(), &faults, group, key),
        Err(_) => return error_body(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned"),
    };
    if faults.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
    }
    match verdict {
        Verdict::Limited(retry_after) => {
            let mut r = error_body(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert("retry-after", v);
            }
            r
        }
        Verdict::Unauthorized(msg) => error_body(StatusCode::UNAUTHORIZED, msg),
        Verdict::Fail(status) => error_body(status, "injected upstream failure"),
        Verdict::Go {
            payload_fault,
            success_no,
        } => match produce(&state.season, state.now()) {
            Err((status, msg)) => error_body(status, &msg),
            Ok(value) => {
                let mut body = serde_json::to_vec(&value).unwrap_or_default();
                match payload_fault {
                    Some(PayloadFault::Malformed) => {
                        body = b"{\"data\": [{\"id\": 1,, <html>502 Bad Gateway</html>".to_vec();
                    }
                    Some(PayloadFault::Truncated) => body.truncate(body.len() / 2),
                    None => {}
                }
                let mut r = (StatusCode::OK, body).into_response();
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                if matches!(auth, Auth::Query) {
                    let remaining = 500u64.saturating_sub(success_no);
                    for (name, v) in [
                        ("x-requests-used", success_no),
                        ("x-requests-remaining", remaining),
                    ] {
                        if let Ok(v) = HeaderValue::from_str(&v.to_string()) {
                            r.headers_mut().insert(name, v);
                        }
                    }
                }
                r
            }
        },
    }
}

fn not_found(msg: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, msg.into())
}

fn bad_request(msg: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, msg.into())
}

fn parse_date(q: &BTreeMap<String, String>) -> Result<Date, (StatusCode, String)> {
    q.get("date")
        .ok_or_else(|| bad_request("missing date"))?
        .parse()
        .map_err(|e| bad_request(format!("bad date: {e}")))
}

fn team_json(season: &Season, t: usize, score: Option<u32>) -> Value {
    let team = &season.league.teams[t];
    json!({
        "teamId": team.team_id, "teamName": team.name, "teamCity": team.city,
        "teamTricode": team.abbr, "score": score.unwrap_or(0),
    })
}

async fn schedule(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    respond(&s, "schedule", Auth::None, &headers, None, |season, now| {
        let mut dates = Vec::new();
        for (date, games) in &season.by_date {
            let games: Vec<Value> = games
                .iter()
                .map(|&g| {
                    let game = &season.games[g];
                    let (status, text, score) = if now >= game.end {
                        (3, "Final", Some(season.score(g)))
                    } else if now >= game.tipoff {
                        (2, "In Progress", None)
                    } else {
                        (1, "Scheduled", None)
                    };
                    let home = season.league.teams[game.home].abbr;
                    let away = season.league.teams[game.away].abbr;
                    json!({
                        "gameId": game.game_id,
                        "gameCode": format!("{}/{away}{home}", date.strftime("%Y%m%d")),
                        "gameStatus": status,
                        "gameStatusText": text,
                        "gameDateTimeUTC": game.tipoff.to_string(),
                        "arenaName": season.league.teams[game.home].arena,
                        "homeTeam": team_json(season, game.home, score.map(|s| s.0)),
                        "awayTeam": team_json(season, game.away, score.map(|s| s.1)),
                    })
                })
                .collect();
            let game_date = format!("{} 00:00:00", date.strftime("%m/%d/%Y"));
            dates.push(json!({ "gameDate": game_date, "games": games }));
        }
        Ok(json!({ "leagueSchedule": {
            "seasonYear": crate::schedule::SEASON, "leagueId": "00", "gameDates": dates } }))
    })
    .await
}

/// NBA.com clock text and period for a second of regulation (0..2880).
fn clock_string(elapsed_secs: u32) -> (u32, String) {
    let period = (elapsed_secs / 720).min(3) + 1;
    let left = 720 - (elapsed_secs - (period - 1) * 720).min(720);
    (period, format!("PT{:02}M{:02}.00S", left / 60, left % 60))
}

/// One shot or free throw: (second of the game, player, zone or None for a free throw, made).
type Event = (u32, usize, Option<u8>, bool);

fn pbp_events(season: &Season, g: usize, rng: &mut Rng) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    for pg in season.player_games_of(g) {
        for &(zone, made) in &pg.shots {
            events.push((rng.below(2880) as u32, pg.player, Some(zone), made));
        }
        // Which free throws went in: exactly `ftm` of `fta`, in random order.
        let mut fts: Vec<bool> = (0..pg.fta).map(|i| i < pg.ftm).collect();
        rng.shuffle(&mut fts);
        for made in fts {
            events.push((rng.below(2880) as u32, pg.player, None, made));
        }
    }
    events.sort_by_key(|e| (e.0, e.1));
    events
}

async fn play_by_play(
    State(s): State<Arc<AppState>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(&s, "pbp", Auth::None, &headers, None, |season, now| {
        let game_id = file
            .strip_prefix("playbyplay_")
            .and_then(|f| f.strip_suffix(".json"))
            .ok_or_else(|| not_found("no such file"))?;
        let g = season
            .game_index(game_id)
            .ok_or_else(|| not_found("no such game"))?;
        let game = &season.games[g];
        if now < game.end {
            return Err(not_found(format!(
                "play-by-play for {game_id} is not available yet"
            )));
        }
        // Event times come from their own stream, so the box scores do not depend on them.
        let mut rng = Rng::derive(season.seed, &format!("pbp/{game_id}"));
        let events = pbp_events(season, g, &mut rng);
        let (mut home, mut away) = (0, 0);
        let mut actions = Vec::with_capacity(events.len());
        for (i, (t, p, zone, made)) in events.into_iter().enumerate() {
            let player = &season.league.players[p];
            let (action_type, area, distance, value) = match zone {
                Some(z) => {
                    let z = usize::from(z);
                    let (lo, hi) = ZONE_DISTANCE[z];
                    let dist = ((lo + rng.uniform() * (hi - lo)) * 10.0).round() / 10.0;
                    let kind = if ZONE_POINTS[z] == 3 { "3pt" } else { "2pt" };
                    (
                        kind,
                        Some(crate::league::ZONES[z]),
                        Some(dist),
                        ZONE_POINTS[z],
                    )
                }
                None => ("freethrow", None, None, 1),
            };
            let pts = if made { value } else { 0 };
            if player.team == game.home {
                home += pts;
            } else {
                away += pts;
            }
            let (period, clock) = clock_string(t);
            actions.push(json!({
                "actionNumber": i + 1,
                "period": period,
                "clock": clock,
                "actionType": action_type,
                "shotResult": if made { "Made" } else { "Missed" },
                "area": area,
                "shotDistance": distance,
                "personId": player.player_id,
                "playerName": player.name(),
                "teamTricode": season.league.teams[player.team].abbr,
                "pointsTotal": pts,
                "scoreHome": home.to_string(),
                "scoreAway": away.to_string(),
            }));
        }
        Ok(json!({ "meta": { "version": 1, "code": 200 },
                   "game": { "gameId": game_id, "actions": actions } }))
    })
    .await
}

fn minutes_string(seconds: u32) -> String {
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

fn bdl_team(season: &Season, g: usize, t: usize) -> Value {
    let tm = &season.league.teams[t];
    let players: Vec<Value> = season
        .player_games_of(g)
        .iter()
        .filter(|pg| pg.team == t)
        .map(|pg| {
            let p = &season.league.players[pg.player];
            let min = if pg.dnp_reason.is_none() {
                minutes_string(pg.seconds)
            } else {
                "00".to_owned()
            };
            json!({
                "player": { "id": p.bdl_id, "first_name": p.first_name,
                            "last_name": p.last_name, "position": p.position },
                "min": min, "pts": pg.pts, "fgm": pg.fgm, "fga": pg.fga,
                "fg3m": pg.fg3m, "fg3a": pg.fg3a, "ftm": pg.ftm, "fta": pg.fta,
                "reb": pg.reb, "ast": pg.ast, "comment": pg.dnp_reason,
            })
        })
        .collect();
    json!({
        "id": tm.bdl_id, "conference": tm.conference, "division": tm.division,
        "city": tm.city, "name": tm.name, "full_name": tm.full_name(),
        "abbreviation": tm.abbr, "players": players,
    })
}

async fn box_scores(
    State(s): State<Arc<AppState>>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    respond(
        &s,
        "boxscores",
        Auth::Header,
        &headers,
        None,
        |season, now| {
            let date = parse_date(&q)?;
            let mut data = Vec::new();
            for &g in season
                .by_date
                .get(&date)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let game = &season.games[g];
                if now < game.end {
                    continue;
                }
                let (hs, vs) = season.score(g);
                data.push(json!({
                    "date": date.to_string(), "season": 2025, "status": "Final", "period": 4,
                    "time": "Final", "postseason": false,
                    "home_team_score": hs, "visitor_team_score": vs,
                    "home_team": bdl_team(season, g, game.home),
                    "visitor_team": bdl_team(season, g, game.away),
                    "nba_game_id": game.game_id,
                }));
            }
            Ok(json!({ "data": data }))
        },
    )
    .await
}

async fn injury_report(
    State(s): State<Arc<AppState>>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    respond(&s, "injuries", Auth::None, &headers, None, |season, now| {
        let date = parse_date(&q)?;
        let games = season.by_date.get(&date).cloned().unwrap_or_default();
        let Some(&first) = games.first() else {
            return Ok(
                json!({ "reportDate": date.to_string(), "reportTime": null, "entries": [] }),
            );
        };
        let published = season.injury_report_time(first);
        if now < published {
            return Err(not_found(format!(
                "the injury report for {date} is published at {published}"
            )));
        }
        let entries: Vec<Value> = season
            .injuries
            .iter()
            .filter(|e| games.contains(&e.game))
            .map(|e| {
                let game = &season.games[e.game];
                let p = &season.league.players[e.player];
                let home = season.league.teams[game.home].abbr;
                let away = season.league.teams[game.away].abbr;
                json!({
                    "gameDate": date.strftime("%m/%d/%Y").to_string(),
                    "gameTime": game.tipoff.to_string(),
                    "gameId": game.game_id,
                    "matchup": format!("{away}@{home}"),
                    "team": season.league.teams[p.team].full_name(),
                    "playerName": format!("{}, {}", p.last_name, p.first_name),
                    "currentStatus": e.status,
                    "reason": e.reason,
                })
            })
            .collect();
        Ok(
            json!({ "reportDate": date.to_string(), "reportTime": published.to_string(),
                   "entries": entries }),
        )
    })
    .await
}

/// The Odds API's event id for a game: 32 hex digits derived from the game id.
pub fn event_id(game_id: &str) -> String {
    let d = Sha256::digest(game_id.as_bytes());
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn event_json(season: &Season, g: usize) -> Value {
    let game = &season.games[g];
    json!({
        "id": event_id(&game.game_id),
        "sport_key": "basketball_nba",
        "sport_title": "NBA",
        "commence_time": game.tipoff.to_string(),
        "home_team": season.league.teams[game.home].full_name(),
        "away_team": season.league.teams[game.away].full_name(),
    })
}

fn price(american: i32, format: &str) -> Value {
    if format == "american" {
        json!(american)
    } else {
        let d = if american > 0 {
            1.0 + f64::from(american) / 100.0
        } else {
            1.0 + 100.0 / f64::from(-american)
        };
        json!((d * 100.0).round() / 100.0)
    }
}

/// Whether game `g`'s markets are open at `at` (from 20 h before tip-off until tip-off).
fn market_open(season: &Season, g: usize, at: Timestamp) -> bool {
    season.odds_open_time(g) <= at && at < season.games[g].tipoff
}

fn open_games(season: &Season, at: Timestamp) -> Vec<usize> {
    (0..season.games.len())
        .filter(|&g| market_open(season, g, at))
        .collect()
}

fn odds_format(q: &BTreeMap<String, String>) -> String {
    q.get("oddsFormat")
        .cloned()
        .unwrap_or_else(|| "decimal".to_owned())
}

async fn odds_events(
    State(s): State<Arc<AppState>>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let key = q.get("apiKey").map(String::as_str);
    respond(&s, "odds", Auth::Query, &headers, key, |season, now| {
        let events = open_games(season, now)
            .into_iter()
            .map(|g| event_json(season, g));
        Ok(Value::Array(events.collect()))
    })
    .await
}

fn game_lines_json(season: &Season, g: usize, markets: &str, format: &str) -> Value {
    let game = &season.games[g];
    let home = season.league.teams[game.home].full_name();
    let away = season.league.teams[game.away].full_name();
    let vig = price(-110, format);
    let books: Vec<Value> = season
        .game_lines
        .iter()
        .filter(|l| l.game == g)
        .map(|l| {
            let mut m = Vec::new();
            if markets.contains("spreads") {
                m.push(json!({ "key": "spreads", "outcomes": [
                    { "name": home, "price": vig, "point": l.home_spread },
                    { "name": away, "price": vig, "point": -l.home_spread },
                ]}));
            }
            if markets.contains("totals") {
                m.push(json!({ "key": "totals", "outcomes": [
                    { "name": "Over", "price": vig, "point": l.total },
                    { "name": "Under", "price": vig, "point": l.total },
                ]}));
            }
            json!({ "key": l.bookmaker, "title": l.bookmaker,
                    "last_update": season.odds_open_time(g).to_string(), "markets": m })
        })
        .collect();
    let mut e = event_json(season, g);
    e["bookmakers"] = Value::Array(books);
    e
}

async fn odds_game_lines(
    State(s): State<Arc<AppState>>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let key = q.get("apiKey").map(String::as_str);
    respond(&s, "odds", Auth::Query, &headers, key, |season, now| {
        let format = odds_format(&q);
        let markets = q
            .get("markets")
            .cloned()
            .unwrap_or_else(|| "h2h".to_owned());
        let events = open_games(season, now)
            .into_iter()
            .map(|g| game_lines_json(season, g, &markets, &format));
        Ok(Value::Array(events.collect()))
    })
    .await
}

fn props_json(season: &Season, g: usize, format: &str) -> Value {
    let updated = season.odds_open_time(g).to_string();
    let books: Vec<Value> = BOOKMAKERS
        .iter()
        .map(|book| {
            let outcomes: Vec<Value> = season
                .props
                .iter()
                .filter(|p| p.game == g && p.bookmaker == *book)
                .flat_map(|p| {
                    let name = season.league.players[p.player].name();
                    [
                        json!({ "name": "Over", "description": name,
                                "price": price(p.over_price, format), "point": p.line }),
                        json!({ "name": "Under", "description": name,
                                "price": price(p.under_price, format), "point": p.line }),
                    ]
                })
                .collect();
            json!({ "key": book, "title": book, "last_update": updated,
                    "markets": [{ "key": "player_points", "last_update": updated,
                                  "outcomes": outcomes }] })
        })
        .collect();
    let mut e = event_json(season, g);
    e["bookmakers"] = Value::Array(books);
    e
}

fn game_by_event(season: &Season, id: &str) -> Option<usize> {
    (0..season.games.len()).find(|&g| event_id(&season.games[g].game_id) == id)
}

async fn odds_event_props(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let key = q.get("apiKey").map(String::as_str);
    respond(&s, "odds", Auth::Query, &headers, key, |season, now| {
        let g = game_by_event(season, &id).ok_or_else(|| not_found("Event not found"))?;
        if !market_open(season, g, now) {
            return Err(not_found(
                "Event not found. The event may have expired or not opened.",
            ));
        }
        Ok(props_json(season, g, &odds_format(&q)))
    })
    .await
}

async fn odds_historical_props(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let key = q.get("apiKey").map(String::as_str);
    respond(&s, "odds", Auth::Query, &headers, key, |season, now| {
        let at: Timestamp = q
            .get("date")
            .ok_or_else(|| bad_request("missing date"))?
            .parse()
            .map_err(|e| bad_request(format!("bad date: {e}")))?;
        if at > now {
            return Err(bad_request("date is in the future"));
        }
        let g = game_by_event(season, &id).ok_or_else(|| not_found("Event not found"))?;
        if !market_open(season, g, at) {
            return Err(not_found("Event not found at that time"));
        }
        Ok(json!({ "timestamp": season.odds_open_time(g).to_string(),
                   "previous_timestamp": null, "next_timestamp": null,
                   "data": props_json(season, g, &odds_format(&q)) }))
    })
    .await
}

/// The game-lines snapshot at `date=T`: every game whose markets were open at T, wrapped as The
/// Odds API wraps historical answers (`{timestamp, previous_timestamp, next_timestamp, data}`).
async fn odds_historical_game_lines(
    State(s): State<Arc<AppState>>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let key = q.get("apiKey").map(String::as_str);
    respond(&s, "odds", Auth::Query, &headers, key, |season, now| {
        let at: Timestamp = q
            .get("date")
            .ok_or_else(|| bad_request("missing date"))?
            .parse()
            .map_err(|e| bad_request(format!("bad date: {e}")))?;
        if at > now {
            return Err(bad_request("date is in the future"));
        }
        let format = odds_format(&q);
        let markets = q
            .get("markets")
            .cloned()
            .unwrap_or_else(|| "h2h".to_owned());
        let events: Vec<Value> = open_games(season, at)
            .into_iter()
            .map(|g| game_lines_json(season, g, &markets, &format))
            .collect();
        Ok(json!({ "timestamp": at.to_string(),
                   "previous_timestamp": null, "next_timestamp": null,
                   "data": events }))
    })
    .await
}

#[derive(Deserialize)]
struct ClockBody {
    now: Timestamp,
}

async fn get_clock(State(s): State<Arc<AppState>>) -> Response {
    axum::Json(json!({ "now": s.now().to_string() })).into_response()
}

async fn put_clock(
    State(s): State<Arc<AppState>>,
    axum::Json(body): axum::Json<ClockBody>,
) -> Response {
    s.set_now(body.now);
    axum::Json(json!({ "now": s.now().to_string() })).into_response()
}

async fn get_faults(State(s): State<Arc<AppState>>) -> Response {
    let f = s.faults.read().map(|f| f.clone()).unwrap_or_default();
    axum::Json(f).into_response()
}

/// Replaces the fault configuration and resets all counters (so `fail_first` counts anew).
async fn put_faults(
    State(s): State<Arc<AppState>>,
    axum::Json(body): axum::Json<FaultConfig>,
) -> Response {
    if let Ok(mut f) = s.faults.write() {
        *f = body;
    }
    if let Ok(mut g) = s.groups.lock() {
        g.clear();
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct KeyBody {
    api_key: String,
}

/// Adds a valid key (the rotated key after an expiry).
async fn add_key(
    State(s): State<Arc<AppState>>,
    axum::Json(body): axum::Json<KeyBody>,
) -> Response {
    if let Ok(mut k) = s.keys.write() {
        k.push(body.api_key);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(s): State<Arc<AppState>>) -> Response {
    let out: BTreeMap<&str, Value> = s
        .groups
        .lock()
        .map(|g| {
            g.iter()
                .map(|(k, v)| {
                    (
                        *k,
                        json!({ "requests": v.requests, "successes": v.successes }),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    axum::Json(out).into_response()
}
