//! Command-line parsing and dispatch.

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// Runs saga demos and inspects their processes.
#[derive(Parser, Debug)]
#[command(name = "saga-cli", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measures throughput and latency (use a release build).
    Bench {
        /// What to measure.
        #[arg(value_enum, default_value_t = BenchTarget::Engine)]
        target: BenchTarget,
        /// Messages to push through.
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum BenchTarget {
    /// Durable handled messages per second against the raw redb ceiling.
    Engine,
}

pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("saga-cli: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("saga-cli: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Bench {
            target: BenchTarget::Engine,
            messages,
            json,
        } => {
            let report = crate::bench::engine(messages).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{report:#?}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
