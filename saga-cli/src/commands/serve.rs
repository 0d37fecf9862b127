//! `saga-cli serve`: the web console on a database file.

use crate::cli::ServeArgs;
use crate::console::{self, Console, Hub, Source};
use anyhow::Result;
use saga_core::Error;
use std::sync::Arc;

/// Serves the console on `args.db` until SIGINT.
pub(crate) async fn serve(args: ServeArgs) -> Result<u8> {
    let token = args.console.token();
    if let Some(refused) = console::refuse_binding(&args.addr, token.as_deref()) {
        eprintln!("saga-cli: {refused}");
        return Ok(2);
    }
    let path = args.db.db.clone();
    if !path.exists() {
        return Err(Error::NoDatabase { path }.into());
    }
    // A file that is no saga database is refused now, not at the first page.
    drop(super::open_existing(&path)?);
    let hub = Hub::default();
    hub.follow_file(path.clone());
    let console = Arc::new(Console::new(Source::File(path), hub, None));
    let listener = console::listen(args.addr, "console").await?;
    let router = console::router(console, None, token);
    console::serve(listener, router, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(0)
}
