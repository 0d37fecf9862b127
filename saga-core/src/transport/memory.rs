//! The in-process transport: queues in memory, at-least-once, for services in one process.

use super::{Acknowledge, Delivery, Published, Subscribe, Subscription, Transport};
use crate::error::{Error, Result};
use crate::model::headers::FOR_CONSUMER;
use crate::model::{Envelope, MessageId};
use async_trait::async_trait;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A transport whose topics are queues in this process.
///
/// It keeps the promises of any transport (at-least-once delivery, competing members within a
/// group, redelivery after a nack or a dropped delivery, deduplication by message id within a
/// window) but its queues are gone when the process ends. That is why `publish` only returns
/// once every group has acknowledged the message: the outbox keeps its row until then, and a
/// restarted relay publishes again whatever was not yet handled.
///
/// Messages published to a topic that nobody subscribed to yet wait for the first group.
///
/// A message published with [`Transport::publish_durable`] that its last group nacks with a
/// delay is handed back to its publisher ([`Published::Deferred`]) rather than kept here until
/// it is due: the outbox relay keeps its row and publishes it again then, so messages waiting
/// out redelivery delays cost memory only while they are delivered.
///
/// ```
/// use saga_core::transport::{InProcessTransport, Subscribe, Transport};
/// use saga_core::{Envelope, Message};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Ping;
/// # saga_core::message!(Ping = "ping");
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let transport = InProcessTransport::new();
/// let mut sub = transport.subscribe(Subscribe::new("pings", "ponger")).await.unwrap();
/// let publish = tokio::spawn({
///     let transport = transport.clone();
///     async move { transport.publish(Envelope::new("pings", "k", &Ping).unwrap()).await }
/// });
/// let delivery = sub.next().await.unwrap().unwrap();
/// assert_eq!(delivery.envelope.attempt(), 1);
/// delivery.ack().await.unwrap();
/// publish.await.unwrap().unwrap(); // returns once the message is handled
/// # });
/// ```
#[derive(Clone)]
pub struct InProcessTransport {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    dedup_window: Duration,
}

#[derive(Default)]
struct State {
    closed: bool,
    topics: HashMap<String, Topic>,
    /// Each id with when it was remembered (an id forgotten and published again is remembered
    /// anew, and only its newest entry in `dedup_order` forgets it).
    dedup: HashMap<MessageId, (Instant, Arc<Settlement>)>,
    dedup_order: VecDeque<(Instant, MessageId)>,
}

#[derive(Default)]
struct Topic {
    groups: HashMap<String, Arc<Group>>,
    /// Published before any group subscribed; handed to the first group.
    waiting: Vec<Pending>,
    /// Addressed to a group that has not subscribed yet; handed to that group alone.
    addressed: HashMap<String, Vec<Pending>>,
}

struct Group {
    /// The group's name, for a message it asks for again later.
    name: String,
    queue: Mutex<Queue>,
    wake: Notify,
}

#[derive(Default)]
struct Queue {
    closed: bool,
    ready: VecDeque<Pending>,
    delayed: BinaryHeap<Reverse<Delayed>>,
    next_seq: u64,
}

struct Pending {
    envelope: Envelope,
    settlement: Arc<Settlement>,
}

struct Delayed {
    due: Instant,
    seq: u64,
    pending: Pending,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// Tracks the groups that still have to acknowledge one published message.
///
/// One per published message, so it is kept small: a counter, a state and one `Notify` (a
/// `watch` channel carried eight).
struct Settlement {
    remaining: AtomicUsize,
    state: AtomicU8,
    settled: Notify,
    /// Whether the publisher takes the message back for a delayed redelivery: it published
    /// with `publish_durable` and is still waiting.
    deferrable: AtomicBool,
    /// When, after how many deliveries and for which group it is wanted again, once deferred.
    deferral: OnceLock<(Instant, u32, String)>,
}

const PENDING: u8 = 0;
const DONE: u8 = 1;
const CLOSED: u8 = 2;
const DEFERRED: u8 = 3;

impl Settlement {
    fn new(groups: usize, deferrable: bool) -> Arc<Self> {
        let initial = if groups == 0 { DONE } else { PENDING };
        Arc::new(Settlement {
            remaining: AtomicUsize::new(groups),
            state: AtomicU8::new(initial),
            settled: Notify::new(),
            deferrable: AtomicBool::new(deferrable),
            deferral: OnceLock::new(),
        })
    }

    /// Records that `group`, the last one to settle, wants the message again at `due`, if the
    /// publisher takes it back; the caller then forgets its id and settles it `DEFERRED`.
    fn defer(&self, due: Instant, attempts: u32, group: &str) -> bool {
        self.deferrable.load(Ordering::Acquire)
            && self.remaining.load(Ordering::Acquire) == 1
            && self.deferral.set((due, attempts, group.to_owned())).is_ok()
    }

    fn acknowledged(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.settle(DONE);
        }
    }

    /// Ends the wait of every publisher of this message; the first outcome stays.
    fn settle(&self, outcome: u8) {
        let _ = self.state.compare_exchange(PENDING, outcome, Ordering::AcqRel, Ordering::Acquire);
        self.settled.notify_waiters();
    }

