//! [`DomainKind`]: a domain apart from any run, as the registry lists it.

use super::{Domain, Knob, Knobs, Role};
use serde::de::DeserializeOwned;

/// A domain apart from any run: its name, what `saga-cli` says of it, the flags it takes, its
/// services, and how it makes the [`Domain`] of one run from flags or from what a run stored.
///
/// Each domain folder declares one as `KIND`; [`registry::all`](crate::registry::all) lists them.
#[derive(Clone, Copy, Debug)]
pub struct DomainKind {
    /// The domain's name, as `saga-cli run` takes it and a run stores it.
    pub name: &'static str,
    /// What runs, one sentence (`saga-cli run --help`).
    pub about: &'static str,
    /// Which services there are, one sentence (`saga-cli service --help`).
    pub services_about: &'static str,
    /// What its driver does, one sentence (`saga-cli drive --help`).
    pub driver_about: &'static str,
    /// The services that can run as processes of their own (`saga-cli service`).
    pub services: &'static [&'static str],
    /// Its settings, and which commands offer each as a flag.
    pub knobs: &'static [Knob],
    /// The domain for one run, with the options its knobs were given (the rest as by default).
    pub configure: fn(&Knobs) -> Box<dyn Domain>,
    /// The domain of a run stored earlier, from its options (the JSON object a run stores
    /// beside the domain's name, see [`Domain::options`]).
    pub restore: fn(serde_json::Value) -> serde_json::Result<Box<dyn Domain>>,
}

impl DomainKind {
    /// What `saga-cli` says of the domain where it plays `role`.
    pub fn about(&self, role: Role) -> &'static str {
        match role {
            Role::Run => self.about,
            Role::Service => self.services_about,
            Role::Drive => self.driver_about,
        }
    }

    /// The knobs offered where the domain plays `role`, in the order they are declared.
    pub fn knobs(&self, role: Role) -> impl Iterator<Item = &'static Knob> {
        self.knobs.iter().filter(move |knob| knob.roles.contains(&role))
    }
}

/// A [`DomainKind::restore`] for a domain type that reads its options as they are stored.
pub fn restore<D: Domain + DeserializeOwned + 'static>(
    options: serde_json::Value,
) -> serde_json::Result<Box<dyn Domain>> {
    Ok(Box::new(serde_json::from_value::<D>(options)?))
}
