//! Property tests of everything a store decodes: a stored value, a history row, a dead letter
//! and an envelope (also what a transport carries) read back as written, and any bytes at all
//! (random ones, or a real value's with bits flipped, cut short or grown) decode to a value or
//! to a typed error, never a panic. The checksum that guards each value in a file is sealed
//! anew around the changed bytes here, so the decoders behind it meet them.
//!
//! 256 cases a property by default; `PROPTEST_CASES=100000` for a long run.

use super::codec::{Codec, Layout, record_value};
use super::seal::seal;
use super::{entries, letters};
use crate::error::Error;
use crate::model::{Envelope, MessageId, Timestamp};
use crate::store::{Class, DeadLetter, HistoryEntry, HistoryEvent, ProcessMeta, Record, Status};
use proptest::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

#[derive(serde::Serialize, serde::Deserialize)]
struct Ping(String);
crate::message!(Ping = "fuzz.ping");

/// A change to a value's bytes: a bit flipped, the bytes cut short, or a byte put in.
#[derive(Clone, Debug)]
enum Damage {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Damage::Flip(at, bit)),
        any::<usize>().prop_map(Damage::Cut),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Insert(at, byte)),
    ]
}

fn damaged(mut bytes: Vec<u8>, damages: &[Damage]) -> Vec<u8> {
    for damage in damages {
        let len = bytes.len().max(1);
        match *damage {
            Damage::Flip(at, bit) if !bytes.is_empty() => bytes[at % len] ^= 1 << bit,
            Damage::Cut(at) => bytes.truncate(at % len),
            Damage::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
            Damage::Flip(..) => {}
        }
    }
    bytes
}

fn record() -> impl Strategy<Value = Record> {
    let meta = (
        any::<bool>(),
        ".{0,12}",
        0..Status::ALL.len(),
        proptest::option::of(".{0,12}"),
        any::<u64>(),
        any::<u64>(),
    );
    (any::<u64>(), proptest::option::of(meta), proptest::collection::vec(any::<u8>(), 0..48)).prop_map(
        |(updated, meta, data)| Record {
            version: 0,
            updated_at: Timestamp::from_millis(updated),
            process: meta.map(|(saga, kind, status, step, created, changes)| {
                let class = if saga { Class::Saga } else { Class::Process };
                let mut meta =
                    ProcessMeta::new(class, kind, Status::ALL[status], Timestamp::from_millis(created));
                meta.step = step;
                meta.changes = changes;
                meta
            }),
            data,
        },
    )
}

fn event() -> impl Strategy<Value = HistoryEvent> {
    prop_oneof![
        ".{0,12}".prop_map(|kind| HistoryEvent::Started { kind }),
        (".{0,12}", any::<u32>()).prop_map(|(step, attempt)| HistoryEvent::StepStarted { step, attempt }),
        (".{0,12}", any::<u32>()).prop_map(|(step, attempt)| HistoryEvent::StepSucceeded { step, attempt }),
        (any::<u128>(), ".{0,12}", ".{0,12}").prop_map(|(id, kind, from)| HistoryEvent::MessageIn {
            id: MessageId::from_u128(id),
            kind,
            from
        }),
        (".{0,12}", any::<u64>())
            .prop_map(|(name, due)| HistoryEvent::TimerSet { name, due: Timestamp::from_millis(due) }),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (".{0,12}", ".{0,12}", ".{0,24}", proptest::collection::btree_map(".{0,8}", ".{0,8}", 0..3), any::<u32>())
        .prop_map(|(topic, key, text, headers, attempt)| {
            let mut envelope = Envelope::new(&topic, &key, &Ping(text)).expect("a ping encodes");
            for (name, value) in headers {
                envelope = envelope.with_header(name, value);
            }
            envelope.with_attempt(attempt)
        })
}

/// Runs `decode`, which must not panic; a panic fails the property with its bytes.
fn no_panic<T>(what: &str, bytes: &[u8], decode: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(decode)) {
        Ok(decoded) => decoded,
        Err(_) => panic!("decoding {what} panicked on {bytes:?}"),
    }
}

fn codec() -> Codec {
    Codec::new(Layout::Sealed, Path::new("fuzz.redb"))
}

/// A rejection by the store's codec is damage at the table and key it was reading.
fn is_damage_at(e: &Error, at: &str) -> bool {
    matches!(e, Error::Damaged { table, .. } if *table == at)
}

