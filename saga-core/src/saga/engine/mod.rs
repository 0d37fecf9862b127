//! Runs the instances of one version of a saga: one message in, the steps it makes due run or
//! go out, one commit.

mod answers;
mod requests;
mod undo;

use super::definition::Stages;
use super::family::{Loaded, Version, change_status, tell_watchers, write};
use super::messages::{
    ChildEnded, CompensateChild, Continue, DeadlinePassed, RetryDue, Signal, Start, Stop, StopAction,
    TimedOut,
};
use super::state::{
    FailureRecord, ParentLink, PendingSignal, Phase, SagaState, StepRecord, StepStatus, StopRecord,
};
use super::step::{Action, Compensation, CompensationContext, Step, StepContext};
use super::{IDEMPOTENCY_HEADER, STEP_HEADER};
use crate::model::control::{OperatorAction, OperatorRequest};
use crate::model::{ActionError, Envelope, Message, Timestamp};
use crate::runtime::{Context, Handled};
use crate::store::retention::REMOVED_SPACE;
use crate::store::{Class, HistoryEvent, PROCESS_SPACE, ProcessMeta, Status};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

pub(crate) struct SagaEngine<I> {
    pub(crate) name: String,
    pub(crate) topic: String,
    pub(crate) version: u32,
    pub(crate) fingerprint: String,
    pub(crate) shape: String,
    pub(crate) steps: Vec<Step<I, ()>>,
    pub(crate) stages: Stages,
    pub(crate) deadline: Option<Duration>,
    pub(crate) actions_per_commit: usize,
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
    /// The stage to start in this same commit: it has no local step, so starting it is only
    /// sending (commands, a child's start) and needs no round trip of its own.
    chained: Option<usize>,
    /// Whether the next thing to run runs in this commit: a local action it makes due runs
    /// here while fewer than `actions_per_commit` rounds have run.
    again: bool,
    /// The rounds of this handling so far: the message's own, and one per local action run
    /// after it.
    rounds: usize,
}

/// The name of a saga's one timeout timer.
const TIMEOUT_TIMER: &str = "timeout";
/// The name of a saga's deadline timer.
const DEADLINE_TIMER: &str = "deadline";

fn permanent(what: &str, e: impl std::fmt::Display) -> ActionError {
    ActionError::permanent(format!("{what}: {e}"))
}

#[async_trait]
impl<I> Version for SagaEngine<I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn shape(&self) -> &str {
        &self.shape
    }

    fn step_names(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.name.as_str()).collect()
    }

    /// Begins the instance a start message names, whether it arrived on the saga's topic or
    /// comes from a handler of the same runtime (an eager start): writes its record and runs or
    /// sends its first step. A start for an instance that exists is only recorded.
    async fn begin(&self, ctx: &mut Context, envelope: &Envelope) -> Result<(), ActionError> {
        let pid = super::process_id(&self.name, &envelope.key);
        // Only a start that came as a message of its own may have asked for an answer.
        let asked = ctx.message().id == envelope.id;
        if ctx.read_record(PROCESS_SPACE, &pid)?.is_some() {
            ctx.history(&pid, ignored(envelope, "the saga was already started"));
            if asked {
                ctx.answer_request(&pid, "start", true, "already started")?;
            }
            return Ok(());
        }
        if ctx.read_record(REMOVED_SPACE, &pid)?.is_some() {
            // It ran, ended and was removed by the retention: a start of it again already ran.
            if asked {
                ctx.answer_request(&pid, "start", true, "already started (it ended and was removed since)")?;
            }
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
            version: self.version,
            fingerprint: Some(self.fingerprint.clone()),
            stop: None,
            deadline_at: None,
            signals: Vec::new(),
            signal_ids: Vec::new(),
            parent: start.parent,
            halted: None,
            watchers: Vec::new(),
        };
        let meta = ProcessMeta {
            class: Class::Saga,
            kind: self.name.clone(),
            status: Status::Running,
            step: None,
            created_at: now,
            changes: 0,
        };
        let mut run = Run {
            engine: self,
            ctx,
            pid,
            key: envelope.key.clone(),
            input,
            state,
            meta,
            chained: None,
            again: false,
            rounds: 1,
        };
        run.ctx.history(&run.pid, HistoryEvent::Started { kind: self.name.clone() });
        run.ctx.process_changed(&run.pid, &mut run.meta, None)?;
        run.message_in(envelope);
        if let Some(deadline) = self.deadline {
            let due = now + deadline;
            run.state.deadline_at = Some(due);
            run.set_timer(DEADLINE_TIMER.into(), due, &DeadlinePassed {})?;
        }
        if asked {
            run.ctx.answer_request(
                &run.pid,
                "start",
                true,
                format!("started on version {}", self.version),
            )?;
        }
        run.next().await?;
        run.finish().await
    }

    async fn handle(
        &self,
        ctx: &mut Context,
        envelope: &Envelope,
        loaded: Loaded,
    ) -> Result<Handled, ActionError> {
        let input =
            I::deserialize(&loaded.state.input).map_err(|e| permanent("decoding the saga input", e))?;
        let mut run = Run {
            engine: self,
            ctx,
            pid: loaded.pid,
            key: envelope.key.clone(),
            input,
            state: loaded.state,
            meta: loaded.meta,
            chained: None,
            again: false,
            rounds: 1,
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
                run.retry_due(envelope, due).await?;
            }
            TimedOut::KIND => run.timed_out(envelope).await?,
            DeadlinePassed::KIND => run.deadline_passed(envelope).await?,
            Stop::KIND => {
                let stop: Stop = envelope.decode()?;
                run.stop(envelope, stop).await?;
            }
            Signal::KIND => {
                let signal: Signal = envelope.decode()?;
                run.signal(envelope, signal)?;
            }
            CompensateChild::KIND => {
                let request: CompensateChild = envelope.decode()?;
                run.compensate_as_child(envelope, request)?;
            }
            OperatorRequest::KIND => {
                let request: OperatorRequest = envelope.decode()?;
                run.operator(envelope, request.action)?;
            }
            _ => run.reply(envelope).await?,
        }
        run.finish().await?;
        Ok(Handled::Commit)
    }
}

