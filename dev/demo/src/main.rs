//! `tipoff-demo`: the local demo (`docs/cli.md`). `tipoff-demo processor ...` is the
//! `tipoff-processor` command line, which the demo's Jobs run.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
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
    let mut argv = std::env::args_os();
    if argv.nth(1).is_some_and(|a| a == PROCESSOR_SUBCOMMAND) {
        let mut rest = vec![OsString::from("tipoff-processor")];
        rest.extend(argv);
        return tipoff_processors::cli::main_with_args(rest);
    }
    tipoff_cli::run_main("tipoff-demo", |cli: Cli| tipoff_demo::run(cli.args))
}
