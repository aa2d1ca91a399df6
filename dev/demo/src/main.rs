//! `tipoff-demo`: the local demo (`docs/cli.md`). `tipoff-demo processor ...` is the
//! `tipoff-processor` command line, which the demo's Jobs run.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use tipoff_cli::error::exit;
use tipoff_demo::{DemoArgs, PROCESSOR_SUBCOMMAND};

#[derive(Parser, Debug)]
#[command(
    name = "tipoff-demo",
    version,
    about = "Run simulated game dates through every phase on this machine (dev/cluster, the \
operator, dev/season and the real processors, all in this process).",
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 6 the run did not end as expected. See docs/cli.md."
)]
struct Cli {
    #[command(flatten)]
    args: DemoArgs,
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == PROCESSOR_SUBCOMMAND) {
        let mut rest = vec![OsString::from("tipoff-processor")];
        rest.extend(argv.into_iter().skip(2));
        return tipoff_processors::cli::main_with_args(rest);
    }
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tipoff-demo: starting the runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(tipoff_demo::run(cli.args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tipoff-demo: {e}");
            e.into()
        }
    }
}
