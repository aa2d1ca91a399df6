//! `tipoff-processor`: the pipeline's processors (phase 1 scrapers, phase 2 raw processors),
//! invoked by the operator's Jobs as `tipoff-processor run <processor> --date D --mode M`.
//!
//! Configuration comes from the environment (`docs/processors.md`): `TIPOFF_WAREHOUSE_URL`,
//! `TIPOFF_STORAGE_URL`, `TIPOFF_UPSTREAM_URL`, `TIPOFF_UPSTREAM_API_KEY_FILE`. The result goes
//! to `$TIPOFF_RESULT_PATH`; the exit code is 0, 65 (permanent) or 75 (transient), and 2 for a
//! command line it does not understand, including an unknown processor.

use std::process::ExitCode;

fn main() -> ExitCode {
    tipoff_processors::cli::main_with_args(std::env::args_os())
}
