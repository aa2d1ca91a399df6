//! `tipoff`: the tipoff command line (`docs/cli.md`).

fn main() -> std::process::ExitCode {
    tipoff_cli::main_entry()
}