/// What one round of a handling runs: a stage chained to the round before, or the next thing.
#[derive(Clone, Copy)]
enum Round {
    Stage(usize),
    Next,
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

    /// Gives the instance `status`; a child tells its parent when it ends.
    fn set_status(&mut self, status: Status) -> Result<(), ActionError> {
        let was_terminal = self.meta.status.is_terminal();
        change_status(self.ctx, &self.pid, &mut self.meta, status)?;
        if status.is_terminal()
            && !was_terminal
            && let Some(parent) = self.state.parent.clone()
        {
            self.tell_parent(&parent, status)?;
        }
        Ok(())
    }

    fn tell_parent(&mut self, parent: &ParentLink, status: Status) -> Result<(), ActionError> {
        let failure = self.state.failure.as_ref().map(|f| format!("{}: {}", f.step, f.error));
        let ended = ChildEnded { child: self.pid.clone(), status, failure };
        let mut envelope = self.ctx.envelope(&parent.topic, &parent.key, &ended)?;
        envelope.correlation_id = parent.id.clone();
        envelope.headers.insert(STEP_HEADER.into(), parent.token.clone());
        self.out(envelope);
        Ok(())
    }

    /// Sends `envelope` in this commit, with its history entry.
    fn out(&mut self, envelope: Envelope) {
        self.history(HistoryEvent::MessageOut {
            id: envelope.id,
            kind: envelope.kind.clone(),
            to: envelope.topic.clone(),
        });
        self.ctx.push_envelope(envelope);
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

    /// Makes the next thing to run due: in this commit while the saga's actions per commit
    /// allow another round, else in a message to the saga itself, handled after this commit.
    fn continue_later(&mut self) -> Result<(), ActionError> {
        if self.rounds < self.engine.actions_per_commit {
            self.again = true;
            return Ok(());
        }
        self.continue_in_a_message()
    }

    /// Makes the next thing to run due in a message to the saga itself.
    fn continue_in_a_message(&mut self) -> Result<(), ActionError> {
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

    /// Whether step `i` is under way outside the saga: a remote step's command is out (or set
    /// to go out again), a child saga runs. Its outcome is waited for before the steps below it
    /// are compensated.
    fn in_flight(&self, i: usize) -> bool {
        let record = &self.state.steps[i];
        match &self.engine.steps[i].action {
            Action::Remote { .. } => {
                record.status == StepStatus::Awaiting
                    || (record.status == StepStatus::Retrying && record.awaiting.is_some())
            }
            Action::Child { .. } => record.status == StepStatus::Awaiting,
            _ => false,
        }
    }

    /// Runs the next thing to run: the stage at the cursor, or the next compensation.
    async fn next(&mut self) -> Result<(), ActionError> {
        match self.state.phase {
            Phase::Forward if self.state.cursor >= self.engine.steps.len() => self.complete(),
            Phase::Forward => self.start_stage(self.state.cursor).await,
            Phase::Compensating => self.compensate_next().await,
            Phase::Done => Ok(()),
        }
    }

    fn complete(&mut self) -> Result<(), ActionError> {
        self.state.phase = Phase::Done;
        self.meta.step = None;
        self.set_status(Status::Completed)
    }

    /// Starts every step of the stage at step `first` that has not started: local actions
    /// run (a parallel group's concurrently), commands and child starts go out, signal steps
    /// take a signal that came early or begin to wait.
    async fn start_stage(&mut self, first: usize) -> Result<(), ActionError> {
        let pending: Vec<usize> = self
            .engine
            .stages
            .around(first)
            .filter(|&i| self.state.steps[i].status == StepStatus::Pending)
            .collect();
        self.meta.step = Some(self.engine.steps[first].name.clone());
        let mut local = Vec::new();
        for i in pending {
            match &self.engine.steps[i].action {
                Action::Local(action) => {
                    let step_ctx = self.begin_attempt(i);
                    local.push((i, action(step_ctx)));
                }
                _ => self.run_action(i).await?,
            }
        }
        let (steps, actions): (Vec<usize>, Vec<_>) = local.into_iter().unzip();
        let results = futures_util::future::join_all(actions).await;
        for (i, result) in steps.into_iter().zip(results) {
            match result {
                Ok(log) => self.step_succeeded(i, log)?,
                Err(e) => self.step_failed(i, e)?,
            }
        }
        Ok(())
    }

    /// Begins a new attempt of step `i`.
    async fn run_action(&mut self, i: usize) -> Result<(), ActionError> {
        let step_ctx = self.begin_attempt(i);
        match &self.engine.steps[i].action {
            Action::Local(action) => match action(step_ctx).await {
                Ok(log) => self.step_succeeded(i, log),
                Err(e) => self.step_failed(i, e),
            },
            Action::Remote { .. } => self.send_command(i, &step_ctx, None),
            Action::Signal { .. } => self.await_signal(i, step_ctx.attempt),
            Action::Child { saga, start } => {
                let (key, input) = start(&step_ctx)?;
                let child = super::process_id(saga, &key);
                let parent = ParentLink {
                    id: self.pid.clone(),
                    topic: self.engine.topic.clone(),
                    key: self.key.clone(),
                    token: format!("{i}:{}", step_ctx.attempt),
                };
                let mut envelope =
                    self.ctx.envelope(&super::topic(saga), &key, &Start { input, parent: Some(parent) })?;
                envelope.correlation_id = child.clone();
                let record = &mut self.state.steps[i];
                record.status = StepStatus::Awaiting;
                record.child = Some(child.clone());
                let step = record.name.clone();
                self.history(HistoryEvent::ChildStarted { step, child });
                self.ctx.send_in_commit(envelope);
                Ok(())
            }
        }
    }

    /// Counts and records a new attempt of step `i`, and gives its action's context.
    fn begin_attempt(&mut self, i: usize) -> StepContext<I> {
        let now = self.now();
        let record = &mut self.state.steps[i];
        record.attempts += 1;
        record.first_attempt_at.get_or_insert(now);
        record.retry_at = None;
        let attempt = record.attempts;
        let name = record.name.clone();
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

    /// Signal step `i` takes the oldest signal of its name that came early, or begins to wait
    /// (until its timeout, if it has one).
    fn await_signal(&mut self, i: usize, attempt: u32) -> Result<(), ActionError> {
        let step = &self.engine.steps[i];
        let Action::Signal { signal, .. } = &step.action else {
            return Err(ActionError::permanent(format!("step {} waits for no signal", step.name)));
        };
        self.state.steps[i].status = StepStatus::Awaiting;
        if let Some(at) = self.state.signals.iter().position(|s| &s.name == signal) {
            let early = self.state.signals.remove(at);
            return self.take_signal(i, early.payload);
        }
        if let Some(timeout) = step.timeout {
            let deadline = self.now() + timeout;
            self.state.steps[i].deadline = Some(deadline);
            self.arm_timeout(deadline, i, attempt)?;
        }
        Ok(())
    }

    /// Signal step `i`, waiting, takes `payload` as its log; a payload of the wrong shape is
    /// recorded and the step goes on waiting.
    fn take_signal(&mut self, i: usize, payload: Value) -> Result<(), ActionError> {
        let Action::Signal { check, signal } = &self.engine.steps[i].action else {
            return Ok(());
        };
        match check(&payload) {
            Ok(log) => {
                self.state.steps[i].deadline = None;
                self.step_succeeded(i, log)
            }
            Err(e) => {
                let reason =
                    format!("step {} cannot take this {signal} signal: {e}", self.engine.steps[i].name);
                self.history(HistoryEvent::Ignored { kind: Signal::KIND.into(), reason });
                Ok(())
            }
        }
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

    /// Whether step `i`'s answer for `attempt` is the one awaited: its command is out (or, for
    /// a retry, set to go out), its signal or its child is waited for, and no answer came.
    fn awaits(&self, i: usize, attempt: u32) -> bool {
        let record = &self.state.steps[i];
        let out = match record.status {
            StepStatus::Awaiting => true,
            StepStatus::Retrying => record.awaiting.is_some(),
            _ => false,
        };
        out && record.attempts == attempt
    }

    fn step_succeeded(&mut self, i: usize, log: Value) -> Result<(), ActionError> {
        let record = &mut self.state.steps[i];
        record.status = StepStatus::Succeeded;
        record.log = Some(log);
        record.error = None;
        record.awaiting = None;
        record.deadline = None;
        record.first_attempt_at = None;
        let (step, attempt) = (record.name.clone(), record.attempts);
        self.history(HistoryEvent::StepSucceeded { step, attempt });
        if self.state.phase != Phase::Forward {
            // Under way when the saga turned back: it is compensated in its turn.
            return self.continue_later();
        }
        let stage = self.engine.stages.around(i);
        if !stage.clone().all(|j| self.state.steps[j].status == StepStatus::Succeeded) {
            // Other branches of the group are still under way.
            return Ok(());
        }
        self.state.cursor = stage.end;
        if self.state.cursor == self.engine.steps.len() {
            return self.complete();
        }
        let next = self.engine.stages.around(stage.end);
        self.meta.step = Some(self.engine.steps[stage.end].name.clone());
        if next.clone().any(|j| matches!(self.engine.steps[j].action, Action::Local(_))) {
            self.continue_later()
        } else {
            self.chained = Some(stage.end);
            Ok(())
        }
    }

    fn step_failed(&mut self, i: usize, error: ActionError) -> Result<(), ActionError> {
        let now = self.now();
        let policy = &self.engine.steps[i].retry;
        let record = &mut self.state.steps[i];
        record.error = Some(error.to_string());
        record.awaiting = None;
        record.deadline = None;
        let elapsed = now.since(record.first_attempt_at.unwrap_or(now));
        let attempt = record.attempts;
        let step = record.name.clone();
        let retries = matches!(self.engine.steps[i].action, Action::Local(_) | Action::Remote { .. });
        // A step that was not under way when the saga turned back is not begun again.
        let under_way = self.state.phase == Phase::Forward
            || matches!(self.engine.steps[i].action, Action::Remote { .. });
        let will_retry = retries && under_way && error.is_transient() && policy.allows(attempt, elapsed);
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
            self.state.steps[i].retry_at = Some(due);
            return self.set_timer(format!("{step}/retry"), due, &RetryDue { step: i, attempt });
        }
        self.state.steps[i].status = StepStatus::Failed;
        if self.state.phase != Phase::Forward {
            return self.continue_later();
        }
        self.state.failure = Some(FailureRecord { step, error: error.to_string() });
        let bound = self.engine.stages.around(i).end;
        self.turn_back(bound)
    }

    /// Runs what this commit made due (a stage chained to it, the next local action while
    /// the rounds allow), removes the timers of a saga that ended, then writes the instance.
    async fn finish(mut self) -> Result<(), ActionError> {
        loop {
            let round = if let Some(next) = self.chained.take()
                && self.state.phase == Phase::Forward
            {
                Round::Stage(next)
            } else if std::mem::take(&mut self.again) {
                self.rounds += 1;
                Round::Next
            } else {
                break;
            };
            // What this round sends or sets counts from now, not from the handling's start.
            self.ctx.tick();
            // A round after the message's own that fails (an error, a panicking action) leaves
            // the rounds before it committed and runs again in a message of its own, whose
            // handling meets the failure as its own.
            let (mark, state, meta) = (self.ctx.mark(), self.state.clone(), self.meta.clone());
            let ran = match round {
                Round::Stage(next) => AssertUnwindSafe(self.start_stage(next)).catch_unwind().await,
                Round::Next => AssertUnwindSafe(self.next()).catch_unwind().await,
            };
            if !matches!(ran, Ok(Ok(()))) {
                self.ctx.rollback(mark);
                (self.state, self.meta, self.chained, self.again) = (state, meta, None, false);
                self.continue_in_a_message()?;
                break;
            }
        }
        if self.state.phase == Phase::Done {
            if let Some(due) = self.state.timeout_timer.take() {
                self.cancel_timer(TIMEOUT_TIMER.into(), Some(due));
            }
            if let Some(due) = self.state.deadline_at.take() {
                self.cancel_timer(DEADLINE_TIMER.into(), Some(due));
            }
        }
        let mut loaded = Loaded { pid: self.pid, state: self.state, meta: self.meta };
        tell_watchers(self.ctx, &self.key, &mut loaded)?;
        write(self.ctx, loaded)
    }
}
