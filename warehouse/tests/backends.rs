//! Backend-specific checks beyond the shared contract: every repository schema is created
//! identically on both backends, the lake survives racing writers of one partition, and
//! BigQuery writes are batched into few jobs.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{bigquery_url, rows_for, sorted, test_schema};
use jiff::civil::Date;
use pretty_assertions::assert_eq;
use tipoff_warehouse::schema::{load_dir, repo_schema_dir};
use tipoff_warehouse::{
    BigQueryWarehouse, EnsureOutcome, LakeWarehouse, RUN_HISTORY_BATCH_ROWS, Warehouse,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_schema_is_created_identically_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeWarehouse::new(dir.path());
    let bq = BigQueryWarehouse::connect_emulator(&bigquery_url(), "local")
        .await
        .unwrap();
    // The emulator outlives test runs: a run-unique dataset prefix keeps runs independent.
    let prefix = format!(
        "s{}",
        jiff::Timestamp::now().as_nanosecond() % 1_000_000_000_000
    );
    let schemas = load_dir(&repo_schema_dir()).unwrap();
    assert!(!schemas.is_empty());
    for schema in schemas {
        let mut schema = schema;
        schema.dataset = format!("{prefix}_{}", schema.dataset);
        let t = schema.table_ref();
        assert_eq!(
            lake.ensure_table(&schema).await.unwrap(),
            EnsureOutcome::Created,
            "{t}"
        );
        assert_eq!(
            bq.ensure_table(&schema).await.unwrap(),
            EnsureOutcome::Created,
            "{t}"
        );
        let from_lake = lake.describe_table(&t).await.unwrap();
        let from_bq = bq.describe_table(&t).await.unwrap();
        assert_eq!(from_lake, schema, "lake stored {t} differently");
        assert_eq!(from_bq, schema, "BigQuery created {t} differently");
        assert_eq!(
            lake.ensure_table(&schema).await.unwrap(),
            EnsureOutcome::AlreadyExists
        );
        assert_eq!(
            bq.ensure_table(&schema).await.unwrap(),
            EnsureOutcome::AlreadyExists
        );
    }
}

