//! `saga-cli bench list`: how long `list` takes to print its first page, and how long and how
//! much memory a whole `list --json` takes, on a store of many finished sagas.
//!
//! Each measurement runs this binary as a child process, as an operator would: the time is the
//! child's wall time from spawn to exit, and its peak resident memory is its `VmHWM`, read from
//! `/proc` while it runs (every 2 ms, and the high-water mark only grows, so the last reading
//! before it exits holds all but its last moments).

use anyhow::{Context as _, Result, bail};
use saga_core::store::{Batch, Class, CommitUnit, PROCESS_SPACE, ProcessMeta, ProcessQuery, Record, Write};
use saga_core::{RedbStore, Status, Store, Timestamp};
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes written per commit while the store is built.
const BATCH: u64 = 20_000;
/// When the first process of a built store was created (2026-01-01T00:00Z); four are created
/// per millisecond after it, so ties are sorted by id.
const FIRST_CREATED: Timestamp = Timestamp::from_millis(1_767_225_600_000);

/// What `bench list` measures.
pub(crate) struct Options {
    pub(crate) processes: u64,
    pub(crate) db: Option<PathBuf>,
    pub(crate) limit: u64,
    pub(crate) runs: u32,
}

/// The figures `saga-cli bench list` prints: medians over the runs, and the peaks.
#[derive(Serialize, Debug)]
pub(crate) struct Report {
    /// Processes in the store.
    pub(crate) processes: u64,
    /// Seconds spent building the store; absent when an existing one was reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) built_in_s: Option<f64>,
    /// The store file's size.
    pub(crate) file_mb: f64,
    /// Rows on the first page.
    pub(crate) limit: u64,
    /// `saga-cli list --limit N` as a child process: spawn to exit.
    pub(crate) first_page_ms: f64,
    /// Its peak resident memory.
    pub(crate) first_page_rss_mb: f64,
    /// The same page asked of the store in this process: opening the file read-only and one
    /// `processes_page`, without starting a process.
    pub(crate) first_page_query_ms: f64,
    /// `saga-cli list --json` as a child process, its output read to the end: spawn to exit.
    pub(crate) stream_s: f64,
    /// Its peak resident memory: the median of the runs, and the largest.
    pub(crate) stream_rss_mb: f64,
    pub(crate) stream_rss_max_mb: f64,
    /// Its output's size.
    pub(crate) stream_mb: f64,
    /// Runs of each measurement.
    pub(crate) runs: u32,
}

impl Report {
    /// The figures as a table, with the targets they are held to.
    pub(crate) fn table(&self) -> String {
        let mut table = tabled::builder::Builder::default();
        table.push_record(["figure", "value", "target"]);
        let built = match self.built_in_s {
            Some(s) => format!("built in {s} s"),
            None => "reused".to_owned(),
        };
        let rows = [
            ("processes", format!("{} ({built})", self.processes), String::new()),
            ("file (MB)", self.file_mb.to_string(), String::new()),
            (
                "first page, process (ms)",
                format!("{} (--limit {})", self.first_page_ms, self.limit),
                target(self.first_page_ms < 100.0, "< 100"),
            ),
            ("first page, peak RSS (MB)", self.first_page_rss_mb.to_string(), String::new()),
            ("first page, query (ms)", self.first_page_query_ms.to_string(), String::new()),
            ("list --json, whole (s)", self.stream_s.to_string(), String::new()),
            (
                "list --json, peak RSS (MB)",
                format!("{} (max {})", self.stream_rss_mb, self.stream_rss_max_mb),
                target(self.stream_rss_max_mb < 100.0, "< 100"),
            ),
            ("list --json, output (MB)", self.stream_mb.to_string(), String::new()),
        ];
        for (name, value, goal) in rows {
            table.push_record([name.to_owned(), value, goal]);
        }
        let runs = if self.runs == 1 { "1 run".to_owned() } else { format!("medians of {} runs", self.runs) };
        format!("list on a store of {} finished sagas, {runs}\n{}", self.processes, table.build())
    }
}

fn target(met: bool, goal: &str) -> String {
    format!("{goal} ({})", if met { "met" } else { "missed" })
}

