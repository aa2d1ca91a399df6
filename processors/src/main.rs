//! `tipoff-processor`: the pipeline's processors (phase 1 scrapers, phase 2 raw processors),
//! invoked by the operator's Jobs as `tipoff-processor run <processor> --date D --mode M`.
//!
//! Configuration comes from the environment (`docs/processors.md`): `TIPOFF_WAREHOUSE_URL`,
//! `TIPOFF_STORAGE_URL`, `TIPOFF_UPSTREAM_URL`, `TIPOFF_UPSTREAM_API_KEY_FILE`. The result goes
//! to `$TIPOFF_RESULT_PATH`; the exit code is 0, 65 (permanent) or 75 (transient), and 2 for a
//! command line it does not understand, including an unknown processor.

use std::process::ExitCode;

use clap::Parser;
use tipoff_crds::{EXIT_PERMANENT, EXIT_USAGE};
use tipoff_processors::contract::{self, RunArgs};
use tipoff_processors::runner::{self, Config};

#[derive(Parser, Debug)]
#[command(name = "tipoff-processor", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("TIPOFF_BUILD_COMMIT"), ")"))]
enum Cli {
    /// Runs one processor for one date.
    Run(RunArgs),
}

fn main() -> ExitCode {
    let Cli::Run(args) = Cli::parse();
    if !runner::is_known(&args.processor) {
        eprintln!(
            "tipoff-processor: unknown processor {:?}; known: {}, {}",
            args.processor,
            runner::SCRAPERS.join(", "),
            runner::RAW_PROCESSORS.join(", ")
        );
        return ExitCode::from(EXIT_USAGE as u8);
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tipoff-processor: {e}");
            let result = contract::result_for(&args);
            if let Err(w) = contract::write_result(&result) {
                eprintln!("tipoff-processor: {w}");
            }
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tipoff-processor: starting the runtime: {e}");
            return ExitCode::from(EXIT_PERMANENT as u8);
        }
    };
    eprintln!(
        "tipoff-processor: {} date={} mode={} commit={}",
        args.processor,
        args.date,
        args.mode.as_arg(),
        contract::COMMIT
    );
    let outcome = rt.block_on(runner::run(args.clone(), config));
    if let Err(e) = contract::write_result(&outcome.result) {
        eprintln!("tipoff-processor: {e}");
        return ExitCode::from(EXIT_PERMANENT as u8);
    }
    match &outcome.failure {
        None => {
            println!("{} succeeded", args.processor);
            ExitCode::SUCCESS
        }
        Some(f) => {
            eprintln!("tipoff-processor: {f}");
            ExitCode::from(u8::try_from(outcome.exit_code()).unwrap_or(1))
        }
    }
}