    async fn wait(&self) -> Result<Published> {
        loop {
            let notified = self.settled.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the state is read, so a settlement in between is not missed.
            notified.as_mut().enable();
            match self.state.load(Ordering::Acquire) {
                PENDING => notified.await,
                CLOSED => return Err(Error::Transport("in-process transport closed".into())),
                DEFERRED => {
                    let deferral = self.deferral.get().cloned();
                    return Ok(deferral.map_or(Published::Taken, |(due, attempts, group)| {
                        Published::Deferred { due, attempts, group }
                    }));
                }
                _ => return Ok(Published::Taken),
            }
        }
    }
}

/// Ends a message's hand-backs once its publisher stops waiting for it.
struct StopsDeferring(Arc<Settlement>);

impl Drop for StopsDeferring {
    fn drop(&mut self) {
        self.0.deferrable.store(false, Ordering::Release);
    }
}

/// Message ids remembered for deduplication at most.
const DEDUP_IDS: usize = 8192;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain queues behind, still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl InProcessTransport {
    /// A transport that deduplicates by message id over the last ten seconds (and at most the
    /// last 8,192 ids).
    pub fn new() -> Self {
        Self::with_dedup_window(Duration::from_secs(10))
    }

    /// A transport that deduplicates by message id over `window`, and at most the last 8,192
    /// ids: a duplicate is a rare event (a relay that publishes a row again), and remembering
    /// every id of a busy ten seconds cost more memory than anything else the transport holds.
    /// A duplicate it no longer recognises is delivered, and the receiver's inbox drops it.
    pub fn with_dedup_window(window: Duration) -> Self {
        InProcessTransport {
            shared: Arc::new(Shared { state: Mutex::new(State::default()), dedup_window: window }),
        }
    }

    fn enqueue(&self, envelope: Envelope, deferrable: bool) -> Result<Arc<Settlement>> {
        let mut state = lock(&self.shared.state);
        if state.closed {
            return Err(Error::Transport("in-process transport closed".into()));
        }
        let now = Instant::now();
        while let Some(&(at, id)) = state.dedup_order.front() {
            if now.duration_since(at) < self.shared.dedup_window && state.dedup_order.len() < DEDUP_IDS {
                break;
            }
            state.dedup_order.pop_front();
            if state.dedup.get(&id).is_some_and(|(remembered, _)| *remembered == at) {
                state.dedup.remove(&id);
            }
        }
        if let Some((_, existing)) = state.dedup.get(&envelope.id) {
            return Ok(existing.clone());
        }
        let id = envelope.id;
        let topic = state.topics.entry(envelope.topic.clone()).or_default();
        // A message addressed to one consumer goes to its group alone, or waits for it.
        let settlement = match envelope.header(FOR_CONSUMER).map(str::to_owned) {
            Some(only) => {
                let settlement = Settlement::new(1, deferrable);
                let pending = Pending { envelope, settlement: settlement.clone() };
                match topic.groups.get(&only) {
                    Some(group) => group.requeue(pending, Requeue::Back),
                    None => topic.addressed.entry(only).or_default().push(pending),
                }
                settlement
            }
            None => Self::fan_out(topic, envelope, deferrable),
        };
        state.dedup.insert(id, (now, settlement.clone()));
        state.dedup_order.push_back((now, id));
        Ok(settlement)
    }

    /// Hands `envelope` to every group of `topic`, or keeps it for the first to come.
    fn fan_out(topic: &mut Topic, envelope: Envelope, deferrable: bool) -> Arc<Settlement> {
        let settlement = Settlement::new(topic.groups.len().max(1), deferrable);
        let count = topic.groups.len();
        if count == 0 {
            topic.waiting.push(Pending { envelope, settlement: settlement.clone() });
        } else {
            // Each group gets its own copy, the last one the envelope itself.
            let mut envelope = Some(envelope);
            for (i, group) in topic.groups.values().enumerate() {
                let copy = if i + 1 == count { envelope.take() } else { envelope.clone() };
                if let Some(envelope) = copy {
                    group.requeue(Pending { envelope, settlement: settlement.clone() }, Requeue::Back);
                }
            }
        }
        settlement
    }
}

impl Default for InProcessTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for InProcessTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessTransport").finish_non_exhaustive()
    }
}

/// Where a message goes back into a group's queue.
enum Requeue {
    Back,
    Front,
    After(Duration),
}

impl Group {
    /// Puts a message (back) into the queue; a closed queue takes nothing, and the message's
    /// publishers learn it was not handled.
    fn requeue(&self, pending: Pending, place: Requeue) {
        let mut queue = lock(&self.queue);
        if queue.closed {
            drop(queue);
            pending.settlement.settle(CLOSED);
            return;
        }
        match place {
            Requeue::Back => queue.ready.push_back(pending),
            Requeue::Front => queue.ready.push_front(pending),
            Requeue::After(delay) => {
                let seq = queue.next_seq;
                queue.next_seq += 1;
                queue.delayed.push(Reverse(Delayed { due: Instant::now() + delay, seq, pending }));
            }
        }
        drop(queue);
        self.wake.notify_one();
    }
}

