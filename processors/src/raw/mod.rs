//! Phase 2: the raw processors. Each reads the date's stored payloads of one source, parses
//! them into typed rows (strict shapes), and replaces the date's partition of its `nba_raw`
//! table. A payload that does not parse is moved to `quarantine/<source>/<date>/<name>` with a
//! `<name>.reason.txt` beside it and reported as a failed `payloads-valid` check; the other
//! payloads of the date still load. A later valid payload under the same key (a re-scrape)
//! supersedes its quarantine entry, which moves to `quarantine/superseded/<source>/<date>/`
//! for audit and stops failing the check.

pub mod parse;

use std::collections::BTreeSet;

use bytes::Bytes;
use tipoff_warehouse::storage::ObjectKey;
use tipoff_warehouse::{Row, TableSchema, Value};

use crate::contract::Failure;
use crate::runner::{Ctx, warehouse_failure};
use crate::schedule::{Game, SCHEDULE_FILE};
use crate::scrape::{self, coverage_check, games_expected_final, source};

type Parser = fn(&[u8], &parse::Input<'_>) -> Result<Vec<Row>, String>;

/// One raw processor: its source, table schema and parser.
struct Spec {
    source: &'static str,
    schema: &'static str,
    parser: Parser,
}

const SCHEDULE: Spec = Spec {
    source: source::SCHEDULE,
    schema: include_str!("../../../config/schemas/nba_raw/nbac_schedule.json"),
    parser: parse::schedule,
};
const BOXSCORES: Spec = Spec {
    source: source::BOXSCORES,
    schema: include_str!("../../../config/schemas/nba_raw/bdl_player_boxscores.json"),
    parser: parse::boxscores,
};
const PLAY_BY_PLAY: Spec = Spec {
    source: source::PLAY_BY_PLAY,
    schema: include_str!("../../../config/schemas/nba_raw/nbac_play_by_play.json"),
    parser: parse::play_by_play,
};
const INJURY_REPORT: Spec = Spec {
    source: source::INJURY_REPORT,
    schema: include_str!("../../../config/schemas/nba_raw/nbac_injury_report.json"),
    parser: parse::injury_report,
};
const PLAYER_PROPS: Spec = Spec {
    source: source::PLAYER_PROPS,
    schema: include_str!("../../../config/schemas/nba_raw/odds_api_player_points_props.json"),
    parser: parse::player_props,
};
const GAME_LINES: Spec = Spec {
    source: source::GAME_LINES,
    schema: include_str!("../../../config/schemas/nba_raw/odds_api_game_lines.json"),
    parser: parse::game_lines,
};

/// `raw-schedule`.
pub async fn schedule(ctx: &mut Ctx) -> Result<(), Failure> {
    load(ctx, &SCHEDULE).await
}

/// `raw-boxscores`.
pub async fn boxscores(ctx: &mut Ctx) -> Result<(), Failure> {
    load(ctx, &BOXSCORES).await
}

/// `raw-play-by-play`.
pub async fn play_by_play(ctx: &mut Ctx) -> Result<(), Failure> {
    load(ctx, &PLAY_BY_PLAY).await
}

/// `raw-injury-report`.
pub async fn injury_report(ctx: &mut Ctx) -> Result<(), Failure> {
    load(ctx, &INJURY_REPORT).await
}

/// `raw-player-props`.
pub async fn player_props(ctx: &mut Ctx) -> Result<(), Failure> {
    load(ctx, &PLAYER_PROPS).await
}

/// `raw-game-lines`.
pub async fn game_lines(ctx: &mut Ctx) -> Result<(), Failure> {
    load(ctx, &GAME_LINES).await
}

fn key_of(segments: &[&str]) -> Result<ObjectKey, Failure> {
    ObjectKey::from_segments(segments.iter().copied())
        .map_err(|e| Failure::Permanent(format!("object key {segments:?}: {e}")))
}

fn file_name(k: &ObjectKey) -> String {
    k.to_string()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Moves a bad payload to quarantine with its reason.
async fn quarantine(
    ctx: &Ctx,
    source: &str,
    k: &ObjectKey,
    payload: Bytes,
    reason: &str,
) -> Result<(), Failure> {
    let date = ctx.args.date.to_string();
    let name = file_name(k);
    let q = key_of(&["quarantine", source, &date, &name])?;
    let why = key_of(&["quarantine", source, &date, &format!("{name}.reason.txt")])?;
    ctx.put(&q, payload).await?;
    let text = format!(
        "source: {k}\nprocessor: {}\nquarantined_at: {}\nreason: {reason}\n",
        ctx.args.processor,
        jiff::Timestamp::now()
    );
    ctx.put(&why, Bytes::from(text)).await?;
    ctx.storage
        .delete(k)
        .await
        .map_err(|e| crate::runner::storage_failure(&format!("deleting {k}"), &e))
}

/// Moves a quarantine entry that a valid payload of the same name superseded to
/// `quarantine/superseded/<source>/<date>/`, its reason file noting when and by what.
async fn supersede(ctx: &Ctx, source: &str, q: &ObjectKey) -> Result<(), Failure> {
    let date = ctx.args.date.to_string();
    let name = file_name(q);
    let reason_name = format!("{name}.reason.txt");
    let why = key_of(&["quarantine", source, &date, &reason_name])?;
    let to = key_of(&["quarantine", "superseded", source, &date, &name])?;
    let to_why = key_of(&["quarantine", "superseded", source, &date, &reason_name])?;
    if let Some(payload) = ctx.get(q).await? {
        ctx.put(&to, payload).await?;
    }
    let mut text = ctx
        .get(&why)
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    text.push_str(&format!(
        "superseded_at: {}\nsuperseded_by: raw/{source}/{date}/{name} (valid, loaded by {})\n",
        jiff::Timestamp::now(),
        ctx.args.processor
    ));
    ctx.put(&to_why, Bytes::from(text)).await?;
    for k in [q, &why] {
        ctx.storage
            .delete(k)
            .await
            .map_err(|e| crate::runner::storage_failure(&format!("deleting {k}"), &e))?;
    }
    Ok(())
}

/// How much of the date a `source` payload holds as phase 2 would load it: (games, rows),
/// or `None` if it does not parse. Scrapers use it to keep a smaller payload from replacing
/// a stored one.
pub fn extent(
    source: &str,
    name: &str,
    payload: &[u8],
    date: jiff::civil::Date,
    games: &[Game],
) -> Option<(usize, usize)> {
    let parser = [
        &SCHEDULE,
        &BOXSCORES,
        &PLAY_BY_PLAY,
        &INJURY_REPORT,
        &PLAYER_PROPS,
        &GAME_LINES,
    ]
    .into_iter()
    .find(|s| s.source == source)?
    .parser;
    let inp = parse::Input {
        key: "",
        name,
        date,
        games,
        processed_at: jiff::Timestamp::UNIX_EPOCH,
    };
    let rows = parser(payload, &inp).ok()?;
    Some((ids_in(&rows).len(), rows.len()))
}

/// Loads the date's payloads of `spec`'s source into its table.
async fn load(ctx: &mut Ctx, spec: &Spec) -> Result<(), Failure> {
    let schema = TableSchema::from_json(spec.schema, spec.source)
        .map_err(|e| Failure::Permanent(format!("compiled-in schema: {e}")))?;
    let table = schema.table_ref();
    let date = ctx.args.date;
    let date_s = date.to_string();

    if let Some(game) = ctx.config.game.clone() {
        ctx.warn(format!(
            "TIPOFF_GAME={game} ignored: a raw load replaces the date's partition from every stored payload"
        ));
    }
    // The schedule payload is everyone's reference for the date's games.
    let games: Vec<Game> = if spec.source == source::SCHEDULE {
        Vec::new()
    } else {
        scrape::stored_games(ctx).await?
    };

    let keys = ctx.list(&key_of(&["raw", spec.source, &date_s])?).await?;
    let processed_at = jiff::Timestamp::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut loaded = 0i64;
    let mut loaded_names: BTreeSet<String> = BTreeSet::new();
    let mut bad: Vec<String> = Vec::new();
    for k in &keys {
        let name = file_name(k);
        if spec.source == source::SCHEDULE && name != SCHEDULE_FILE {
            continue;
        }
        let Some(payload) = ctx.get(k).await? else {
            continue; // deleted since the listing
        };
        let key_s = k.to_string();
        let inp = parse::Input {
            key: &key_s,
            name: &name,
            date,
            games: &games,
            processed_at,
        };
        match (spec.parser)(&payload, &inp) {
            Ok(mut r) => {
                loaded += 1;
                loaded_names.insert(name);
                rows.append(&mut r);
            }
            Err(reason) => {
                ctx.warn(format!("quarantined {k}: {reason}"));
                quarantine(ctx, spec.source, k, payload, &reason).await?;
                bad.push(name);
            }
        }
    }
    // Payloads quarantined by an earlier run of this date stay reported until a valid payload
    // of the same name (a re-scrape) supersedes them.
    let earlier = ctx
        .list(&key_of(&["quarantine", spec.source, &date_s])?)
        .await?;
    for k in earlier {
        let name = file_name(&k);
        if name.ends_with(".reason.txt") || bad.contains(&name) {
            continue;
        }
        if loaded_names.contains(&name) {
            supersede(ctx, spec.source, &k).await?;
            ctx.warn(format!(
                "{k} superseded by a valid re-scrape; kept under quarantine/superseded/"
            ));
        } else {
            bad.push(name);
        }
    }
    let total = loaded + i64::try_from(bad.len()).unwrap_or(i64::MAX);
    ctx.check(
        "payloads-valid",
        bad.is_empty(),
        Some(loaded),
        Some(total),
        bad.clone(),
    );

    // Reported whether it passes or not: the catalog's gates require every gate's check.
    ctx.check(
        "payload-present",
        loaded > 0,
        Some(loaded.min(1)),
        Some(1),
        if loaded > 0 {
            vec![]
        } else {
            vec![format!("raw/{}/{date_s}", spec.source)]
        },
    );
    if loaded == 0 {
        // Nothing valid to load: leave the table as it is rather than wipe the date.
        ctx.warn(format!(
            "no valid {} payload for {date_s}; {table} left unchanged",
            spec.source
        ));
    } else {
        let wh = ctx.warehouse().await?;
        wh.ensure_table(&schema)
            .await
            .map_err(|e| warehouse_failure(&format!("ensuring {table}"), &e))?;
        let n = wh
            .replace_partition(&table, date, &rows)
            .await
            .map_err(|e| warehouse_failure(&format!("replacing {table} {date_s}"), &e))?;
        ctx.result
            .rows
            .insert(table.to_string(), i64::try_from(n).unwrap_or(i64::MAX));
    }

    completeness(ctx, spec, &games, &rows);
    Ok(())
}

fn ids_in(rows: &[Row]) -> BTreeSet<String> {
    rows.iter()
        .filter_map(|r| match r.get("game_id") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// Per-entity completeness: the date's games against the games that have rows.
fn completeness(ctx: &mut Ctx, spec: &Spec, games: &[Game], rows: &[Row]) {
    let ids = ids_in(rows);
    let all: Vec<&Game> = games.iter().collect();
    match spec.source {
        source::SCHEDULE => {
            let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            ctx.check("schedule-games", true, Some(n), None, vec![]);
        }
        source::BOXSCORES => {
            let expected = games_expected_final(ctx.args.mode, games);
            coverage_check(ctx, "boxscore-coverage", &expected, |g| {
                ids.contains(&g.game_id)
            });
        }
        source::PLAY_BY_PLAY => {
            let expected = games_expected_final(ctx.args.mode, games);
            coverage_check(ctx, "pbp-coverage", &expected, |g| ids.contains(&g.game_id));
        }
        source::PLAYER_PROPS => {
            coverage_check(ctx, "props-coverage", &all, |g| ids.contains(&g.game_id));
        }
        source::GAME_LINES => {
            coverage_check(ctx, "game-lines-coverage", &all, |g| {
                ids.contains(&g.game_id)
            });
        }
        _ => {}
    }
}
