//! The command line: clap types, and `main`'s parse, run, print, exit.

use crate::domain_flags::{Chosen, ImpKnobs};
use clap::{Args, Parser, Subcommand};
use saga_core::operator::DeadLetterId;
use saga_core::transport::Membership;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs saga demos and lets an operator see and act on every process.
#[derive(Parser, Debug)]
#[command(name = "saga-cli", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Runs a reference domain (or resumes the run in --db, or starts over with --fresh) and
    /// checks its invariants.
    Run {
        #[command(subcommand)]
        domain: Chosen<CommonRun>,
    },
    /// Lists processes: one row per saga or process instance, newest first (by creation time,
    /// then id).
    List(ListArgs),
    /// Prints a process's history as it grows, until the process ends (the same as `inspect
    /// process ID --follow`).
    Watch {
        /// The process id, as `list` shows it.
        id: String,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        broker: BrokerArg,
        /// Print each history entry as a JSON object on a line of its own, and the end as one
        /// more.
        #[arg(long)]
        json: bool,
    },
    /// Moves the processes that finished before a time out of a database: each is written to a
    /// JSON Lines file (one process per line, readable with `inspect process ID --archive
    /// FILE`), then removed with its history, leaving a tombstone of its id. `compact` gives
    /// the space back.
    Archive {
        #[command(flatten)]
        db: DbArg,
        /// Processes that finished before this RFC 3339 time (2026-01-31T09:00:00Z).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        before: saga_core::Timestamp,
        /// The JSON Lines file to append them to.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Reads the whole database file, read-only, and reports what is damaged or inconsistent:
    /// values that do not decode, index entries that disagree with the records, broken history
    /// chains; exit 0 when sound, 1 otherwise.
    Check {
        #[command(flatten)]
        db: DbArg,
        /// Repair a damaged file: what still reads is written to a new file, the indexes and
        /// history chains are built again, the damaged file is kept as PATH.damaged, and what
        /// was lost is listed.
        #[arg(long)]
        repair: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Gives the space of removed data back to the file system, shrinking the database file.
    Compact {
        #[command(flatten)]
        db: DbArg,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Counts processes: in all, or per status or per kind.
    Count {
        #[command(flatten)]
        db: DbArg,
        /// Count per status or per kind.
        #[arg(long, value_enum)]
        by: Option<CountBy>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Lists the messages given up on (which consumer, why, and when), shows one, sends them
    /// again to the consumer that gave up on them (redrive), or deletes them (purge).
    DeadLetters {
        #[command(subcommand)]
        what: Option<LettersWhat>,
        /// The saga database.
        #[arg(long, default_value = "saga.redb", global = true)]
        db: PathBuf,
        /// Ask every service of a deployment that runs apart, through this broker
        /// (nats://HOST:PORT), instead of a file: each answers for its own dead letters.
        #[arg(long, value_parser = parse_transport, requires = "domain", conflicts_with = "db", global = true)]
        transport: Option<TransportArg>,
        /// The deployment's domain (its broker stream), with --transport.
        #[arg(long, global = true)]
        domain: Option<String>,
        /// With --transport: how long to wait for answers, in seconds.
        #[arg(long, default_value = "10", value_parser = parse_seconds, global = true)]
        timeout: std::time::Duration,
        #[command(flatten)]
        action: LettersAction,
        /// Confirms --purge.
        #[arg(long, requires = "purge")]
        yes: bool,
        /// Print JSON instead of tables and sentences.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Shows one thing in detail.
    Inspect {
        #[command(subcommand)]
        what: InspectWhat,
    },
    /// Resumes a failed saga (or process), and says what its owner answered; on a file, runs
    /// its domain until it ends again.
    Retry {
        /// The process id, as `list` shows it.
        #[arg(required_unless_present = "all_failed", conflicts_with = "all_failed")]
        id: Option<String>,
        #[command(flatten)]
        all: AllFailed,
        #[command(flatten)]
        target: Target,
    },
    /// Accepts a failed saga or process as it is, freeing what it held.
    Acknowledge {
        /// The process id, as `list` shows it.
        #[arg(required_unless_present = "all_failed", conflicts_with = "all_failed")]
        id: Option<String>,
        #[command(flatten)]
        all: AllFailed,
        #[command(flatten)]
        target: Target,
    },
    /// Cancels a running saga: it takes no further step and undoes, in reverse, every step that
    /// completed; it ends cancelled.
    Cancel {
        /// The saga's process id, as `list` shows it.
        id: String,
        /// Why, for its history.
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
        #[command(flatten)]
        target: Target,
    },
    /// Ends a running saga at once, undoing nothing (the last resort).
    Terminate {
        /// The saga's process id, as `list` shows it.
        id: String,
        /// Why, for its history.
        #[arg(long, default_value = "terminated by an operator")]
        reason: String,
        #[command(flatten)]
        target: Target,
    },
    /// Sends a signal to a saga: the step waiting for it (or the next that will) takes it.
    Signal {
        /// The saga's process id, as `list` shows it.
        id: String,
        /// The signal's name.
        name: String,
        /// What it carries, as JSON.
        #[arg(long, default_value = "null", value_parser = parse_json)]
        payload: serde_json::Value,
        /// An id for the signal: sending it again with the same id has no second effect.
        #[arg(long)]
        signal_id: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Starts an instance of a saga; on a file, runs its domain until the instance ends.
    Start {
        /// The saga's name.
        saga: String,
        /// The instance's key: its process id is `SAGA/KEY`.
        key: String,
        /// The saga's input, as JSON.
        #[arg(long, value_parser = parse_json)]
        input: serde_json::Value,
        #[command(flatten)]
        target: Target,
    },
    /// Serves the web console on a database, or on a deployment through its broker: processes
    /// (filtered, paged, live), each process with its steps, history and sequence diagram, dead
    /// letters, and the operator's actions; also /metrics (Prometheus), /healthz and /readyz.
    /// It reads a file beside a run that writes it, and acts on it when no other process holds
    /// it; through a broker it lists what the services announce and asks each process's owner.
    Serve(ServeArgs),
    /// Runs one service of a domain as a process of its own, until SIGINT or SIGTERM.
    Service {
        #[command(subcommand)]
        domain: Chosen<ApartArgs>,
    },
    /// Drives a domain's scenario from a process of its own and follows its processes to their
    /// end, while its services run as `saga-cli service` processes.
    Drive {
        #[command(subcommand)]
        domain: Chosen<DriverArgs>,
    },
    /// Runs a domain under the seeded fault simulation, seed after seed: messages lost before
    /// their acknowledgement, duplicated, reordered and delayed, crashes at a write with a
    /// restart on what survived, transient handler errors, all on a simulated clock. Checks the
    /// domain's invariants and that every process ended; exit 1 on a violation, naming each
    /// failing seed and the command that replays it. Without any of the domain's flags, it is
    /// sized for a simulation (a few processes a seed).
    Simulate {
        #[command(subcommand)]
        domain: Chosen<SimulateArgs>,
    },
    /// Measures throughput and latency (use a release build).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Prints a shell completion script: `saga-cli completions bash > ~/.local/share/bash-completion/completions/saga-cli`.
    Completions {
        /// The shell: bash, zsh or fish (elvish and powershell work too).
        shell: clap_complete::Shell,
    },
}

/// What `saga-cli bench` measures.
#[derive(Subcommand, Debug)]
pub(crate) enum BenchWhat {
    /// Durable handled messages per second against the raw redb ceiling.
    Engine {
        /// Messages to push through.
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// Also measure over this NATS broker (`nats://HOST:PORT`).
        #[arg(long, value_parser = parse_nats_url)]
        nats: Option<String>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Completed-or-compensated sagas per second of the whole imp-summoning domain on the
    /// embedded default, over several runs on fresh databases: each run, and their median.
    Sagas {
        /// Orders per run.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        orders: u64,
        /// Runs, each on a fresh database.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        runs: u32,
        /// Seeds every random choice; every run uses the same seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        knobs: ImpKnobs,
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// One saga's latency and what it costs, on the workload the peers' benchmarks run.
    ///
    /// Each order's saga has three steps: reserve_funds (refunded if a later step fails for
    /// good), summon (which fails for good for every tenth order) and deliver. Each saga is
    /// started and awaited as a user would: the handle `start_saga` gives, and its `result()`.
    /// Every run gets fresh databases in a scratch directory; the figures are the medians of
    /// the runs.
    ///
    /// sagas/s: sagas over the run's wall time. p50/p99: from a saga's start call to its end
    /// being heard, over every saga of the run. syncs/saga: sync_data calls on the databases'
    /// storage backends (each an fdatasync on a file). peak RSS: the process's peak during the
    /// run (the process's peak so far where Linux cannot reset it). bytes/saga: the databases'
    /// size after the run.
    Saga {
        /// How many sagas, and how many in flight at once.
        #[arg(long, value_enum, default_value_t = SagaMode::Conc)]
        mode: SagaMode,
        /// Sagas per run, instead of the mode's count.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        sagas: Option<u64>,
        /// Keep the databases in memory (syncs are still counted, but cost nothing).
        #[arg(long)]
        in_memory: bool,
        /// `in-process` (the default), or `nats://HOST:PORT`: then summon is a remote step,
        /// answered over the broker by a service of a second runtime in this process on a
        /// database of its own; syncs and bytes count both databases, and the figures add
        /// broker_msgs_per_saga, the messages published to the broker.
        #[arg(long, default_value = "in-process", value_parser = parse_transport)]
        transport: TransportArg,
        /// Runs, each on fresh databases.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        runs: u32,
        /// Print one JSON object: the medians at the top level, each run's figures under `runs`.
        #[arg(long)]
        json: bool,
    },
    /// How fast `list` prints its first page, and how long and how much memory a whole
    /// `list --json` takes, on a store of many finished sagas.
    ///
    /// The store is written straight through the store's commits, many sagas to a commit (or
    /// `--db` names one to reuse). Each measurement runs this binary as a child process:
    /// first page: `list --limit N`, spawn to exit; list --json: the whole array read to the
    /// end. Peak RSS is the child's VmHWM, read from /proc while it runs. The figures are the
    /// medians of the runs (and the largest peak of the stream's). Targets: the first page
    /// under 100 ms, the whole stream under 100 MB.
    List {
        /// Finished sagas in the store it builds.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
        processes: u64,
        /// Keep the store in this file: built there if there is none, used as it is if there is
        /// (a scratch file, deleted afterwards, without it).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Rows on the first page.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
        /// Runs of each measurement.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        runs: u32,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// How `bench saga` drives its sagas.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SagaMode {
    /// 1,000 sagas, 100 in flight.
    Conc,
    /// 200 sagas, one at a time.
    Seq,
    /// 10,000 sagas, 1,000 in flight.
    Big,
}

/// What `saga-cli count` counts per.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CountBy {
    /// Running, compensating, completed, compensated, failed, acknowledged.
    Status,
    /// The saga's or process manager's name.
    Kind,
}

/// What `saga-cli dead-letters` shows of one dead letter.
#[derive(Subcommand, Debug)]
pub(crate) enum LettersWhat {
    /// One dead letter in full: the error, the message's routing and headers, and its payload.
    Show {
        /// The dead letter, as the list shows its id (MESSAGE-ID/CONSUMER where two consumers
        /// gave up on one message).
        id: DeadLetterId,
    },
}

/// What `saga-cli dead-letters` does to dead letters, besides listing them: one action at most.
#[derive(Args, Debug, Default)]
#[group(multiple = false)]
pub(crate) struct LettersAction {
    /// Sends dead letter ID again, to the consumer that gave up on it alone, and runs the
    /// domain recorded in the database until it is handled.
    #[arg(long, value_name = "ID")]
    pub(crate) redrive: Option<DeadLetterId>,
    /// Sends every dead letter again, like --redrive.
    #[arg(long)]
    pub(crate) all: bool,
    /// Deletes every dead letter without sending it again (needs --yes).
    #[arg(long, requires = "yes")]
    pub(crate) purge: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum InspectWhat {
    /// A saga or process instance: state, steps, history, pending messages and timers.
    Process {
        /// The process id, as `list` shows it.
        id: String,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        broker: BrokerArg,
        /// Read it from this archive (`saga-cli archive --to FILE`) instead of a database.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["transport", "follow"])]
        archive: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long, conflicts_with = "mermaid")]
        json: bool,
        /// Print a mermaid sequence diagram of the messages it exchanged.
        #[arg(long)]
        mermaid: bool,
        /// Print its history as it grows, until it ends (like `watch`).
        #[arg(long, conflicts_with = "mermaid")]
        follow: bool,
    },
}

/// What `saga-cli list` lists, in which order, and how much of it.
#[derive(Args, Debug, Clone)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) db: DbArg,
    /// Only processes with this status.
    #[arg(long, value_parser = parse_status)]
    pub(crate) status: Option<saga_core::Status>,
    /// Only processes of this kind (the saga's or process manager's name).
    #[arg(long)]
    pub(crate) kind: Option<String>,
    /// Only processes whose id begins with this.
    #[arg(long)]
    pub(crate) prefix: Option<String>,
    /// Only processes created at or after this RFC 3339 time (2026-01-31T09:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) since: Option<saga_core::Timestamp>,
    /// Only processes created before this RFC 3339 time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) until: Option<saga_core::Timestamp>,
    /// At most N processes; if there are more, the next page's flag goes to stderr as
    /// `next: --after CURSOR`.
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    pub(crate) limit: Option<usize>,
    /// Lists the page after the one that printed CURSOR (with the same flags otherwise): the
    /// pages of one listing hold, once each, the processes there were at its first page.
    #[arg(long, value_name = "CURSOR", value_parser = parse_cursor)]
    pub(crate) after: Option<saga_core::store::PageCursor>,
    /// Oldest first.
    #[arg(long)]
    pub(crate) oldest_first: bool,
    /// Print one JSON array instead of a table, written a row at a time.
    #[arg(long)]
    pub(crate) json: bool,
    /// List a deployment whose services run apart, from the status changes they announce on
    /// this broker (nats://HOST:PORT); no file is opened.
    #[arg(long, value_parser = parse_transport, requires = "domain", conflicts_with_all = ["db", "after"])]
    pub(crate) transport: Option<TransportArg>,
    /// The deployment's domain (its broker stream), with --transport.
    #[arg(long)]
    pub(crate) domain: Option<String>,
}

/// Reading a deployment whose services run apart: its services answer through the broker.
#[derive(Args, Debug, Clone)]
pub(crate) struct BrokerArg {
    /// Ask the services of a deployment that runs apart, through this broker
    /// (nats://HOST:PORT), instead of a file; the one that keeps the process answers.
    #[arg(long, value_parser = parse_transport, requires = "domain", conflicts_with = "db")]
    pub(crate) transport: Option<TransportArg>,
    /// The deployment's domain (its broker stream), with --transport.
    #[arg(long)]
    pub(crate) domain: Option<String>,
    /// With --transport: how long to wait for the answer, in seconds.
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    pub(crate) timeout: std::time::Duration,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct DbArg {
    /// The saga database.
    #[arg(long, default_value = "saga.redb")]
    pub(crate) db: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct CommonRun {
    #[command(flatten)]
    pub(crate) db: DbArg,
    /// Seeds every random choice, so a run makes the same choices again. Under heavy load,
    /// what depends on timing between services (which order wins a race for the last item) can differ.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
    /// `in-process` (the default: every service in this process), or `nats://HOST:PORT` to run
    /// over a NATS JetStream broker.
    #[arg(long, default_value = "in-process", value_parser = parse_transport)]
    pub(crate) transport: TransportArg,
    /// Start over: replace what --db holds with a new run. Without it a run recorded there
    /// resumes, and flags given that differ from the ones it was started with are refused.
    #[arg(long)]
    pub(crate) fresh: bool,
    /// Serve the web console and the domain's own pages on ADDR (default 127.0.0.1:8080; port
    /// 0 takes any free one) while the run goes on; the services keep running once the
    /// scenario is done, until SIGINT.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub(crate) serve: Option<std::net::SocketAddr>,
    /// Serve /metrics (Prometheus), /healthz and /readyz on ADDR while the run goes on.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub(crate) traces: OtlpArgs,
    #[command(flatten)]
    pub(crate) console: ConsoleArgs,
}

/// Where a process's spans go.
#[derive(Args, Debug, Clone)]
pub(crate) struct OtlpArgs {
    /// Send this process's spans (a trace per saga, across processes) to the OpenTelemetry
    /// collector at URL: `http://HOST:PORT` (OTLP over HTTP, JSON; to /v1/traces) or the full
    /// URL of its traces endpoint. Default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or
    /// OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces, if set. Needs the otlp feature.
    #[arg(long, value_name = "URL")]
    pub(crate) otlp: Option<String>,
}

/// Where the console listens and who may use it.
#[derive(Args, Debug, Clone)]
pub(crate) struct ConsoleArgs {
    /// The token every request must carry (`Authorization: Bearer TOKEN`, or `?token=TOKEN`
    /// once, which sets a cookie); needed to listen beyond loopback. Default: the
    /// SAGA_CONSOLE_TOKEN environment variable.
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
}

impl ConsoleArgs {
    /// The token given, by flag or by environment.
    pub(crate) fn token(&self) -> Option<String> {
        self.token.clone().or_else(|| std::env::var(crate::console::TOKEN_VAR).ok()).filter(|t| !t.is_empty())
    }
}

#[derive(Args, Debug, Clone)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) db: DbArg,
    #[command(flatten)]
    pub(crate) broker: BrokerArg,
    /// The address to listen on (port 0: any free port; the one taken is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub(crate) addr: std::net::SocketAddr,
    #[command(flatten)]
    pub(crate) console: ConsoleArgs,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct SimulateArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    pub(crate) seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    pub(crate) from: u64,
    /// Print one JSON object: {"domain", "seeds", "from", "violations", "failing_seeds",
    /// "faults": {"lost", "duplicated", "reordered", "delayed", "crashes", "transient_errors"}}.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Where messages travel.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TransportArg {
    /// Queues in this process.
    InProcess,
    /// A NATS JetStream broker.
    Nats(String),
}

/// Acting on every failed process at once.
#[derive(Args, Debug, Clone)]
pub(crate) struct AllFailed {
    /// Every failed process (of --kind, if given) instead of one id.
    #[arg(long)]
    pub(crate) all_failed: bool,
    /// With --all-failed: only processes of this kind (the saga's or process manager's name).
    #[arg(long, requires = "all_failed")]
    pub(crate) kind: Option<String>,
    /// With --all-failed: go on when more than one process is concerned.
    #[arg(long, requires = "all_failed")]
    pub(crate) yes: bool,
}

/// Where an operator's request goes: an all-in-one database, or a deployment's broker.
#[derive(Args, Debug, Clone)]
pub(crate) struct Target {
    /// The all-in-one database to act on; its domain runs until the owner answered (the file
    /// must not be held by a running process: act through its broker then).
    #[arg(long, default_value = "saga.redb")]
    pub(crate) db: PathBuf,
    /// Act through this broker (nats://HOST:PORT) on a deployment whose services run apart;
    /// no file is opened.
    #[arg(long, value_parser = parse_transport, requires = "domain", conflicts_with = "db")]
    pub(crate) transport: Option<TransportArg>,
    /// The deployment's domain (its broker stream), with --transport.
    #[arg(long)]
    pub(crate) domain: Option<String>,
    /// How long to wait for the owner's answer, in seconds; with no answer by then the request
    /// stays queued and may still take effect (exit 3).
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    pub(crate) timeout: std::time::Duration,
    /// Print the answer as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))
}

fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(std::time::Duration::from_secs_f64(secs)),
        _ => Err(format!("{s:?} is not a number of seconds above 0")),
    }
}

fn parse_transport(s: &str) -> Result<TransportArg, String> {
    if s == "in-process" {
        return Ok(TransportArg::InProcess);
    }
    match s.strip_prefix("nats://") {
        Some(rest) if rest.contains(':') && !rest.ends_with(':') => Ok(TransportArg::Nats(s.to_owned())),
        _ => Err(format!("{s:?} is neither in-process nor nats://HOST:PORT")),
    }
}

/// Where a process run apart keeps its records and meets the others.
#[derive(Args, Debug, Clone)]
pub(crate) struct BrokerArgs {
    #[command(flatten)]
    pub(crate) db: DbArg,
    /// The broker, `nats://HOST:PORT`.
    #[arg(long, value_parser = parse_nats_url)]
    pub(crate) transport: String,
    /// Seeds the process's random choices.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
}

/// One service of a domain, run apart.
#[derive(Args, Debug, Clone)]
pub(crate) struct ApartArgs {
    /// The service's name.
    pub(crate) service: String,
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
    /// This process's share of the service, `I/N`: with N processes of one service, member
    /// I takes the topic partitions p with p % N == I, so each key has one process.
    #[arg(long, default_value = "0/1", value_parser = parse_member)]
    pub(crate) member: Membership,
    /// How long finished processes are kept after they ended (`7d`, `12h`, `30m`, `90s`), or
    /// `off` to keep them all; then they are removed with their history. Default: 7 days on a
    /// real-time clock, off on a scaled one.
    #[arg(long, value_name = "DURATION", value_parser = parse_retention)]
    pub(crate) retention: Option<Retention>,
    /// Serve /metrics (Prometheus), /healthz and /readyz on ADDR while the service runs.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub(crate) traces: OtlpArgs,
    #[command(flatten)]
    pub(crate) console: ConsoleArgs,
}

/// How long finished processes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retention {
    /// For this long after they ended.
    For(std::time::Duration),
    /// For ever.
    Off,
}

impl Retention {
    /// `config` with this retention.
    pub(crate) fn apply(self, mut config: saga_core::Config) -> saga_core::Config {
        config.retention = match self {
            Retention::For(keep) => Some(keep),
            Retention::Off => None,
        };
        config
    }
}

fn parse_retention(s: &str) -> Result<Retention, String> {
    if s == "off" {
        return Ok(Retention::Off);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 && seconds > 0 => Ok(Retention::For(std::time::Duration::from_secs(n * seconds))),
        _ => Err(format!("{s:?} is not a retention: a number and a unit (7d, 12h, 30m, 90s), or off")),
    }
}

/// A domain's driver, run apart from its services.
#[derive(Args, Debug, Clone)]
pub(crate) struct DriverArgs {
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) traces: OtlpArgs,
}

fn parse_nats_url(s: &str) -> Result<String, String> {
    match parse_transport(s)? {
        TransportArg::Nats(url) => Ok(url),
        TransportArg::InProcess => Err("expected nats://HOST:PORT".into()),
    }
}

fn parse_member(s: &str) -> Result<Membership, String> {
    s.parse().map_err(|e: saga_core::Error| e.to_string())
}

fn parse_status(s: &str) -> Result<saga_core::Status, String> {
    s.parse()
}

fn parse_limit(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of 1 or more")),
    }
}

pub(crate) fn parse_time(s: &str) -> Result<saga_core::Timestamp, String> {
    s.parse().map_err(what_is_wrong)
}

fn parse_cursor(s: &str) -> Result<saga_core::store::PageCursor, String> {
    s.parse().map_err(what_is_wrong)
}

/// The message of a value saga-core refused to read, without its "configuration:" label.
fn what_is_wrong(e: saga_core::Error) -> String {
    match e {
        saga_core::Error::Config(message) => message,
        other => other.to_string(),
    }
}

/// Parses, runs, prints the error if any, and exits: 0 success, 1 failure, 2 usage, 130
/// interrupted.
pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout whole; a usage error is its one line on stderr.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("saga-cli: a subcommand or argument is missing; see --help");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("saga-cli: {}", usage_error(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    // The store turns a panic of its storage engine on a damaged page into an error that names
    // the table and the file; the panic's own report would only repeat it as noise.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.location().is_some_and(|at| at.file().contains("/redb-")) {
            report(info);
        }
    }));
    // Warnings (a publish the transport refused, a message sent to dead letters) go to stderr;
    // RUST_LOG (for example `RUST_LOG=saga_core=debug`) shows more.
    // A simulation's crashes and failures are the faults it injects, not news: it says none.
    let level = if matches!(cli.command, Command::Simulate { .. }) { "off" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only on a terminal: a log piped or written to a file stays plain text. NO_COLOR
    // (https://no-color.org) turns them off there too.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour).init();
    // Every handled message waits for the one committer thread: leave it a core of its own
    // rather than have it compete with a worker thread per core.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = cores.saturating_sub(1).max(1);
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("saga-cli: cannot start the async runtime: {e}");
                return ExitCode::from(1);
            }
        };
    match runtime.block_on(crate::commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("saga-cli: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// clap's message for a usage error, on one line: its first paragraph (which names what is
/// wrong, such as the arguments not provided on the line below it), without the usage and tips.
fn usage_error(rendered: &str) -> String {
    let paragraph: Vec<&str> = rendered.lines().map(str::trim).take_while(|line| !line.is_empty()).collect();
    let line = paragraph.join(" ");
    let line = line.trim_start_matches("error: ");
    if line.is_empty() { "bad usage".to_owned() } else { line.to_owned() }
}

/// An error and its causes on one line, each said once: a cause whose text its error already
/// carries (as saga-core's errors do) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::{Cli, one_line, usage_error};
    use clap::Parser;
    use proptest::prelude::*;

    /// Words the command line knows, and words it does not.
    fn word() -> impl Strategy<Value = String> {
        let known = [
            "run",
            "imp-summoning",
            "bakery",
            "online-shop",
            "petstore",
            "document-voiding",
            "list",
            "inspect",
            "process",
            "watch",
            "retry",
            "acknowledge",
            "cancel",
            "signal",
            "dead-letters",
            "check",
            "archive",
            "compact",
            "bench",
            "saga",
            "sagas",
            "engine",
            "service",
            "completions",
            "--db",
            "--json",
            "--limit",
            "--status",
            "--prefix",
            "--kind",
            "--since",
            "--orders",
            "--documents",
            "--transport",
            "--mode",
            "seq",
            "--sagas",
            "--runs",
            "--in-memory",
            "--redrive",
            "--repair",
            "--before",
            "--to",
            "--retention",
            "--fresh",
            "--seed",
            "--failure-rate",
            "--follow",
            "--mermaid",
            "--domain",
            "-h",
            "--help",
            "-V",
            "--",
            "-",
            "0",
            "-1",
            "1.5",
            "18446744073709551616",
            "nats://127.0.0.1:1",
            "nats://",
            "x.redb",
            "completed",
            "7d",
            "2026-12-04",
            "",
        ];
        prop_oneof![
            3 => proptest::sample::select(known.to_vec()).prop_map(str::to_owned),
            1 => ".{0,12}",
            1 => "--[a-z-]{0,10}(=.{0,6})?",
        ]
    }

    proptest! {
        /// Whatever the arguments, parsing gives a command or a usage error that is one line
        /// (what `main` prints before exit 2), never a panic.
        #[test]
        fn any_arguments_parse_or_are_one_line_of_usage(words in proptest::collection::vec(word(), 0..8)) {
            let args = std::iter::once("saga-cli".to_owned()).chain(words.iter().cloned());
            let parsed = std::panic::catch_unwind(|| Cli::try_parse_from(args));
            let Ok(parsed) = parsed else { panic!("parsing {words:?} panicked") };
            if let Err(e) = parsed
                && e.use_stderr()
            {
                let line = usage_error(&e.render().to_string());
                prop_assert!(!line.is_empty() && !line.contains('\n'), "{words:?}: {line:?}");
            }
        }
    }

    #[test]
    fn a_missing_argument_is_named_on_the_line_that_says_it_is_missing() {
        let rendered = "error: the following required arguments were not provided:\n  <ID>\n\nUsage: saga-cli retry <ID>\n\nFor more information, try '--help'.\n";
        assert_eq!(usage_error(rendered), "the following required arguments were not provided: <ID>");
        let unexpected = "error: unexpected argument '--x' found\n\n  tip: to pass '--x' as a value, use '-- --x'\n\nUsage: saga-cli list\n";
        assert_eq!(usage_error(unexpected), "unexpected argument '--x' found");
    }

    #[test]
    fn a_cause_the_error_already_says_is_not_said_again() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let error = saga_core::Error::Io { context: "x.redb: opening".into(), source: io };
        let line = one_line(&anyhow::Error::new(error));
        assert_eq!(line, "x.redb: opening: No such file or directory (os error 2)");
        let chained = anyhow::anyhow!("the cause").context("reading the run");
        assert_eq!(one_line(&chained), "reading the run: the cause");
        // A short cause that happens to stand inside the message is still said.
        let short = anyhow::anyhow!("2").context("expected 1 or 2 members");
        assert_eq!(one_line(&short), "expected 1 or 2 members: 2");
    }
}