#[async_trait]
impl Transport for InProcessTransport {
    async fn publish(&self, envelope: Envelope) -> Result<()> {
        let settlement = self.enqueue(envelope, false)?;
        settlement.wait().await.map(|_| ())
    }

    async fn publish_durable(&self, envelope: Envelope) -> Result<Published> {
        let id = envelope.id;
        let settlement = self.enqueue(envelope, true)?;
        // A publisher that stops waiting (its relay stopped) can take nothing back: the
        // transport then keeps a delayed redelivery itself.
        let _waiting = StopsDeferring(settlement.clone());
        let published = settlement.wait().await?;
        if matches!(published, Published::Deferred { .. }) {
            // Its publisher publishes it again when it is due: that is not a duplicate.
            let mut state = lock(&self.shared.state);
            if state.dedup.get(&id).is_some_and(|(_, remembered)| Arc::ptr_eq(remembered, &settlement)) {
                state.dedup.remove(&id);
            }
        }
        Ok(published)
    }

    async fn subscribe(&self, spec: Subscribe) -> Result<Box<dyn Subscription>> {
        let mut state = lock(&self.shared.state);
        if state.closed {
            return Err(Error::Transport("in-process transport closed".into()));
        }
        let topic = state.topics.entry(spec.topic.clone()).or_default();
        let group = topic
            .groups
            .entry(spec.group.clone())
            .or_insert_with(|| {
                let (queue, wake) = (Mutex::default(), Notify::new());
                Arc::new(Group { name: spec.group.clone(), queue, wake })
            })
            .clone();
        for pending in
            topic.waiting.drain(..).chain(topic.addressed.remove(&spec.group).into_iter().flatten())
        {
            group.requeue(pending, Requeue::Back);
        }
        Ok(Box::new(MemorySubscription { group }))
    }

    async fn close(&self) -> Result<()> {
        let mut state = lock(&self.shared.state);
        state.closed = true;
        for topic in state.topics.values_mut() {
            for pending in topic.waiting.drain(..).chain(topic.addressed.drain().flat_map(|(_, p)| p)) {
                pending.settlement.settle(CLOSED);
            }
            for group in topic.groups.values() {
                let mut queue = lock(&group.queue);
                queue.closed = true;
                for pending in queue.ready.drain(..) {
                    pending.settlement.settle(CLOSED);
                }
                for Reverse(delayed) in queue.delayed.drain() {
                    delayed.pending.settlement.settle(CLOSED);
                }
                drop(queue);
                group.wake.notify_waiters();
            }
        }
        Ok(())
    }
}

struct MemorySubscription {
    group: Arc<Group>,
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        loop {
            let woken = self.group.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let next_due = {
                let mut queue = lock(&self.group.queue);
                if queue.closed {
                    return Ok(None);
                }
                let now = Instant::now();
                while queue.delayed.peek().is_some_and(|Reverse(d)| d.due <= now) {
                    if let Some(Reverse(d)) = queue.delayed.pop() {
                        queue.ready.push_back(d.pending);
                    }
                }
                if let Some(mut pending) = queue.ready.pop_front() {
                    if !queue.ready.is_empty() {
                        // Let a competing member pick up the rest.
                        self.group.wake.notify_one();
                    }
                    pending.envelope.attempt += 1;
                    let envelope = pending.envelope.clone();
                    let acker = MemoryAcker { group: self.group.clone(), pending: Some(pending) };
                    return Ok(Some(Delivery::new(envelope, Box::new(acker))));
                }
                queue.delayed.peek().map(|Reverse(d)| d.due)
            };
            match next_due {
                Some(due) => {
                    tokio::select! {
                        _ = &mut woken => {}
                        _ = tokio::time::sleep_until(due.into()) => {}
                    }
                }
                None => woken.await,
            }
        }
    }
}

struct MemoryAcker {
    group: Arc<Group>,
    pending: Option<Pending>,
}

#[async_trait]
impl Acknowledge for MemoryAcker {
    async fn ack(mut self: Box<Self>) -> Result<()> {
        if let Some(pending) = self.pending.take() {
            pending.settlement.acknowledged();
        }
        Ok(())
    }

    async fn nack(mut self: Box<Self>, delay: Duration) -> Result<()> {
        if let Some(pending) = self.pending.take() {
            if delay.is_zero() {
                self.group.requeue(pending, Requeue::Back);
            } else if pending.settlement.defer(
                Instant::now() + delay,
                pending.envelope.attempt,
                &self.group.name,
            ) {
                pending.settlement.settle(DEFERRED);
            } else {
                self.group.requeue(pending, Requeue::After(delay));
            }
        }
        Ok(())
    }
}

impl Drop for MemoryAcker {
    fn drop(&mut self) {
        // Neither acked nor nacked: the consumer went away, so the message goes back first in line.
        if let Some(pending) = self.pending.take() {
            self.group.requeue(pending, Requeue::Front);
        }
    }
}
