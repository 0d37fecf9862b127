//! `saga-cli`: runs the reference domains and lets an operator see and act on every process.

mod bench;
mod cli;
mod commands;
mod console;
mod diagram;
mod domain_flags;
mod html;
mod output;

use std::process::ExitCode;

/// glibc's allocator spent about a third of the CPU of an imp-summoning run in malloc, free and
/// consolidation; mimalloc's thread-local free lists take most of that away.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The kernel backs a fault in a transparent huge page with 2 MiB of zeroed memory. mimalloc
    // returns freed pages to the kernel and faults them in again, so with huge pages on, zeroing
    // them took 11-15% of an imp-summoning run's CPU. Without them a fault zeroes 4 KiB.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    cli::main()
}
