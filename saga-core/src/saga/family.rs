//! Every registered version of one saga behind its one topic: each instance runs on the version
//! it began with; an instance the runtime cannot run is halted, visibly, until it can.

use super::messages::{CompensateChild, Ended, Start, Stop, StopAction, Watch};
use super::state::{Halt, Parked, Phase, SagaState};
use crate::model::control::{OperatorAction, OperatorRequest};
use crate::model::{ActionError, Envelope, Message, MessageId};
use crate::runtime::{Consumer, Context, Handled, InCommit, Join, Registration};
use crate::store::retention::REMOVED_SPACE;
use crate::store::{HistoryEvent, PROCESS_SPACE, ProcessMeta, Record, Status};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One instance, loaded for the handling of one message.
pub(crate) struct Loaded {
    pub(crate) pid: String,
    pub(crate) state: SagaState,
    pub(crate) meta: ProcessMeta,
}

/// One version of a saga's definition, as the family drives it.
#[async_trait]
pub(crate) trait Version: Send + Sync {
    /// The fingerprint of its steps.
    fn fingerprint(&self) -> &str;
    /// Its steps as a person reads them.
    fn shape(&self) -> &str;
    /// Its steps' names, in order.
    fn step_names(&self) -> Vec<&str>;
    /// Begins the instance a start message names (see `SagaEngine::begin`).
    async fn begin(&self, ctx: &mut Context, start: &Envelope) -> Result<(), ActionError>;
    /// Handles a message for an instance begun on this version.
    async fn handle(
        &self,
        ctx: &mut Context,
        envelope: &Envelope,
        loaded: Loaded,
    ) -> Result<Handled, ActionError>;
}

pub(crate) struct SagaFamily {
    name: String,
    topic: String,
    versions: BTreeMap<u32, Arc<dyn Version>>,
}

impl SagaFamily {
    pub(crate) fn new(name: String, topic: String, version: (u32, Arc<dyn Version>)) -> Self {
        SagaFamily { name, topic, versions: BTreeMap::from([version]) }
    }

    pub(crate) fn registration(self) -> Registration {
        let family = Arc::new(self);
        Registration::new(family.clone()).in_commit(family.topic.clone(), family.clone()).joined_by(family)
    }

    fn newest(&self) -> &Arc<dyn Version> {
        // A family is built with one version and only ever gains more.
        self.versions.values().next_back().expect("a saga family has a version")
    }

    /// The version instance `state` runs on, or why this runtime cannot run it.
    fn version_of(&self, state: &SagaState) -> Result<&Arc<dyn Version>, String> {
        let registered = || self.versions.keys().map(u32::to_string).collect::<Vec<_>>().join(", ");
        let Some(version) = self.versions.get(&state.version) else {
            return Err(format!(
                "saga {} version {} is not registered in this runtime (registered: {})",
                self.name,
                state.version,
                registered()
            ));
        };
        let began: Vec<&str> = state.steps.iter().map(|s| s.name.as_str()).collect();
        let same = match &state.fingerprint {
            Some(fingerprint) => fingerprint == version.fingerprint(),
            None => began == version.step_names(),
        };
        if same {
            return Ok(version);
        }
        Err(format!(
            "the steps of saga {} version {} changed since this instance began: it began with [{}], \
             the registered version {} has [{}]; register the definition it began with (or give the \
             new one a new version) and retry it",
            self.name,
            state.version,
            began.join(", "),
            state.version,
            version.shape()
        ))
    }

