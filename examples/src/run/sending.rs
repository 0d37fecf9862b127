//! Sending a scenario's many messages in commits of a few hundred.

use saga_core::{Envelope, Message, RuntimeHandle};
use tokio::sync::watch;

/// Sends `messages` to `topic` in commits of a few hundred, each message keyed by its key. The
/// commits go out together, as many clients' would, so they share the runtime's group commits.
pub(crate) async fn send_in_batches<M: Message>(
    runtime: &RuntimeHandle,
    topic: &str,
    messages: impl IntoIterator<Item = (String, M)>,
    stop: &watch::Receiver<bool>,
) -> saga_core::Result<()> {
    let envelopes = messages
        .into_iter()
        .map(|(key, message)| Envelope::new(topic, &key, &message))
        .collect::<saga_core::Result<Vec<_>>>()?;
    send_envelopes(runtime, envelopes, stop).await
}

/// Sends ready-made envelopes the way [`send_in_batches`] sends messages.
pub(crate) async fn send_envelopes(
    runtime: &RuntimeHandle,
    mut envelopes: Vec<Envelope>,
    stop: &watch::Receiver<bool>,
) -> saga_core::Result<()> {
    let mut batches = Vec::new();
    while !envelopes.is_empty() {
        let rest = envelopes.split_off(envelopes.len().min(256));
        batches.push(std::mem::replace(&mut envelopes, rest));
    }
    for wave in batches.chunks_mut(16) {
        if *stop.borrow() {
            return Ok(());
        }
        let sends = wave.iter_mut().map(|b| runtime.send_all(std::mem::take(b)));
        for sent in futures_util::future::join_all(sends).await {
            sent?;
        }
    }
    Ok(())
}
