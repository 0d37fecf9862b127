//! The values that go into and come out of a [`Store`](super::Store).

use super::HistoryEntry;
use crate::error::Error;
use crate::model::{Envelope, MessageId, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a saga or process instance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// Moving forward.
    Running,
    /// Undoing completed steps after a permanent failure.
    Compensating,
    /// Every step succeeded (or the process reached its end).
    Completed,
    /// A step failed and every completed step was undone.
    Compensated,
    /// Stuck: an operator has to retry or acknowledge it.
    Failed,
    /// Failed, and an operator acknowledged it.
    Acknowledged,
    /// Cancelled (by a person, a deadline or a parent) and every completed step undone.
    Cancelled,
    /// Ended at once by an operator, with nothing undone.
    Terminated,
}

impl Status {
    /// Every status, in the order they are listed.
    pub const ALL: [Status; 8] = [
        Status::Running,
        Status::Compensating,
        Status::Completed,
        Status::Compensated,
        Status::Failed,
        Status::Acknowledged,
        Status::Cancelled,
        Status::Terminated,
    ];

    /// Whether the instance has stopped moving by itself. `Failed` is terminal: it waits for an
    /// operator.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Running | Status::Compensating)
    }

    /// The status's name, as the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Compensating => "compensating",
            Status::Completed => "completed",
            Status::Compensated => "compensated",
            Status::Failed => "failed",
            Status::Acknowledged => "acknowledged",
            Status::Cancelled => "cancelled",
            Status::Terminated => "terminated",
        }
    }

    /// Whether it has ended for good: every terminal status but [`Failed`](Status::Failed),
    /// which waits for an operator. A retention setting removes finished processes only.
    pub fn is_finished(self) -> bool {
        self.is_terminal() && self != Status::Failed
    }

    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// The status whose [`code`](Status::code) is `code`.
    pub(crate) fn from_code(code: u8) -> Option<Status> {
        Status::ALL.get(usize::from(code)).copied().filter(|s| s.code() == code)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown status {s:?} (expected one of {})", names.join(", "))
        })
    }
}

/// Which front-end a process instance belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Class {
    /// An orchestrated saga.
    Saga,
    /// A reactive process manager.
    Process,
}

/// What a process record carries besides its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProcessMeta {
    /// Saga or process manager.
    pub class: Class,
    /// The saga's or process manager's name.
    pub kind: String,
    /// Where it stands.
    pub status: Status,
    /// The step or state it is in, for listings.
    pub step: Option<String>,
    /// When it started.
    pub created_at: Timestamp,
    /// How many statuses it has had, its first included: the number of its latest
    /// [`ProcessChanged`](crate::ProcessChanged) announcement.
    #[serde(default)]
    pub changes: u64,
}

impl ProcessMeta {
    /// A process of `class` and `kind` with `status`, created at `created_at`, at no step yet
    /// and with no status announced: what a tool that fills a store (a benchmark, an import)
    /// writes; the front-ends keep their own.
    pub fn new(class: Class, kind: impl Into<String>, status: Status, created_at: Timestamp) -> Self {
        ProcessMeta { class, kind: kind.into(), status, step: None, created_at, changes: 0 }
    }
}

/// A versioned value in a keyspace: a service's entity, or a process instance.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// Starts at 1 and grows by one with every write.
    pub version: u64,
    /// When it was last written.
    pub updated_at: Timestamp,
    /// Present on saga and process instances.
    pub process: Option<ProcessMeta>,
    /// The encoded value (JSON).
    pub data: Vec<u8>,
}

/// A process instance as listed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProcessSummary {
    /// The instance's id.
    pub id: String,
    /// Its record.
    pub record: Record,
}

impl ProcessSummary {
    /// The process metadata (every listed record has it).
    pub fn meta(&self) -> Option<&ProcessMeta> {
        self.record.process.as_ref()
    }
}

/// A state write, checked against the version its writer read (0: the record must not exist).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Write {
    /// The keyspace: a service's name, or [`PROCESS_SPACE`](super::PROCESS_SPACE).
    pub space: String,
    /// The record's id within its space.
    pub id: String,
    /// The version read; the write is refused if the store holds another.
    pub expected_version: u64,
    /// The new value; `None` deletes the record. Its `version` is set by the store.
    pub value: Option<Record>,
}

/// Identifies a handled message for one consumer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InboxKey {
    /// The consumer that handled it.
    pub consumer: String,
    /// The message.
    pub message: MessageId,
}

/// A scheduled message.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Timer {
    /// Unique within the store; setting a timer with a key that exists replaces it.
    pub key: String,
    /// When it falls due.
    pub due: Timestamp,
    /// What is sent when it fires.
    pub envelope: Envelope,
}

