//! `kubectl-tipoff`: the same CLI as a kubectl plugin (`kubectl tipoff status`).

fn main() -> std::process::ExitCode {
    tipoff_cli::main_entry()
}
