//! The console of a deployment whose services run apart (`saga-cli serve --transport`): what it
//! lists is what the services announced on the broker, kept here as each announcement comes;
//! a process's page and the dead letters are asked of the service that keeps them; actions go
//! to each process's owner, as `saga-cli retry --transport` sends them.

use super::Hub;
use super::pages::Row;
use crate::commands::list::{Announced, remember, selected};
use crate::commands::remote::Remote;
use saga_core::store::{PageCursor, ProcessQuery};
use saga_core::transport::Subscribe;
use saga_core::{Message, ProcessChanged, Status};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// A deployment seen through its broker.
pub(crate) struct Deployment {
    pub(crate) remote: Remote,
    pub(crate) timeout: std::time::Duration,
    known: Arc<RwLock<Announced>>,
}

impl Deployment {
    /// Connects, and keeps every process's latest announcement from now on (with those the
    /// broker still holds), telling `hub` of each.
    pub(crate) async fn follow(
        remote: Remote,
        timeout: std::time::Duration,
        hub: Hub,
    ) -> anyhow::Result<Deployment> {
        let group = format!("saga-cli.console.{}", saga_core::MessageId::new());
        let mut subscription = remote
            .transport()
            .subscribe(Subscribe::new(saga_examples::ANNOUNCEMENTS, group).transient())
            .await?;
        let known: Arc<RwLock<Announced>> = Arc::default();
        let keeping = known.clone();
        tokio::spawn(async move {
            while let Ok(Some(delivery)) = subscription.next().await {
                let at = delivery.envelope.created_at();
                if delivery.envelope.kind() == ProcessChanged::KIND
                    && let Ok(change) = delivery.envelope.decode::<ProcessChanged>()
                {
                    let told = serde_json::to_value(&change).unwrap_or_default();
                    remember(
                        &mut keeping.write().unwrap_or_else(std::sync::PoisonError::into_inner),
                        change,
                        at,
                    );
                    hub.tell(told);
                }
                if delivery.ack().await.is_err() {
                    break;
                }
            }
        });
        Ok(Deployment { remote, timeout, known })
    }

    /// One page of the processes `query` selects, the cursor of the next, and the counts by
    /// status of every process announced.
    pub(crate) fn listing(&self, query: &ProcessQuery) -> (Vec<Row>, Option<String>, Vec<(Status, u64)>) {
        let known = self.known.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut counts: BTreeMap<Status, u64> = Status::ALL.iter().map(|s| (*s, 0)).collect();
        for k in known.values() {
            *counts.entry(k.latest.to).or_default() += 1;
        }
        let rows = selected(&known, query);
        let limit = query.limit.unwrap_or(usize::MAX);
        let next = (rows.len() > limit)
            .then(|| {
                rows.get(limit - 1).map(|(id, k)| PageCursor::new(query.order, k.began, id, None).to_string())
            })
            .flatten();
        let rows = rows
            .into_iter()
            .take(limit)
            .map(|(id, k)| Row {
                id: id.clone(),
                kind: k.latest.kind.clone(),
                class: k.latest.class,
                status: k.latest.to,
                step: None,
                created_at: k.began,
                updated_at: k.changed,
            })
            .collect();
        (rows, next, counts.into_iter().collect())
    }
}
