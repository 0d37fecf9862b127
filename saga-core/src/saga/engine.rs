//! Runs saga instances: one message in, at most one step advanced, one commit out.

use super::messages::{Continue, RetryDue, Start, TimedOut};
use super::state::{FailureRecord, Phase, SagaState, StepRecord, StepStatus};
use super::step::{Action, Compensation, CompensationContext, Step, StepContext};
use super::{IDEMPOTENCY_HEADER, STEP_HEADER};
use crate::model::control::{OperatorAction, OperatorRequest};
use crate::model::{ActionError, Envelope, Message, Timestamp};
use crate::runtime::{Consumer, Context, Handled, InCommit};
use crate::store::{Class, HistoryEvent, PROCESS_SPACE, ProcessMeta, Record, Status};
use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

pub(crate) struct SagaEngine<I> {
    pub(crate) name: String,
    pub(crate) topic: String,
    pub(crate) steps: Vec<Step<I, ()>>,
}

/// One instance, loaded for the handling of one message.
struct Run<'a, I> {
    engine: &'a SagaEngine<I>,
    ctx: &'a mut Context,
    pid: String,
    key: String,
    input: I,
    state: SagaState,
    meta: ProcessMeta,
    /// A remote step to start in this same commit: its action is only an outgoing command, so
    /// it needs no round trip of its own.
    chained: Option<usize>,
}

/// The name of a saga's one timeout timer.
const TIMEOUT_TIMER: &str = "timeout";

fn permanent(what: &str, e: impl std::fmt::Display) -> ActionError {
    ActionError::permanent(format!("{what}: {e}"))
}

#[async_trait]
impl<I> Consumer for SagaEngine<I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn topics(&self) -> Vec<String> {
        vec![self.topic.clone()]
    }

    async fn handle(&self, ctx: &mut Context) -> Result<Handled, ActionError> {
        let envelope = ctx.message().clone();
        let pid = super::process_id(&self.name, &envelope.key);
        if envelope.kind == Start::KIND {
            self.begin(ctx, &envelope).await?;
            return Ok(Handled::Commit);
        }
        let mut run = match ctx.read_record(PROCESS_SPACE, &pid)? {
            // Nothing to record a message for an unknown instance on.
            None => return Ok(Handled::Ignore),
            Some(record) => {
                let state: SagaState = serde_json::from_slice(&record.data)
                    .map_err(|e| permanent(&format!("decoding saga state {pid}"), e))?;
                let input =
                    I::deserialize(&state.input).map_err(|e| permanent("decoding the saga input", e))?;
                let meta = record
                    .process
                    .ok_or_else(|| ActionError::permanent(format!("{pid} is not a process")))?;
                Run { engine: self, ctx, pid, key: envelope.key.clone(), input, state, meta, chained: None }
            }
        };
        match envelope.kind.as_str() {
            Continue::KIND => {
                if run.state.phase == Phase::Done {
                    return Ok(Handled::Ignore);
                }
                run.next().await?;
            }
            RetryDue::KIND => {
                let due: RetryDue = envelope.decode()?;
                run.retry_due(&envelope, due).await?;
            }
            TimedOut::KIND => run.timed_out(&envelope).await?,
            OperatorRequest::KIND => {
                let request: OperatorRequest = envelope.decode()?;
                run.operator(&envelope, request.action)?;
            }
            _ => run.reply(&envelope)?,
        }
        run.finish().await?;
        Ok(Handled::Commit)
    }
}

/// A saga started by a handler of the same runtime begins in that handler's commit (an eager
/// start), with no start message in between.
#[async_trait]
impl<I> InCommit for SagaEngine<I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    async fn take(&self, ctx: &mut Context, start: &Envelope) -> Result<(), ActionError> {
        self.begin(ctx, start).await
    }
}

