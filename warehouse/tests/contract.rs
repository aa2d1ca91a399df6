//! The warehouse contract: one suite of behaviours, instantiated once per backend.
//!
//! The BigQuery instance runs against the `local-bigquery` emulator whose URL is in
//! `TIPOFF_BIGQUERY_URL`; start it with `scripts/emulators.sh start && source
//! .tipoff/emulators.env`. Without that variable these tests fail (they never skip).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use common::{Fixture, bigquery_fixture, lake_fixture, rows_for, sorted, test_schema};
use jiff::civil::Date;
use pretty_assertions::assert_eq;
use tipoff_warehouse::{
    EnsureOutcome, RUN_HISTORY_BATCH_ROWS, RunHistoryRecord, TableRef, Value, WarehouseError,
};

const D1: Date = Date::constant(2025, 11, 1);
const D2: Date = Date::constant(2025, 11, 2);
const D3: Date = Date::constant(2025, 11, 3);

async fn ensure_table_is_idempotent(f: Fixture) {
    let schema = test_schema(&f.dataset("ensure"), "games");
    assert_eq!(
        f.wh.ensure_table(&schema).await.unwrap(),
        EnsureOutcome::Created
    );
    assert_eq!(
        f.wh.ensure_table(&schema).await.unwrap(),
        EnsureOutcome::AlreadyExists
    );
    assert_eq!(
        f.wh.ensure_table(&schema).await.unwrap(),
        EnsureOutcome::AlreadyExists
    );
    assert_eq!(
        f.wh.describe_table(&schema.table_ref()).await.unwrap(),
        schema
    );
}

