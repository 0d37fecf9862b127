//! Runs process-manager instances: correlate, start or react, commit.

use super::context::{Outcome, ProcessContext};
use super::{Correlate, ProcessManager, ReactFn, StartFn};
use crate::model::control::{OperatorAction, OperatorRequest};
use crate::model::{ActionError, Envelope, Message};
use crate::runtime::{Consumer, Context, Handled};
use crate::store::{Class, HistoryEvent, PROCESS_SPACE, ProcessMeta, Record, Status};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub(crate) struct ProcessEngine<S> {
    name: String,
    topic: String,
    topics: Vec<String>,
    starts: HashMap<&'static str, (Correlate, StartFn<S>)>,
    reactions: HashMap<&'static str, (Correlate, ReactFn<S>)>,
}

/// Which instance, if any, is live for one correlation id.
#[derive(Serialize, Deserialize, Default)]
struct Slot {
    live: Option<String>,
    generation: u64,
}

/// What a process instance stores.
#[derive(Serialize, Deserialize)]
struct Instance<S> {
    correlation_id: String,
    state: S,
    failure: Option<String>,
}

impl<S> ProcessEngine<S> {
    pub(crate) fn new(pm: ProcessManager<S>) -> Self {
        ProcessEngine {
            topic: pm.topic_name(),
            topics: pm.topics.into_iter().collect(),
            name: pm.name,
            starts: pm.starts,
            reactions: pm.reactions,
        }
    }
}

impl<S> ProcessManager<S> {
    fn topic_name(&self) -> String {
        super::topic(&self.name)
    }
}

fn permanent(what: &str, e: impl std::fmt::Display) -> ActionError {
    ActionError::permanent(format!("{what}: {e}"))
}

fn slot_id(correlation: &str) -> String {
    format!("slot/{correlation}")
}

#[async_trait]
impl<S> Consumer for ProcessEngine<S>
where
    S: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn topics(&self) -> Vec<String> {
        self.topics.clone()
    }

    async fn handle(&self, ctx: &mut Context) -> Result<Handled, ActionError> {
        let envelope = ctx.message().clone();
        if envelope.kind == OperatorRequest::KIND {
            let request: OperatorRequest = envelope.decode()?;
            return self.operator(ctx, &envelope, &request.process, request.action);
        }
        if let Some((correlate, start)) = self.starts.get(envelope.kind.as_str()) {
            let correlation = correlate(&envelope)?;
            return self.start(ctx, &envelope, &correlation, start);
        }
        if let Some((correlate, react)) = self.reactions.get(envelope.kind.as_str()) {
            let correlation = correlate(&envelope)?;
            return self.react(ctx, &envelope, &correlation, react);
        }
        Ok(Handled::Ignore)
    }
}

