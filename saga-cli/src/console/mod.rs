//! The web console: `saga-cli serve` on a database file, and `saga-cli run DOMAIN --serve` on
//! a running domain (with the domain's own pages, its [face](faces)). It is a second face of
//! the operator plane: what it shows is read as `list` and `inspect` read it, and what it
//! does is asked of each process's owner as `retry`, `cancel` or `signal` ask it.
//!
//! Everything a page needs is in the binary (no script, font or style from elsewhere), the
//! pages update themselves from server-sent events, every action is a POST confirmed first,
//! and every text shown is escaped.

mod auth;
mod deployment;
pub(crate) mod faces;
mod live;
mod metrics;
pub(crate) mod pages;
mod routes;
mod source;

pub(crate) use auth::{TOKEN_VAR, refuse_binding};
pub(crate) use deployment::Deployment;
pub(crate) use live::Hub;
pub(crate) use source::Source;

use anyhow::{Context as _, Result};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

/// What every request of the console shares.
pub(crate) struct Console {
    /// What it shows and acts on.
    pub(crate) source: Source,
    /// The changes its pages hear.
    pub(crate) hub: Hub,
    /// The links of its navigation: the console's own, then its face's.
    pub(crate) nav: Vec<pages::Nav>,
    /// The counts by status last read.
    pub(crate) counts: source::Counts,
}

impl Console {
    /// A console on `source`, with the links of `face` beside its own.
    pub(crate) fn new(source: Source, hub: Hub, face: Option<&dyn faces::Face>) -> Console {
        Console {
            source,
            hub,
            nav: nav(&face.map(|f| f.nav()).unwrap_or_default()),
            counts: Default::default(),
        }
    }
}

/// The navigation: the console's links, then `more` (a face's).
pub(crate) fn nav(more: &[pages::Nav]) -> Vec<pages::Nav> {
    let mut nav = vec![
        ("/".to_owned(), "Processes".to_owned()),
        ("/dead-letters".to_owned(), "Dead letters".to_owned()),
    ];
    nav.extend(more.iter().cloned());
    nav
}

/// Listens on `addr` (port 0: any free one) and says where on stderr, as
/// `console: http://ADDR/`, so that a person or a test can open it.
pub(crate) async fn listen(addr: SocketAddr, what: &str) -> Result<tokio::net::TcpListener> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
    let bound = listener.local_addr()?;
    eprintln!("{what}: http://{bound}/");
    Ok(listener)
}

/// The console's routes, and `face`'s, behind the token check when there is a token.
pub(crate) fn router(console: Arc<Console>, face: Option<Router>, token: Option<String>) -> Router {
    let mut router = routes::console(console);
    if let Some(face) = face {
        router = router.merge(face);
    }
    guarded(router, token)
}

/// The routes of `--metrics`: `/metrics`, `/healthz` and `/readyz` of `source`.
pub(crate) fn metrics_router(source: Source, token: Option<String>) -> Router {
    let console = Arc::new(Console::new(source, Hub::default(), None));
    guarded(routes::metrics_only(console), token)
}

fn guarded(router: Router, token: Option<String>) -> Router {
    let guard = auth::Guard { token: token.map(Arc::from) };
    router
        .layer(axum::middleware::from_fn_with_state(guard, auth::check))
        .layer(axum::middleware::from_fn(routes::secure_headers))
}

/// Serves `router` on `listener` until `stop` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Pages hold their event streams open: the server stops without waiting for them.
    tokio::select! {
        served = axum::serve(listener, router) => served.context("serving the console"),
        () = stop => Ok(()),
    }
}
