//! `saga-cli serve`: the web console on a database file, or on a deployment through its
//! broker.

use crate::cli::ServeArgs;
use crate::console::{self, Console, Deployment, Hub, Source};
use anyhow::{Context as _, Result};
use saga_core::Error;
use std::sync::Arc;

/// Serves the console on `args.db` until SIGINT.
pub(crate) async fn serve(args: ServeArgs) -> Result<u8> {
    let token = args.console.token();
    if let Some(refused) = console::refuse_binding(&args.addr, token.as_deref()) {
        eprintln!("saga-cli: {refused}");
        return Ok(2);
    }
    let hub = Hub::default();
    let source = match &args.broker.transport {
        Some(transport) => {
            let domain = args.broker.domain.as_deref().context("--transport needs --domain")?;
            let remote = super::remote::Remote::connect(transport, domain).await?;
            Source::Broker(Deployment::follow(remote, args.broker.timeout, hub.clone()).await?)
        }
        None => {
            let path = args.db.db.clone();
            if !path.exists() {
                return Err(Error::NoDatabase { path }.into());
            }
            // A file that is no saga database is refused now, not at the first page.
            drop(super::open_existing(&path)?);
            hub.follow_file(path.clone());
            Source::File(path)
        }
    };
    let console = Arc::new(Console::new(source, hub, None));
    // The counts by status read the whole status index: read once now, the first page finds
    // them (a store of a million processes takes about 100 ms).
    let warming = console.clone();
    tokio::spawn(async move {
        let first = saga_core::store::ProcessQuery::new().limit(1);
        let _ = warming.source.listing(first, &warming.counts).await;
    });
    let listener = console::listen(args.addr, "console").await?;
    let router = console::router(console, None, token);
    console::serve(listener, router, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(0)
}