    /// Stops an instance this runtime cannot run: `Failed`, with the error in its history, the
    /// message that found it kept for later.
    fn halt(
        &self,
        ctx: &mut Context,
        envelope: &Envelope,
        mut loaded: Loaded,
        error: String,
    ) -> Result<(), ActionError> {
        tracing::warn!(process = %loaded.pid, "{error}");
        message_in(ctx, &loaded.pid, envelope);
        ctx.history(&loaded.pid, HistoryEvent::Halted { error: error.clone() });
        let parked = if envelope.kind == OperatorRequest::KIND {
            ctx.answer_request(&loaded.pid, "retry", false, error.clone())?;
            vec![]
        } else {
            ctx.answer_request(&loaded.pid, request_name(envelope), true, format!("kept: {error}"))?;
            vec![park(envelope)]
        };
        loaded.state.halted = Some(Halt { error, was: loaded.meta.status, parked });
        change_status(ctx, &loaded.pid, &mut loaded.meta, Status::Failed)?;
        tell_watchers(ctx, &envelope.key, &mut loaded)?;
        write(ctx, loaded)
    }

    /// A message for a halted instance: a retry resumes it if it can run now, an acknowledge
    /// or a terminate ends it, anything else is kept.
    fn while_halted(
        &self,
        ctx: &mut Context,
        envelope: &Envelope,
        mut loaded: Loaded,
    ) -> Result<(), ActionError> {
        message_in(ctx, &loaded.pid, envelope);
        let pid = loaded.pid.clone();
        let action = match envelope.kind.as_str() {
            OperatorRequest::KIND => Some(envelope.decode::<OperatorRequest>()?.action),
            Stop::KIND => match envelope.decode::<Stop>()? {
                stop if stop.action == StopAction::Terminate => {
                    ctx.history(
                        &pid,
                        HistoryEvent::StopRequested {
                            action: stop.action.as_str().into(),
                            reason: stop.reason,
                            by: stop.by,
                        },
                    );
                    loaded.state.halted = None;
                    loaded.state.phase = Phase::Done;
                    change_status(ctx, &pid, &mut loaded.meta, Status::Terminated)?;
                    tell_watchers(ctx, &envelope.key, &mut loaded)?;
                    ctx.answer_request(&pid, "terminate", true, "terminated")?;
                    return write(ctx, loaded);
                }
                _ => None,
            },
            _ => None,
        };
        let runnable = self.version_of(&loaded.state);
        let halt = loaded.state.halted.as_mut().expect("the instance is halted");
        match action {
            None => {
                let detail = format!("kept until the saga can run: {}", halt.error);
                halt.parked.push(park(envelope));
                ctx.answer_request(&pid, request_name(envelope), true, detail)?;
            }
            Some(OperatorAction::Acknowledge) => {
                ctx.history(&pid, HistoryEvent::Operator { action: "acknowledge".into() });
                loaded.state.halted = None;
                loaded.state.phase = Phase::Done;
                change_status(ctx, &pid, &mut loaded.meta, Status::Acknowledged)?;
                ctx.answer_request(&pid, "acknowledge", true, "acknowledged")?;
            }
            Some(_) => match runnable {
                Err(error) => {
                    ctx.history(
                        &pid,
                        HistoryEvent::Ignored { kind: envelope.kind.clone(), reason: error.clone() },
                    );
                    ctx.answer_request(&pid, "retry", false, error.clone())?;
                    halt.error = error;
                }
                Ok(_) => {
                    ctx.history(&pid, HistoryEvent::Operator { action: "retry".into() });
                    let halt = loaded.state.halted.take().expect("the instance is halted");
                    for parked in halt.parked {
                        ctx.push_envelope(self.redeliver(envelope, parked));
                    }
                    change_status(ctx, &pid, &mut loaded.meta, halt.was)?;
                    ctx.answer_request(&pid, "retry", true, format!("resumed as {}", halt.was))?;
                }
            },
        }
        write(ctx, loaded)
    }

    /// A kept message, sent to the instance again under a new id.
    fn redeliver(&self, request: &Envelope, parked: Parked) -> Envelope {
        let mut envelope = request.clone();
        envelope.id = MessageId::new();
        envelope.topic = self.topic.clone();
        envelope.kind = parked.kind;
        envelope.source = parked.source;
        envelope.headers = parked.headers;
        envelope.causation_id = Some(request.id);
        envelope.payload = bytes::Bytes::from(serde_json::to_vec(&parked.payload).unwrap_or_default());
        envelope
    }
}

