//! What is asked of a saga from outside: stop requests and the deadline, signals, a parent
//! compensating its child, an operator's retry or acknowledge.

use super::*;

impl<I> Run<'_, I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The saga's deadline passed: a saga still going forward is cancelled.
    pub(super) async fn deadline_passed(&mut self, envelope: &Envelope) -> Result<(), ActionError> {
        self.history(HistoryEvent::TimerFired { name: DEADLINE_TIMER.into() });
        self.state.deadline_at = None;
        if self.state.phase != Phase::Forward {
            self.history(ignored(envelope, "the saga is no longer going forward"));
            return Ok(());
        }
        let limit = self.engine.deadline.unwrap_or_default();
        let stop = Stop {
            action: StopAction::Cancel,
            reason: format!("its deadline of {limit:?} passed"),
            by: "deadline".into(),
        };
        self.stop(envelope, stop).await
    }

    /// A request to cancel or terminate the saga.
    pub(super) async fn stop(&mut self, envelope: &Envelope, stop: Stop) -> Result<(), ActionError> {
        if envelope.kind == Stop::KIND {
            self.message_in(envelope);
        }
        let refused = match (stop.action, self.state.phase) {
            (_, Phase::Done) => Some(format!("the saga has ended ({})", self.meta.status)),
            (StopAction::Cancel, Phase::Compensating) => Some("the saga is already compensating".to_owned()),
            _ => None,
        };
        if let Some(reason) = refused {
            self.history(ignored(envelope, &format!("cannot {}: {reason}", stop.action.as_str())));
            self.ctx.answer_request(&self.pid, stop.action.as_str(), false, reason)?;
            return Ok(());
        }
        let done = match stop.action {
            StopAction::Cancel => "cancelling: the steps that completed are undone",
            StopAction::Terminate => "terminated",
        };
        self.ctx.answer_request(&self.pid, stop.action.as_str(), true, done)?;
        self.history(HistoryEvent::StopRequested {
            action: stop.action.as_str().into(),
            reason: stop.reason.clone(),
            by: stop.by.clone(),
        });
        self.state.stop =
            Some(StopRecord { action: stop.action.as_str().into(), reason: stop.reason, by: stop.by });
        match stop.action {
            StopAction::Cancel => {
                let bound = match self.state.cursor {
                    at if at < self.engine.steps.len() => self.engine.stages.around(at).end,
                    at => at,
                };
                self.turn_back(bound)
            }
            StopAction::Terminate => {
                for i in 0..self.state.steps.len() {
                    if let Some(due) = self.state.steps[i].retry_at.take() {
                        let name = format!("{}/retry", self.state.steps[i].name);
                        self.cancel_timer(name, Some(due));
                    }
                    if let Action::Child { saga, .. } = &self.engine.steps[i].action
                        && self.state.steps[i].status == StepStatus::Awaiting
                    {
                        let stop = Stop {
                            action: StopAction::Terminate,
                            reason: "its parent saga was terminated".into(),
                            by: self.pid.clone(),
                        };
                        self.send_child(i, saga, &stop)?;
                    }
                }
                self.state.phase = Phase::Done;
                self.meta.step = None;
                self.set_status(Status::Terminated)
            }
        }
    }

    /// A signal: a waiting step takes it; otherwise it is kept for a step still to come that
    /// waits for it. A repeated signal id changes nothing.
    pub(super) fn signal(&mut self, envelope: &Envelope, signal: Signal) -> Result<(), ActionError> {
        self.message_in(envelope);
        if let Some(id) = &signal.id
            && self.state.signal_ids.contains(id)
        {
            let detail = format!("signal {id} was already taken");
            self.history(ignored(envelope, &detail));
            self.ctx.answer_request(&self.pid, "signal", true, detail)?;
            return Ok(());
        }
        if self.state.phase != Phase::Forward {
            let detail = format!("the saga is {}", self.meta.status);
            self.history(ignored(envelope, &detail));
            self.ctx.answer_request(&self.pid, "signal", false, detail)?;
            return Ok(());
        }
        let waits_for =
            |action: &Action<I>| matches!(action, Action::Signal { signal: s, .. } if *s == signal.name);
        let waiting = (0..self.engine.steps.len()).find(|&i| {
            waits_for(&self.engine.steps[i].action) && self.state.steps[i].status == StepStatus::Awaiting
        });
        let to_come = (0..self.engine.steps.len())
            .filter(|&i| {
                waits_for(&self.engine.steps[i].action) && self.state.steps[i].status == StepStatus::Pending
            })
            .count();
        let kept = self.state.signals.iter().filter(|s| s.name == signal.name).count();
        if waiting.is_none() && kept >= to_come {
            let reason = format!("no step waits for signal {}", signal.name);
            self.history(ignored(envelope, &reason));
            self.ctx.answer_request(&self.pid, "signal", false, reason)?;
            return Ok(());
        }
        let detail = match waiting {
            Some(i) => format!("taken by step {}", self.engine.steps[i].name),
            None => "kept until the step that waits for it is reached".to_owned(),
        };
        self.ctx.answer_request(&self.pid, "signal", true, detail)?;
        self.history(HistoryEvent::Signal { name: signal.name.clone(), id: signal.id.clone() });
        if let Some(id) = signal.id {
            self.state.signal_ids.push(id);
        }
        match waiting {
            Some(i) => self.take_signal(i, signal.payload),
            None => {
                self.state.signals.push(PendingSignal { name: signal.name, payload: signal.payload });
                Ok(())
            }
        }
    }

    /// The parent of this completed child saga compensates the step that ran it: the child
    /// compensates every step it completed and ends `Compensated`.
    pub(super) fn compensate_as_child(
        &mut self,
        envelope: &Envelope,
        request: CompensateChild,
    ) -> Result<(), ActionError> {
        self.message_in(envelope);
        if self.meta.status != Status::Completed {
            let reason = format!("only a completed saga is compensated; this one is {}", self.meta.status);
            self.history(ignored(envelope, &reason));
            if let Some(parent) = self.state.parent.clone()
                && self.meta.status.is_terminal()
            {
                // Undone before (a retry of the parent asks again): say so once more.
                self.tell_parent(&parent, self.meta.status)?;
            }
            return Ok(());
        }
        self.history(HistoryEvent::StopRequested {
            action: "compensate".into(),
            reason: "its parent saga is compensating".into(),
            by: request.parent.clone(),
        });
        self.state.stop = Some(StopRecord {
            action: "compensate".into(),
            reason: "its parent saga is compensating".into(),
            by: request.parent,
        });
        self.state.phase = Phase::Compensating;
        self.state.cursor = self.engine.steps.len();
        self.set_status(Status::Compensating)?;
        self.continue_later()
    }

    pub(super) fn operator(
        &mut self,
        envelope: &Envelope,
        action: OperatorAction,
    ) -> Result<(), ActionError> {
        self.message_in(envelope);
        if self.meta.status != Status::Failed {
            let reason = format!("cannot {} a saga that is {}", action.as_str(), self.meta.status);
            self.history(ignored(envelope, &reason));
            self.ctx.answer_request(&self.pid, action.as_str(), false, reason)?;
            return Ok(());
        }
        self.history(HistoryEvent::Operator { action: action.as_str().into() });
        let done = match action {
            OperatorAction::Acknowledge => "acknowledged",
            OperatorAction::Retry => "retrying: compensating again from the step that failed",
        };
        self.ctx.answer_request(&self.pid, action.as_str(), true, done)?;
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
                    self.state.cursor = self.state.cursor.max(self.engine.stages.around(j).end);
                }
                self.state.phase = Phase::Compensating;
                self.set_status(Status::Compensating)?;
                self.continue_later()?;
            }
        }
        Ok(())
    }
}
