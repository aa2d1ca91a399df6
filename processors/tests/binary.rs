//! The `tipoff-processor` binary follows the contract: usage errors exit 2, configuration
//! errors 65, an unreachable upstream 75, and a successful run writes a parseable result.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use std::process::Command;

use support::*;
use tipoff_crds::{Mode, ProcessorResult};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tipoff-processor"));
    for v in [
        "TIPOFF_WAREHOUSE_URL",
        "TIPOFF_STORAGE_URL",
        "TIPOFF_UPSTREAM_URL",
        "TIPOFF_UPSTREAM_API_KEY_FILE",
    ] {
        c.env_remove(v);
    }
    c
}

#[test]
fn unknown_processors_and_bad_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result");
    let out = bin()
        .args([
            "run",
            "scrape-everything",
            "--date",
            "2026-01-10",
            "--mode",
            "production",
        ])
        .env("TIPOFF_RESULT_PATH", &result)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown processor"));
    let out = bin()
        .args([
            "run",
            "raw-schedule",
            "--date",
            "yesterday",
            "--mode",
            "production",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn missing_configuration_is_permanent_and_still_writes_a_result() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result");
    let out = bin()
        .args([
            "run",
            "scrape-schedule",
            "--date",
            "2026-01-10",
            "--mode",
            "production",
        ])
        .env("TIPOFF_RESULT_PATH", &result)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TIPOFF_STORAGE_URL"));
    let r = ProcessorResult::parse(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(r.processor, "scrape-schedule");
}

#[test]
fn an_unreachable_upstream_is_transient() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = bin()
        .args([
            "run",
            "scrape-schedule",
            "--date",
            "2026-01-10",
            "--mode",
            "production",
        ])
        .env("TIPOFF_RESULT_PATH", &result)
        .env(
            "TIPOFF_STORAGE_URL",
            format!("file://{}", dir.path().join("o").display()),
        )
        .env("TIPOFF_UPSTREAM_URL", format!("http://127.0.0.1:{port}"))
        .env("TIPOFF_UPSTREAM_MAX_ATTEMPTS", "2")
        .env("TIPOFF_UPSTREAM_BACKOFF_MS", "10")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = ProcessorResult::parse(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(check(&r, "upstream-requests").observed, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_scrapes_and_loads_a_date() {
    let date = busy_date();
    let w = World::start(next_day(date)).await;
    for p in [
        "scrape-schedule",
        "scrape-boxscores",
        "raw-schedule",
        "raw-boxscores",
    ] {
        let result = w.dir.path().join(format!("{p}.result"));
        let cfg = w.config();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tipoff-processor"))
            .args([
                "run",
                p,
                "--date",
                &date.to_string(),
                "--mode",
                "production",
            ])
            .env("TIPOFF_RESULT_PATH", &result)
            .env("TIPOFF_WAREHOUSE_URL", cfg.warehouse_url.unwrap())
            .env("TIPOFF_STORAGE_URL", cfg.storage_url.unwrap())
            .env("TIPOFF_UPSTREAM_URL", cfg.upstream_url.unwrap())
            .env("TIPOFF_UPSTREAM_API_KEY_FILE", &w.key_file)
            .output()
            .await
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = ProcessorResult::parse(&std::fs::read_to_string(&result).unwrap()).unwrap();
        assert_eq!((r.processor.as_str(), r.mode), (p, Mode::Production));
        assert_eq!(r.commit, tipoff_processors::contract::COMMIT);
        if p == "raw-boxscores" {
            assert!(check(&r, "boxscore-coverage").passed);
            assert!(r.rows["nba_raw.bdl_player_boxscores"] > 100);
        }
    }
}