/// A watch: answered at once for an instance that ended, kept in its state otherwise.
fn watch(ctx: &mut Context, envelope: &Envelope, loaded: &mut Loaded) -> Result<(), ActionError> {
    let Some(reply_to) = envelope.reply_to.clone() else {
        return Ok(());
    };
    if loaded.meta.status.is_terminal() {
        let ended = ended(loaded)?;
        return answer(ctx, envelope, &loaded.pid, ended);
    }
    if !loaded.state.watchers.contains(&reply_to) {
        loaded.state.watchers.push(reply_to);
        let kept = Loaded { pid: loaded.pid.clone(), state: loaded.state.clone(), meta: loaded.meta.clone() };
        write(ctx, kept)?;
    }
    Ok(())
}

/// How instance `loaded` stands, for a watcher.
fn ended(loaded: &Loaded) -> Result<Ended, ActionError> {
    let state = serde_json::to_value(&loaded.state)
        .map_err(|e| ActionError::permanent(format!("encoding saga state {}: {e}", loaded.pid)))?;
    Ok(Ended { status: Some(loaded.meta.status), state: Some(state) })
}

/// Sends `ended` to the watcher that asked with `request`.
fn answer(ctx: &mut Context, request: &Envelope, pid: &str, ended: Ended) -> Result<(), ActionError> {
    let Some(reply_to) = request.reply_to.as_deref() else { return Ok(()) };
    let mut envelope = ctx.envelope(reply_to, &request.key, &ended)?;
    envelope.correlation_id = pid.to_owned();
    ctx.push_envelope(envelope);
    Ok(())
}

/// Tells every client waiting for instance `loaded` (keyed `key`) how it ended, once it has.
pub(crate) fn tell_watchers(ctx: &mut Context, key: &str, loaded: &mut Loaded) -> Result<(), ActionError> {
    if !loaded.meta.status.is_terminal() || loaded.state.watchers.is_empty() {
        return Ok(());
    }
    let watchers = std::mem::take(&mut loaded.state.watchers);
    let ended = ended(loaded)?;
    for reply_to in watchers {
        let mut envelope = ctx.envelope(&reply_to, key, &ended)?;
        envelope.correlation_id = loaded.pid.clone();
        ctx.push_envelope(envelope);
    }
    Ok(())
}

/// What a message asks, as an answer names it.
fn request_name(envelope: &Envelope) -> &'static str {
    match envelope.kind.as_str() {
        Stop::KIND => match envelope.decode::<Stop>().map(|s| s.action) {
            Ok(StopAction::Terminate) => "terminate",
            _ => "cancel",
        },
        super::Signal::KIND => "signal",
        _ => "message",
    }
}

fn park(envelope: &Envelope) -> Parked {
    let payload = serde_json::from_slice(&envelope.payload).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&envelope.payload).into_owned())
    });
    Parked {
        kind: envelope.kind.clone(),
        source: envelope.source.clone(),
        headers: envelope.headers.clone(),
        payload,
    }
}

fn message_in(ctx: &mut Context, pid: &str, envelope: &Envelope) {
    ctx.history(
        pid,
        HistoryEvent::MessageIn {
            id: envelope.id,
            kind: envelope.kind.clone(),
            from: envelope.source.clone(),
        },
    );
}

/// Gives instance `pid` status `status`, with its history entry and announcement.
pub(crate) fn change_status(
    ctx: &mut Context,
    pid: &str,
    meta: &mut ProcessMeta,
    status: Status,
) -> Result<(), ActionError> {
    Ok(ctx.set_process_status(pid, meta, status)?)
}

