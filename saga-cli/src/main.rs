//! `saga-cli`: runs the reference domains and lets an operator see and act on every process.

mod bench;
mod cli;
mod commands;
mod output;

use std::process::ExitCode;

/// glibc's allocator spent about a third of the CPU of an imp-summoning run in malloc, free and
/// consolidation; mimalloc's thread-local free lists take most of that away.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::main()
}