proptest! {
    #[test]
    fn a_record_reads_back_as_written(record in record(), version in any::<u64>()) {
        let stored = record_value("space", "id", &record, version);
        let read = codec().record("space", "id", &stored).expect("a record as written reads");
        prop_assert_eq!(read, Record { version, ..record });
    }

    #[test]
    fn a_record_of_damaged_bytes_reads_or_is_damage_never_a_panic(
        record in record(),
        damages in proptest::collection::vec(damage(), 1..4),
    ) {
        let stored = record_value("space", "id", &record, 1);
        // Open the seal, change what is under it, seal it again.
        let inner = super::seal::unseal("records", &("space", "id"), &stored).expect("sealed").to_vec();
        let bytes = damaged(inner, &damages);
        let resealed = seal("records", &("space", "id"), &bytes);
        if let Err(e) = no_panic("a record", &bytes, || codec().record("space", "id", &resealed)) {
            prop_assert!(is_damage_at(&e, "records"), "{e:?}");
        }
        // Left unsealed, the checksum says so.
        let stored = damaged(stored, &damages);
        if let Err(e) = no_panic("a sealed record", &stored, || codec().record("space", "id", &stored)) {
            prop_assert!(is_damage_at(&e, "records"), "{e:?}");
        }
    }

    #[test]
    fn any_bytes_as_a_record_in_either_layout_read_or_are_damage(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for layout in [Layout::Json, Layout::Sealed] {
            let codec = Codec::new(layout, Path::new("fuzz.redb"));
            if let Err(e) = no_panic("a record", &bytes, || codec.record("space", "id", &bytes)) {
                prop_assert!(is_damage_at(&e, "records"), "{e:?}");
            }
            if let Err(e) = no_panic("a record's version", &bytes, || codec.version("space", "id", &bytes)) {
                prop_assert!(is_damage_at(&e, "records"), "{e:?}");
            }
        }
    }

    #[test]
    fn history_entries_read_back_as_written_and_damaged_ones_never_panic(
        at in proptest::collection::vec(any::<u64>(), 1..5),
        events in proptest::collection::vec(event(), 1..5),
        damages in proptest::collection::vec(damage(), 1..4),
    ) {
        let written: Vec<HistoryEntry> = at
            .iter()
            .zip(events)
            .map(|(at, event)| HistoryEntry { at: Timestamp::from_millis(*at), event })
            .collect();
        let bytes = entries::encode(&written.iter().collect::<Vec<_>>());
        prop_assert_eq!(entries::decode(&bytes).expect("entries as written read"), written);
        let bytes = damaged(bytes, &damages);
        let resealed = seal("history_log", &(7u64, ("p/1", 3u64)), &bytes);
        if let Err(e) = no_panic("history entries", &bytes, || codec().history(7, "p/1", 3, &resealed)) {
            prop_assert!(is_damage_at(&e, "history_log"), "{e:?}");
        }
    }

    #[test]
    fn an_envelope_reads_back_as_written_and_any_bytes_read_or_are_an_error(
        envelope in envelope(),
        damages in proptest::collection::vec(damage(), 1..4),
        noise in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let bytes = envelope.to_bytes();
        prop_assert_eq!(Envelope::from_bytes(&bytes).expect("an envelope as written reads"), envelope);
        for bytes in [damaged(bytes, &damages), noise] {
            let _ = no_panic("an envelope", &bytes, || Envelope::from_bytes(&bytes));
            let resealed = seal("outbox", &9u64, &bytes);
            if let Err(e) = no_panic("an outbox row", &bytes, || codec().outbox(9, &resealed)) {
                prop_assert!(is_damage_at(&e, "outbox"), "{e:?}");
            }
            let resealed = seal("timers", &(5u64, "t"), &bytes);
            if let Err(e) = no_panic("a timer", &bytes, || codec().timer(5, "t", &resealed)) {
                prop_assert!(is_damage_at(&e, "timers"), "{e:?}");
            }
        }
    }

    #[test]
    fn a_dead_letter_reads_back_as_written_and_damaged_ones_never_panic(
        envelope in envelope(),
        consumer in ".{0,12}",
        error in ".{0,24}",
        at in any::<u64>(),
        damages in proptest::collection::vec(damage(), 1..4),
    ) {
        let letter = DeadLetter::new(consumer, error, Timestamp::from_millis(at), envelope);
        let bytes = letters::encode(&letter);
        prop_assert_eq!(letters::decode(&bytes).expect("a letter as written reads"), letter.clone());
        let bytes = damaged(bytes, &damages);
        let key = (letter.envelope.id().as_u128(), letter.consumer.as_str());
        let resealed = seal("dead_letters", &key, &bytes);
        let read = no_panic("a dead letter", &bytes, || codec().letter(key.0, key.1, &resealed));
        if let Err(e) = read {
            prop_assert!(is_damage_at(&e, "dead_letters"), "{e:?}");
        }
    }
}