async fn replace_twice_gives_identical_contents(f: Fixture) {
    let schema = test_schema(&f.dataset("replace"), "games");
    let t = schema.table_ref();
    f.wh.ensure_table(&schema).await.unwrap();
    let rows = rows_for(D1, 25, "a");
    assert_eq!(f.wh.replace_partition(&t, D1, &rows).await.unwrap(), 25);
    let first = sorted(f.wh.read_range(&t, D1, D1, None).await.unwrap());
    assert_eq!(first, sorted(rows.clone()));
    f.wh.replace_partition(&t, D1, &rows).await.unwrap();
    let second = sorted(f.wh.read_range(&t, D1, D1, None).await.unwrap());
    assert_eq!(first, second);
    // A different replacement replaces; it does not append.
    let fewer = rows_for(D1, 3, "b");
    f.wh.replace_partition(&t, D1, &fewer).await.unwrap();
    assert_eq!(
        sorted(f.wh.read_range(&t, D1, D1, None).await.unwrap()),
        sorted(fewer)
    );
    // Replacing with nothing empties the partition.
    f.wh.replace_partition(&t, D1, &[]).await.unwrap();
    assert!(f.wh.read_range(&t, D1, D1, None).await.unwrap().is_empty());
    assert!(
        f.wh.partition_row_counts(&t, D1, D1)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reads_by_range_and_columns(f: Fixture) {
    let schema = test_schema(&f.dataset("range"), "games");
    let t = schema.table_ref();
    f.wh.ensure_table(&schema).await.unwrap();
    for (d, n) in [(D1, 4), (D2, 5), (D3, 6)] {
        f.wh.replace_partition(&t, d, &rows_for(d, n, "r"))
            .await
            .unwrap();
    }
    let counts = f.wh.partition_row_counts(&t, D1, D3).await.unwrap();
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [(D1, 4), (D2, 5), (D3, 6)]
    );
    let counts = f.wh.partition_row_counts(&t, D2, D2).await.unwrap();
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), [(D2, 5)]);

    let mid = f.wh.read_range(&t, D2, D3, None).await.unwrap();
    assert_eq!(
        sorted(mid),
        sorted([rows_for(D2, 5, "r"), rows_for(D3, 6, "r")].concat())
    );

    let narrow =
        f.wh.read_range(&t, D1, D2, Some(&["game_id", "points"]))
            .await
            .unwrap();
    assert_eq!(narrow.len(), 9);
    for row in &narrow {
        assert_eq!(
            row.keys().map(String::as_str).collect::<Vec<_>>(),
            ["game_id", "points"]
        );
    }
    // The partition column can be projected too.
    let dates =
        f.wh.read_range(&t, D3, D3, Some(&["game_date"]))
            .await
            .unwrap();
    assert!(dates.iter().all(|r| r["game_date"] == Value::Date(D3)) && dates.len() == 6);

    // A range without data is empty, not an error.
    let (later, latest) = (Date::constant(2025, 11, 20), Date::constant(2025, 11, 25));
    assert!(
        f.wh.read_range(&t, later, latest, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        f.wh.partition_row_counts(&t, later, latest)
            .await
            .unwrap()
            .is_empty()
    );

    let err =
        f.wh.read_range(&t, D1, D3, Some(&["nope"]))
            .await
            .unwrap_err();
    assert!(
        matches!(err, WarehouseError::SchemaMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nope"), "{err}");
}

async fn concurrent_writers(f: Fixture) {
    let ds = f.dataset("concurrent");
    let schemas = [test_schema(&ds, "games_a"), test_schema(&ds, "games_b")];
    // Processors of one phase start together: they ensure tables of one dataset concurrently,
    // each table twice.
    let ensures: Vec<_> = schemas
        .iter()
        .chain(schemas.iter())
        .map(|s| {
            let (wh, s) = (Arc::clone(&f.wh), s.clone());
            tokio::spawn(async move { wh.ensure_table(&s).await })
        })
        .collect();
    for e in ensures {
        e.await.unwrap().unwrap();
    }
    let dates: Vec<Date> = (1..=4).map(|d| Date::constant(2025, 12, d)).collect();
    let mut tasks = Vec::new();
    for s in &schemas {
        for (i, d) in dates.iter().enumerate() {
            let wh = Arc::clone(&f.wh);
            let t = s.table_ref();
            let d = *d;
            tasks.push(tokio::spawn(async move {
                let rows = rows_for(d, 10 + i, &t.table);
                wh.replace_partition(&t, d, &rows).await.map(|_| ())
            }));
        }
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    for s in &schemas {
        let t = s.table_ref();
        let counts =
            f.wh.partition_row_counts(&t, dates[0], dates[3])
                .await
                .unwrap();
        let expected: Vec<(Date, u64)> = dates
            .iter()
            .enumerate()
            .map(|(i, d)| (*d, 10 + i as u64))
            .collect();
        assert_eq!(counts.into_iter().collect::<Vec<_>>(), expected, "{t}");
        for (i, d) in dates.iter().enumerate() {
            let got = sorted(f.wh.read_range(&t, *d, *d, None).await.unwrap());
            assert_eq!(got, sorted(rows_for(*d, 10 + i, &t.table)));
        }
    }
}

async fn schema_mismatch_is_a_clear_error(f: Fixture) {
    let schema = test_schema(&f.dataset("mismatch"), "games");
    let t = schema.table_ref();
    f.wh.ensure_table(&schema).await.unwrap();
    let good = rows_for(D1, 2, "g");
    f.wh.replace_partition(&t, D1, &good).await.unwrap();

    let expect_mismatch = |err: WarehouseError, needle: &str| {
        assert!(
            matches!(err, WarehouseError::SchemaMismatch { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(needle), "{err} lacks {needle}");
    };
    // A string in an INT64 column is not coerced.
    let mut bad = rows_for(D1, 1, "x");
    bad[0].insert("points".into(), Value::String("12".into()));
    expect_mismatch(
        f.wh.replace_partition(&t, D1, &bad).await.unwrap_err(),
        "points",
    );
    // Unknown column.
    let mut bad = rows_for(D1, 1, "x");
    bad[0].insert("colour".into(), Value::String("red".into()));
    expect_mismatch(
        f.wh.replace_partition(&t, D1, &bad).await.unwrap_err(),
        "colour",
    );
    // NULL in a REQUIRED column.
    let mut bad = rows_for(D1, 1, "x");
    bad[0].remove("game_id");
    expect_mismatch(
        f.wh.replace_partition(&t, D1, &bad).await.unwrap_err(),
        "game_id",
    );
    // An integer where a float is expected is not silently widened either.
    let mut bad = rows_for(D1, 1, "x");
    bad[0].insert("minutes".into(), Value::Int(30));
    expect_mismatch(f.wh.append_rows(&t, &bad).await.unwrap_err(), "minutes");
    // A row from another date cannot be written into this partition.
    let err =
        f.wh.replace_partition(&t, D1, &rows_for(D2, 1, "x"))
            .await
            .unwrap_err();
    assert!(matches!(err, WarehouseError::InvalidRequest(_)), "{err}");
    // The failed writes left the partition as it was.
    assert_eq!(
        sorted(f.wh.read_range(&t, D1, D1, None).await.unwrap()),
        sorted(good)
    );

    // Ensuring a table whose existing definition differs is refused, not altered.
    let mut changed = schema.clone();
    changed
        .fields
        .iter_mut()
        .find(|c| c.name == "points")
        .unwrap()
        .field_type = tipoff_warehouse::FieldType::Float64;
    expect_mismatch(f.wh.ensure_table(&changed).await.unwrap_err(), "points");
    let mut extra = schema.clone();
    extra.fields.push(tipoff_warehouse::FieldSchema {
        name: "extra".into(),
        field_type: tipoff_warehouse::FieldType::String,
        mode: tipoff_warehouse::FieldMode::Nullable,
        description: "x".into(),
    });
    expect_mismatch(f.wh.ensure_table(&extra).await.unwrap_err(), "extra");
    assert_eq!(f.wh.describe_table(&t).await.unwrap(), schema);
}

async fn missing_table_is_reported(f: Fixture) {
    let ds = f.dataset("missing");
    // Neither the dataset nor the table exists.
    let t = TableRef::new(&ds, "never_created");
    let not_found = |e: WarehouseError| {
        assert!(matches!(e, WarehouseError::TableNotFound { .. }), "{e}");
        assert_eq!(e.category(), "TableNotFound");
    };
    not_found(f.wh.describe_table(&t).await.unwrap_err());
    not_found(
        f.wh.replace_partition(&t, D1, &rows_for(D1, 1, "m"))
            .await
            .unwrap_err(),
    );
    not_found(f.wh.read_range(&t, D1, D2, None).await.unwrap_err());
    not_found(f.wh.partition_row_counts(&t, D1, D2).await.unwrap_err());
    not_found(
        f.wh.append_rows(&t, &rows_for(D1, 1, "m"))
            .await
            .unwrap_err(),
    );
    // The dataset exists but the table does not.
    f.wh.ensure_table(&test_schema(&ds, "other")).await.unwrap();
    not_found(f.wh.read_range(&t, D1, D2, None).await.unwrap_err());
}

async fn run_history_appends_in_batches(f: Fixture) {
    let mut schema = tipoff_warehouse::schema::TableSchema::load(
        &tipoff_warehouse::schema::repo_schema_dir()
            .join("nba_reference/processor_run_history.json"),
    )
    .unwrap();
    schema.dataset = f.dataset("reference");
    let t = schema.table_ref();
    f.wh.ensure_table(&schema).await.unwrap();
    let started = jiff::Timestamp::from_second(1_764_000_000).unwrap();
    let records: Vec<RunHistoryRecord> = (0..(RUN_HISTORY_BATCH_ROWS + 101))
        .map(|i| RunHistoryRecord {
            run_id: format!("run-{i:05}"),
            processor_name: ["boxscores", "schedule", "features"][i % 3].into(),
            phase: "raw".into(),
            data_date: if i % 2 == 0 { D1 } else { D2 },
            status: if i % 5 == 0 { "running" } else { "success" }.into(),
            started_at: started,
            finished_at: (i % 5 != 0).then_some(started),
            duration_seconds: (i % 5 != 0).then_some(i as f64 / 8.0),
            records_processed: Some(i as i64),
            error_message: None,
            trigger_source: Some("schedule".into()),
        })
        .collect();
    let rows: Vec<_> = records.iter().map(RunHistoryRecord::to_row).collect();
    assert_eq!(
        f.wh.append_rows(&t, &rows).await.unwrap(),
        records.len() as u64
    );
    let counts = f.wh.partition_row_counts(&t, D1, D2).await.unwrap();
    assert_eq!(counts.values().sum::<u64>(), records.len() as u64);
    let back = f.wh.read_range(&t, D1, D2, None).await.unwrap();
    let mut ids: Vec<String> = back
        .iter()
        .map(|r| match &r["run_id"] {
            Value::String(s) => s.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        records.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>()
    );
    // Appending again appends (this table is a log), unlike replace_partition.
    f.wh.append_rows(&t, &rows[..10]).await.unwrap();
    let counts = f.wh.partition_row_counts(&t, D1, D2).await.unwrap();
    assert_eq!(counts.values().sum::<u64>(), records.len() as u64 + 10);
}

/// Strings that would change a statement built from literals: quotes, backslashes, newlines,
/// control characters, unicode, SQL. Written by replace and append, read back unchanged.
async fn hostile_strings_round_trip(f: Fixture) {
    let schema = test_schema(&f.dataset("hostile"), "games");
    let t = schema.table_ref();
    f.wh.ensure_table(&schema).await.unwrap();
    let hostile = [
        "'); DROP TABLE games; --",
        "it's \\'' \"double\" \\",
        "line\nbreak\r\nand\ttab",
        "nul-ish \u{1} \u{7f} bell \u{7}",
        "Nikola Jokić 東京 🏀 \u{202e}rtl",
        "\\x27; SELECT 1; --",
        "@rows_0 @partition_date",
        "",
    ];
    let mut rows = rows_for(D1, hostile.len(), "h");
    for (r, s) in rows.iter_mut().zip(hostile) {
        r.insert("note".into(), Value::String(s.to_owned()));
        r.insert("game_id".into(), Value::String(format!("{s}|id")));
    }
    f.wh.replace_partition(&t, D1, &rows).await.unwrap();
    assert_eq!(
        sorted(f.wh.read_range(&t, D1, D1, None).await.unwrap()),
        sorted(rows.clone())
    );
    let mut appended = rows_for(D2, hostile.len(), "a");
    for (r, s) in appended.iter_mut().zip(hostile) {
        r.insert("note".into(), Value::String(s.to_owned()));
    }
    f.wh.append_rows(&t, &appended).await.unwrap();
    assert_eq!(
        sorted(f.wh.read_range(&t, D2, D2, None).await.unwrap()),
        sorted(appended)
    );
    // The table is still there with every row: nothing was executed.
    let counts = f.wh.partition_row_counts(&t, D1, D2).await.unwrap();
    assert_eq!(counts.values().sum::<u64>(), 2 * hostile.len() as u64);
}

/// The shards of an Indexed Job: each replaces its own range of a partition, all at once.
async fn shards_replace_their_own_ranges(f: Fixture) {
    use tipoff_warehouse::{FieldMode, FieldSchema, FieldType, RowRange};
    let mut schema = test_schema(&f.dataset("ranges"), "predictions");
    schema.fields.push(FieldSchema {
        name: "bucket".into(),
        field_type: FieldType::Int64,
        mode: FieldMode::Required,
        description: "shard bucket".into(),
    });
    let t = schema.table_ref();
    f.wh.ensure_table(&schema).await.unwrap();
    let with_bucket = |rows: Vec<tipoff_warehouse::Row>| -> Vec<tipoff_warehouse::Row> {
        rows.into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.insert("bucket".into(), Value::Int((i as i64 * 37) % 64));
                r
            })
            .collect()
    };
    let range = |k: i64| RowRange {
        column: "bucket".into(),
        start: k * 16,
        end: (k + 1) * 16,
    };
    let in_range = |rows: &[tipoff_warehouse::Row], k: i64| -> Vec<tipoff_warehouse::Row> {
        rows.iter()
            .filter(|r| matches!(r.get("bucket"), Some(Value::Int(b)) if range(k).contains(*b)))
            .cloned()
            .collect()
    };
    // D2 is a neighbour no range write may touch.
    f.wh.replace_partition(&t, D2, &with_bucket(rows_for(D2, 5, "other")))
        .await
        .unwrap();
    // An older write of the whole partition, then four shards at once over it.
    let old = with_bucket(rows_for(D1, 40, "old"));
    f.wh.replace_partition(&t, D1, &old).await.unwrap();
    let new = with_bucket(rows_for(D1, 48, "new"));
    let tasks: Vec<_> = (0..4)
        .map(|k| {
            let (wh, t, rows) = (Arc::clone(&f.wh), t.clone(), in_range(&new, k));
            tokio::spawn(async move { wh.replace_range(&t, D1, &range(k), &rows).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        sorted(f.wh.read_range(&t, D1, D1, None).await.unwrap()),
        sorted(new.clone()),
        "the four shards together replace the whole partition"
    );
    // A shard re-run with fewer rows replaces its range only.
    let fewer: Vec<_> = in_range(&new, 1).into_iter().take(2).collect();
    f.wh.replace_range(&t, D1, &range(1), &fewer).await.unwrap();
    let mut expected: Vec<_> = new
        .iter()
        .filter(|r| !matches!(r.get("bucket"), Some(Value::Int(b)) if range(1).contains(*b)))
        .cloned()
        .collect();
    expected.extend(fewer.clone());
    assert_eq!(
        sorted(f.wh.read_range(&t, D1, D1, None).await.unwrap()),
        sorted(expected.clone())
    );
    f.wh.replace_range(&t, D1, &range(1), &fewer).await.unwrap();
    assert_eq!(
        sorted(f.wh.read_range(&t, D1, D1, None).await.unwrap()),
        sorted(expected),
        "running it twice gives the same contents"
    );
    assert_eq!(f.wh.partition_row_counts(&t, D2, D2).await.unwrap()[&D2], 5);
    // A row outside the range, or a range over a column that is not a REQUIRED INT64, is
    // refused before anything is written.
    let err =
        f.wh.replace_range(&t, D1, &range(0), &in_range(&new, 2))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("outside the range 0..16"), "{err}");
    let bad = RowRange {
        column: "points".into(),
        start: 0,
        end: 1,
    };
    let err = f.wh.replace_range(&t, D1, &bad, &[]).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no REQUIRED INT64 column `points`"),
        "{err}"
    );
}

macro_rules! contract_suite {
    ($backend:ident, $fixture:path) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ensure_table_is_idempotent() {
                super::ensure_table_is_idempotent($fixture().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn replace_twice_gives_identical_contents() {
                super::replace_twice_gives_identical_contents($fixture().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reads_by_range_and_columns() {
                super::reads_by_range_and_columns($fixture().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_writers() {
                super::concurrent_writers($fixture().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn schema_mismatch_is_a_clear_error() {
                super::schema_mismatch_is_a_clear_error($fixture().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn missing_table_is_reported() {
                super::missing_table_is_reported($fixture().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hostile_strings_round_trip() {
                super::hostile_strings_round_trip($fixture().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn shards_replace_their_own_ranges() {
                super::shards_replace_their_own_ranges($fixture().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn run_history_appends_in_batches() {
                super::run_history_appends_in_batches($fixture().await).await;
            }
        }
    };
}

contract_suite!(lake, lake_fixture);
contract_suite!(bigquery, bigquery_fixture);