/// A change to the timers.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TimerOp {
    /// Sets (or replaces) a timer.
    Set(Box<Timer>),
    /// Cancels the timer with this key, if it is still pending.
    Cancel(String),
    /// Adds a timer whose key the caller knows is not pending, and whose due the caller keeps:
    /// no key index is kept for it, so it can only be removed with [`TimerOp::Remove`].
    Add(Box<Timer>),
    /// Removes a timer added with [`TimerOp::Add`], by its key and due, if still pending.
    Remove {
        /// The timer's key.
        key: String,
        /// Its due, as added.
        due: Timestamp,
    },
}

/// A message that could not be handled, kept for an operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The consumer that gave up on it.
    pub consumer: String,
    /// Why.
    pub error: String,
    /// When.
    pub at: Timestamp,
    /// The message, encoded with [`Envelope::to_bytes`].
    #[serde(with = "envelope_bytes")]
    pub envelope: Envelope,
}

mod envelope_bytes {
    use crate::model::Envelope;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(e: &Envelope, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&e.to_bytes())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Envelope, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        Envelope::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// An outgoing message waiting for the relay.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    /// Its place in the outbox: rows are published in this order.
    pub seq: u64,
    /// The message.
    pub envelope: Envelope,
}

/// Everything one handled message changes, applied whole or not at all.
///
/// A store reads its fields; outside the crate a unit is built with its methods:
///
/// ```
/// use saga_core::store::{CommitUnit, InboxKey, Record, Write};
/// use saga_core::{MessageId, RedbStore, Store, Timestamp};
///
/// let store = RedbStore::in_memory().unwrap();
/// let handled = InboxKey { consumer: "bank".into(), message: MessageId::new() };
/// let unit = CommitUnit::new(Timestamp::now())
///     .with_inbox(handled.clone())
///     .with_write(Write::put("bank", "alice", 0, Record::new(b"5".to_vec())));
/// assert!(store.commit(&[unit].into()).unwrap()[0].is_committed());
/// assert!(store.is_handled(&handled).unwrap());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct CommitUnit {
    /// When the unit was made, by the runtime's clock (recorded with the inbox key).
    pub at: Timestamp,
    /// The message this unit handles; a unit whose key is already in the inbox is a duplicate.
    pub inbox: Option<InboxKey>,
    /// State writes, each version-checked.
    pub writes: Vec<Write>,
    /// Messages to send once committed.
    pub outbox: Vec<Envelope>,
    /// History entries, by process id.
    pub history: Vec<(String, HistoryEntry)>,
    /// Timers set or cancelled.
    pub timers: Vec<TimerOp>,
    /// A message given up on.
    pub dead_letter: Option<DeadLetter>,
    /// Kept dead letters this unit takes away (to send their messages again, or to purge
    /// them), each named by its message and the consumer that gave up on it. The unit is
    /// refused, as a conflict, if the store no longer keeps one of them: of two units that take
    /// one letter, one applies.
    pub removes_dead_letters: Vec<InboxKey>,
    /// Processes whose whole history this unit deletes (a process removed for good).
    pub forgets_history: Vec<String>,
    /// What the store encoded of this unit ahead of the commit (`RedbStore::prepare`). A unit
    /// changed afterwards must be prepared again: only a change in how many rows it has is
    /// noticed (and then it is encoded during the commit).
    pub(crate) prepared: Prepared,
}

/// A store's own encoding of a unit's rows, made off the writer's thread. Opaque to everyone else, and left out of equality.
#[derive(Clone, Default)]
pub(crate) struct Prepared(Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>);

impl Prepared {
    /// Wraps a store's encoding.
    pub(crate) fn new<T: std::any::Any + Send + Sync>(rows: T) -> Self {
        Prepared(Some(std::sync::Arc::new(rows)))
    }

    /// The encoding, if there is one of type `T`.
    pub(crate) fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.as_ref().and_then(|rows| rows.downcast_ref())
    }
}

impl PartialEq for Prepared {
    fn eq(&self, _: &Prepared) -> bool {
        true
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Prepared" } else { "NotPrepared" })
    }
}

impl CommitUnit {
    /// An empty unit made at `at`.
    pub fn new(at: Timestamp) -> Self {
        CommitUnit { at, ..CommitUnit::default() }
    }

    /// A unit that only records `envelope` for the relay, such as a client's command.
    pub fn send(envelope: Envelope) -> Self {
        CommitUnit { outbox: vec![envelope], ..CommitUnit::default() }
    }

    /// Records the message this unit handles.
    pub fn with_inbox(mut self, key: InboxKey) -> Self {
        self.inbox = Some(key);
        self
    }

    /// Adds a state write.
    pub fn with_write(mut self, write: Write) -> Self {
        self.writes.push(write);
        self
    }

    /// Adds a message to send once committed.
    pub fn with_outbox(mut self, envelope: Envelope) -> Self {
        self.outbox.push(envelope);
        self
    }

