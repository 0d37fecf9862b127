//! A domain as a run stores it: `{"domain": "<name>", ...its options}`, the shape the runs of
//! every earlier `saga-cli` wrote, so that their databases still resume.

use super::Domain;
use serde::de::Error as _;
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The field that names the domain, beside its options.
const TAG: &str = "domain";

impl Serialize for dyn Domain + '_ {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let options = match self.options().map_err(S::Error::custom)? {
            serde_json::Value::Object(options) => options,
            other => {
                return Err(S::Error::custom(format!("{} options are not an object: {other}", self.name())));
            }
        };
        let mut map = serializer.serialize_map(Some(options.len() + 1))?;
        map.serialize_entry(TAG, self.name())?;
        for (field, value) in &options {
            map.serialize_entry(field, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Box<dyn Domain> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut options = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let name = match options.remove(TAG) {
            Some(serde_json::Value::String(name)) => name,
            Some(other) => {
                return Err(D::Error::custom(format!("the domain's name is {other}, not a string")));
            }
            None => return Err(D::Error::missing_field(TAG)),
        };
        let Some(kind) = crate::registry::named(&name) else {
            let known: Vec<&str> = crate::registry::all().iter().map(|kind| kind.name).collect();
            return Err(D::Error::custom(format!(
                "unknown domain {name:?}, expected one of {}",
                known.join(", ")
            )));
        };
        (kind.restore)(serde_json::Value::Object(options))
            .map_err(|e| D::Error::custom(format!("the options of {name}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use crate::Domain;
    use serde::{Deserialize, Serialize};

    /// What `saga-cli` stores with a run, exactly as the runs before domains were a trait wrote it.
    const STORED: [&str; 8] = [
        r#"{"seed":3,"domain":{"domain":"imp-summoning","orders":200,"failure_rate":0.1,"summoners":3,"recovery":{"secs":0,"nanos":300000000},"fee":66}}"#,
        r#"{"seed":3,"domain":{"domain":"imp-summoning","orders":7,"failure_rate":0.25,"summoners":2,"recovery":{"secs":1,"nanos":500000000},"fee":66}}"#,
        r#"{"seed":3,"domain":{"domain":"bakery","day_length_secs":6.0,"orders":120,"poor_customers":0.2,"opens_at":null}}"#,
        r#"{"seed":3,"domain":{"domain":"bakery","day_length_secs":6.0,"orders":120,"poor_customers":0.2,"opens_at":1772434800123}}"#,
        r#"{"seed":3,"domain":{"domain":"online-shop","orders":200,"worker_failure_rate":0.3,"declined_share":0.1,"workers":4}}"#,
        r#"{"seed":3,"domain":{"domain":"petstore","pets":20,"orders":100,"rejected_share":0.2,"inventory_outage":{"secs":0,"nanos":500000000}}}"#,
        r#"{"seed":3,"domain":{"domain":"document-voiding","documents":60,"customers":6,"void_share":0.5,"published_share":0.5,"slow":null}}"#,
        r#"{"seed":3,"domain":{"domain":"document-voiding","documents":60,"customers":6,"void_share":0.5,"published_share":0.5,"slow":{"secs":2,"nanos":0}}}"#,
    ];

    #[derive(Serialize, Deserialize)]
    struct Marker {
        seed: u64,
        domain: Box<dyn Domain>,
    }

    #[test]
    fn a_run_stored_before_domains_were_a_trait_reads_and_is_stored_again_the_same() {
        for stored in STORED {
            let marker: Marker = serde_json::from_str(stored).unwrap();
            let before: serde_json::Value = serde_json::from_str(stored).unwrap();
            assert_eq!(marker.domain.name(), before["domain"]["domain"]);
            assert_eq!(serde_json::to_value(&marker).unwrap(), before, "{stored}");
        }
    }

    #[test]
    fn the_name_comes_first_as_before() {
        let marker: Marker = serde_json::from_str(STORED[2]).unwrap();
        let again = serde_json::to_string(&marker).unwrap();
        assert!(again.starts_with(r#"{"seed":3,"domain":{"domain":"bakery","#), "{again}");
    }

    #[test]
    fn an_unknown_domain_or_bad_options_are_refused_with_the_reason() {
        let unknown = serde_json::from_str::<Marker>(r#"{"seed":1,"domain":{"domain":"dragon-taming"}}"#);
        let error = unknown.err().unwrap().to_string();
        assert!(
            error.contains(r#"unknown domain "dragon-taming", expected one of imp-summoning"#),
            "{error}"
        );
        let bad =
            serde_json::from_str::<Marker>(r#"{"seed":1,"domain":{"domain":"bakery","orders":"many"}}"#);
        assert!(bad.err().unwrap().to_string().contains("the options of bakery"));
        let nameless = serde_json::from_str::<Marker>(r#"{"seed":1,"domain":{"orders":3}}"#);
        assert!(nameless.err().unwrap().to_string().contains("missing field `domain`"));
    }
}
