//! `saga-cli simulate`: a domain under the seeded fault simulation, seed after seed.

use crate::cli::SimulateArgs;
use crate::domain_flags::Chosen;
use crate::output::{ProgressLine, emit};
use anyhow::Result;
use saga_core::testkit::simulation::{FaultCounts, Summary};
use saga_examples::{Domain, Progress as _, simulation};
use serde::Serialize;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What `--json` prints.
#[derive(Serialize)]
struct Verdict<'a> {
    domain: &'a str,
    /// Seeds run.
    seeds: u64,
    from: u64,
    /// Rules broken, summed over the seeds.
    violations: u64,
    failing_seeds: Vec<u64>,
    /// The faults injected, summed over the seeds.
    faults: FaultCounts,
}

/// Runs the seeds of `--from` .. `--from + --seeds`, off the async runtime (a simulation runs on
/// a paused clock of its own); exit 1 if any broke a rule.
pub(crate) async fn simulate(chosen: Chosen<SimulateArgs>) -> Result<u8> {
    let Chosen { args, domain, flags, given } = chosen;
    // The domain's own flags, as given: the replay command repeats them.
    let knobs: Vec<String> = flags
        .iter()
        .filter(|(flag, _)| given.contains(*flag))
        .map(|(flag, value)| format!("--{flag} {value}"))
        .collect();
    let domain: Arc<dyn Domain> =
        if knobs.is_empty() { Arc::from(domain.for_simulation()) } else { Arc::from(domain) };
    let name = domain.name();
    let knobs = knobs.join(" ");
    let SimulateArgs { seeds, from, json } = args;
    let started = std::time::Instant::now();
    let summary = tokio::task::spawn_blocking(move || run_seeds(&domain, from, seeds, &knobs)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let violations: u64 = summary.failed.iter().map(|r| r.broken.len() as u64).sum();
    let failing_seeds: Vec<u64> = summary.failed.iter().map(|r| r.seed).collect();
    if json {
        let verdict = Verdict {
            domain: name,
            seeds: summary.seeds,
            from,
            violations,
            failing_seeds,
            faults: summary.faults,
        };
        emit(&serde_json::to_string(&verdict)?)?;
    } else {
        // The first failure in full: its seed, its replay, the broken rules with the history
        // of the process that broke each, and its faults.
        if let Some(first) = summary.failed.first() {
            emit(&first.to_string())?;
        }
        let f = summary.faults;
        emit(&format!(
            "{name}: {} seeds from {from}, {violations} violations{}\n\
             faults: {} lost, {} duplicated, {} reordered, {} delayed, {} crashes, {} transient errors\n\
             {:.0} seeds/s",
            summary.seeds,
            match failing_seeds.is_empty() {
                true => String::new(),
                false => format!(" (failing seeds: {})", list(&failing_seeds)),
            },
            f.lost,
            f.duplicated,
            f.reordered,
            f.delayed,
            f.crashes,
            f.transient_errors,
            summary.seeds as f64 / elapsed.max(1e-9),
        ))?;
    }
    Ok(if summary.failed.is_empty() { 0 } else { 1 })
}

/// Runs the seeds `from..from + seeds`, a thread per core taking the next seed not yet taken
/// (each run is its own thread's: its clock, ids and generator), with progress on a terminal.
fn run_seeds(domain: &Arc<dyn Domain>, from: u64, seeds: u64, knobs: &str) -> Summary {
    let name = domain.name();
    let progress = std::io::stderr().is_terminal().then(|| ProgressLine::new(&format!("simulate {name}")));
    let (next, done) = (AtomicU64::new(0), AtomicU64::new(0));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(seeds.max(1) as usize);
    let mut summary = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut summary = Summary::default();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= seeds {
                            return summary;
                        }
                        let (seed, knobs) = (from + n, knobs.to_owned());
                        let report = simulation(domain.clone(), seed)
                            .replay_with(move |seed| {
                                format!("saga-cli simulate {name} --from {seed} --seeds 1 {knobs}")
                                    .trim_end()
                                    .to_owned()
                            })
                            .run(seed);
                        summary.add(report);
                        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if let Some(progress) = &progress {
                            progress.update(finished, seeds);
                        }
                    }
                })
            })
            .collect();
        let mut all = Summary::default();
        for worker in workers {
            let part = worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            all.seeds += part.seeds;
            all.faults += part.faults;
            all.failed.extend(part.failed);
        }
        all
    });
    if let Some(progress) = &progress {
        progress.finish();
    }
    summary.failed.sort_by_key(|report| report.seed);
    summary
}

/// Seeds as `3, 17, 40`, at most 20 of them.
fn list(seeds: &[u64]) -> String {
    let shown: Vec<String> = seeds.iter().take(20).map(u64::to_string).collect();
    match seeds.len() > 20 {
        true => format!("{}, and {} more", shown.join(", "), seeds.len() - 20),
        false => shown.join(", "),
    }
}
