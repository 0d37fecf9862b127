//! Turning a saga back: which steps are undone, in what order, and how each is undone.

use super::*;

impl<I> Run<'_, I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Turns the saga back: the steps below `bound` that completed are compensated, in
    /// reverse, a parallel group's once all of its branches under way have answered. Steps that
    /// are only waiting (a signal, a local step's retry) stop waiting; a child saga under way is
    /// cancelled.
    pub(super) fn turn_back(&mut self, bound: usize) -> Result<(), ActionError> {
        self.state.phase = Phase::Compensating;
        self.state.cursor = bound;
        for i in 0..bound {
            let status = self.state.steps[i].status;
            match &self.engine.steps[i].action {
                Action::Local(_) if status == StepStatus::Retrying => {
                    let due = self.state.steps[i].retry_at.take();
                    self.state.steps[i].status = StepStatus::Pending;
                    let name = format!("{}/retry", self.state.steps[i].name);
                    self.cancel_timer(name, due);
                }
                Action::Signal { .. } if status == StepStatus::Awaiting => {
                    self.state.steps[i].status = StepStatus::Pending;
                    self.state.steps[i].deadline = None;
                }
                Action::Child { saga, .. } if status == StepStatus::Awaiting => {
                    let stop = Stop {
                        action: StopAction::Cancel,
                        reason: "its parent saga is compensating".into(),
                        by: self.pid.clone(),
                    };
                    self.send_child(i, saga, &stop)?;
                }
                _ => {}
            }
        }
        self.set_status(Status::Compensating)?;
        self.continue_later()
    }

    /// Sends `message` to the child saga of step `i`.
    pub(super) fn send_child<M: Message>(
        &mut self,
        i: usize,
        saga: &str,
        message: &M,
    ) -> Result<(), ActionError> {
        let Some(child) = self.state.steps[i].child.clone() else {
            return Ok(());
        };
        let key = child.strip_prefix(&format!("{saga}/")).unwrap_or(&child).to_owned();
        let mut envelope = self.ctx.envelope(&crate::saga::topic(saga), &key, message)?;
        envelope.correlation_id = child;
        self.out(envelope);
        Ok(())
    }

    /// Compensates the completed steps of the highest stage below the cursor, highest first,
    /// one per commit; waits while a step of that stage is under way; ends once none is left.
    pub(super) async fn compensate_next(&mut self) -> Result<(), ActionError> {
        loop {
            if self.state.cursor == 0 {
                self.state.phase = Phase::Done;
                self.meta.step = None;
                let cancelled = self.state.stop.as_ref().is_some_and(|s| s.action == "cancel");
                return self.set_status(if cancelled { Status::Cancelled } else { Status::Compensated });
            }
            let stage = self.engine.stages.around(self.state.cursor - 1);
            let below = stage.start..self.state.cursor.min(stage.end);
            let undo = below
                .clone()
                .rev()
                .find(|&j| self.state.steps[j].status == StepStatus::Succeeded && self.compensable(j));
            if let Some(j) = undo {
                return self.compensate(j).await;
            }
            let busy = below.clone().find(|&j| {
                self.in_flight(j)
                    || matches!(
                        self.state.steps[j].status,
                        StepStatus::CompensationRetrying | StepStatus::Compensating
                    )
            });
            if let Some(j) = busy {
                // Its answer (or its retry) continues the compensation.
                self.meta.step = Some(format!("compensating: waiting for {}", self.engine.steps[j].name));
                return Ok(());
            }
            self.state.cursor = stage.start;
        }
    }

    /// Whether step `j` has anything to undo once its action completed.
    pub(super) fn compensable(&self, j: usize) -> bool {
        let step = &self.engine.steps[j];
        step.compensation.is_some() || matches!(step.action, Action::Child { .. })
    }

    pub(super) async fn compensate(&mut self, j: usize) -> Result<(), ActionError> {
        let now = self.now();
        let record = &mut self.state.steps[j];
        record.compensation_attempts += 1;
        record.first_attempt_at.get_or_insert(now);
        record.retry_at = None;
        let attempt = record.compensation_attempts;
        let step = record.name.clone();
        let log = record.log.clone().unwrap_or(Value::Null);
        self.meta.step = Some(format!("compensating {step}"));
        self.history(HistoryEvent::CompensationStarted { step: step.clone(), attempt });
        if let Action::Child { saga, .. } = &self.engine.steps[j].action {
            // The child undoes what it did, in its own commits, and reports its end: the steps
            // below wait for it.
            self.send_child(j, saga, &CompensateChild { parent: self.pid.clone() })?;
            self.state.steps[j].status = StepStatus::Compensating;
            return Ok(());
        }
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
                self.out(envelope);
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
                    self.state.steps[j].retry_at = Some(due);
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

    /// The child saga of step `j`, asked to compensate, ended: compensated, the step is; its
    /// compensation failed, the parent fails too (an operator retries the child, then the
    /// parent).
    pub(super) fn child_compensated(&mut self, j: usize, ended: ChildEnded) -> Result<(), ActionError> {
        let step = self.state.steps[j].name.clone();
        match ended.status {
            Status::Compensated | Status::Cancelled | Status::Terminated | Status::Acknowledged => {
                let record = &mut self.state.steps[j];
                record.status = StepStatus::Compensated;
                record.error = None;
                record.first_attempt_at = None;
                self.history(HistoryEvent::CompensationSucceeded { step });
                self.continue_later()
            }
            status => {
                let why = ended.failure.map(|f| format!(" ({f})")).unwrap_or_default();
                let error = format!("child saga {} ended {status}{why}", ended.child);
                let attempt = self.state.steps[j].compensation_attempts;
                self.history(HistoryEvent::CompensationFailed {
                    step: step.clone(),
                    attempt,
                    error: error.clone(),
                    will_retry: false,
                });
                self.state.steps[j].status = StepStatus::CompensationFailed;
                self.state.steps[j].error = Some(error.clone());
                self.state.failure = Some(FailureRecord { step, error });
                self.state.phase = Phase::Done;
                self.set_status(Status::Failed)
            }
        }
    }
}