    /// Adds a history entry of process `process`.
    pub fn with_history(mut self, process: impl Into<String>, entry: HistoryEntry) -> Self {
        self.history.push((process.into(), entry));
        self
    }

    /// Sets or cancels a timer.
    pub fn with_timer(mut self, op: TimerOp) -> Self {
        self.timers.push(op);
        self
    }

    /// Gives up on the message this unit handles: keeps it as a dead letter.
    pub fn with_dead_letter(mut self, letter: DeadLetter) -> Self {
        self.dead_letter = Some(letter);
        self
    }

    /// Deletes the whole history of `process`; see
    /// [`forgets_history`](Self::forgets_history).
    pub fn forgetting_history(mut self, process: impl Into<String>) -> Self {
        self.forgets_history.push(process.into());
        self
    }

    /// Takes the kept dead letter of `key`'s message and consumer away; see
    /// [`removes_dead_letters`](Self::removes_dead_letters).
    pub fn removing_dead_letter(mut self, key: InboxKey) -> Self {
        self.removes_dead_letters.push(key);
        self
    }
}

impl Timer {
    /// A timer `key` that sends `envelope` at `due`.
    pub fn new(key: impl Into<String>, due: Timestamp, envelope: Envelope) -> Self {
        Timer { key: key.into(), due, envelope }
    }
}

impl DeadLetter {
    /// `envelope`, given up on by `consumer` at `at` because of `error`.
    pub fn new(
        consumer: impl Into<String>,
        error: impl Into<String>,
        at: Timestamp,
        envelope: Envelope,
    ) -> Self {
        DeadLetter { consumer: consumer.into(), error: error.into(), at, envelope }
    }
}

impl Write {
    /// Writes `record` as `space`/`id`, expecting the store to hold `expected_version` (0:
    /// the record must not exist).
    pub fn put(
        space: impl Into<String>,
        id: impl Into<String>,
        expected_version: u64,
        record: Record,
    ) -> Self {
        Write { space: space.into(), id: id.into(), expected_version, value: Some(record) }
    }

    /// Deletes `space`/`id`, expecting the store to hold `expected_version`.
    pub fn delete(space: impl Into<String>, id: impl Into<String>, expected_version: u64) -> Self {
        Write { space: space.into(), id: id.into(), expected_version, value: None }
    }
}

impl Record {
    /// A record holding `data`, not a process; the store sets its version and the runtime its
    /// time.
    pub fn new(data: Vec<u8>) -> Self {
        Record { version: 0, updated_at: Timestamp::default(), process: None, data }
    }
}

impl From<Vec<CommitUnit>> for Batch {
    fn from(units: Vec<CommitUnit>) -> Self {
        Batch { units, sent: Vec::new() }
    }
}

impl<const N: usize> From<[CommitUnit; N]> for Batch {
    fn from(units: [CommitUnit; N]) -> Self {
        Batch { units: units.into(), sent: Vec::new() }
    }
}

/// Units committed together, plus outbox rows the relay has delivered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// The units, applied in order.
    pub units: Vec<CommitUnit>,
    /// Outbox sequence numbers to delete.
    pub sent: Vec<u64>,
}

/// The sequence numbers one commit took, for a relay in the same process to publish its outbox
/// rows without reading them back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sequences {
    /// Every sequence number the commit took; no other commit took any of them.
    pub(crate) range: std::ops::Range<u64>,
    /// Per unit, in batch order, the sequence number of its first outbox row: a committed unit's
    /// rows take consecutive numbers, in order. Meaningless for a unit that did not commit.
    pub(crate) outbox: Vec<u64>,
}

/// What `RedbStore::commit_and_report` did.
#[derive(Debug)]
pub(crate) struct CommitReport {
    /// For each unit, in batch order, what became of it.
    pub(crate) outcomes: Vec<UnitOutcome>,
    /// Where the outbox rows went, if the store can tell.
    pub(crate) sequences: Option<Sequences>,
}

/// What `RedbStore::fire_and_report` did.
#[derive(Debug, Default)]
pub(crate) struct FireReport {
    /// How many timers fired.
    pub(crate) fired: usize,
    /// Every sequence number the firing took, and the outbox rows it wrote, if the store can
    /// tell.
    pub(crate) rows: Option<(std::ops::Range<u64>, Vec<OutboxRow>)>,
}

/// What became of one unit of a batch.
#[derive(Debug)]
pub enum UnitOutcome {
    /// Applied.
    Committed,
    /// Its inbox key was already there: nothing applied.
    Duplicate,
    /// A write found another version than expected: nothing applied.
    Conflict(Error),
}

impl UnitOutcome {
    /// Whether the unit was applied.
    pub fn is_committed(&self) -> bool {
        matches!(self, UnitOutcome::Committed)
    }
}