impl<S> ProcessEngine<S>
where
    S: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn load_slot(&self, ctx: &mut Context, correlation: &str) -> Result<Slot, ActionError> {
        match ctx.read_record(&self.name, &slot_id(correlation))? {
            Some(r) => serde_json::from_slice(&r.data).map_err(|e| permanent("decoding a process slot", e)),
            None => Ok(Slot::default()),
        }
    }

    fn save_slot(&self, ctx: &mut Context, correlation: &str, slot: &Slot) -> Result<(), ActionError> {
        let data = serde_json::to_vec(slot).map_err(|e| permanent("encoding a process slot", e))?;
        let record = Record { version: 0, updated_at: ctx.now(), process: None, data };
        ctx.write_record(&self.name, &slot_id(correlation), Some(record))?;
        Ok(())
    }

    fn start(
        &self,
        ctx: &mut Context,
        envelope: &Envelope,
        correlation: &str,
        start: &StartFn<S>,
    ) -> Result<Handled, ActionError> {
        let mut slot = self.load_slot(ctx, correlation)?;
        if let Some(live) = slot.live.clone() {
            // Also read the instance, so a concurrent change to it re-runs this decision.
            ctx.read_record(PROCESS_SPACE, &live)?;
            ctx.history(&live, message_in(envelope));
            ctx.history(
                &live,
                HistoryEvent::Ignored {
                    kind: envelope.kind.clone(),
                    reason: format!("an instance for {correlation} is already live"),
                },
            );
            // Writing the slot back makes concurrent starts conflict, so only one creates.
            self.save_slot(ctx, correlation, &slot)?;
            return Ok(Handled::Commit);
        }
        slot.generation += 1;
        let pid = format!("{}/{}/{}", self.name, correlation, slot.generation);
        ctx.read_record(PROCESS_SPACE, &pid)?;
        ctx.history(&pid, HistoryEvent::Started { kind: self.name.clone() });
        ctx.history(&pid, message_in(envelope));
        let mut p = ProcessContext::new(ctx, &pid, correlation, &self.topic);
        let state = start(envelope, &mut p)?;
        let (outcome, label) = (p.outcome, p.label);
        let mut meta = ProcessMeta {
            class: Class::Process,
            kind: self.name.clone(),
            status: Status::Running,
            step: label,
            created_at: ctx.now(),
            changes: 0,
        };
        ctx.process_changed(&pid, &mut meta, None)?;
        let instance = Instance { correlation_id: correlation.to_owned(), state, failure: None };
        slot.live = Some(pid.clone());
        self.finish(ctx, &pid, correlation, slot, instance, meta, outcome)?;
        Ok(Handled::Commit)
    }

    fn react(
        &self,
        ctx: &mut Context,
        envelope: &Envelope,
        correlation: &str,
        react: &ReactFn<S>,
    ) -> Result<Handled, ActionError> {
        let slot = self.load_slot(ctx, correlation)?;
        let Some(pid) = slot.live.clone() else {
            return Ok(Handled::Ignore);
        };
        let Some(record) = ctx.read_record(PROCESS_SPACE, &pid)? else {
            return Ok(Handled::Ignore);
        };
        let mut meta =
            record.process.ok_or_else(|| ActionError::permanent(format!("{pid} is not a process")))?;
        let mut instance: Instance<S> =
            serde_json::from_slice(&record.data).map_err(|e| permanent(&format!("decoding {pid}"), e))?;
        ctx.history(&pid, message_in(envelope));
        if meta.status != Status::Running {
            ctx.history(
                &pid,
                HistoryEvent::Ignored {
                    kind: envelope.kind.clone(),
                    reason: format!("the instance is {} and waits for an operator", meta.status),
                },
            );
            return Ok(Handled::Commit);
        }
        let mut p = ProcessContext::new(ctx, &pid, correlation, &self.topic);
        react(&mut instance.state, envelope, &mut p)?;
        let (outcome, label) = (p.outcome, p.label);
        if label.is_some() {
            meta.step = label;
        }
        self.finish(ctx, &pid, correlation, slot, instance, meta, outcome)?;
        Ok(Handled::Commit)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        ctx: &mut Context,
        pid: &str,
        correlation: &str,
        mut slot: Slot,
        mut instance: Instance<S>,
        mut meta: ProcessMeta,
        outcome: Outcome,
    ) -> Result<(), ActionError> {
        let status = match outcome {
            Outcome::Running => Status::Running,
            Outcome::Completed => Status::Completed,
            Outcome::Failed(reason) => {
                ctx.history(pid, HistoryEvent::Note { text: format!("failed: {reason}") });
                instance.failure = Some(reason);
                Status::Failed
            }
        };
        if status == Status::Completed {
            slot.live = None;
        }
        self.save_slot(ctx, correlation, &slot)?;
        self.save_instance(ctx, pid, &instance, &mut meta, status)
    }

    fn save_instance(
        &self,
        ctx: &mut Context,
        pid: &str,
        instance: &Instance<S>,
        meta: &mut ProcessMeta,
        status: Status,
    ) -> Result<(), ActionError> {
        ctx.set_process_status(pid, meta, status)?;
        let data = serde_json::to_vec(instance).map_err(|e| permanent("encoding process state", e))?;
        let record = Record { version: 0, updated_at: ctx.now(), process: Some(meta.clone()), data };
        ctx.write_record(PROCESS_SPACE, pid, Some(record))?;
        Ok(())
    }

    fn operator(
        &self,
        ctx: &mut Context,
        envelope: &Envelope,
        pid: &str,
        action: OperatorAction,
    ) -> Result<Handled, ActionError> {
        let Some(record) = ctx.read_record(PROCESS_SPACE, pid)? else {
            return Ok(Handled::Ignore);
        };
        let mut meta =
            record.process.ok_or_else(|| ActionError::permanent(format!("{pid} is not a process")))?;
        let instance: Instance<S> =
            serde_json::from_slice(&record.data).map_err(|e| permanent(&format!("decoding {pid}"), e))?;
        ctx.history(pid, message_in(envelope));
        if action == OperatorAction::Retry {
            // A failure is the manager's own decision: there is nothing to send again, and a
            // retried instance would wait for an event that never comes.
            let reason = "a process manager fails by its own decision, with nothing left to send again; \
                          acknowledge it once its cause is dealt with";
            ctx.history(pid, HistoryEvent::Ignored { kind: envelope.kind.clone(), reason: reason.into() });
            ctx.answer_request(pid, action.as_str(), false, reason)?;
            return Ok(Handled::Commit);
        }
        if meta.status != Status::Failed {
            let reason = format!("cannot {} a process that is {}", action.as_str(), meta.status);
            ctx.history(pid, HistoryEvent::Ignored { kind: envelope.kind.clone(), reason: reason.clone() });
            ctx.answer_request(pid, action.as_str(), false, reason)?;
            return Ok(Handled::Commit);
        }
        // Acknowledged (the only action left): the instance frees its correlation id.
        ctx.history(pid, HistoryEvent::Operator { action: action.as_str().into() });
        let correlation = instance.correlation_id.clone();
        let mut slot = self.load_slot(ctx, &correlation)?;
        if slot.live.as_deref() == Some(pid) {
            slot.live = None;
            self.save_slot(ctx, &correlation, &slot)?;
        }
        let status = Status::Acknowledged;
        self.save_instance(ctx, pid, &instance, &mut meta, status)?;
        ctx.answer_request(pid, action.as_str(), true, status.as_str())?;
        Ok(Handled::Commit)
    }
}

fn message_in(envelope: &Envelope) -> HistoryEvent {
    HistoryEvent::MessageIn { id: envelope.id, kind: envelope.kind.clone(), from: envelope.source.clone() }
}
