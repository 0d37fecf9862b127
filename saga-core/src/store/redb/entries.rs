//! History entries as schema 4 stores them: one row's entries back to back, each its time (the
//! first as milliseconds, the rest as the difference to the one before) and its event (a tag
//! byte, then its fields in order). About a fifth of their JSON.

use super::binary::{In, Out};
use crate::error::Result;
use crate::model::{MessageId, Timestamp};
use crate::store::{HistoryEntry, HistoryEvent};

/// The entries of one history row.
pub(super) fn encode(entries: &[&HistoryEntry]) -> Vec<u8> {
    let mut out = Out::with_capacity(entries.len() * 24);
    let mut before: Option<u64> = None;
    for entry in entries {
        let at = entry.at.as_millis();
        match before {
            None => out.uint(at),
            Some(before) => out.uint(zigzag(at.wrapping_sub(before) as i64)),
        }
        before = Some(at);
        event(&mut out, &entry.event);
    }
    out.into_vec()
}

/// The entries of one history row, as [`encode`] wrote them.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<HistoryEntry>> {
    let mut read = In::new(bytes, "history_log");
    let mut entries = Vec::new();
    let mut before: Option<u64> = None;
    while !read.is_done() {
        let at = match before {
            None => read.uint()?,
            Some(before) => before.wrapping_add(unzigzag(read.uint()?) as u64),
        };
        before = Some(at);
        entries.push(HistoryEntry { at: Timestamp::from_millis(at), event: read_event(&mut read)? });
    }
    Ok(entries)
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    (n >> 1) as i64 ^ -((n & 1) as i64)
}

fn id(out: &mut Out, id: &MessageId) {
    out.rest(&id.as_u128().to_le_bytes());
}

fn read_id(read: &mut In<'_>) -> Result<MessageId> {
    let mut bytes = [0u8; 16];
    for byte in &mut bytes {
        *byte = read.u8()?;
    }
    Ok(MessageId::from_u128(u128::from_le_bytes(bytes)))
}

/// Writes `event`: its tag, then its fields. The tags are part of the file format: a new event
/// takes a new tag, and no tag is ever reused.
fn event(out: &mut Out, event: &HistoryEvent) {
    use HistoryEvent as E;
    match event {
        E::Started { kind } => {
            out.u8(0);
            out.str(kind);
        }
        E::MessageIn { id: message, kind, from } => {
            out.u8(1);
            id(out, message);
            out.str(kind);
            out.str(from);
        }
        E::MessageOut { id: message, kind, to } => {
            out.u8(2);
            id(out, message);
            out.str(kind);
            out.str(to);
        }
        E::StepStarted { step, attempt } => step_attempt(out, 3, step, *attempt),
        E::StepSucceeded { step, attempt } => step_attempt(out, 4, step, *attempt),
        E::StepFailed { step, attempt, error, will_retry } => {
            step_attempt(out, 5, step, *attempt);
            out.str(error);
            out.bool(*will_retry);
        }
        E::StepTimedOut { step, attempt } => step_attempt(out, 6, step, *attempt),
        E::CompensationStarted { step, attempt } => step_attempt(out, 7, step, *attempt),
        E::CompensationSucceeded { step } => {
            out.u8(8);
            out.str(step);
        }
        E::CompensationFailed { step, attempt, error, will_retry } => {
            step_attempt(out, 9, step, *attempt);
            out.str(error);
            out.bool(*will_retry);
        }
        E::TimerSet { name, due } => {
            out.u8(10);
            out.str(name);
            out.uint(due.as_millis());
        }
        E::TimerFired { name } => {
            out.u8(11);
            out.str(name);
        }
        E::TimerCancelled { name } => {
            out.u8(12);
            out.str(name);
        }
        E::StatusChanged { from, to } => {
            out.u8(13);
            out.str(from);
            out.str(to);
        }
        E::Ignored { kind, reason } => {
            out.u8(14);
            out.str(kind);
            out.str(reason);
        }
        E::Operator { action } => {
            out.u8(15);
            out.str(action);
        }
        E::StopRequested { action, reason, by } => {
            out.u8(16);
            out.str(action);
            out.str(reason);
            out.str(by);
        }
        E::Signal { name, id: signal } => {
            out.u8(17);
            out.str(name);
            out.opt_str(signal.as_deref());
        }
        E::ChildStarted { step, child } => {
            out.u8(18);
            out.str(step);
            out.str(child);
        }
        E::Halted { error } => {
            out.u8(19);
            out.str(error);
        }
        E::Note { text } => {
            out.u8(20);
            out.str(text);
        }
    }
}

fn step_attempt(out: &mut Out, tag: u8, step: &str, attempt: u32) {
    out.u8(tag);
    out.str(step);
    out.uint(u64::from(attempt));
}

