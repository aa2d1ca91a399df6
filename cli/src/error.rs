//! The CLI's errors: each is short, says what to do, and maps to one documented exit code
//! (`docs/cli.md`).

use std::process::ExitCode;

/// Exit codes (documented in `docs/cli.md`).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An unexpected error (the API refused a request, I/O failed).
    pub const ERROR: u8 = 1;
    /// Bad usage: unknown flag, invalid date, missing `--release` for a new run.
    pub const USAGE: u8 = 2;
    /// What was asked for does not exist: no run for the date, no such processor, no logs.
    pub const NOT_FOUND: u8 = 3;
    /// No cluster answers at the kubeconfig's server, or there is no kubeconfig.
    pub const UNREACHABLE: u8 = 4;
    /// The cluster answers but the tipoff CRDs are not installed.
    pub const CRDS_MISSING: u8 = 5;
    /// `--wait`: the run ended Failed or Blocked. `tipoff-demo`: the run did not end as expected.
    pub const RUN_FAILED: u8 = 6;
    /// `drift`: a run executed code other than its pinned release.
    pub const DRIFT: u8 = 7;
    /// `validate`: a recomputed value differs from what phases 3-4 wrote.
    pub const MISMATCH: u8 = 8;
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input.
    #[error("{0}")]
    Usage(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No cluster.
    #[error("{0}")]
    Unreachable(String),
    /// No CRDs.
    #[error(
        "the tipoff CRDs are not installed in this cluster ({0}); install them with: kubectl apply -f crds/generated/"
    )]
    CrdsMissing(String),
    /// The run ended badly.
    #[error("{0}")]
    RunFailed(String),
    /// Drift found.
    #[error("{0}")]
    Drift(String),
    /// A spot check found a value that differs.
    #[error("{0}")]
    Mismatch(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::NotFound(_) => exit::NOT_FOUND,
            CliError::Unreachable(_) => exit::UNREACHABLE,
            CliError::CrdsMissing(_) => exit::CRDS_MISSING,
            CliError::RunFailed(_) => exit::RUN_FAILED,
            CliError::Drift(_) => exit::DRIFT,
            CliError::Mismatch(_) => exit::MISMATCH,
            CliError::Other(_) => exit::ERROR,
        }
    }

    /// An API error in words, as a CLI error: a refused connection is "unreachable".
    pub fn from_kube(context: &str, e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) if s.code == 404 => {
                CliError::NotFound(format!("{context}: {}", s.message))
            }
            kube::Error::Api(s) => {
                CliError::Other(format!("{context}: {} ({})", s.message, s.reason))
            }
            other => CliError::Unreachable(format!(
                "{context}: cannot reach the cluster ({other}); check the kubeconfig's server, or start one with `cargo run --release -p tipoff-demo -- --keep-running`"
            )),
        }
    }
}

impl From<CliError> for ExitCode {
    fn from(e: CliError) -> Self {
        ExitCode::from(e.exit_code())
    }
}

/// The CLI's result type.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
