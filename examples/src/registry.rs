//! Every domain `saga-cli` knows: adding a domain is adding its folder and one line here.

use crate::{DomainKind, bakery, document_voiding, imp_summoning, online_shop, petstore};

/// Every domain, in the order `saga-cli` lists them.
pub fn all() -> &'static [&'static DomainKind] {
    &[&imp_summoning::KIND, &bakery::KIND, &online_shop::KIND, &petstore::KIND, &document_voiding::KIND]
}

/// The domain called `name`.
pub fn named(name: &str) -> Option<&'static DomainKind> {
    all().iter().copied().find(|kind| kind.name == name)
}

#[cfg(test)]
mod tests {
    use super::{all, named};
    use crate::{Knobs, Setting};
    use saga_core::{InProcessTransport, RedbStore, Runtime};
    use std::sync::Arc;

    #[test]
    fn every_domain_has_a_name_of_its_own_and_is_found_by_it() {
        for kind in all() {
            assert_eq!(named(kind.name).map(|k| k.name), Some(kind.name));
            assert_eq!((kind.configure)(&Knobs::default()).name(), kind.name);
        }
        assert_eq!(all().iter().filter(|k| k.name == "bakery").count(), 1);
        assert!(named("dragon-taming").is_none());
    }

    /// A knob whose flag the domain does not read would be offered and silently ignored.
    #[test]
    fn every_knob_a_domain_offers_changes_its_options() {
        for kind in all() {
            let plain = (kind.configure)(&Knobs::default()).options().unwrap();
            for knob in kind.knobs {
                let mut knobs = Knobs::default();
                match knob.setting {
                    Setting::Count { default, .. } => knobs.set_count(knob.flag, default.unwrap_or(0) + 7),
                    Setting::Number { default, min, max, .. } => {
                        knobs.set_number(knob.flag, if default < max { (default + max) / 2.0 } else { min })
                    }
                    Setting::Switch => knobs.set_switch(knob.flag, true),
                };
                let set = (kind.configure)(&knobs).options().unwrap();
                assert_ne!(set, plain, "{} --{}", kind.name, knob.flag);
            }
        }
    }

    #[test]
    fn a_domain_is_restored_from_the_options_it_stores() {
        for kind in all() {
            let domain = (kind.configure)(&Knobs::default());
            let restored = (kind.restore)(domain.options().unwrap()).unwrap();
            assert_eq!(restored.options().unwrap(), domain.options().unwrap(), "{}", kind.name);
        }
    }

    #[test]
    fn every_service_a_domain_lists_registers_and_no_other() {
        for kind in all() {
            let domain = (kind.configure)(&Knobs::default());
            let builder = || {
                let store = Arc::new(RedbStore::in_memory().unwrap());
                Runtime::builder_shared(store, Arc::new(InProcessTransport::new()))
            };
            for service in kind.services {
                assert!(domain.register_service(builder(), service, 1).is_some(), "{} {service}", kind.name);
                assert!(domain.check_service(service).is_ok());
            }
            assert!(domain.register_service(builder(), "kennel", 1).is_none(), "{}", kind.name);
            let unknown = domain.check_service("kennel").unwrap_err();
            assert!(unknown.starts_with(&format!("{} has no service \"kennel\" (it has ", kind.name)));
        }
    }
}