fn read_event(read: &mut In<'_>) -> Result<HistoryEvent> {
    use HistoryEvent as E;
    let tag = read.u8()?;
    Ok(match tag {
        0 => E::Started { kind: read.string()? },
        1 => E::MessageIn { id: read_id(read)?, kind: read.string()?, from: read.string()? },
        2 => E::MessageOut { id: read_id(read)?, kind: read.string()?, to: read.string()? },
        3 => E::StepStarted { step: read.string()?, attempt: read.u32()? },
        4 => E::StepSucceeded { step: read.string()?, attempt: read.u32()? },
        5 => E::StepFailed {
            step: read.string()?,
            attempt: read.u32()?,
            error: read.string()?,
            will_retry: read.bool()?,
        },
        6 => E::StepTimedOut { step: read.string()?, attempt: read.u32()? },
        7 => E::CompensationStarted { step: read.string()?, attempt: read.u32()? },
        8 => E::CompensationSucceeded { step: read.string()? },
        9 => E::CompensationFailed {
            step: read.string()?,
            attempt: read.u32()?,
            error: read.string()?,
            will_retry: read.bool()?,
        },
        10 => E::TimerSet { name: read.string()?, due: Timestamp::from_millis(read.uint()?) },
        11 => E::TimerFired { name: read.string()? },
        12 => E::TimerCancelled { name: read.string()? },
        13 => E::StatusChanged { from: read.string()?, to: read.string()? },
        14 => E::Ignored { kind: read.string()?, reason: read.string()? },
        15 => E::Operator { action: read.string()? },
        16 => E::StopRequested { action: read.string()?, reason: read.string()?, by: read.string()? },
        17 => E::Signal { name: read.string()?, id: read.opt_string()? },
        18 => E::ChildStarted { step: read.string()?, child: read.string()? },
        19 => E::Halted { error: read.string()? },
        20 => E::Note { text: read.string()? },
        other => return Err(read.bad(format!("{other} is not a history event's tag"))),
    })
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};
    use crate::model::{MessageId, Timestamp};
    use crate::store::{HistoryEntry, HistoryEvent as E};

    /// One entry of every event, at times that go back as well as forward.
    fn every_event() -> Vec<HistoryEntry> {
        let events = vec![
            E::Started { kind: "order".into() },
            E::MessageIn { id: MessageId::new(), kind: "saga.start".into(), from: "client".into() },
            E::MessageOut { id: MessageId::new(), kind: "pay".into(), to: "bank".into() },
            E::StepStarted { step: "pay".into(), attempt: 1 },
            E::StepSucceeded { step: "pay".into(), attempt: 2 },
            E::StepFailed { step: "ship".into(), attempt: 3, error: "no van".into(), will_retry: true },
            E::StepTimedOut { step: "ship".into(), attempt: u32::MAX },
            E::CompensationStarted { step: "pay".into(), attempt: 1 },
            E::CompensationSucceeded { step: "pay".into() },
            E::CompensationFailed { step: "pay".into(), attempt: 1, error: "é".into(), will_retry: false },
            E::TimerSet { name: "t".into(), due: Timestamp::from_millis(u64::MAX) },
            E::TimerFired { name: "t".into() },
            E::TimerCancelled { name: String::new() },
            E::StatusChanged { from: "running".into(), to: "failed".into() },
            E::Ignored { kind: "late".into(), reason: "ended".into() },
            E::Operator { action: "retry".into() },
            E::StopRequested { action: "cancel".into(), reason: "asked".into(), by: "operator".into() },
            E::Signal { name: "approve".into(), id: Some("s-1".into()) },
            E::Signal { name: "approve".into(), id: None },
            E::ChildStarted { step: "kid".into(), child: "child/1".into() },
            E::Halted { error: "no version 2".into() },
            E::Note { text: "hello".into() },
        ];
        let times = [1_796_367_269_152u64, 1_796_367_269_152, 1_796_367_269_168, 5, 0, u64::MAX, 7];
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| HistoryEntry { at: Timestamp::from_millis(times[i % times.len()]), event })
            .collect()
    }

    #[test]
    fn every_event_reads_back_as_written() {
        let entries = every_event();
        let refs: Vec<&HistoryEntry> = entries.iter().collect();
        let bytes = encode(&refs);
        assert_eq!(decode(&bytes).unwrap(), entries);
        let json = serde_json::to_vec(&entries).unwrap();
        assert!(bytes.len() * 3 < json.len(), "{} bytes against {} of JSON", bytes.len(), json.len());
    }

    #[test]
    fn a_cut_or_unknown_entry_is_an_error() {
        let entries = every_event();
        let refs: Vec<&HistoryEntry> = entries.iter().collect();
        let bytes = encode(&refs);
        for cut in 1..bytes.len() {
            // A cut may fall between two entries, where what is left is whole.
            if let Ok(read) = decode(&bytes[..cut]) {
                assert!(read.len() < entries.len() && read[..] == entries[..read.len()]);
            }
        }
        assert!(decode(&[1, 200]).is_err(), "an unknown tag");
    }
}
