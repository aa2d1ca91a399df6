//! One contract test per phase 3 and phase 4 processor on the BigQuery emulator: the inputs the
//! processor reads are copied from a lake where phases 1-4 ran, the processor runs against
//! BigQuery (twice: a rerun replaces, never appends), and its table must hold exactly the rows
//! the lake's run wrote. Each test uses a project of its own, so they run side by side. Needs
//! the emulators (`scripts/emulators.sh start && source .tipoff/emulators.env`); fails, never
//! skips, without.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use jiff::civil::Date;
use support::*;
use tipoff_crds::Mode;
use tipoff_warehouse::{TableRef, TableSchema, Warehouse};

/// Every table's schema, to create copies on BigQuery.
fn schema_of(t: &TableRef) -> TableSchema {
    TableSchema::load(
        &tipoff_warehouse::schema::repo_schema_dir()
            .join(&t.dataset)
            .join(format!("{}.json", t.table)),
    )
    .unwrap()
}

fn table(name: &str) -> TableRef {
    let (d, t) = name.split_once('.').unwrap();
    TableRef::new(d, t)
}

/// Copies `tables` for `from..=to` from the lake to BigQuery, partition by partition, except
/// the partition under test (`output` on `to`): the processor must write that one itself.
async fn copy(
    lake: &dyn Warehouse,
    bq: &dyn Warehouse,
    tables: &[&str],
    output: &str,
    from: Date,
    to: Date,
) {
    for name in tables {
        let t = table(name);
        bq.ensure_table(&schema_of(&t)).await.unwrap();
        let counts = lake.partition_row_counts(&t, from, to).await.unwrap();
        for d in counts.keys() {
            if *name == output && *d == to {
                continue;
            }
            let rows = lake.read_range(&t, *d, *d, None).await.unwrap();
            bq.replace_partition(&t, *d, &rows).await.unwrap();
        }
    }
}

async fn contract(processor: &str, output: &str, inputs: &[&str]) {
    bigquery_url();
    // Two days of history, then D: every input table has rows before and on D.
    let dates = game_dates_from(jiff::civil::date(2025, 10, 21), 3);
    let d = dates[2];
    let w = World::start(next_day(d)).await;
    w.history(&dates[..2]).await;
    w.phases(d, Mode::Production, &[1, 2, 3, 4]).await;
    let lake = w.lake().await;

    let project = format!(
        "c{}{}",
        processor.replace('-', ""),
        jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
    );
    let bq = tipoff_warehouse::open(&format!("bigquery://{project}"))
        .await
        .unwrap();
    copy(lake.as_ref(), bq.as_ref(), inputs, output, dates[0], d).await;
    assert!(
        table_rows(bq.as_ref(), &table(output), d).await.is_empty(),
        "the partition under test must start empty"
    );
    let mut config = w.config();
    config.warehouse_url = Some(format!("bigquery://{project}"));

    let out_t = table(output);
    let want = table_rows(lake.as_ref(), &out_t, d).await;
    assert!(!want.is_empty(), "{output} is empty in the lake");
    for round in 0..2 {
        let out = w
            .run_with(processor, d, Mode::Production, config.clone())
            .await;
        assert!(
            out.failure.is_none(),
            "{processor} on BigQuery (round {round}): {:?}\n{:#?}",
            out.failure,
            out.result.checks
        );
        assert!(
            out.result.checks.iter().all(|c| c.passed),
            "{processor}: {:#?}",
            out.result.checks
        );
        let got = table_rows(bq.as_ref(), &out_t, d).await;
        assert_eq!(
            got.len(),
            want.len(),
            "{output}: row counts differ (round {round})"
        );
        let only_bq: Vec<&String> = got.iter().filter(|r| !want.contains(r)).take(2).collect();
        let only_lake: Vec<&String> = want.iter().filter(|r| !got.contains(r)).take(2).collect();
        assert!(
            got == want,
            "{output}: BigQuery and the lake differ (round {round}):\nBigQuery only: {only_bq:#?}\nlake only: {only_lake:#?}"
        );
    }
}

macro_rules! contract_test {
    ($name:ident, $processor:literal, $output:literal, [$($input:literal),* $(,)?]) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            contract($processor, $output, &[$($input),*]).await;
        }
    };
}

contract_test!(
    player_game_summary_on_bigquery,
    "player-game-summary",
    "nba_analytics.player_game_summary",
    [
        "nba_raw.bdl_player_boxscores",
        "nba_raw.odds_api_player_points_props",
        "nba_raw.nbac_injury_report",
        "nba_analytics.player_game_summary",
    ]
);
contract_test!(
    team_offense_game_summary_on_bigquery,
    "team-offense-game-summary",
    "nba_analytics.team_offense_game_summary",
    ["nba_raw.bdl_player_boxscores"]
);
contract_test!(
    team_defense_game_summary_on_bigquery,
    "team-defense-game-summary",
    "nba_analytics.team_defense_game_summary",
    ["nba_raw.bdl_player_boxscores"]
);
contract_test!(
    upcoming_player_game_context_on_bigquery,
    "upcoming-player-game-context",
    "nba_analytics.upcoming_player_game_context",
    [
        "nba_analytics.player_game_summary",
        "nba_raw.nbac_injury_report",
        "nba_raw.odds_api_player_points_props",
        "nba_raw.odds_api_game_lines",
    ]
);
contract_test!(
    upcoming_team_game_context_on_bigquery,
    "upcoming-team-game-context",
    "nba_analytics.upcoming_team_game_context",
    [
        "nba_analytics.team_offense_game_summary",
        "nba_analytics.team_defense_game_summary",
        "nba_analytics.player_game_summary",
        "nba_raw.nbac_injury_report",
        "nba_raw.odds_api_player_points_props",
        "nba_raw.odds_api_game_lines",
    ]
);
contract_test!(
    team_defense_zone_analysis_on_bigquery,
    "team-defense-zone-analysis",
    "nba_precompute.team_defense_zone_analysis",
    [
        "nba_raw.nbac_play_by_play",
        "nba_analytics.team_defense_game_summary",
    ]
);
contract_test!(
    player_shot_zone_analysis_on_bigquery,
    "player-shot-zone-analysis",
    "nba_precompute.player_shot_zone_analysis",
    ["nba_raw.nbac_play_by_play"]
);
contract_test!(
    player_daily_cache_on_bigquery,
    "player-daily-cache",
    "nba_precompute.player_daily_cache",
    [
        "nba_analytics.upcoming_player_game_context",
        "nba_analytics.player_game_summary",
    ]
);
contract_test!(
    player_composite_factors_on_bigquery,
    "player-composite-factors",
    "nba_precompute.player_composite_factors",
    [
        "nba_analytics.upcoming_player_game_context",
        "nba_analytics.upcoming_team_game_context",
        "nba_analytics.player_game_summary",
        "nba_precompute.player_daily_cache",
        "nba_precompute.player_shot_zone_analysis",
        "nba_precompute.team_defense_zone_analysis",
        "nba_raw.nbac_injury_report",
    ]
);
contract_test!(
    ml_feature_store_on_bigquery,
    "ml-feature-store",
    "nba_predictions.ml_feature_store_v2",
    [
        "nba_analytics.upcoming_player_game_context",
        "nba_analytics.upcoming_team_game_context",
        "nba_analytics.player_game_summary",
        "nba_precompute.player_daily_cache",
        "nba_precompute.player_shot_zone_analysis",
        "nba_precompute.team_defense_zone_analysis",
        "nba_precompute.player_composite_factors",
    ]
);
