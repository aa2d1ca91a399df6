//! `tipoff-test-processor`: a processor for the operator's end-to-end tests and benchmarks only,
//! in its own development crate so no production build ships it. It is not in the production
//! catalog and does no data work; it follows the processor contract exactly, and
//! what it does per processor name is scripted by the test through a YAML file named by
//! `TIPOFF_TEST_BEHAVIOUR`:
//!
//! ```yaml
//! default: { sleepMs: 50 }                  # applies to processors not listed
//! # or: { sleepMs: 5000, sleepJitterMs: 10000 } sleeps 5-15 s, the same for a processor, date and attempt
//! processors:
//!   ml-feature-store: { failAttempts: 1 }   # attempt 1 exits 75, attempt 2 succeeds
//!   player-daily-cache: { outcome: fail, exitCode: 65 }
//!   prediction-coordinator: { processor: analytics-processors }  # the wrong code answers
//!   team-defense-zone: { outcome: hang }
//! ```
//!
//! The attempt number comes from `TIPOFF_ATTEMPT` (the operator's Job sets it; default 1).

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;
use serde::Deserialize;
use tipoff_crds::{Check, EXIT_PERMANENT, EXIT_TRANSIENT};
use tipoff_processors::contract::{self, RunArgs};

#[derive(Parser, Debug)]
#[command(name = "tipoff-test-processor", version = contract::VERSION_LINE)]
enum Cli {
    /// Runs one scripted processor.
    Run(RunArgs),
}

/// The script for every processor.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Script {
    #[serde(default)]
    default: Behaviour,
    #[serde(default)]
    processors: BTreeMap<String, Behaviour>,
}

/// What one processor does.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Behaviour {
    /// Sleep before acting, in milliseconds.
    #[serde(default)]
    sleep_ms: u64,
    /// Plus up to this many milliseconds, spread evenly over processors, dates and attempts and
    /// the same for each of them on every run (so a benchmark's load is repeatable).
    #[serde(default)]
    sleep_jitter_ms: u64,
    /// Attempts up to this number fail with `exitCode` (default 75), later ones follow `outcome`.
    #[serde(default)]
    fail_attempts: u32,
    /// What the processor does.
    #[serde(default)]
    outcome: Outcome,
    /// Exit code for `fail` and `failAttempts`.
    exit_code: Option<i32>,
    /// Report this commit instead of the compiled one (drift).
    commit: Option<String>,
    /// Report this processor name instead of the one invoked (wrong code deployed).
    processor: Option<String>,
    /// Report this service name.
    service: Option<String>,
    /// Rows to report per table.
    #[serde(default)]
    rows: BTreeMap<String, i64>,
    /// Checks to report.
    #[serde(default)]
    checks: Vec<ScriptedCheck>,
}

#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Outcome {
    /// Write a valid result and exit 0.
    #[default]
    Succeed,
    /// Exit with `exitCode` after writing a valid result.
    Fail,
    /// Never finish (until killed by the Job's deadline).
    Hang,
    /// Write a result that is not JSON and exit 0.
    Malformed,
    /// Write a result over the 4 KiB limit and exit 0.
    Oversized,
    /// Exit 0 without writing a result.
    NoResult,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScriptedCheck {
    name: String,
    passed: bool,
    observed: Option<i64>,
    expected: Option<i64>,
    #[serde(default)]
    missing: Vec<String>,
}

fn load_script() -> Result<Script, String> {
    let Some(path) = std::env::var_os("TIPOFF_TEST_BEHAVIOUR") else {
        return Ok(Script::default());
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "reading TIPOFF_TEST_BEHAVIOUR {}: {e}",
            path.to_string_lossy()
        )
    })?;
    serde_yaml::from_str(&text).map_err(|e| format!("parsing TIPOFF_TEST_BEHAVIOUR: {e}"))
}

