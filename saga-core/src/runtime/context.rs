//! [`Context`]: what a handler reads and writes; it becomes one commit unit.

use crate::error::{Error, Result};
use crate::model::{Envelope, Message, MessageId, Timestamp, TraceParent, headers};
use crate::store::{
    CommitUnit, HistoryEntry, HistoryEvent, InboxKey, Record, Snapshot, Store, Timer, TimerOp, Write,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;

/// The view a handler has while it handles one message.
///
/// Reads go to the store (and remember the version seen); writes, sends and timers collect in
/// a commit unit that the runtime commits, whole, after the handler returns. Nothing a handler
/// does is visible to anyone before that commit, and the incoming message is acknowledged only
/// after it.
///
/// A service sees only its own records (database per service).
pub struct Context {
    snapshot: Box<dyn Snapshot>,
    /// The store, for what a snapshot does not read (histories, the outbox, dead letters).
    store: Arc<dyn Store>,
    service: Arc<str>,
    incoming: Envelope,
    /// This handling's span: what the messages it sends name as their parent.
    trace: TraceParent,
    /// `trace` as the header its messages carry, written once for them all.
    trace_header: String,
    now: Timestamp,
    /// The runtime's clock, for a handling that runs long enough to [`tick`](Context::tick).
    clock: Arc<dyn crate::clock::Clock>,
    versions: HashMap<(String, String), u64>,
    unit: CommitUnit,
    /// Messages for components of this runtime that may take them inside this commit, once
    /// the handler returns (see [`Context::send_in_commit`]).
    in_commit: Vec<Envelope>,
    /// Where process status changes are announced, if anywhere.
    announce: Option<Arc<str>>,
    /// Whether the runtime has an observer of process changes (see
    /// [`RuntimeBuilder::observe`](crate::RuntimeBuilder::observe)).
    observed: bool,
    /// The processes this unit ends (gives a terminal status), to wake their waiters once it
    /// is committed.
    ended: Vec<String>,
    /// The changes of status this unit makes, for the observer, once it is committed.
    changed: Vec<super::ProcessChanged>,
}

/// How far a handling had come: [`Context::rollback`] goes back to it.
pub(crate) struct Mark {
    writes: usize,
    outbox: usize,
    history: usize,
    timers: usize,
    in_commit: usize,
    ended: usize,
    changed: usize,
    versions: HashMap<(String, String), u64>,
}

impl Context {
    /// Marks how far this handling has come, to go back to if what it does next fails.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            writes: self.unit.writes.len(),
            outbox: self.unit.outbox.len(),
            history: self.unit.history.len(),
            timers: self.unit.timers.len(),
            in_commit: self.in_commit.len(),
            ended: self.ended.len(),
            changed: self.changed.len(),
            versions: self.versions.clone(),
        }
    }

    /// Forgets everything this handling added after `mark`: its commit holds what came before.
    pub(crate) fn rollback(&mut self, mark: Mark) {
        self.unit.writes.truncate(mark.writes);
        self.unit.outbox.truncate(mark.outbox);
        self.unit.history.truncate(mark.history);
        self.unit.timers.truncate(mark.timers);
        self.in_commit.truncate(mark.in_commit);
        self.ended.truncate(mark.ended);
        self.changed.truncate(mark.changed);
        self.versions = mark.versions;
    }

    /// The context of handling `incoming` as `service`, on `snapshot`, at `now`, in the
    /// runtime `shared`.
    pub(crate) fn new(
        snapshot: Box<dyn Snapshot>,
        service: Arc<str>,
        incoming: Envelope,
        now: Timestamp,
        shared: &super::Shared,
    ) -> Self {
        let trace = TraceParent::of_handling(&incoming, &service);
        Context {
            snapshot,
            store: shared.store.store().clone(),
            trace,
            trace_header: trace.to_string(),
            service,
            incoming,
            now,
            clock: shared.clock.clone(),
            versions: HashMap::new(),
            unit: CommitUnit { at: now, ..CommitUnit::default() },
            in_commit: Vec::new(),
            announce: shared.announce.clone(),
            observed: shared.observer.is_some(),
            ended: Vec::new(),
            changed: Vec::new(),
        }
    }

    /// The current time by the runtime's clock: the time the handling began, until it
    /// [`tick`](Context::tick)s.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Reads the clock again, for what this handling does from now on (a saga's later rounds:
    /// a reply's timeout counts from when its command goes out, not from when the local steps
    /// before it began). Never goes back.
    pub(crate) fn tick(&mut self) {
        self.now = self.now.max(self.clock.now());
    }

    /// The message being handled.
    pub fn message(&self) -> &Envelope {
        &self.incoming
    }

    /// The idempotency key of the saga step (or compensation) whose command is being handled:
    /// the same on every attempt of that step, so a service that remembers the keys it acted
    /// on can answer a repeat (sent again after a timeout, though the first copy arrived) with
    /// what it already did. `None` for a message that is not a step's command.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.incoming.headers.get(headers::IDEMPOTENCY_KEY).map(String::as_str)
    }

    /// The name of the service (or saga, or process manager) handling it.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Loads this service's record `id`, decoded as `T`.
    pub fn load<T: DeserializeOwned>(&mut self, id: &str) -> Result<Option<T>> {
        let space = self.service.to_string();
        match self.read_record(&space, id)? {
            Some(record) => serde_json::from_slice(&record.data)
                .map(Some)
                .map_err(|e| Error::codec(format!("decoding {space}/{id}"), e)),
            None => Ok(None),
        }
    }

    /// Stores `value` as this service's record `id`. The commit fails with a conflict (and the
    /// handler runs again) if someone else wrote `id` since this handler read it.
    pub fn save<T: Serialize>(&mut self, id: &str, value: &T) -> Result<()> {
        let space = self.service.to_string();
        let data =
            serde_json::to_vec(value).map_err(|e| Error::codec(format!("encoding {space}/{id}"), e))?;
        let record = Record { version: 0, updated_at: self.now, process: None, data };
        self.write_record(&space, id, Some(record))
    }

    /// Deletes this service's record `id`.
    pub fn delete(&mut self, id: &str) -> Result<()> {
        let space = self.service.to_string();
        self.write_record(&space, id, None)
    }

    /// Sends `message` to `topic`, keyed and correlated like the message being handled.
    pub fn send<M: Message>(&mut self, topic: &str, message: &M) -> Result<MessageId> {
        let key = self.incoming.key.clone();
        self.send_keyed(topic, &key, message)
    }

    /// Sends `message` to `topic` with ordering key `key`.
    pub fn send_keyed<M: Message>(&mut self, topic: &str, key: &str, message: &M) -> Result<MessageId> {
        let envelope = self.envelope(topic, key, message)?;
        let id = envelope.id;
        self.unit.outbox.push(envelope);
        Ok(id)
    }

    /// Answers the message being handled, on the topic it names as `reply_to`. The reply
    /// carries back the command's [reply token](headers::REPLY_TOKEN), if it has one.
    pub fn reply<M: Message>(&mut self, message: &M) -> Result<MessageId> {
        let topic = self.incoming.reply_to.clone().ok_or_else(|| {
            Error::Config(format!(
                "message {} ({}) names no reply_to topic to answer on",
                self.incoming.id, self.incoming.kind
            ))
        })?;
        let key = self.incoming.key.clone();
        let mut envelope = self.envelope(&topic, &key, message)?;
        if let Some(token) = self.incoming.headers.get(headers::REPLY_TOKEN) {
            envelope.headers.insert(headers::REPLY_TOKEN.into(), token.clone());
        }
        let id = envelope.id;
        self.unit.outbox.push(envelope);
        Ok(id)
    }

    /// Answers a request that names a `reply_to` topic (an operator's, a client's) with an
    /// [`OperatorAnswer`](crate::model::control::OperatorAnswer), in this commit; a request
    /// that names none asked for no answer.
    pub(crate) fn answer_request(
        &mut self,
        process: &str,
        request: &str,
        applied: bool,
        detail: impl Into<String>,
    ) -> Result<()> {
        if self.incoming.reply_to.is_none() {
            return Ok(());
        }
        let answer = crate::model::control::OperatorAnswer {
            process: process.to_owned(),
            request: request.to_owned(),
            applied,
            detail: detail.into(),
        };
        self.reply(&answer)?;
        Ok(())
    }

    /// Schedules `message` to be sent to `topic` at `due`, under `name` (unique within this
    /// service; scheduling the same name again replaces the timer). The timer is stored in the
    /// same commit as everything else this handler does.
    pub fn schedule<M: Message>(
        &mut self,
        name: &str,
        due: Timestamp,
        topic: &str,
        message: &M,
    ) -> Result<()> {
        let key = self.incoming.key.clone();
        let envelope = self.envelope(topic, &key, message)?;
        self.schedule_envelope(name, due, envelope);
        Ok(())
    }

    /// Sends `envelope` so that a component of this runtime that takes its topic inside other
    /// components' commits (a front-end's in-commit hook) handles it in this very commit, once
    /// the handler returns; with no such component here it goes out as a message like any
    /// other.
    pub(crate) fn send_in_commit(&mut self, envelope: Envelope) {
        self.in_commit.push(envelope);
    }

    /// The messages [`send_in_commit`](Self::send_in_commit) collected, to hand on now.
    pub(crate) fn take_in_commit(&mut self) -> Vec<Envelope> {
        std::mem::take(&mut self.in_commit)
    }

    /// Acts as `component` (one taking a message inside this commit) until
    /// [`act_as`](Self::act_as) is called again with what this returned: timers, sources and
    /// the history then carry its name.
    pub(crate) fn act_as(&mut self, component: Arc<str>) -> Arc<str> {
        std::mem::replace(&mut self.service, component)
    }

    /// Cancels the timer `name` of this service, if it is still pending.
    pub fn cancel(&mut self, name: &str) {
        let key = self.timer_key(name);
        self.unit.timers.push(TimerOp::Cancel(key));
    }

    /// This handling's span in the trace of the message it handles (W3C trace context): every
    /// message it sends carries it as `traceparent`; give it to an HTTP call made from here
    /// (`traceparent: {ctx.traceparent()}`) and that call joins the same trace.
    pub fn traceparent(&self) -> TraceParent {
        self.trace
    }

    /// A new envelope for `message`, caused by the message being handled.
    pub(crate) fn envelope<M: Message>(&self, topic: &str, key: &str, message: &M) -> Result<Envelope> {
        let mut envelope = Envelope::new(topic, key, message)?;
        envelope.headers.insert(headers::TRACEPARENT.into(), self.trace_header.clone());
        envelope.correlation_id = self.incoming.correlation_id.clone();
        envelope.causation_id = Some(self.incoming.id);
        envelope.source = self.service.to_string();
        envelope.created_at = self.now;
        Ok(envelope)
    }

    pub(crate) fn push_envelope(&mut self, envelope: Envelope) {
        self.unit.outbox.push(envelope);
    }

    pub(crate) fn schedule_envelope(&mut self, name: &str, due: Timestamp, envelope: Envelope) {
        let key = self.timer_key(name);
        self.unit.timers.push(TimerOp::Set(Box::new(Timer { key, due, envelope })));
    }

    /// Timer names are unique per service: the store's key prefixes the service's name.
    fn timer_key(&self, name: &str) -> String {
        format!("{}/{name}", self.service)
    }

    /// Adds a timer whose owner keeps its due and never sets the same name twice at once.
    pub(crate) fn add_timer(&mut self, name: &str, due: Timestamp, envelope: Envelope) {
        let key = self.timer_key(name);
        self.unit.timers.push(TimerOp::Add(Box::new(Timer { key, due, envelope })));
    }

    /// Removes a timer added with [`add_timer`](Self::add_timer).
    pub(crate) fn remove_timer(&mut self, name: &str, due: Timestamp) {
        let key = self.timer_key(name);
        self.unit.timers.push(TimerOp::Remove { key, due });
    }

    /// Counts a status of process `process` (its first: `from` is `None`) in `meta`, and
    /// announces it if this runtime announces (see
    /// [`RuntimeBuilder::announce`](crate::RuntimeBuilder::announce)) and keeps it for the
    /// runtime's observer if it has one.
    pub(crate) fn process_changed(
        &mut self,
        process: &str,
        meta: &mut crate::store::ProcessMeta,
        from: Option<crate::store::Status>,
    ) -> Result<()> {
        meta.changes += 1;
        if meta.status.is_terminal() {
            self.ended.push(process.to_owned());
        }
        if self.announce.is_none() && !self.observed {
            return Ok(());
        }
        let change = super::ProcessChanged {
            process: process.to_owned(),
            class: meta.class,
            kind: meta.kind.clone(),
            from,
            to: meta.status,
            change: meta.changes,
        };
        if let Some(topic) = self.announce.clone() {
            let mut envelope = self.envelope(&topic, process, &change)?;
            envelope.correlation_id = process.to_owned();
            self.unit.outbox.push(envelope);
        }
        if self.observed {
            self.changed.push(change);
        }
        Ok(())
    }

    /// Gives process `process` (described by `meta`) status `status`, if it has another: the
    /// history entry and the announcement ride in this commit. The caller writes `meta` back.
    pub(crate) fn set_process_status(
        &mut self,
        process: &str,
        meta: &mut crate::store::ProcessMeta,
        status: crate::store::Status,
    ) -> Result<()> {
        if meta.status == status {
            return Ok(());
        }
        let from = meta.status;
        self.history(process, HistoryEvent::StatusChanged { from: from.to_string(), to: status.to_string() });
        meta.status = status;
        self.process_changed(process, meta, Some(from))
    }

    pub(crate) fn history(&mut self, process: &str, event: HistoryEvent) {
        self.unit.history.push((process.to_owned(), HistoryEntry { at: self.now, event }));
    }

    /// The store the handler's commit goes to, for reads beyond the snapshot's (a history,
    /// the outbox, the timers, the dead letters); what it shows may be newer than the snapshot.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Takes the kept dead letter of `key` away in this commit (which is refused, as a conflict,
    /// if the letter is gone by then).
    pub(crate) fn remove_dead_letter(&mut self, key: InboxKey) {
        self.unit.removes_dead_letters.push(key);
    }

    /// Reads a record of any space, remembering its version for the write that may follow.
    pub(crate) fn read_record(&mut self, space: &str, id: &str) -> Result<Option<Record>> {
        let record = self.snapshot.record(space, id)?;
        let version = record.as_ref().map_or(0, |r| r.version);
        self.versions.entry((space.to_owned(), id.to_owned())).or_insert(version);
        Ok(record)
    }

    /// Writes a record of any space, checked against the version read before (read now if not).
    pub(crate) fn write_record(&mut self, space: &str, id: &str, value: Option<Record>) -> Result<()> {
        let key = (space.to_owned(), id.to_owned());
        let expected = match self.versions.get(&key) {
            Some(v) => *v,
            None => {
                self.read_record(space, id)?;
                self.versions.get(&key).copied().unwrap_or(0)
            }
        };
        self.unit.writes.retain(|w| !(w.space == space && w.id == id));
        self.unit.writes.push(Write { space: key.0, id: key.1, expected_version: expected, value });
        Ok(())
    }

    /// The commit unit the handler built (with `inbox`, the key of the message it handled, if
    /// that came through a subscription), and the message it handled.
    pub(crate) fn into_parts(mut self, inbox: Option<InboxKey>) -> Parts {
        self.unit.inbox = inbox;
        // What no component of this runtime took in this commit goes out as messages.
        self.unit.outbox.append(&mut self.in_commit);
        Parts { unit: self.unit, incoming: self.incoming, ended: self.ended, changed: self.changed }
    }
}

/// What a handled message became: its unit, the message (handed back uncloned), and the
/// processes the unit ends.
pub(crate) struct Parts {
    pub(crate) unit: CommitUnit,
    pub(crate) incoming: Envelope,
    pub(crate) ended: Vec<String>,
    pub(crate) changed: Vec<super::ProcessChanged>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("service", &self.service)
            .field("message", &self.incoming.id)
            .finish_non_exhaustive()
    }
}
