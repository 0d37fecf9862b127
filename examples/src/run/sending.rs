//! Sending a scenario's many messages in commits of a few hundred.

use saga_core::{Envelope, Message, RuntimeHandle};
use tokio::sync::watch;

/// Messages in one commit of the client.
const BATCH: usize = 256;
/// Commits sent together.
const WAVE: usize = 4;

/// Sends `messages` to `topic` in commits of a few hundred, each message keyed by its key. The
/// commits of a wave go out together, as many clients' would, so they share the runtime's group
/// commits. Envelopes are made a wave at a time: however many messages there are, only a wave's
/// are held at once.
pub(crate) async fn send_in_batches<M: Message>(
    runtime: &RuntimeHandle,
    topic: &str,
    messages: impl IntoIterator<Item = (String, M)>,
    stop: &watch::Receiver<bool>,
) -> saga_core::Result<()> {
    let envelopes = messages.into_iter().map(|(key, message)| Envelope::new(topic, &key, &message));
    send_waves(runtime, envelopes, stop).await
}

/// Sends ready-made envelopes the way [`send_in_batches`] sends messages.
pub(crate) async fn send_envelopes(
    runtime: &RuntimeHandle,
    envelopes: Vec<Envelope>,
    stop: &watch::Receiver<bool>,
) -> saga_core::Result<()> {
    send_waves(runtime, envelopes.into_iter().map(Ok), stop).await
}

async fn send_waves(
    runtime: &RuntimeHandle,
    mut envelopes: impl Iterator<Item = saga_core::Result<Envelope>>,
    stop: &watch::Receiver<bool>,
) -> saga_core::Result<()> {
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let mut wave = Vec::with_capacity(WAVE);
        while wave.len() < WAVE {
            let batch = envelopes.by_ref().take(BATCH).collect::<saga_core::Result<Vec<_>>>()?;
            if batch.is_empty() {
                break;
            }
            wave.push(batch);
        }
        if wave.is_empty() {
            return Ok(());
        }
        for sent in futures_util::future::join_all(wave.into_iter().map(|b| runtime.send_all(b))).await {
            sent?;
        }
    }
}
