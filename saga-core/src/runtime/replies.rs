//! Answers addressed to this runtime as a client: messages on its reply topic, handed to whoever
//! waits for them by correlation id, with nothing stored. A client that missed an answer (it was
//! not waiting, or it restarted) asks again.

use super::Shared;
use crate::model::Envelope;
use crate::transport::Subscribe;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

/// Who waits for an answer about which correlation id.
pub(crate) struct Replies {
    /// The topic answers come on.
    pub(crate) topic: String,
    waiting: Mutex<HashMap<String, Vec<Waiter>>>,
}

/// One who waits: for the next answer, or for every answer until it stops listening.
enum Waiter {
    Once(oneshot::Sender<Envelope>),
    Every(mpsc::UnboundedSender<Envelope>),
}

impl Waiter {
    fn is_closed(&self) -> bool {
        match self {
            Waiter::Once(tx) => tx.is_closed(),
            Waiter::Every(tx) => tx.is_closed(),
        }
    }
}

impl Replies {
    pub(crate) fn new(topic: String) -> Self {
        Replies { topic, waiting: Mutex::default() }
    }

    /// Resolves with the next answer correlated to `correlation`. Register before asking, so an
    /// answer that comes at once is not missed.
    pub(crate) fn expect(&self, correlation: &str) -> oneshot::Receiver<Envelope> {
        let (tx, rx) = oneshot::channel();
        self.wait(correlation, Waiter::Once(tx));
        rx
    }

    /// Yields every answer correlated to `correlation` until the receiver is dropped.
    pub(crate) fn expect_every(&self, correlation: &str) -> mpsc::UnboundedReceiver<Envelope> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.wait(correlation, Waiter::Every(tx));
        rx
    }

    fn wait(&self, correlation: &str, waiter: Waiter) {
        let mut waiting = self.lock();
        let waiters = waiting.entry(correlation.to_owned()).or_default();
        // Waiters that gave up are dropped here, so an answer that never comes keeps none.
        waiters.retain(|w| !w.is_closed());
        waiters.push(waiter);
    }

    /// Hands `envelope` to everyone waiting for its correlation id; nobody waiting, it is dropped.
    fn deliver(&self, envelope: Envelope) {
        let mut waiting = self.lock();
        let Some(waiters) = waiting.remove(envelope.correlation_id()) else { return };
        let mut staying = Vec::new();
        for waiter in waiters {
            match waiter {
                Waiter::Once(tx) => {
                    let _ = tx.send(envelope.clone());
                }
                Waiter::Every(tx) => {
                    if tx.send(envelope.clone()).is_ok() {
                        staying.push(Waiter::Every(tx));
                    }
                }
            }
        }
        if !staying.is_empty() {
            waiting.insert(envelope.correlation_id().to_owned(), staying);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Waiter>>> {
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Takes the answers on the runtime's reply topic until the runtime stops.
pub(crate) async fn run(shared: Arc<Shared>, replies: Arc<Replies>, mut stopped: watch::Receiver<bool>) {
    let topic = replies.topic.clone();
    let mut subscription =
        match shared.transport.subscribe(Subscribe::new(topic.clone(), topic.clone()).transient()).await {
            Ok(subscription) => subscription,
            Err(e) => {
                tracing::warn!(topic, error = %e, "cannot take answers on the reply topic");
                return;
            }
        };
    loop {
        let delivery = tokio::select! {
            _ = stopped.changed() => return,
            next = subscription.next() => next,
        };
        match delivery {
            Ok(Some(delivery)) => {
                let (envelope, acker) = delivery.into_parts();
                replies.deliver(envelope);
                if let Err(e) = acker.ack().await {
                    tracing::debug!(topic, error = %e, "acknowledging an answer failed; it may come again");
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(topic, error = %e, "the reply topic's subscription failed; subscribing again");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                match shared
                    .transport
                    .subscribe(Subscribe::new(topic.clone(), topic.clone()).transient())
                    .await
                {
                    Ok(again) => subscription = again,
                    Err(e) => tracing::debug!(topic, error = %e, "subscribing again failed"),
                }
            }
        }
    }
}
