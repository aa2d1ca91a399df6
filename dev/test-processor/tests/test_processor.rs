//! The test processor follows the contract: arguments, result file, exit codes and scripted
//! misbehaviour, exercised through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::Path;
use std::process::Command;

use tipoff_crds::{ProcessorResult, TERMINATION_MESSAGE_LIMIT};

struct Run {
    code: i32,
    result: String,
}

fn run(dir: &Path, script: &str, processor: &str, attempt: u32, extra: &[&str]) -> Run {
    let script_path = dir.join("script.yaml");
    std::fs::write(&script_path, script).unwrap();
    let result_path = dir.join(format!("{processor}-{attempt}.result"));
    let out = Command::new(env!("CARGO_BIN_EXE_tipoff-test-processor"))
        .args([
            "run",
            processor,
            "--date",
            "2026-01-29",
            "--mode",
            "production",
        ])
        .args(extra)
        .env("TIPOFF_TEST_BEHAVIOUR", &script_path)
        .env("TIPOFF_RESULT_PATH", &result_path)
        .env("TIPOFF_ATTEMPT", attempt.to_string())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        result: std::fs::read_to_string(&result_path).unwrap_or_default(),
    }
}

#[test]
fn succeeds_with_a_contract_result_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        dir.path(),
        "processors:\n  a: { rows: { nba_raw.t: 3 } }\n",
        "a",
        1,
        &[],
    );
    assert_eq!(r.code, 0);
    let parsed = ProcessorResult::parse(&r.result).unwrap();
    assert_eq!(parsed.processor, "a");
    assert_eq!(parsed.service, "tipoff-processor");
    assert_eq!(parsed.date, "2026-01-29");
    assert_eq!(parsed.rows["nba_raw.t"], 3);
    assert_eq!(parsed.commit, tipoff_processors::contract::COMMIT);
}

#[test]
fn fails_transiently_for_scripted_attempts_then_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let script = "processors:\n  a: { failAttempts: 1 }\n";
    assert_eq!(run(dir.path(), script, "a", 1, &[]).code, 75);
    assert_eq!(run(dir.path(), script, "a", 2, &[]).code, 0);
}

#[test]
fn permanent_failure_and_wrong_identity_are_scriptable() {
    let dir = tempfile::tempdir().unwrap();
    let script = "processors:\n  a: { outcome: fail, exitCode: 65 }\n  b: { processor: analytics-processors, commit: deadbeef }\n";
    assert_eq!(run(dir.path(), script, "a", 1, &[]).code, 65);
    let b = run(dir.path(), script, "b", 1, &[]);
    assert_eq!(b.code, 0);
    let parsed = ProcessorResult::parse(&b.result).unwrap();
    assert_eq!(
        (parsed.processor.as_str(), parsed.commit.as_str()),
        ("analytics-processors", "deadbeef")
    );
}

#[test]
fn malformed_oversized_and_missing_results_are_scriptable() {
    let dir = tempfile::tempdir().unwrap();
    let script = "processors:\n  m: { outcome: malformed }\n  o: { outcome: oversized }\n  n: { outcome: no-result }\n";
    let m = run(dir.path(), script, "m", 1, &[]);
    assert_eq!(
        ProcessorResult::parse(&m.result).unwrap_err().category(),
        "MalformedResult"
    );
    let o = run(dir.path(), script, "o", 1, &[]);
    assert!(o.result.len() > TERMINATION_MESSAGE_LIMIT);
    assert_eq!(
        ProcessorResult::parse(&o.result).unwrap_err().category(),
        "ResultTooLarge"
    );
    let n = run(dir.path(), script, "n", 1, &[]);
    assert_eq!((n.code, n.result.as_str()), (0, ""));
}

#[test]
fn bad_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tipoff-test-processor"))
        .args(["run", "a", "--date", "2026-02-30", "--mode", "production"])
        .env("TIPOFF_RESULT_PATH", dir.path().join("r"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a calendar date"));
}
