//! The transport of one run: in-process, or a stream of its own on a NATS broker.

use crate::cli::TransportArg;
use anyhow::Result;
use saga_core::{InProcessTransport, Transport};
use std::sync::Arc;

/// Where one run's messages travel.
pub(crate) struct Wire {
    pub(crate) transport: Arc<dyn Transport>,
    #[cfg(feature = "nats")]
    nats: Option<Arc<saga_core::transport::NatsTransport>>,
}

impl Wire {
    pub(crate) async fn open(arg: &TransportArg) -> Result<Wire> {
        match arg {
            TransportArg::InProcess => Ok(Wire {
                transport: Arc::new(InProcessTransport::new()),
                #[cfg(feature = "nats")]
                nats: None,
            }),
            TransportArg::Nats(url) => Self::nats(url).await,
        }
    }

    #[cfg(feature = "nats")]
    async fn nats(url: &str) -> Result<Wire> {
        let mut config = saga_core::transport::NatsConfig::default();
        // A stream of its own per run, so that no earlier run's messages are delivered or counted.
        let run = saga_core::MessageId::new().as_u128() as u32;
        config.stream = format!("BENCH_SAGA_{run}");
        config.subject_prefix = format!("bench-saga{run}");
        let nats = Arc::new(saga_core::transport::NatsTransport::connect(url, config).await?);
        Ok(Wire { transport: nats.clone(), nats: Some(nats) })
    }

    #[cfg(not(feature = "nats"))]
    async fn nats(url: &str) -> Result<Wire> {
        anyhow::bail!("{url}: this saga-cli was built without the nats feature")
    }

    /// Whether the messages cross a broker: then `summon` is a remote step.
    pub(crate) fn is_broker(&self) -> bool {
        #[cfg(feature = "nats")]
        return self.nats.is_some();
        #[cfg(not(feature = "nats"))]
        return false;
    }

    /// Closes the transport, and deletes the run's stream from the broker.
    pub(crate) async fn close(self) -> Result<()> {
        self.transport.close().await?;
        #[cfg(feature = "nats")]
        if let Some(nats) = self.nats {
            nats.delete_stream().await?;
        }
        Ok(())
    }
}
