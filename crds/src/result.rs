//! The processor result contract: the JSON a processor writes to `$TIPOFF_RESULT_PATH`
//! (default `/dev/termination-log`), which Kubernetes copies into the Pod's status.
//!
//! Kubernetes keeps at most the last 4096 bytes of a termination message, so a result that does
//! not fit is an error at the writer (tipoff's processors trim theirs to fit before writing),
//! and a result the operator cannot parse is a processor failure with reason
//! `MalformedResult` (`ResultTooLarge` when it was cut off), never a crash of the operator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pipeline_run::Mode;

/// The most bytes Kubernetes keeps of a container's termination message.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a command line the processor does not understand (clap's usage error).
pub const EXIT_USAGE: i32 = 2;
/// Exit code for bad input that a retry cannot fix (`EX_DATAERR` from sysexits).
pub const EXIT_PERMANENT: i32 = 65;
/// Exit code for a failure worth retrying: upstream down, quota, timeout (`EX_TEMPFAIL`).
pub const EXIT_TRANSIENT: i32 = 75;

/// How the operator treats a processor's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitClass {
    /// Exit 0.
    Success,
    /// Usage errors and the sysexits range 64-78 except 75: retrying cannot help.
    Permanent,
    /// 75 and everything else (crashes, signals such as 137 for OOM kills): retried.
    Transient,
}

/// Classifies a processor exit code. Unknown codes count as transient, because a crash or a
/// kill says nothing about the input.
pub fn classify_exit(code: i32) -> ExitClass {
    match code {
        EXIT_OK => ExitClass::Success,
        EXIT_TRANSIENT => ExitClass::Transient,
        EXIT_USAGE | 64..=78 => ExitClass::Permanent,
        _ => ExitClass::Transient,
    }
}

/// What one processor run did, as the processor itself reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessorResult {
    /// The processor that ran (the subcommand's name). The operator compares it with the
    /// processor the Job was created for: a mismatch is the "wrong code deployed" drift.
    pub processor: String,
    /// The service (binary) that ran it, e.g. `tipoff-processor`.
    pub service: String,
    /// The binary's version.
    pub version: String,
    /// The git commit compiled into the binary.
    pub commit: String,
    /// The game date processed (`YYYY-MM-DD`).
    pub date: String,
    /// The run's mode.
    pub mode: Mode,
    /// Rows written per table (`dataset.table`).
    #[serde(default)]
    pub rows: BTreeMap<String, i64>,
    /// Checks the processor evaluated; the catalog decides which block in which mode.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Things worth a person's attention that did not fail the run.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Wall time of the run in milliseconds.
    pub duration_ms: u64,
}

/// One check a processor evaluated, e.g. "every final game has a box score".
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Check {
    /// The check's name as the catalog's gates spell it.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The observed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<i64>,
    /// The expected value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<i64>,
    /// Named missing entities (e.g. `CLE@LAC`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// Why a result could not be written or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResultError {
    /// The serialized result exceeds the termination-message limit.
    #[error(
        "processor result is {size} bytes, over the {TERMINATION_MESSAGE_LIMIT}-byte termination-message limit; report fewer missing entities or warnings"
    )]
    TooLarge {
        /// The serialized size in bytes.
        size: usize,
    },
    /// The message fills the termination-message limit and does not parse: Kubernetes cut it
    /// off at the limit (the kubelet keeps the last 4096 bytes), so the processor wrote more.
    #[error(
        "processor result was cut off at the {TERMINATION_MESSAGE_LIMIT}-byte termination-message limit, so the processor wrote more than the limit allows; report fewer missing entities or warnings"
    )]
    Truncated,
    /// The message is not a valid result.
    #[error("processor result is not valid JSON of the result contract: {0}")]
    Malformed(String),
    /// The message is empty: the processor exited without writing a result.
    #[error("the processor wrote no result")]
    Missing,
}

impl ResultError {
    /// A fixed CamelCase category, used as Event reason and metric label.
    pub fn category(&self) -> &'static str {
        match self {
            ResultError::TooLarge { .. } | ResultError::Truncated => "ResultTooLarge",
            ResultError::Malformed(_) => "MalformedResult",
            ResultError::Missing => "MissingResult",
        }
    }
}

impl ProcessorResult {
    /// Serializes the result as compact JSON, refusing one over the 4 KiB limit.
    pub fn to_message(&self) -> Result<String, ResultError> {
        let text =
            serde_json::to_string(self).map_err(|e| ResultError::Malformed(e.to_string()))?;
        if text.len() > TERMINATION_MESSAGE_LIMIT {
            return Err(ResultError::TooLarge { size: text.len() });
        }
        Ok(text)
    }