impl<I> SagaEngine<I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Begins the instance a start message names, whether it arrived on the saga's topic or
    /// comes from a handler of the same runtime (an eager start): writes its record and runs or
    /// sends its first step. A start for an instance that exists is only recorded.
    async fn begin(&self, ctx: &mut Context, envelope: &Envelope) -> Result<(), ActionError> {
        let pid = super::process_id(&self.name, &envelope.key);
        if ctx.read_record(PROCESS_SPACE, &pid)?.is_some() {
            ctx.history(&pid, ignored(envelope, "the saga was already started"));
            return Ok(());
        }
        let start: Start = envelope.decode()?;
        let input = I::deserialize(&start.input).map_err(|e| permanent("decoding the saga input", e))?;
        let now = ctx.now();
        let state = SagaState {
            input: start.input,
            phase: Phase::Forward,
            cursor: 0,
            steps: self.steps.iter().map(|s| StepRecord::new(&s.name)).collect(),
            failure: None,
            timeout_timer: None,
        };
        let meta = ProcessMeta {
            class: Class::Saga,
            kind: self.name.clone(),
            status: Status::Running,
            step: None,
            created_at: now,
            changes: 0,
        };
        let mut run =
            Run { engine: self, ctx, pid, key: envelope.key.clone(), input, state, meta, chained: None };
        run.ctx.history(&run.pid, HistoryEvent::Started { kind: self.name.clone() });
        run.ctx.process_changed(&run.pid, &mut run.meta, None)?;
        run.message_in(envelope);
        run.next().await?;
        run.finish().await
    }
}

fn ignored(envelope: &Envelope, reason: &str) -> HistoryEvent {
    HistoryEvent::Ignored { kind: envelope.kind.clone(), reason: reason.to_owned() }
}

