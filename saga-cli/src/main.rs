//! `saga-cli`: runs the reference domains and lets an operator see and act on every process.

mod bench;
mod cli;
mod commands;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
