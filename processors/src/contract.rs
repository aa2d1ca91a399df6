//! The processor contract: command line, identity, result file and exit codes.

use std::path::PathBuf;

use crate::upstream::redact;
use tipoff_crds::{EXIT_PERMANENT, EXIT_TRANSIENT, Mode, ProcessorResult, ResultError};

/// The service name processors report in their result.
pub const SERVICE: &str = "tipoff-processor";
/// The binary's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit compiled into the binary (`build.rs`).
pub const COMMIT: &str = env!("TIPOFF_BUILD_COMMIT");
/// What `--version` prints: the version and the commit.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("TIPOFF_BUILD_COMMIT"),
    ")"
);
/// Where the result goes unless `TIPOFF_RESULT_PATH` says otherwise: the file Kubernetes
/// copies into the Pod's termination message.
pub const DEFAULT_RESULT_PATH: &str = "/dev/termination-log";

/// `run <processor> --date D --mode M`, as the operator's Jobs invoke every processor.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct RunArgs {
    /// The processor to run, as the catalog names it.
    pub processor: String,
    /// The game date (`YYYY-MM-DD`, America/New_York).
    #[arg(long, value_parser = parse_date)]
    pub date: jiff::civil::Date,
    /// The run's mode.
    #[arg(long, value_parser = parse_mode)]
    pub mode: Mode,
}

fn parse_date(s: &str) -> Result<jiff::civil::Date, String> {
    s.parse::<jiff::civil::Date>()
        .map_err(|e| format!("{s:?} is not a calendar date written YYYY-MM-DD: {e}"))
}

/// Parses the command-line spelling of a mode (`production`, `same-day`, `backfill`; the CRD's
/// CamelCase spelling is accepted too).
pub fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "production" | "Production" => Ok(Mode::Production),
        "same-day" | "SameDay" => Ok(Mode::SameDay),
        "backfill" | "Backfill" => Ok(Mode::Backfill),
        other => Err(format!(
            "unknown mode {other:?}: use production, same-day or backfill"
        )),
    }
}

/// How a processor run ended, mapped to the contract's exit codes.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad input: retrying cannot help (exit 65).
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Worth retrying: upstream down, quota, timeout (exit 75).
    #[error("transient failure: {0}")]
    Transient(String),
}

impl Failure {
    /// The exit code the contract assigns.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Permanent(_) => EXIT_PERMANENT,
            Failure::Transient(_) => EXIT_TRANSIENT,
        }
    }
}

/// A result skeleton for this binary: identity, date and mode filled in, nothing written yet.
pub fn result_for(args: &RunArgs) -> ProcessorResult {
    ProcessorResult {
        processor: args.processor.clone(),
        service: SERVICE.to_owned(),
        version: VERSION.to_owned(),
        commit: COMMIT.to_owned(),
        date: args.date.to_string(),
        mode: args.mode,
        rows: Default::default(),
        checks: Vec::new(),
        warnings: Vec::new(),
        duration_ms: 0,
    }
}

/// The result file path: `$TIPOFF_RESULT_PATH`, or the Kubernetes termination-message path.
pub fn result_path() -> PathBuf {
    std::env::var_os("TIPOFF_RESULT_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RESULT_PATH))
}

/// Why a result could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The result breaks the contract (too large).
    #[error(transparent)]
    Contract(#[from] ResultError),
    /// The file could not be written.
    #[error("writing the result to {path}: {source}")]
    Io {
        /// The result path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Writes the result to the result path, refusing one over the 4 KiB limit. Warnings and
/// missing names pass through [`redact`] first: a result is printed in Pod status.
pub fn write_result(result: &ProcessorResult) -> Result<PathBuf, WriteError> {
    let path = result_path();
    let mut result = result.clone();
    for w in &mut result.warnings {
        *w = redact(w);
    }
    for c in &mut result.checks {
        for m in &mut c.missing {
            *m = redact(m);
        }
    }
    let text = result.to_message()?;
    std::fs::write(&path, text).map_err(|source| WriteError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_in_both_spellings_and_reject_others() {
        assert_eq!(parse_mode("same-day"), Ok(Mode::SameDay));
        assert_eq!(parse_mode("Backfill"), Ok(Mode::Backfill));
        assert!(
            parse_mode("nightly")
                .unwrap_err()
                .contains("production, same-day or backfill")
        );
    }

    #[test]
    fn identity_is_compiled_in() {
        assert!(!COMMIT.is_empty());
        let args = RunArgs {
            processor: "p".into(),
            date: jiff::civil::date(2026, 1, 29),
            mode: Mode::Production,
        };
        let r = result_for(&args);
        assert_eq!(
            (r.service.as_str(), r.date.as_str()),
            (SERVICE, "2026-01-29")
        );
        assert_eq!(r.commit, COMMIT);
    }

    #[test]
    fn failures_map_to_contract_exit_codes() {
        assert_eq!(Failure::Permanent("x".into()).exit_code(), 65);
        assert_eq!(Failure::Transient("x".into()).exit_code(), 75);
        assert_eq!(
            tipoff_crds::classify_exit(Failure::Permanent("x".into()).exit_code()),
            tipoff_crds::ExitClass::Permanent
        );
    }
}