/// Many writers replace the same partition (with different row counts) while a reader keeps
/// reading: every read must see one writer's complete partition, never a mix or a torn file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_readers_never_see_a_half_written_partition() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let schema = test_schema("race", "games");
    let t = schema.table_ref();
    let d = Date::constant(2026, 1, 5);
    LakeWarehouse::new(&root)
        .ensure_table(&schema)
        .await
        .unwrap();
    LakeWarehouse::new(&root)
        .replace_partition(&t, d, &rows_for(d, 5, "w0"))
        .await
        .unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (root, t, done) = (root.clone(), t.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            let lake = LakeWarehouse::new(&root);
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) || reads == 0 {
                let rows = lake.read_range(&t, d, d, None).await.unwrap();
                let tags: std::collections::BTreeSet<String> = rows
                    .iter()
                    .map(|r| format!("{:?}", r["game_id"])[8..10].to_owned())
                    .collect();
                assert_eq!(tags.len(), 1, "mixed writers in one read: {tags:?}");
                let n: usize = tags.iter().next().unwrap()[1..].parse().unwrap();
                assert_eq!(rows.len(), 5 + n * 50, "torn partition from writer {n}");
                reads += 1;
            }
            reads
        })
    };
    // Each writer is an independent handle (as separate processes would be).
    let writers: Vec<_> = (1..=6)
        .map(|n| {
            let (root, t) = (root.clone(), t.clone());
            tokio::spawn(async move {
                let lake = LakeWarehouse::new(&root);
                for _ in 0..5 {
                    let rows = rows_for(d, 5 + n * 50, &format!("w{n}"));
                    lake.replace_partition(&t, d, &rows).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0);
    // No temporary files are left behind: the partition and its (hidden, empty) write lock,
    // which Hive readers skip as they skip every name starting with a dot.
    let pdir = root.join("race/games/game_date=2026-01-05");
    let mut names: Vec<String> = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".lock", "part-00000.parquet"]);
}

#[tokio::test]
async fn lake_layout_is_hive_partitioned_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeWarehouse::new(dir.path());
    let schema = test_schema("layout", "games");
    let d = Date::constant(2026, 2, 1);
    lake.ensure_table(&schema).await.unwrap();
    lake.replace_partition(&schema.table_ref(), d, &rows_for(d, 3, "x"))
        .await
        .unwrap();
    let file = dir
        .path()
        .join("layout/games/game_date=2026-02-01/part-00000.parquet");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    assert_eq!(&bytes[bytes.len() - 4..], b"PAR1");
    assert!(dir.path().join("layout/games/_schema.json").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bigquery_writes_are_batched_into_few_jobs() {
    let bq = BigQueryWarehouse::connect_emulator(&bigquery_url(), "local")
        .await
        .unwrap();
    let ds = format!(
        "b{}",
        jiff::Timestamp::now().as_nanosecond() % 1_000_000_000_000
    );
    let schema = test_schema(&ds, "games");
    let t = schema.table_ref();
    bq.ensure_table(&schema).await.unwrap();
    let d = Date::constant(2026, 3, 1);
    let rows = rows_for(d, 1_200, "batch");

    let before = bq.jobs_submitted();
    bq.replace_partition(&t, d, &rows).await.unwrap();
    // One transaction (DELETE + INSERTs of 500 rows) in a single job.
    assert_eq!(bq.jobs_submitted() - before, 1);

    let before = bq.jobs_submitted();
    bq.append_rows(&t, &rows).await.unwrap();
    let batches = rows.len().div_ceil(RUN_HISTORY_BATCH_ROWS) as u64;
    assert_eq!(
        bq.jobs_submitted() - before,
        batches,
        "one INSERT per batch, not per row"
    );

    let back = bq.read_range(&t, d, d, None).await.unwrap();
    assert_eq!(back.len(), 2_400);
    let mut expected = rows.clone();
    expected.extend(rows);
    assert_eq!(sorted(back), sorted(expected));
}

/// Set in child processes of `lake_is_safe_for_concurrent_processes`: the lake root to write to.
const CHILD_ROOT_ENV: &str = "TIPOFF_LAKE_CHILD_ROOT";
/// Which writer a child process is.
const CHILD_ID_ENV: &str = "TIPOFF_LAKE_CHILD_ID";

/// Several OS processes (this test binary re-run as children) replace partitions of one table,
/// two of them racing on the same partition, while the parent reads: every read sees complete
/// partitions and the end state holds each writer's last write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_is_safe_for_concurrent_processes() {
    let schema = test_schema("procs", "games");
    let t = schema.table_ref();
    let shared = Date::constant(2026, 1, 10);
    if let Ok(root) = std::env::var(CHILD_ROOT_ENV) {
        // Child: writer `id` owns one partition and also hammers the shared one.
        let id: usize = std::env::var(CHILD_ID_ENV).unwrap().parse().unwrap();
        let lake = LakeWarehouse::new(&root);
        let own = Date::constant(2026, 1, 1 + id as i8);
        for round in 0..8 {
            lake.replace_partition(&t, own, &rows_for(own, 20 + round, &format!("p{id}")))
                .await
                .unwrap();
            let rows = rows_for(shared, 10 * (id + 1), &format!("p{id}"));
            lake.replace_partition(&t, shared, &rows).await.unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeWarehouse::new(dir.path());
    lake.ensure_table(&schema).await.unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|id| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "lake_is_safe_for_concurrent_processes",
                    "--nocapture",
                ])
                .env(CHILD_ROOT_ENV, dir.path())
                .env(CHILD_ID_ENV, id.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut children = children;
    let mut reads = 0;
    loop {
        let finished = children.iter_mut().all(|c| c.try_wait().unwrap().is_some());
        let rows = lake.read_range(&t, shared, shared, None).await.unwrap();
        if !rows.is_empty() {
            // All rows come from one writer, and that writer's partition is complete.
            let tags: std::collections::BTreeSet<String> = rows
                .iter()
                .map(|r| match &r["game_id"] {
                    tipoff_warehouse::Value::String(s) => s.split('-').next().unwrap().to_owned(),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(tags.len(), 1, "a read mixed writers: {tags:?}");
            let id: usize = tags.iter().next().unwrap()[1..].parse().unwrap();
            assert_eq!(
                rows.len(),
                10 * (id + 1),
                "torn partition from process {id}"
            );
        }
        reads += 1;
        if finished {
            break;
        }
    }
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer process failed");
    }
    assert!(reads > 1);
    for id in 0..4u8 {
        let own = Date::constant(2026, 1, 1 + id as i8);
        let got = sorted(lake.read_range(&t, own, own, None).await.unwrap());
        assert_eq!(got, sorted(rows_for(own, 27, &format!("p{id}"))));
    }
}