/// Writes instance `loaded` in this commit.
pub(crate) fn write(ctx: &mut Context, loaded: Loaded) -> Result<(), ActionError> {
    let data = serde_json::to_vec(&loaded.state)
        .map_err(|e| ActionError::permanent(format!("encoding saga state {}: {e}", loaded.pid)))?;
    let record = Record { version: 0, updated_at: ctx.now(), process: Some(loaded.meta), data };
    ctx.write_record(PROCESS_SPACE, &loaded.pid, Some(record))?;
    Ok(())
}

#[async_trait]
impl Consumer for SagaFamily {
    fn name(&self) -> &str {
        &self.name
    }

    fn topics(&self) -> Vec<String> {
        vec![self.topic.clone()]
    }

    async fn handle(&self, ctx: &mut Context) -> Result<Handled, ActionError> {
        let envelope = ctx.message().clone();
        if envelope.kind == Start::KIND {
            self.newest().begin(ctx, &envelope).await?;
            return Ok(Handled::Commit);
        }
        let pid = super::process_id(&self.name, &envelope.key);
        let Some(record) = ctx.read_record(PROCESS_SPACE, &pid)? else {
            if envelope.kind == Watch::KIND {
                answer(ctx, &envelope, &pid, Ended { status: None, state: None })?;
                return Ok(Handled::Commit);
            }
            // A late message of an instance that ended and was removed by the retention.
            if ctx.read_record(REMOVED_SPACE, &pid)?.is_some() {
                return Ok(Handled::Ignore);
            }
            // Every message of an instance comes after the commit that began it. One that finds
            // no instance is not dropped: it is tried again, and dead-lettered (visibly) if the
            // instance never appears.
            return Err(ActionError::transient(format!("no saga instance {pid}")));
        };
        let state: SagaState = serde_json::from_slice(&record.data)
            .map_err(|e| ActionError::permanent(format!("decoding saga state {pid}: {e}")))?;
        let meta = record.process.ok_or_else(|| ActionError::permanent(format!("{pid} is not a process")))?;
        let mut loaded = Loaded { pid, state, meta };
        if envelope.kind == Watch::KIND {
            watch(ctx, &envelope, &mut loaded)?;
            return Ok(Handled::Commit);
        }
        if loaded.state.halted.is_some() {
            self.while_halted(ctx, &envelope, loaded)?;
            return Ok(Handled::Commit);
        }
        match self.version_of(&loaded.state) {
            Ok(version) => version.clone().handle(ctx, &envelope, loaded).await,
            Err(error) => {
                let status = loaded.meta.status;
                if status.is_terminal() && status != Status::Failed && envelope.kind != CompensateChild::KIND
                {
                    // An ended instance has nothing left to run: the message changes nothing.
                    message_in(ctx, &loaded.pid, &envelope);
                    let reason = format!("the saga has ended ({status}); {error}");
                    ctx.history(&loaded.pid, HistoryEvent::Ignored { kind: envelope.kind.clone(), reason });
                    write(ctx, loaded)?;
                } else {
                    self.halt(ctx, &envelope, loaded, error)?;
                }
                Ok(Handled::Commit)
            }
        }
    }
}

/// A saga started by a handler of the same runtime begins in that handler's commit (an eager
/// start), on the newest version.
#[async_trait]
impl InCommit for SagaFamily {
    async fn take(&self, ctx: &mut Context, start: &Envelope) -> Result<(), ActionError> {
        self.newest().begin(ctx, start).await
    }
}

impl Join for SagaFamily {
    fn join(&self, later: &Registration) -> Result<Registration, String> {
        let other = later
            .join
            .as_ref()
            .and_then(|j| j.as_any().downcast_ref::<SagaFamily>())
            .ok_or_else(|| format!("a saga and another component are both named {:?}", self.name))?;
        let mut versions = self.versions.clone();
        for (number, version) in &other.versions {
            if versions.insert(*number, version.clone()).is_some() {
                return Err(format!("saga {} version {number} is registered twice", self.name));
            }
        }
        Ok(SagaFamily { name: self.name.clone(), topic: self.topic.clone(), versions }.registration())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
