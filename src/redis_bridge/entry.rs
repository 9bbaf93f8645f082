//! Stream entries: their ids, and decoding what a bridge adds (anything
//! else is malformed).

use std::fmt;

use redis::Value;

use crate::event::FormattedEvent;

/// A stream entry id, `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct EntryId {
    pub(super) ms: u64,
    pub(super) seq: u64,
}

impl EntryId {
    pub(super) const ZERO: EntryId = EntryId { ms: 0, seq: 0 };

    pub(super) fn parse(id: &str) -> Option<EntryId> {
        let (ms, seq) = id.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(EntryId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The smallest id after this one.
    pub(super) fn next(self) -> EntryId {
        match self.seq.checked_add(1) {
            Some(seq) => EntryId { ms: self.ms, seq },
            None => EntryId {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One entry read from the stream: its id, and its topic and event if it
/// is what a bridge adds.
pub(super) struct Entry {
    pub(super) id: EntryId,
    pub(super) decoded: Option<(Option<String>, FormattedEvent)>,
}

/// The entries of an `XREAD` answer for one stream.
pub(super) fn parse_read(value: &Value) -> Option<Vec<Entry>> {
    // RESP2: [[key, entries]]; RESP3: {key: entries}.
    match value {
        Value::Array(streams) => match streams.as_slice() {
            [Value::Array(stream)] => match stream.as_slice() {
                [_key, entries] => parse_entries(entries),
                _ => None,
            },
            _ => None,
        },
        Value::Map(streams) => match streams.as_slice() {
            [(_key, entries)] => parse_entries(entries),
            _ => None,
        },
        _ => None,
    }
}

/// The entries of an `XRANGE` answer: `[[id, [field, value, ...]], ...]`.
pub(super) fn parse_entries(value: &Value) -> Option<Vec<Entry>> {
    let Value::Array(entries) = value else {
        return None;
    };
    entries
        .iter()
        .map(|entry| {
            let Value::Array(parts) = entry else {
                return None;
            };
            let [id, fields] = parts.as_slice() else {
                return None;
            };
            let id = EntryId::parse(text(id)?)?;
            let decoded = match fields {
                Value::Array(fields) => decode_entry(id, fields),
                _ => None,
            };
            Some(Entry { id, decoded })
        })
        .collect()
}

/// An entry's topic and event, if its fields are exactly what a bridge
/// adds: `e`, the event without id, after an optional `t`, the topic.
pub(super) fn decode_entry(
    id: EntryId,
    fields: &[Value],
) -> Option<(Option<String>, FormattedEvent)> {
    let fields: Vec<&str> = fields.iter().map(text).collect::<Option<_>>()?;
    let (topic, event) = match fields.as_slice() {
        ["e", event] => (None, *event),
        ["t", topic, "e", event] => (Some(topic.to_string()), *event),
        _ => return None,
    };
    let event = FormattedEvent::parse(event.to_string()).ok()?;
    if event.id().is_some() {
        return None;
    }
    Some((topic, event.with_id(&id.to_string()).ok()?))
}

pub(super) fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn entry_ids_parse_and_order_as_redis_orders_them() {
        let id = |s| EntryId::parse(s).unwrap();
        assert!(id("1-0") < id("1-1"));
        assert!(id("1-99") < id("2-0"));
        assert!(id("10-0") > id("9-5"));
        assert_eq!(id("1733-7").to_string(), "1733-7");
        assert_eq!(id("5-18446744073709551615").next(), id("6-0"));
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            "+1-0",
            "1 -0",
            "99999999999999999999-0",
        ] {
            assert_eq!(EntryId::parse(bad), None, "{bad:?}");
        }
        // The hub's own ids are not stream ids.
        assert_eq!(EntryId::parse("3f9a0c1b2d4e5f60-17"), None);
    }

    #[test]
    fn entries_decode_with_the_entry_id_as_event_id() {
        let value = Value::Array(vec![
            entry("5-1", &["e", "event: chat\ndata: hi\n\n"]),
            entry("5-2", &["t", "room", "e", "data: x\n\n"]),
        ]);
        let entries = parse_entries(&value).unwrap();
        let (topic, event) = entries[0].decoded.clone().unwrap();
        assert_eq!(topic, None);
        assert_eq!(event.as_str(), "event: chat\nid: 5-1\ndata: hi\n\n");
        let (topic, event) = entries[1].decoded.clone().unwrap();
        assert_eq!(topic.as_deref(), Some("room"));
        assert_eq!(event.as_str(), "id: 5-2\ndata: x\n\n");
    }

    #[test]
    fn anything_else_is_malformed() {
        let bad: &[&[&str]] = &[
            &[],
            &["e"],
            &["x", "data: x\n\n"],
            &["e", "data: x\n\n", "t", "room"],
            &["e", "data: x\n\ndata: y\n\n"],
            &["e", "data: x\r\n\n"],
            &["e", "data: x\n"],
            &["e", "id: 7\ndata: x\n\n"],
            &["e", "event: x\nevent: y\ndata: z\n\n"],
            &["e", "retry: 0100\ndata: x\n\n"],
            &["e", ": comment\ndata: x\n\n"],
            &["t", "a", "t", "b", "e", "data: x\n\n"],
        ];
        for fields in bad {
            let value = Value::Array(vec![entry("1-1", fields)]);
            let entries = parse_entries(&value).unwrap();
            assert!(entries[0].decoded.is_none(), "{fields:?}");
        }
        let not_utf8 = Value::Array(vec![Value::Array(vec![
            bulk("1-1"),
            Value::Array(vec![
                bulk("e"),
                Value::BulkString(b"data: \xff\n\n".to_vec()),
            ]),
        ])]);
        assert!(parse_entries(&not_utf8).unwrap()[0].decoded.is_none());
        // Not entries at all.
        assert!(parse_entries(&Value::Int(3)).is_none());
        assert!(parse_entries(&Value::Array(vec![entry("nope", &["e", "data: x\n\n"])])).is_none());
    }

    #[test]
    fn xread_answers_parse_in_both_protocols() {
        let entries = Value::Array(vec![entry("1-1", &["e", "data: x\n\n"])]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("s"), entries.clone()])]);
        let resp3 = Value::Map(vec![(bulk("s"), entries)]);
        for value in [resp2, resp3] {
            let parsed = parse_read(&value).unwrap();
            assert_eq!(parsed.len(), 1);
            assert_eq!(parsed[0].id, EntryId { ms: 1, seq: 1 });
        }
        assert!(parse_read(&Value::Okay).is_none());
    }
}