    /// Parses a termination message. Oversized (or cut off at the limit), empty or malformed
    /// messages are errors.
    pub fn parse(message: &str) -> Result<Self, ResultError> {
        if message.len() > TERMINATION_MESSAGE_LIMIT {
            return Err(ResultError::TooLarge {
                size: message.len(),
            });
        }
        if message.trim().is_empty() {
            return Err(ResultError::Missing);
        }
        serde_json::from_str(message).map_err(|e| {
            if message.len() == TERMINATION_MESSAGE_LIMIT {
                ResultError::Truncated
            } else {
                ResultError::Malformed(e.to_string())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProcessorResult {
        ProcessorResult {
            processor: "player-game-summary".into(),
            service: "tipoff-processor".into(),
            version: "0.1.0".into(),
            commit: "c4f8f339".into(),
            date: "2026-01-29".into(),
            mode: Mode::Production,
            rows: BTreeMap::from([("nba_analytics.player_game_summary".into(), 315)]),
            checks: vec![Check {
                name: "boxscore-coverage".into(),
                passed: false,
                observed: Some(5),
                expected: Some(7),
                missing: vec!["CLE@LAC".into(), "MEM@SAC".into()],
            }],
            warnings: vec![],
            duration_ms: 1200,
        }
    }

    #[test]
    fn exit_codes_are_classified_for_retries() {
        assert_eq!(classify_exit(0), ExitClass::Success);
        assert_eq!(classify_exit(EXIT_PERMANENT), ExitClass::Permanent);
        assert_eq!(classify_exit(EXIT_USAGE), ExitClass::Permanent);
        assert_eq!(classify_exit(78), ExitClass::Permanent);
        assert_eq!(classify_exit(EXIT_TRANSIENT), ExitClass::Transient);
        assert_eq!(classify_exit(1), ExitClass::Transient);
        assert_eq!(classify_exit(137), ExitClass::Transient);
    }

    #[test]
    fn round_trips_through_the_termination_message() {
        let msg = sample().to_message().unwrap();
        assert!(msg.contains("\"durationMs\":1200"));
        assert_eq!(ProcessorResult::parse(&msg).unwrap(), sample());
    }

    #[test]
    fn oversized_result_is_refused_at_the_writer() {
        let mut r = sample();
        r.warnings = (0..200)
            .map(|i| format!("warning number {i} with some padding text"))
            .collect();
        match r.to_message() {
            Err(ResultError::TooLarge { size }) => assert!(size > TERMINATION_MESSAGE_LIMIT),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn a_result_cut_off_at_the_limit_is_too_large_not_malformed() {
        let mut r = sample();
        r.warnings = (0..200)
            .map(|i| format!("warning number {i} with some padding text"))
            .collect();
        let full = serde_json::to_string(&r).unwrap();
        // What the kubelet keeps of it: the last 4096 bytes.
        let cut = &full[full.len() - TERMINATION_MESSAGE_LIMIT..];
        let err = ProcessorResult::parse(cut).unwrap_err();
        assert_eq!(err, ResultError::Truncated);
        assert_eq!(err.category(), "ResultTooLarge");
        // Shorter broken JSON is just malformed.
        assert_eq!(
            ProcessorResult::parse(&full[..100]).unwrap_err().category(),
            "MalformedResult"
        );
    }

    #[test]
    fn a_result_of_exactly_the_limit_is_accepted() {
        let mut r = sample();
        let base = r.to_message().unwrap().len();
        // One warning whose JSON encoding brings the message to exactly 4096 bytes.
        let pad = TERMINATION_MESSAGE_LIMIT - base - "\"\"".len();
        r.warnings = vec!["x".repeat(pad)];
        assert_eq!(r.to_message().unwrap().len(), TERMINATION_MESSAGE_LIMIT);
    }

    #[test]
    fn malformed_truncated_and_empty_messages_are_errors_with_categories() {
        let msg = sample().to_message().unwrap();
        let truncated = &msg[..msg.len() / 2];
        assert_eq!(
            ProcessorResult::parse(truncated).unwrap_err().category(),
            "MalformedResult"
        );
        assert_eq!(
            ProcessorResult::parse("").unwrap_err(),
            ResultError::Missing
        );
        assert_eq!(
            ProcessorResult::parse("{\"processor\":\"x\",\"extra\":1}")
                .unwrap_err()
                .category(),
            "MalformedResult"
        );
        let big = "x".repeat(TERMINATION_MESSAGE_LIMIT + 1);
        assert_eq!(
            ProcessorResult::parse(&big).unwrap_err().category(),
            "ResultTooLarge"
        );
    }
}
