//! The simulation's network: the in-process transport with the simulation standing between it
//! and every consumer. Whatever the transport delivers waits in the simulation's pool; the
//! simulation hands it on, one delivery at a time, in the order and with the faults it draws.

use super::faults::{Fault, FaultKind, Faults};
use crate::error::Result;
use crate::model::Envelope;
use crate::transport::{
    Acknowledge, Delivery, InProcessTransport, Published, Subscribe, Subscription, Transport,
};
use async_trait::async_trait;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// One runtime's network: made at its start, ended at its crash with everything in it (what
/// was not acknowledged is still in the outbox, and the restarted relay publishes it again).
#[derive(Clone)]
pub(super) struct Network {
    inner: InProcessTransport,
    pool: Arc<Mutex<Pool>>,
    /// Raised when a delivery arrives in the pool.
    pub(super) arrived: Arc<Notify>,
    pumps: Arc<Mutex<JoinSet<()>>>,
}

#[derive(Default)]
struct Pool {
    /// By subscription: where its deliveries are handed over.
    subscriptions: Vec<(String, mpsc::UnboundedSender<Delivery>)>,
    /// Deliveries the transport made, not yet handed over.
    ready: Vec<Waiting>,
    /// Deliveries held back (lost, delayed or nacked), with when they are ready again.
    later: Vec<(Instant, Waiting)>,
    /// Deliveries handed over and not yet acknowledged or nacked.
    handed: usize,
}

/// A delivery waiting in the pool.
struct Waiting {
    subscription: usize,
    envelope: Envelope,
    /// The transport's acknowledgement; `None` for a duplicate's copy, which the transport
    /// never made.
    acker: Option<Box<dyn Acknowledge>>,
}

impl Waiting {
    /// The order deliveries ready at once are looked at in: by content, never by when the
    /// transport happened to deliver them.
    fn order(&self) -> impl Ord + '_ {
        let e = &self.envelope;
        (
            e.created_at,
            &e.topic,
            &e.key,
            &e.kind,
            self.subscription,
            &e.payload,
            e.attempt,
            e.id,
            self.acker.is_none(),
        )
    }
}

/// What the simulation did with the next delivery.
pub(super) enum Step {
    /// Nothing is ready.
    Idle,
    /// A delivery was handed to its consumer.
    Handed,
    /// A delivery was lost or held back.
    Held,
}

impl Network {
    pub(super) fn new() -> Network {
        Network {
            inner: InProcessTransport::new(),
            pool: Arc::default(),
            arrived: Arc::new(Notify::new()),
            pumps: Arc::default(),
        }
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether nothing is waiting, held back or being handled.
    pub(super) fn quiet(&self) -> bool {
        let pool = self.pool();
        pool.ready.is_empty() && pool.later.is_empty() && pool.handed == 0
    }

    /// When the first held-back delivery is ready again.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.pool().later.iter().map(|(due, _)| *due).min()
    }

    /// Hands over, loses or holds back one ready delivery, drawing from `rng` which one and
    /// what befalls it; logs the faults in `log` (`at_ms`: simulated time).
    pub(super) fn step(
        &self,
        rng: &mut fastrand::Rng,
        faults: &Faults,
        at_ms: u64,
        log: &mut Vec<Fault>,
    ) -> Step {
        let now = Instant::now();
        let mut pool = self.pool();
        let (due, held): (Vec<_>, Vec<_>) =
            std::mem::take(&mut pool.later).into_iter().partition(|(at, _)| *at <= now);
        pool.later = held;
        pool.ready.extend(due.into_iter().map(|(_, waiting)| waiting));
        if pool.ready.is_empty() {
            return Step::Idle;
        }
        pool.ready.sort_by(|a, b| a.order().cmp(&b.order()));
        let mut fault = |pool: &Pool, kind, waiting: &Waiting, detail: String| {
            let (group, e) = (&pool.subscriptions[waiting.subscription].0, &waiting.envelope);
            let target = format!("{group} {}/{} {}", e.topic, e.key, e.kind);
            log.push(Fault { at_ms, kind, target, detail });
        };
        let ready = pool.ready.len();
        let index = if ready > 1 && rng.f64() < faults.reorder { rng.usize(1..ready) } else { 0 };
        let mut waiting = pool.ready.remove(index);
        if index > 0 {
            fault(&pool, FaultKind::Reordered, &waiting, format!("ahead of {index}"));
        }
        let draw = rng.f64();
        if draw < faults.lose && waiting.acker.is_some() {
            fault(&pool, FaultKind::Lost, &waiting, format!("again after {:?}", faults.ack_wait));
            waiting.envelope.attempt += 1;
            pool.later.push((now + faults.ack_wait, waiting));
            return Step::Held;
        } else if draw < faults.lose + faults.delay {
            let millis = faults.max_delay.as_millis().max(1) as u64;
            let wait = Duration::from_millis(rng.u64(1..=millis));
            fault(&pool, FaultKind::Delayed, &waiting, format!("{wait:?}"));
            pool.later.push((now + wait, waiting));
            return Step::Held;
        }
        if draw < faults.lose + faults.delay + faults.duplicate && waiting.acker.is_some() {
            fault(&pool, FaultKind::Duplicated, &waiting, String::new());
            let copy = Waiting {
                subscription: waiting.subscription,
                envelope: waiting.envelope.clone(),
                acker: None,
            };
            pool.ready.push(copy);
        }
        hand_over(&self.pool, &mut pool, waiting);
        Step::Handed
    }

