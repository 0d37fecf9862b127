//! `saga-cli`: runs the reference domains and lets an operator see and act on every process.

mod allocator;
mod bench;
mod cli;
mod commands;
mod console;
mod diagram;
mod domain_flags;
mod html;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    allocator::tune();
    cli::main()
}
