//! The one error type of `saga-core`.

use std::path::PathBuf;

/// Everything that can go wrong inside `saga-core`.
///
/// Each variant says what happened and where: the file, the id, the version expected and the
/// one found. Handlers and steps report their own failures with [`ActionError`](crate::ActionError),
/// which says whether to retry; this type is for the engine, the store and the transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file exists but is not a redb database; it was left untouched.
    #[error("{path}: not a saga database (it is not a redb file); the file was left untouched")]
    NotADatabase {
        /// The file that was refused.
        path: PathBuf,
    },
    /// The file is a redb database that some other program wrote; it was left untouched.
    #[error("{path}: a redb database, but not a saga database ({detail}); the file was left untouched")]
    ForeignDatabase {
        /// The file that was refused.
        path: PathBuf,
        /// What gave it away.
        detail: String,
    },
    /// The database was written by a newer (or unknown) schema version.
    #[error(
        "{path}: saga database schema version {found}, but this build reads version {supported}; \
         the file was left untouched (upgrade saga-core to open it)"
    )]
    SchemaVersion {
        /// The file that was refused.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The database does not exist where it was expected.
    #[error("{path}: no such saga database")]
    NoDatabase {
        /// The path that was looked at.
        path: PathBuf,
    },
    /// Another process holds the database open for writing.
    #[error("{path}: the database is open for writing in another process ({detail})")]
    Locked {
        /// The locked file.
        path: PathBuf,
        /// What redb said.
        detail: String,
    },
    /// A state write found another version than the one its handler read.
    #[error("version conflict on {space}/{id}: expected version {expected}, found {found}")]
    Conflict {
        /// The keyspace of the record (a service name, or `process`).
        space: String,
        /// The record's id.
        id: String,
        /// The version the writer read.
        expected: u64,
        /// The version in the store.
        found: u64,
    },
    /// A saga with this key exists, started with another input: starting it again would not
    /// run what the caller asked for.
    #[error("saga {id} was already started, with another input")]
    AlreadyStarted {
        /// The existing instance's process id.
        id: String,
    },
    /// A saga with this key ran, ended and was removed by the retention of finished processes;
    /// its id may be started anew once its tombstone is gone too (after the inbox retention).
    #[error("saga {id} already ran: it ended {status} at {ended_at} and was removed since")]
    AlreadyRan {
        /// The removed instance's process id.
        id: String,
        /// The status it ended with.
        status: String,
        /// When it ended.
        ended_at: String,
    },
    /// A step recorded no log to read: it has not succeeded, or the saga has no such step.
    #[error("saga {id}: step {step:?} recorded no log ({why})")]
    NoLog {
        /// The saga's process id.
        id: String,
        /// The step asked for.
        step: String,
        /// Why there is none.
        why: &'static str,
    },
    /// No process with that id exists.
    #[error("no process with id {id:?}")]
    UnknownProcess {
        /// The id that was looked up.
        id: String,
    },
    /// An operator action does not apply to the process in its current state.
    #[error("process {id}: cannot {action} while it is {status}")]
    InvalidOperatorAction {
        /// The process.
        id: String,
        /// The requested action.
        action: &'static str,
        /// Its status now.
        status: String,
    },
    /// An operator action that this kind of process does not take.
    #[error("process {id}: cannot {action}: {why}")]
    NotApplicable {
        /// The process.
        id: String,
        /// The requested action.
        action: &'static str,
        /// Why not, and what to do instead.
        why: String,
    },
    /// A dead letter cannot be found, or cannot be acted on as asked.
    #[error("dead letter {id}: {problem}")]
    DeadLetter {
        /// The dead letter as it was named: its message id, and the consumer that gave up on it.
        id: String,
        /// What is wrong.
        problem: String,
    },
    /// A record or message could not be encoded or decoded.
    #[error("{what}: {source}")]
    Codec {
        /// What was being encoded or decoded, and where.
        what: String,
        /// The underlying serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored value does not have the layout this build expects.
    #[error("corrupt record in {table}: {detail}")]
    Corrupt {
        /// The table holding it.
        table: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The storage engine failed.
    #[error("storage ({context}): {source}")]
    Storage {
        /// What the store was doing.
        context: String,
        /// redb's error, boxed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The transport failed or is closed.
    #[error("transport: {0}")]
    Transport(String),
    /// The runtime was configured wrongly.
    #[error("configuration: {0}")]
    Config(String),
    /// Something inside the runtime failed that no input or setting explains: a task that
    /// panicked, a worker that is gone. A bug, or the process running out of something.
    #[error("internal failure: {0}")]
    Internal(String),
    /// The runtime has shut down (or is shutting down) and no longer takes work.
    #[error("the runtime has shut down")]
    Shutdown,
    /// The database was not closed cleanly (its writer was killed): a reader cannot open it
    /// until a writer has recovered it, which changes nothing it committed.
    #[error(
        "{}: the database was not closed cleanly; open it for writing once to recover it (`saga-cli compact --db PATH` does, and changes nothing else)",
        path.display()
    )]
    Unclean {
        /// The database file.
        path: std::path::PathBuf,
    },
    /// The database file failed a write or a read at the operating system (no space left on
    /// the device, an I/O error): the store stopped there, and the file keeps what its last
    /// commit held. Reopening it (with space) goes on from there.
    #[error("{cause} {doing} {}; the database stopped there and keeps what its last commit held", path.display())]
    StoreStopped {
        /// The database file.
        path: std::path::PathBuf,
        /// `writing` or `reading`.
        doing: &'static str,
        /// What the operating system said.
        cause: String,
    },
    /// A stored value is not what was written: its checksum does not match its table, key and
    /// bytes, or it does not decode. Nothing that depends on it is shown or committed; the file
    /// is left as it is.
    #[error(
        "{}: damaged {table}{}: {detail}; the file is left as it is (`saga-cli check --db PATH` lists every damaged entry)",
        path.display(),
        if key.is_empty() { String::new() } else { format!(" entry {key}") }
    )]
    Damaged {
        /// The database file.
        path: std::path::PathBuf,
        /// The table (keyspace) holding the value.
        table: &'static str,
        /// The value's key (empty when a page of the table could not be read at all).
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Recovering a database file that was not closed cleanly failed; the bytes it had before
    /// are kept in `backup`.
    #[error(
        "{}: recovering the file after an unclean close failed ({cause}); the file as it was is kept at {}",
        path.display(),
        backup.display()
    )]
    RepairFailed {
        /// The database file.
        path: std::path::PathBuf,
        /// Where its bytes from before the repair are.
        backup: std::path::PathBuf,
        /// Why the repair failed.
        cause: String,
    },
    /// An I/O error outside the store.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn storage(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let mut context = context.into();
        if ends_early(&source) {
            context
                .push_str("; the file ends before its data does: it is damaged or truncated (left as it is)");
        }
        Error::Storage { context, source: Box::new(source) }
    }

    pub(crate) fn codec(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Codec { what: what.into(), source }
    }

    /// Whether the store failed for good: a damaged file ([`Error::Damaged`]) or a device that
    /// stopped ([`Error::StoreStopped`]). Every later use of the store fails the same way, so a
    /// runtime stops at the first.
    pub fn is_store_failure(&self) -> bool {
        matches!(self, Error::Damaged { .. } | Error::StoreStopped { .. })
    }

    /// A copy of a store failure, to report it again wherever the store is used next.
    pub(crate) fn replica(&self) -> Option<Error> {
        match self {
            Error::Damaged { path, table, key, detail } => {
                Some(Error::Damaged { path: path.clone(), table, key: key.clone(), detail: detail.clone() })
            }
            Error::StoreStopped { path, doing, cause } => {
                Some(Error::StoreStopped { path: path.clone(), doing, cause: cause.clone() })
            }
            _ => None,
        }
    }
}

/// Whether `error` comes from reading past the end of a file (an I/O "unexpected end of file"
/// anywhere in its chain): the mark of a truncated or damaged database file.
fn ends_early(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        cause = e.source();
    }
    // redb keeps the I/O error inside its own, and says so only in its text.
    error.to_string().contains("failed to fill whole buffer")
}
