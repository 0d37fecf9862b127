//! Answers addressed to this runtime as a client: messages on its reply topic, handed to whoever
//! waits for them by correlation id, with nothing stored. A client that missed an answer (it was
//! not waiting, or it restarted) asks again.

use super::Shared;
use crate::model::Envelope;
use crate::transport::Subscribe;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, watch};

/// Who waits for an answer about which correlation id.
pub(crate) struct Replies {
    /// The topic answers come on.
    pub(crate) topic: String,
    waiting: Mutex<HashMap<String, Vec<oneshot::Sender<Envelope>>>>,
}

impl Replies {
    pub(crate) fn new(topic: String) -> Self {
        Replies { topic, waiting: Mutex::default() }
    }

    /// Resolves with the next answer correlated to `correlation`. Register before asking, so an
    /// answer that comes at once is not missed.
    pub(crate) fn expect(&self, correlation: &str) -> oneshot::Receiver<Envelope> {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.lock();
        let waiters = waiting.entry(correlation.to_owned()).or_default();
        // Waiters that gave up are dropped here, so an answer that never comes keeps none.
        waiters.retain(|w| !w.is_closed());
        waiters.push(tx);
        rx
    }

    /// Hands `envelope` to everyone waiting for its correlation id; nobody waiting, it is dropped.
    fn deliver(&self, envelope: Envelope) {
        let waiters = self.lock().remove(envelope.correlation_id()).unwrap_or_default();
        for waiter in waiters {
            let _ = waiter.send(envelope.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<oneshot::Sender<Envelope>>>> {
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
