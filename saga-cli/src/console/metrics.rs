//! `GET /metrics`: what the runtimes did and what the store holds, in the Prometheus text
//! format (version 0.0.4).

use saga_core::{Histogram, Metrics, Status, Store};
use std::fmt::Write as _;

/// The relay backlog is counted up to this many rows (a gauge past it says "at least").
const BACKLOG_LIMIT: usize = 100_000;

/// What the store holds: processes by status, dead letters, outgoing messages not yet
/// published.
pub(crate) struct Held {
    pub(crate) processes: Vec<(Status, u64)>,
    pub(crate) dead_letters: u64,
    pub(crate) backlog: u64,
}

impl Held {
    /// Reads it off `store`.
    pub(crate) fn read(store: &dyn Store) -> saga_core::Result<Held> {
        let processes = Status::ALL
            .iter()
            .map(|s| Ok((*s, store.count_processes(*s)?)))
            .collect::<saga_core::Result<_>>()?;
        Ok(Held {
            processes,
            dead_letters: store.dead_letters()?.len() as u64,
            backlog: store.outbox_after(None, BACKLOG_LIMIT)?.len() as u64,
        })
    }
}

/// The exposition of `metrics` (the runtimes of this process, if any) and `held`.
pub(crate) fn exposition(metrics: Option<&Metrics>, held: Option<&Held>) -> String {
    let mut out = String::new();
    if let Some(metrics) = metrics {
        let stats = metrics.stats();
        let counters = [
            (
                "saga_handled_messages_total",
                "Messages whose effects were committed (dead letters included).",
                stats.handled,
            ),
            (
                "saga_duplicate_messages_total",
                "Messages acknowledged without effect because the inbox had them.",
                stats.duplicates,
            ),
            (
                "saga_version_conflicts_total",
                "Handler runs repeated because another commit changed a record first.",
                stats.conflicts,
            ),
            ("saga_redelivered_messages_total", "Messages nacked for a later delivery.", stats.redelivered),
            (
                "saga_dead_lettered_messages_total",
                "Messages that ended in dead letters.",
                stats.dead_lettered,
            ),
            ("saga_commits_total", "Durable group commits.", stats.commits),
            (
                "saga_committed_units_total",
                "Units (handled messages, client sends) in those commits.",
                stats.units,
            ),
            ("saga_published_messages_total", "Outbox rows the transport accepted.", stats.published),
        ];
        for (name, help, value) in counters {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");
        }
        histogram(
            &mut out,
            "saga_commit_duration_seconds",
            "How long group commits took, syncs included.",
            &metrics.commit_seconds(),
        );
        histogram(&mut out, "saga_commit_group_size", "Units per group commit.", &metrics.group_sizes());
    }
    let Some(held) = held else { return out };
    out.push_str("# HELP saga_processes Processes in the store, by status.\n# TYPE saga_processes gauge\n");
    for (status, n) in &held.processes {
        let _ = writeln!(out, "saga_processes{{status=\"{status}\"}} {n}");
    }
    let _ = write!(
        out,
        "# HELP saga_dead_letters Messages given up on, kept for an operator.\n# TYPE saga_dead_letters gauge\nsaga_dead_letters {}\n",
        held.dead_letters
    );
    let _ = write!(
        out,
        "# HELP saga_relay_backlog Outgoing messages committed but not yet published (counted up to {BACKLOG_LIMIT}).\n# TYPE saga_relay_backlog gauge\nsaga_relay_backlog {}\n",
        held.backlog
    );
    out
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} histogram\n");
    for (bound, n) in h.bounds.iter().zip(&h.cumulative) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum {}", h.sum);
    let _ = writeln!(out, "{name}_count {}", h.count);
}