/// `0..max` milliseconds, from an FNV-1a hash of the processor, date and attempt.
fn jitter_ms(max: u64, processor: &str, date: &str, attempt: u32) -> u64 {
    if max == 0 {
        return 0;
    }
    let key = format!("{processor}/{date}/{attempt}");
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    hash % max
}

fn main() -> ExitCode {
    let Cli::Run(args) = Cli::parse();
    let started = std::time::Instant::now();
    let script = match load_script() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tipoff-test-processor: {e}");
            return ExitCode::from(EXIT_PERMANENT as u8);
        }
    };
    let attempt: u32 = std::env::var("TIPOFF_ATTEMPT")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let b = script
        .processors
        .get(&args.processor)
        .unwrap_or(&script.default)
        .clone();
    eprintln!(
        "tipoff-test-processor: {} date={} mode={} attempt={attempt} behaviour={b:?}",
        args.processor,
        args.date,
        args.mode.as_arg()
    );
    let date = args.date.to_string();
    let jitter = jitter_ms(b.sleep_jitter_ms, &args.processor, &date, attempt);
    std::thread::sleep(std::time::Duration::from_millis(
        b.sleep_ms.saturating_add(jitter),
    ));

    let mut result = contract::result_for(&args);
    if let Some(c) = &b.commit {
        result.commit.clone_from(c);
    }
    if let Some(p) = &b.processor {
        result.processor.clone_from(p);
    }
    if let Some(s) = &b.service {
        result.service.clone_from(s);
    }
    result.rows = b.rows.clone();
    result.checks = b
        .checks
        .iter()
        .map(|c| Check {
            name: c.name.clone(),
            passed: c.passed,
            observed: c.observed,
            expected: c.expected,
            missing: c.missing.clone(),
        })
        .collect();
    result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

    let outcome = if attempt <= b.fail_attempts {
        Outcome::Fail
    } else {
        b.outcome
    };
    let path = contract::result_path();
    let write = |text: &str| {
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("tipoff-test-processor: writing {}: {e}", path.display());
        }
    };
    match outcome {
        Outcome::Hang => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        Outcome::Malformed => {
            write("{\"processor\": \"truncated");
            ExitCode::SUCCESS
        }
        Outcome::Oversized => {
            write(&"x".repeat(tipoff_crds::TERMINATION_MESSAGE_LIMIT + 512));
            ExitCode::SUCCESS
        }
        Outcome::NoResult => ExitCode::SUCCESS,
        Outcome::Succeed | Outcome::Fail => {
            if let Err(e) = contract::write_result(&result) {
                eprintln!("tipoff-test-processor: {e}");
                return ExitCode::from(EXIT_PERMANENT as u8);
            }
            if outcome == Outcome::Fail {
                let code = b.exit_code.unwrap_or(EXIT_TRANSIENT);
                eprintln!("tipoff-test-processor: failing with exit code {code} as scripted");
                ExitCode::from(u8::try_from(code).unwrap_or(1))
            } else {
                println!("{} succeeded", args.processor);
                ExitCode::SUCCESS
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::jitter_ms;

    #[test]
    fn jitter_is_repeatable_bounded_and_spread() {
        assert_eq!(jitter_ms(0, "a", "2025-01-01", 1), 0);
        let once = jitter_ms(10_000, "bench-analytics-a", "2025-01-01", 1);
        assert_eq!(
            once,
            jitter_ms(10_000, "bench-analytics-a", "2025-01-01", 1)
        );
        let values: Vec<u64> = (1..=28)
            .map(|day| jitter_ms(10_000, "bench-analytics-a", &format!("2025-02-{day:02}"), 1))
            .collect();
        assert!(values.iter().all(|v| *v < 10_000));
        // Spread: the 28 dates land in at least 8 of the 10 one-second buckets.
        let buckets: std::collections::BTreeSet<u64> = values.iter().map(|v| v / 1000).collect();
        assert!(buckets.len() >= 8, "{values:?}");
    }
}