/// Builds the store (or reuses `--db`), then measures.
pub(crate) fn run(options: Options) -> Result<Report> {
    let scratch;
    let path = match &options.db {
        Some(path) => path.clone(),
        None => {
            scratch = tempfile::tempdir().context("creating a scratch directory")?;
            scratch.path().join("list.redb")
        }
    };
    let built_in_s = if path.exists() {
        None
    } else {
        let started = Instant::now();
        build(&path, options.processes)?;
        Some(round(started.elapsed().as_secs_f64(), 1))
    };
    let processes = {
        let store = RedbStore::open_read_only(&path)?;
        Status::ALL.iter().map(|s| store.count_processes(*s)).sum::<saga_core::Result<u64>>()?
    };
    let file_mb = mb(std::fs::metadata(&path).map(|m| m.len()).unwrap_or_default());
    let exe = std::env::current_exe().context("finding this binary to run it")?;
    let db = path.to_str().context("the store's path is not UTF-8")?;
    let limit = options.limit.to_string();

    let mut first_page = Vec::new();
    let mut query = Vec::new();
    let mut stream = Vec::new();
    for _ in 0..options.runs {
        let (wall, rss, _) = child(&exe, &["list", "--db", db, "--limit", &limit])?;
        first_page.push((wall, rss));
        let started = Instant::now();
        let store = RedbStore::open_read_only(&path)?;
        let page = store.processes_page(&ProcessQuery::new().limit(options.limit as usize))?;
        query.push(started.elapsed());
        drop((page, store));
        let (wall, rss, output) = child(&exe, &["list", "--db", db, "--json"])?;
        if output.rows != processes {
            bail!("list --json printed {} rows of {processes} processes", output.rows);
        }
        stream.push((wall, rss, output.bytes));
    }
    let ms = |d: Duration| round(d.as_secs_f64() * 1000.0, 1);
    let median_of = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    Ok(Report {
        processes,
        built_in_s,
        file_mb,
        limit: options.limit,
        first_page_ms: median_of(first_page.iter().map(|(w, _)| ms(*w)).collect()),
        first_page_rss_mb: median_of(first_page.iter().map(|(_, r)| mb(*r)).collect()),
        first_page_query_ms: median_of(query.iter().map(|d| ms(*d)).collect()),
        stream_s: median_of(stream.iter().map(|(w, _, _)| round(w.as_secs_f64(), 2)).collect()),
        stream_rss_mb: median_of(stream.iter().map(|(_, r, _)| mb(*r)).collect()),
        stream_rss_max_mb: stream.iter().map(|(_, r, _)| mb(*r)).fold(0.0, f64::max),
        stream_mb: stream.first().map_or(0.0, |(_, _, bytes)| mb(*bytes)),
        runs: options.runs,
    })
}

/// Writes `processes` finished sagas to a new store at `path`, many to a commit.
fn build(path: &Path, processes: u64) -> Result<()> {
    let store = RedbStore::open(path)?;
    let progress = crate::output::ProgressLine::new("building the store");
    let mut written = 0;
    while written < processes {
        let end = (written + BATCH).min(processes);
        let mut unit = CommitUnit::new(Timestamp::now());
        unit.writes = (written..end).map(finished_saga).collect();
        let outcome = store.commit(&Batch::from([unit]))?.remove(0);
        if !outcome.is_committed() {
            bail!("{}: writing processes {written}..{end}: {outcome:?}", path.display());
        }
        written = end;
        saga_examples::Progress::update(&progress, written, processes);
    }
    progress.finish();
    Ok(())
}

/// Saga `n` of a built store: an order whose three steps ran, completed (or, for every tenth,
/// compensated), with a state of the size a saga of imp-summoning keeps.
fn finished_saga(n: u64) -> Write {
    let created = FIRST_CREATED + Duration::from_millis(n / 4);
    let status = if n % 10 == 9 { Status::Compensated } else { Status::Completed };
    let mut meta = ProcessMeta::new(Class::Saga, "order", status, created);
    meta.changes = 2;
    let steps: Vec<serde_json::Value> = ["reserve-funds", "summon", "deliver"]
        .iter()
        .map(|step| {
            serde_json::json!({
                "name": step, "status": "succeeded", "attempts": 1,
                "first_attempt_at": created.as_millis(), "log": { "reference": format!("{step}-{n}") },
            })
        })
        .collect();
    let state = serde_json::json!({
        "input": { "order": n, "customer": format!("customer-{}", n % 9973), "amount": 100 + n % 900 },
        "steps": steps,
    });
    let mut record = Record::new(serde_json::to_vec(&state).unwrap_or_default());
    record.updated_at = created + Duration::from_millis(40);
    record.process = Some(meta);
    Write::put(PROCESS_SPACE, format!("order/{n}"), 0, record)
}

/// What a child wrote to stdout.
struct Output {
    bytes: u64,
    /// Lines that begin a JSON object: the rows of a `list --json`.
    rows: u64,
}

/// Runs this binary with `args`, reading its stdout to the end; returns its wall time, its peak
/// resident memory in bytes, and what it wrote. A child that fails is an error naming it.
fn child(exe: &Path, args: &[&str]) -> Result<(Duration, u64, Output)> {
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting saga-cli {}", args.join(" ")))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut stdout = child.stdout.take().context("the child's stdout")?;
    let reader = std::thread::spawn(move || -> std::io::Result<Output> {
        let mut output = Output { bytes: 0, rows: 0 };
        let mut buffer = vec![0; 1 << 16];
        let mut line_start = true;
        loop {
            let n = stdout.read(&mut buffer)?;
            if n == 0 {
                return Ok(output);
            }
            output.bytes += n as u64;
            for &byte in &buffer[..n] {
                if line_start && byte == b'{' {
                    output.rows += 1;
                }
                line_start = byte == b'\n';
            }
        }
    });
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for the child")? {
            break status;
        }
        peak = peak.max(peak_rss(&status_file));
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed();
    let output =
        reader.join().map_err(|_| anyhow::anyhow!("the reader of the child's output panicked"))??;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    if !status.success() {
        bail!("saga-cli {} failed ({status}): {}", args.join(" "), stderr.trim());
    }
    Ok((wall, peak, output))
}

/// A process's peak resident memory in bytes, from its `/proc/PID/status`; 0 once it is gone.
fn peak_rss(status_file: &str) -> u64 {
    let status = std::fs::read_to_string(status_file).unwrap_or_default();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_default();
    kib * 1024
}

fn mb(bytes: u64) -> f64 {
    round(bytes as f64 / (1024.0 * 1024.0), 1)
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}