    /// Ends this network with its runtime: what it holds is gone.
    pub(super) fn end(&self) {
        self.pumps.lock().unwrap_or_else(|p| p.into_inner()).abort_all();
        let mut pool = self.pool();
        pool.ready.clear();
        pool.later.clear();
        pool.subscriptions.clear();
    }
}

/// Hands `waiting` to its subscription, with an acknowledgement that reports back to the pool.
fn hand_over(shared: &Arc<Mutex<Pool>>, pool: &mut Pool, waiting: Waiting) {
    let Waiting { subscription, envelope, acker } = waiting;
    let acker = SimulatedAck {
        pool: shared.clone(),
        subscription,
        envelope: envelope.clone(),
        inner: acker,
        settled: false,
    };
    if pool.subscriptions[subscription].1.send(Delivery::new(envelope, Box::new(acker))).is_ok() {
        pool.handed += 1;
    }
}

/// A handed-over delivery's acknowledgement: an ack reaches the transport; a nack holds the
/// delivery back in the pool for the wait asked, on the simulation's clock.
struct SimulatedAck {
    pool: Arc<Mutex<Pool>>,
    subscription: usize,
    envelope: Envelope,
    inner: Option<Box<dyn Acknowledge>>,
    /// Whether it was acked or nacked (a delivery dropped without either is settled by its
    /// drop: the transport has it again).
    settled: bool,
}

impl SimulatedAck {
    /// Counts the delivery settled; the pool, to hold it back in.
    fn settled(&mut self) -> Arc<Mutex<Pool>> {
        self.settled = true;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.handed = pool.handed.saturating_sub(1);
        drop(pool);
        self.pool.clone()
    }
}

impl Drop for SimulatedAck {
    fn drop(&mut self) {
        if !self.settled {
            drop(self.settled());
        }
    }
}

#[async_trait]
impl Acknowledge for SimulatedAck {
    async fn ack(mut self: Box<Self>) -> Result<()> {
        drop(self.settled());
        match self.inner.take() {
            Some(inner) => inner.ack().await,
            None => Ok(()),
        }
    }

    async fn nack(mut self: Box<Self>, delay: Duration) -> Result<()> {
        let inner = self.inner.take();
        let pool = self.settled();
        let mut pool = pool.lock().unwrap_or_else(|p| p.into_inner());
        // A duplicate's copy nacked is not delivered again: the transport never held it.
        if let Some(inner) = inner {
            let mut envelope = self.envelope.clone();
            envelope.attempt += 1;
            let waiting = Waiting { subscription: self.subscription, envelope, acker: Some(inner) };
            pool.later.push((Instant::now() + delay, waiting));
        }
        Ok(())
    }
}

#[async_trait]
impl Transport for Network {
    async fn publish(&self, envelope: Envelope) -> Result<()> {
        self.inner.publish(envelope).await
    }

    async fn publish_durable(&self, envelope: Envelope) -> Result<Published> {
        self.inner.publish_durable(envelope).await
    }

    async fn subscribe(&self, spec: Subscribe) -> Result<Box<dyn Subscription>> {
        let group = spec.group.clone();
        let mut inner = self.inner.subscribe(spec).await?;
        let (handed, rx) = mpsc::unbounded_channel();
        let subscription = {
            let mut pool = self.pool();
            pool.subscriptions.push((group, handed));
            pool.subscriptions.len() - 1
        };
        let (pool, arrived) = (self.pool.clone(), self.arrived.clone());
        self.pumps.lock().unwrap_or_else(|p| p.into_inner()).spawn(async move {
            while let Ok(Some(delivery)) = inner.next().await {
                let (envelope, acker) = delivery.into_parts();
                let waiting = Waiting { subscription, envelope, acker: Some(acker) };
                pool.lock().unwrap_or_else(|p| p.into_inner()).ready.push(waiting);
                arrived.notify_one();
            }
        });
        Ok(Box::new(Handed { rx }))
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

/// A consumer's subscription: what the simulation hands over.
struct Handed {
    rx: mpsc::UnboundedReceiver<Delivery>,
}

#[async_trait]
impl Subscription for Handed {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        Ok(self.rx.recv().await)
    }
}
