//! What `saga-cli bench saga` reports: each run's figures, their medians, and the table.

use serde::Serialize;

/// One run's figures, or the medians of several (the JSON's top level, and each of its `runs`).
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub(crate) struct Figures {
    /// Sagas over the run's wall time, from the first start to the last end heard.
    pub(crate) sagas_per_s: f64,
    /// Of every saga of the run: from its start call to its end being heard.
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// `sync_data` calls on the stores' storage backends over the sagas.
    pub(crate) syncs_per_saga: f64,
    /// The process's peak resident memory during the run.
    pub(crate) peak_rss_mb: f64,
    /// The databases' size after the run, over the sagas.
    pub(crate) bytes_per_saga: f64,
    pub(crate) completed: u64,
    pub(crate) compensated: u64,
    /// Messages published to the broker over the sagas (over NATS only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) broker_msgs_per_saga: Option<f64>,
    /// Where the syncs come from: not in the JSON, whose fields are fixed, but in the table.
    #[serde(skip)]
    pub(crate) detail: Detail,
}

/// Per saga: group commits, the units in them, and the writes and length changes the stores
/// made.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Detail {
    pub(crate) commits: f64,
    pub(crate) units: f64,
    pub(crate) writes: f64,
    pub(crate) set_lens: f64,
}

/// The figures `saga-cli bench saga --json` prints: the medians at the top level, and every run.
#[derive(Serialize, Debug)]
pub(crate) struct Report {
    #[serde(flatten)]
    pub(crate) median: Figures,
    pub(crate) runs: Vec<Figures>,
    /// What was run, for the table's heading.
    #[serde(skip)]
    pub(crate) heading: String,
    /// Every saga of every run completed or was compensated (none failed).
    #[serde(skip)]
    pub(crate) ended_well: bool,
}

impl Report {
    pub(crate) fn new(heading: String, runs: Vec<Figures>, ended_well: bool) -> Self {
        let of = |figure: fn(&Figures) -> f64| median(runs.iter().map(figure).collect());
        let count = |figure: fn(&Figures) -> u64| of_counts(runs.iter().map(figure).collect());
        let broker = runs.iter().map(|r| r.broker_msgs_per_saga).collect::<Option<Vec<f64>>>();
        let median = Figures {
            sagas_per_s: of(|r| r.sagas_per_s),
            p50_ms: of(|r| r.p50_ms),
            p99_ms: of(|r| r.p99_ms),
            syncs_per_saga: of(|r| r.syncs_per_saga),
            peak_rss_mb: of(|r| r.peak_rss_mb),
            bytes_per_saga: of(|r| r.bytes_per_saga),
            completed: count(|r| r.completed),
            compensated: count(|r| r.compensated),
            broker_msgs_per_saga: broker.map(median),
            detail: Detail {
                commits: of(|r| r.detail.commits),
                units: of(|r| r.detail.units),
                writes: of(|r| r.detail.writes),
                set_lens: of(|r| r.detail.set_lens),
            },
        };
        Report { median, runs, heading, ended_well }
    }

    /// A row per run, the medians below them, and where the syncs come from.
    pub(crate) fn table(&self) -> String {
        let nats = self.median.broker_msgs_per_saga.is_some();
        let mut table = tabled::builder::Builder::default();
        let mut head = vec![
            "run",
            "sagas / s",
            "p50 (ms)",
            "p99 (ms)",
            "syncs / saga",
            "peak RSS (MB)",
            "bytes / saga",
            "completed",
            "compensated",
        ];
        if nats {
            head.push("broker msgs / saga");
        }
        table.push_record(head);
        let rows = self.runs.iter().enumerate().map(|(i, r)| ((i + 1).to_string(), r));
        for (run, figures) in rows.chain([("median".to_owned(), &self.median)]) {
            let mut row = vec![
                run,
                figures.sagas_per_s.to_string(),
                figures.p50_ms.to_string(),
                figures.p99_ms.to_string(),
                figures.syncs_per_saga.to_string(),
                figures.peak_rss_mb.to_string(),
                figures.bytes_per_saga.to_string(),
                figures.completed.to_string(),
                figures.compensated.to_string(),
            ];
            if let Some(msgs) = figures.broker_msgs_per_saga {
                row.push(msgs.to_string());
            }
            table.push_record(row);
        }
        let d = self.median.detail;
        format!(
            "{}\n{}\nper saga (median): {} group commits of {} units; {} writes and {} length changes",
            self.heading,
            table.build(),
            d.commits,
            d.units,
            d.writes,
            d.set_lens
        )
    }
}

/// The median, to two places.
fn median(values: Vec<f64>) -> f64 {
    round(crate::bench::median(values), 2)
}

/// The middle count; the lower of the two middle ones when there are two.
fn of_counts(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len().saturating_sub(1) / 2).copied().unwrap_or_default()
}

/// `value` to `places` decimals.
pub(crate) fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rate: f64, completed: u64) -> Figures {
        Figures { sagas_per_s: rate, completed, ..Figures::default() }
    }

    #[test]
    fn the_top_level_is_the_median_of_the_runs() {
        let report = Report::new(String::new(), vec![run(30.0, 9), run(10.0, 9), run(20.0, 9)], true);
        assert_eq!(report.median.sagas_per_s, 20.0);
        assert_eq!(report.median.completed, 9);
        let even = Report::new(String::new(), vec![run(10.0, 8), run(25.0, 9)], true);
        assert_eq!(even.median.sagas_per_s, 17.5);
        assert_eq!(even.median.completed, 8);
    }

    #[test]
    fn the_json_has_the_medians_on_top_and_every_run_below_and_nothing_else() {
        let report = Report::new(String::new(), vec![run(10.0, 9)], true);
        let json = serde_json::to_value(&report).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let expected = [
            "bytes_per_saga",
            "compensated",
            "completed",
            "p50_ms",
            "p99_ms",
            "peak_rss_mb",
            "runs",
            "sagas_per_s",
            "syncs_per_saga",
        ];
        assert_eq!(keys, expected);
        assert_eq!(json["runs"][0]["sagas_per_s"], 10.0);
        assert!(json["runs"][0].get("runs").is_none());
    }
}
