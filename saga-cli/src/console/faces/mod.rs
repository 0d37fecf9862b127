//! The seeds' own web faces, served beside the console by `saga-cli run DOMAIN --serve`: each
//! is a client of the running domain, sending its commands through the run's transport as
//! the seed's own front end would.

mod bakery;
mod document_voiding;
mod online_shop;
mod petstore;

use axum::Router;
use saga_core::{RedbStore, RuntimeHandle};
use saga_examples::Domain;
use std::sync::Arc;

/// A domain's pages and routes.
pub(crate) trait Face: Send + Sync {
    /// Its links in the console's navigation: (path, label).
    fn nav(&self) -> Vec<(String, String)>;
    /// Its routes.
    fn routes(self: Arc<Self>) -> Router;
}

/// What a face is given: the domain as it runs, its store (to read what the services keep),
/// and a client on its transport (to send commands).
pub(crate) struct FaceContext {
    pub(crate) domain: Box<dyn Domain>,
    pub(crate) store: Arc<RedbStore>,
    pub(crate) client: Arc<RuntimeHandle>,
}

impl FaceContext {
    /// What the page frame names as its subject.
    pub(crate) fn source_name(&self) -> String {
        format!("{} (running)", self.store.path().display())
    }
}

/// The face of the domain `context` runs, if it has one.
pub(crate) fn of(context: FaceContext) -> Option<Arc<dyn Face>> {
    match context.domain.name() {
        "document-voiding" => Some(Arc::new(document_voiding::DocumentVoidingFace::new(context))),
        "online-shop" => Some(Arc::new(online_shop::OnlineShopFace::new(context))),
        "bakery" => Some(Arc::new(bakery::BakeryFace::new(context))),
        "petstore" => Some(Arc::new(petstore::PetstoreFace::new(context))),
        _ => None,
    }
}
