//! The `tipoff-processor` command line: `run <processor> --date D --mode M`, configured by the
//! environment (`docs/processors.md`); the result goes to `$TIPOFF_RESULT_PATH` and the exit
//! code is 0, 65 (permanent), 75 (transient), or 2 for a command line it does not understand.

use std::process::ExitCode;

use crate::contract::{self, RunArgs};
use crate::registry;
use crate::runner::{self, Config};
use crate::upstream::redact;
use clap::Parser;
use tipoff_crds::{EXIT_PERMANENT, EXIT_USAGE};

#[derive(Parser, Debug)]
#[command(name = "tipoff-processor", version = crate::contract::VERSION_LINE)]
enum Cli {
    /// Runs one processor for one date.
    Run(RunArgs),
    /// Writes the game-day list (a ConfigMap) from the league schedule (docs/schedule.md).
    GameDays(crate::game_days::GameDaysArgs),
}

/// Runs the processor command line `argv` (the program name first) and returns its exit
/// code. `tipoff-processor` calls it with its own arguments; the `tipoff` CLI's hidden
/// `processor` subcommand calls it too, so the demo needs no second binary.
pub fn main_with_args<I, T>(argv: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = match Cli::try_parse_from(argv) {
        Ok(Cli::Run(args)) => args,
        Ok(Cli::GameDays(args)) => return game_days(&args),
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE as u8)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if registry::find(&args.processor).is_none() {
        let known: Vec<&str> = registry::PROCESSORS.iter().map(|p| p.name).collect();
        eprintln!(
            "tipoff-processor: unknown processor {:?}; known: {}",
            args.processor,
            known.join(", ")
        );
        return ExitCode::from(EXIT_USAGE as u8);
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tipoff-processor: {}", redact(&e.to_string()));
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
        eprintln!("tipoff-processor: {}", redact(&e.to_string()));
        return ExitCode::from(EXIT_PERMANENT as u8);
    }
    match &outcome.failure {
        None => {
            println!("{} succeeded", args.processor);
            ExitCode::SUCCESS
        }
        Some(f) => {
            eprintln!("tipoff-processor: {}", redact(&f.to_string()));
            ExitCode::from(u8::try_from(outcome.exit_code()).unwrap_or(1))
        }
    }
}

/// `tipoff-processor game-days`: exit 0, 65 (the list would shrink, bad configuration) or 75
/// (upstream or API server unavailable, payload unusable; the list is left as it is).
fn game_days(args: &crate::game_days::GameDaysArgs) -> ExitCode {
    // The Kubernetes client's TLS provider, installed once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let outcome = Config::from_env().and_then(|config| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::contract::Failure::Permanent(format!("starting the runtime: {e}")))?
            .block_on(crate::game_days::refresh(args, &config))
    });
    match outcome {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("tipoff-processor game-days: {}", redact(&f.to_string()));
            ExitCode::from(u8::try_from(f.exit_code()).unwrap_or(1))
        }
    }
}