impl<I> Run<'_, I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn history(&mut self, event: HistoryEvent) {
        self.ctx.history(&self.pid, event);
    }

    fn message_in(&mut self, envelope: &Envelope) {
        self.history(HistoryEvent::MessageIn {
            id: envelope.id,
            kind: envelope.kind.clone(),
            from: envelope.source.clone(),
        });
    }

    fn now(&self) -> Timestamp {
        self.ctx.now()
    }

    fn set_status(&mut self, status: Status) -> Result<(), ActionError> {
        if self.meta.status != status {
            let from = self.meta.status;
            self.history(HistoryEvent::StatusChanged { from: from.to_string(), to: status.to_string() });
            self.meta.status = status;
            self.ctx.process_changed(&self.pid, &mut self.meta, Some(from))?;
        }
        Ok(())
    }

    fn idempotency_key(&self, step: usize) -> String {
        format!("{}/{}", self.pid, self.engine.steps[step].name)
    }

    /// An envelope to the saga itself (or, with `topic`, elsewhere) in this instance's name.
    fn envelope<M: Message>(&self, topic: &str, message: &M) -> Result<Envelope, ActionError> {
        let mut envelope = self.ctx.envelope(topic, &self.key, message)?;
        envelope.correlation_id = self.pid.clone();
        Ok(envelope)
    }

    fn continue_later(&mut self) -> Result<(), ActionError> {
        let envelope = self.envelope(&self.engine.topic, &Continue {})?;
        self.ctx.push_envelope(envelope);
        Ok(())
    }

    fn set_timer<M: Message>(
        &mut self,
        name: String,
        due: Timestamp,
        message: &M,
    ) -> Result<(), ActionError> {
        let envelope = self.envelope(&self.engine.topic, message)?;
        self.add_timer(name, due, envelope);
        Ok(())
    }

    /// Sets timer `name` of this instance to send `envelope` at `due`.
    fn add_timer(&mut self, name: String, due: Timestamp, envelope: Envelope) {
        // The engine fires or removes each timer before it sets that name again, and keeps
        // the due of those it may cancel: the store needs no name index for them.
        self.ctx.add_timer(&format!("{}/{name}", self.pid), due, envelope);
        self.history(HistoryEvent::TimerSet { name, due });
    }

    /// Cancels a timer set at `due`; `None` for one set before dues were kept in the state.
    fn cancel_timer(&mut self, name: String, due: Option<Timestamp>) {
        let key = format!("{}/{name}", self.pid);
        match due {
            Some(due) => self.ctx.remove_timer(&key, due),
            None => self.ctx.cancel(&key),
        }
        self.history(HistoryEvent::TimerCancelled { name });
    }

    /// Runs the next thing to run: the step at the cursor, or the next compensation.
    async fn next(&mut self) -> Result<(), ActionError> {
        match self.state.phase {
            Phase::Forward if self.state.cursor >= self.engine.steps.len() => {
                self.state.phase = Phase::Done;
                self.meta.step = None;
                self.set_status(Status::Completed)?;
                Ok(())
            }
            Phase::Forward => self.run_action(self.state.cursor).await,
            Phase::Compensating => self.compensate_next().await,
            Phase::Done => Ok(()),
        }
    }

    async fn run_action(&mut self, i: usize) -> Result<(), ActionError> {
        let step_ctx = self.begin_attempt(i);
        match &self.engine.steps[i].action {
            Action::Local(action) => match action(step_ctx).await {
                Ok(log) => self.step_succeeded(i, log),
                Err(e) => self.step_failed(i, e),
            },
            Action::Remote { .. } => self.send_command(i, &step_ctx, None),
        }
    }

    /// Counts and records a new attempt of step `i`, and gives its action's context.
    fn begin_attempt(&mut self, i: usize) -> StepContext<I> {
        let now = self.now();
        let record = &mut self.state.steps[i];
        record.attempts += 1;
        record.first_attempt_at.get_or_insert(now);
        let attempt = record.attempts;
        let name = record.name.clone();
        self.meta.step = Some(name.clone());
        self.history(HistoryEvent::StepStarted { step: name, attempt });
        let logs: BTreeMap<_, _> =
            self.state.steps.iter().filter_map(|s| s.log.clone().map(|log| (s.name.clone(), log))).collect();
        StepContext { input: self.input.clone(), idempotency_key: self.idempotency_key(i), attempt, logs }
    }

    /// Sends remote step `i`'s command for the attempt `step_ctx` describes, now or, for a
    /// retry, at `at`: the retry timer is then the command itself, so a retry needs no message
    /// of its own to the saga. The reply's timeout counts from when the command goes out.
    fn send_command(
        &mut self,
        i: usize,
        step_ctx: &StepContext<I>,
        at: Option<Timestamp>,
    ) -> Result<(), ActionError> {
        let step = &self.engine.steps[i];
        let Action::Remote { topic, command, .. } = &step.action else {
            return Err(ActionError::permanent(format!("step {} has no command to send", step.name)));
        };
        let (kind, payload) = command(step_ctx)?;
        let mut envelope = self.envelope(topic, &Continue {})?;
        envelope.kind = kind.to_owned();
        envelope.payload = Bytes::from(payload);
        envelope.reply_to = Some(self.engine.topic.clone());
        envelope.headers.insert(STEP_HEADER.into(), format!("{i}:{}", step_ctx.attempt));
        envelope.headers.insert(IDEMPOTENCY_HEADER.into(), step_ctx.idempotency_key.clone());
        self.history(HistoryEvent::MessageOut {
            id: envelope.id,
            kind: envelope.kind.clone(),
            to: topic.clone(),
        });
        let name = step.name.clone();
        let record = &mut self.state.steps[i];
        record.awaiting = Some(envelope.id);
        let sent_at = match at {
            None => {
                record.status = StepStatus::Awaiting;
                self.ctx.push_envelope(envelope);
                self.now()
            }
            Some(due) => {
                record.status = StepStatus::Retrying;
                self.add_timer(format!("{name}/retry"), due, envelope);
                due
            }
        };
        if let Some(timeout) = step.timeout {
            let deadline = sent_at + timeout;
            self.state.steps[i].deadline = Some(deadline);
            self.arm_timeout(deadline, i, step_ctx.attempt)?;
        }
        Ok(())
    }

    /// Makes sure the saga's timeout timer fires by `deadline`: one due no later stays (it is
    /// set again when it fires early), a later one is replaced.
    fn arm_timeout(&mut self, deadline: Timestamp, step: usize, attempt: u32) -> Result<(), ActionError> {
        match self.state.timeout_timer {
            Some(due) if due <= deadline => Ok(()),
            armed => {
                if let Some(due) = armed {
                    self.cancel_timer(TIMEOUT_TIMER.into(), Some(due));
                }
                self.state.timeout_timer = Some(deadline);
                self.set_timer(TIMEOUT_TIMER.into(), deadline, &TimedOut { step, attempt })
            }
        }
    }

    /// Whether step `i`'s reply for `attempt` is the one awaited: its command is out (or, for
    /// a retry, set to go out) and no reply for it has come.
    fn awaits(&self, i: usize, attempt: u32) -> bool {
        let record = &self.state.steps[i];
        let out = match record.status {
            StepStatus::Awaiting => true,
            StepStatus::Retrying => record.awaiting.is_some(),
            _ => false,
        };
        out && record.attempts == attempt
    }

    fn step_succeeded(&mut self, i: usize, log: serde_json::Value) -> Result<(), ActionError> {
        let record = &mut self.state.steps[i];
        record.status = StepStatus::Succeeded;
        record.log = Some(log);
        record.error = None;
        record.awaiting = None;
        record.first_attempt_at = None;
        let (step, attempt) = (record.name.clone(), record.attempts);
        self.history(HistoryEvent::StepSucceeded { step, attempt });
        self.state.cursor = i + 1;
        if self.state.cursor == self.engine.steps.len() {
            self.state.phase = Phase::Done;
            self.meta.step = None;
            self.set_status(Status::Completed)?;
            Ok(())
        } else {
            self.meta.step = Some(self.engine.steps[i + 1].name.clone());
            if matches!(self.engine.steps[i + 1].action, Action::Remote { .. }) {
                self.chained = Some(i + 1);
                Ok(())
            } else {
                self.continue_later()
            }
        }
    }

    fn step_failed(&mut self, i: usize, error: ActionError) -> Result<(), ActionError> {
        let now = self.now();
        let policy = &self.engine.steps[i].retry;
        let record = &mut self.state.steps[i];
        record.error = Some(error.to_string());
        record.awaiting = None;
        let elapsed = now.since(record.first_attempt_at.unwrap_or(now));
        let attempt = record.attempts;
        let step = record.name.clone();
        let will_retry = error.is_transient() && policy.allows(attempt, elapsed);
        self.history(HistoryEvent::StepFailed {
            step: step.clone(),
            attempt,
            error: error.to_string(),
            will_retry,
        });
        if will_retry {
            let due = now + error.retry_after().unwrap_or_else(|| policy.backoff(attempt));
            if matches!(self.engine.steps[i].action, Action::Remote { .. }) {
                let step_ctx = self.begin_attempt(i);
                return self.send_command(i, &step_ctx, Some(due));
            }
            self.state.steps[i].status = StepStatus::Retrying;
            return self.set_timer(format!("{step}/retry"), due, &RetryDue { step: i, attempt });
        }
        self.state.steps[i].status = StepStatus::Failed;
        self.state.failure = Some(FailureRecord { step, error: error.to_string() });
        self.state.phase = Phase::Compensating;
        self.state.cursor = i;
        self.set_status(Status::Compensating)?;
        self.continue_later()
    }

    /// Compensates the highest completed step below the cursor, or ends as `Compensated`.
    async fn compensate_next(&mut self) -> Result<(), ActionError> {
        loop {
            let next =
                self.state.steps[..self.state.cursor].iter().rposition(|s| s.status == StepStatus::Succeeded);
            let Some(j) = next else {
                self.state.phase = Phase::Done;
                self.meta.step = None;
                self.set_status(Status::Compensated)?;
                return Ok(());
            };
            self.state.cursor = j;
            if self.engine.steps[j].compensation.is_some() {
                return self.compensate(j).await;
            }
        }
    }

    async fn compensate(&mut self, j: usize) -> Result<(), ActionError> {
        let now = self.now();
        let record = &mut self.state.steps[j];
        record.compensation_attempts += 1;
        record.first_attempt_at.get_or_insert(now);
        let attempt = record.compensation_attempts;
        let step = record.name.clone();
        let log = record.log.clone().unwrap_or(serde_json::Value::Null);
        self.meta.step = Some(format!("compensating {step}"));
        self.history(HistoryEvent::CompensationStarted { step: step.clone(), attempt });
        let comp_ctx = CompensationContext {
            log,
            idempotency_key: format!("{}/compensate", self.idempotency_key(j)),
            attempt,
            input: self.state.input.clone(),
        };
        let result = match &self.engine.steps[j].compensation {
            Some(Compensation::Local(compensation)) => compensation(comp_ctx).await,
            Some(Compensation::Command { topic, command }) => {
                let (kind, payload) = command(&comp_ctx)?;
                let mut envelope = self.envelope(topic, &Continue {})?;
                envelope.kind = kind.to_owned();
                envelope.payload = Bytes::from(payload);
                envelope.headers.insert(IDEMPOTENCY_HEADER.into(), comp_ctx.idempotency_key.clone());
                self.history(HistoryEvent::MessageOut {
                    id: envelope.id,
                    kind: envelope.kind.clone(),
                    to: topic.clone(),
                });
                self.ctx.push_envelope(envelope);
                Ok(())
            }
            None => Ok(()),
        };
        match result {
            Ok(()) => {
                let record = &mut self.state.steps[j];
                record.status = StepStatus::Compensated;
                record.error = None;
                record.first_attempt_at = None;
                self.history(HistoryEvent::CompensationSucceeded { step });
                self.continue_later()
            }
            Err(error) => {
                let policy = &self.engine.steps[j].retry;
                let record = &mut self.state.steps[j];
                record.error = Some(error.to_string());
                let elapsed = now.since(record.first_attempt_at.unwrap_or(now));
                let will_retry = error.is_transient() && policy.allows(attempt, elapsed);
                let due = now + error.retry_after().unwrap_or_else(|| policy.backoff(attempt));
                self.history(HistoryEvent::CompensationFailed {
                    step: step.clone(),
                    attempt,
                    error: error.to_string(),
                    will_retry,
                });
                if will_retry {
                    self.state.steps[j].status = StepStatus::CompensationRetrying;
                    return self.set_timer(format!("{step}/retry"), due, &RetryDue { step: j, attempt });
                }
                self.state.steps[j].status = StepStatus::CompensationFailed;
                self.state.failure = Some(FailureRecord { step, error: error.to_string() });
                self.state.phase = Phase::Done;
                self.set_status(Status::Failed)?;
                Ok(())
            }
        }
    }

    async fn retry_due(&mut self, envelope: &Envelope, due: RetryDue) -> Result<(), ActionError> {
        let Some(record) = self.state.steps.get(due.step).cloned() else {
            self.history(ignored(envelope, "no such step"));
            return Ok(());
        };
        self.history(HistoryEvent::TimerFired { name: format!("{}/retry", record.name) });
        match record.status {
            StepStatus::Retrying if record.attempts == due.attempt => self.run_action(due.step).await,
            StepStatus::CompensationRetrying if record.compensation_attempts == due.attempt => {
                self.compensate(due.step).await
            }
            _ => {
                self.history(ignored(envelope, "the retry is no longer due"));
                Ok(())
            }
        }
    }

    /// The saga's timeout timer fired (or, for an instance begun by an older version, one
    /// step's own): the awaited reply, if any, is overdue or the timer is set again for it.
    async fn timed_out(&mut self, envelope: &Envelope) -> Result<(), ActionError> {
        let now = self.now();
        self.history(HistoryEvent::TimerFired { name: TIMEOUT_TIMER.into() });
        if self.state.timeout_timer.is_some_and(|due| due <= now) {
            // The timer that brought this is spent.
            self.state.timeout_timer = None;
        }
        let awaited = (0..self.state.steps.len()).find_map(|i| {
            let step = &self.state.steps[i];
            let deadline = step.deadline.filter(|_| self.awaits(i, step.attempts))?;
            Some((i, deadline, step.attempts))
        });
        let Some((i, deadline, attempt)) = awaited else {
            self.history(ignored(envelope, "no reply is awaited"));
            return Ok(());
        };
        if deadline > now {
            // Set for an earlier deadline whose reply came: now wait for this one's.
            return self.arm_timeout(deadline, i, attempt);
        }
        let step = self.state.steps[i].name.clone();
        self.history(HistoryEvent::StepTimedOut { step, attempt });
        self.state.steps[i].deadline = None;
        let limit = self.engine.steps[i].timeout.unwrap_or_default();
        self.step_failed(i, ActionError::transient(format!("no reply within {limit:?}")))
    }

    fn reply(&mut self, envelope: &Envelope) -> Result<(), ActionError> {
        self.message_in(envelope);
        let target =
            envelope.headers.get(STEP_HEADER).and_then(|h| h.split_once(':')).and_then(|(step, attempt)| {
                Some((step.parse::<usize>().ok()?, attempt.parse::<u32>().ok()?))
            });
        let Some((i, attempt)) = target else {
            self.history(ignored(envelope, "not a reply to any step"));
            return Ok(());
        };
        let Some(step) = self.engine.steps.get(i) else {
            self.history(ignored(envelope, "no such step"));
            return Ok(());
        };
        let Action::Remote { reply_kind, on_reply, .. } = &step.action else {
            self.history(ignored(envelope, "the step is not remote"));
            return Ok(());
        };
        let record = &self.state.steps[i];
        if !self.awaits(i, attempt) || envelope.kind != *reply_kind {
            let reason = format!(
                "late reply: step {} is {:?} (attempt {})",
                record.name, record.status, record.attempts
            );
            self.history(ignored(envelope, &reason));
            return Ok(());
        }
        // The saga's timeout timer stays for the next awaited reply, or goes when the saga ends.
        self.state.steps[i].deadline = None;
        match on_reply(envelope) {
            Ok(log) => self.step_succeeded(i, log),
            Err(e) => self.step_failed(i, e),
        }
    }

    fn operator(&mut self, envelope: &Envelope, action: OperatorAction) -> Result<(), ActionError> {
        self.message_in(envelope);
        if self.meta.status != Status::Failed {
            let reason = format!("cannot {} a saga that is {}", action.as_str(), self.meta.status);
            self.history(ignored(envelope, &reason));
            return Ok(());
        }
        self.history(HistoryEvent::Operator { action: action.as_str().into() });
        match action {
            OperatorAction::Acknowledge => self.set_status(Status::Acknowledged)?,
            OperatorAction::Retry => {
                if let Some(j) =
                    self.state.steps.iter().position(|s| s.status == StepStatus::CompensationFailed)
                {
                    let record = &mut self.state.steps[j];
                    record.status = StepStatus::Succeeded;
                    record.compensation_attempts = 0;
                    record.first_attempt_at = None;
                    self.state.cursor = j + 1;
                }
                self.state.phase = Phase::Compensating;
                self.set_status(Status::Compensating)?;
                self.continue_later()?;
            }
        }
        Ok(())
    }

    /// Starts the remote step chained to this commit, if any, removes the timeout timer of a
    /// saga that ended, then writes the instance.
    async fn finish(mut self) -> Result<(), ActionError> {
        if let Some(next) = self.chained.take() {
            self.run_action(next).await?;
        }
        if self.state.phase == Phase::Done
            && let Some(due) = self.state.timeout_timer.take()
        {
            self.cancel_timer(TIMEOUT_TIMER.into(), Some(due));
        }
        self.save()
    }

    fn save(self) -> Result<(), ActionError> {
        let data = serde_json::to_vec(&self.state).map_err(|e| permanent("encoding saga state", e))?;
        let record = Record { version: 0, updated_at: self.ctx.now(), process: Some(self.meta), data };
        self.ctx.write_record(PROCESS_SPACE, &self.pid, Some(record))?;
        Ok(())
    }
}
