//! What comes back to a saga: replies (a remote step's, a child's end), retry timers and
//! the timeout timer.

use super::*;

impl<I> Run<'_, I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(super) async fn retry_due(&mut self, envelope: &Envelope, due: RetryDue) -> Result<(), ActionError> {
        let Some(record) = self.state.steps.get(due.step).cloned() else {
            self.history(ignored(envelope, "no such step"));
            return Ok(());
        };
        self.history(HistoryEvent::TimerFired { name: format!("{}/retry", record.name) });
        match record.status {
            StepStatus::Retrying if record.attempts == due.attempt && self.state.phase == Phase::Forward => {
                self.run_action(due.step).await
            }
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
    /// step's own): the awaited answer, if any, is overdue or the timer is set again for it.
    pub(super) async fn timed_out(&mut self, envelope: &Envelope) -> Result<(), ActionError> {
        let now = self.now();
        self.history(HistoryEvent::TimerFired { name: TIMEOUT_TIMER.into() });
        if self.state.timeout_timer.is_some_and(|due| due <= now) {
            // The timer that brought this is spent.
            self.state.timeout_timer = None;
        }
        let awaited: Vec<(usize, Timestamp, u32)> = (0..self.state.steps.len())
            .filter_map(|i| {
                let step = &self.state.steps[i];
                let deadline = step.deadline.filter(|_| self.awaits(i, step.attempts))?;
                Some((i, deadline, step.attempts))
            })
            .collect();
        if awaited.is_empty() {
            self.history(ignored(envelope, "no answer is awaited"));
            return Ok(());
        }
        for &(i, deadline, attempt) in &awaited {
            if deadline > now {
                continue;
            }
            let step = self.state.steps[i].name.clone();
            self.history(HistoryEvent::StepTimedOut { step, attempt });
            self.state.steps[i].deadline = None;
            let definition = &self.engine.steps[i];
            let limit = definition.timeout.unwrap_or_default();
            match &definition.action {
                Action::Signal { signal, .. } => match definition.on_timeout.clone() {
                    Some(log) => self.step_succeeded(i, log)?,
                    None => {
                        let error = ActionError::permanent(format!("no {signal} signal within {limit:?}"));
                        self.step_failed(i, error)?;
                    }
                },
                _ => self.step_failed(i, ActionError::transient(format!("no reply within {limit:?}")))?,
            }
        }
        // Set for an earlier deadline whose answer came, or spent on the ones that passed: now
        // wait for the next one, as the steps stand now (a step that timed out and is retried
        // awaits its new attempt's answer, by its new deadline).
        let next = (0..self.state.steps.len())
            .filter_map(|i| {
                let step = &self.state.steps[i];
                let deadline = step.deadline.filter(|_| self.awaits(i, step.attempts))?;
                Some((i, deadline, step.attempts))
            })
            .min_by_key(|&(_, deadline, _)| deadline);
        if let Some((i, deadline, attempt)) = next {
            self.arm_timeout(deadline, i, attempt)?;
        }
        Ok(())
    }

    pub(super) async fn reply(&mut self, envelope: &Envelope) -> Result<(), ActionError> {
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
        let expected = match &step.action {
            Action::Remote { reply_kind, .. } => *reply_kind,
            Action::Child { .. } => ChildEnded::KIND,
            _ => {
                self.history(ignored(envelope, "the step awaits no reply"));
                return Ok(());
            }
        };
        let record = &self.state.steps[i];
        if record.status == StepStatus::Compensating && envelope.kind == ChildEnded::KIND {
            let ended: ChildEnded = envelope.decode()?;
            return self.child_compensated(i, ended);
        }
        if !self.awaits(i, attempt) || envelope.kind != expected {
            // Only while the saga undoes its steps, or once it has undone them all (compensated
            // or cancelled): a terminated, failed or acknowledged saga undoes nothing more.
            let undoing = self.state.phase == Phase::Compensating
                || matches!(self.meta.status, Status::Compensated | Status::Cancelled);
            if envelope.kind == expected
                && record.status == StepStatus::Failed
                && undoing
                && self.compensable(i)
                && let Action::Remote { on_reply, .. } = &step.action
                && let Ok(log) = on_reply(envelope)
            {
                // A success that came after its step was given up on (no answer in time, or
                // another attempt's failure): its effect happened, and the saga has turned
                // back, so it is undone like a completed step's.
                let name = record.name.clone();
                self.history(HistoryEvent::StepSucceeded { step: name, attempt });
                let record = &mut self.state.steps[i];
                (record.status, record.log, record.error) = (StepStatus::Succeeded, Some(log), None);
                // Its compensation's retries count from now, not from the step's first attempt.
                record.first_attempt_at = None;
                return self.compensate(i).await;
            }
            let reason = format!(
                "late reply: step {} is {:?} (attempt {})",
                record.name, record.status, record.attempts
            );
            self.history(ignored(envelope, &reason));
            return Ok(());
        }
        // The saga's timeout timer stays for the next awaited reply, or goes when the saga ends.
        self.state.steps[i].deadline = None;
        let outcome = match &step.action {
            Action::Remote { on_reply, .. } => on_reply(envelope),
            _ => {
                let ended: ChildEnded = envelope.decode()?;
                match ended.status {
                    Status::Completed => Ok(Value::String(ended.child)),
                    status => {
                        let why = ended.failure.map(|f| format!(" ({f})")).unwrap_or_default();
                        Err(ActionError::permanent(format!("child saga {} ended {status}{why}", ended.child)))
                    }
                }
            }
        };
        match outcome {
            Ok(log) => self.step_succeeded(i, log),
            Err(e) => self.step_failed(i, e),
        }
    }
}
