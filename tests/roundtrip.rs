//! Whatever text goes in, a browser either gets exactly the event that was
//! sent or the call is refused: never an extra field, never an extra event.

use dstar::datastar::{PatchElements, PatchSignals};
use dstar::{Event, FormattedEvent, SseResponse, format_event, testing, write_framed};
use proptest::prelude::*;
use std::io;
use std::time::Duration;

/// Text rich in what breaks event streams: every line ending, NUL, colons
/// and spaces at line starts, a BOM, non-ASCII, and anything else.
fn nasty_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            "\r", "\n", "\r\n", "\n\r", "\0", ":", " ", "data: x", "event: y", "id: z",
            "retry: 1", "\u{feff}", "é", "😀", "\u{2028}",
        ])
        .prop_map(str::to_string),
        2 => "[a-z]{1,4}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

#[derive(Clone, Debug)]
struct Sent {
    event_type: String,
    id: Option<String>,
    retry_ms: Option<u64>,
    data: Vec<String>,
}

fn sent_event() -> impl Strategy<Value = Sent> {
    (
        prop_oneof![1 => Just(String::new()), 3 => nasty_text()],
        prop::option::of(nasty_text()),
        prop::option::of(prop_oneof![Just(1000u64), 0..5000u64]),
        prop::collection::vec(nasty_text(), 0..4),
    )
        .prop_map(|(event_type, id, retry_ms, data)| Sent {
            event_type,
            id,
            retry_ms,
            data,
        })
}

fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

fn refused(sent: &Sent) -> bool {
    let breaks = |s: &str| s.contains(['\r', '\n']);
    breaks(&sent.event_type)
        || sent
            .id
            .as_deref()
            .is_some_and(|id| breaks(id) || id.contains('\0'))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_gives_back_exactly_what_was_sent(events in prop::collection::vec(sent_event(), 1..5)) {
        let mut sse = SseResponse::new().start(Vec::new()).unwrap();
        let mut expected = Vec::new();
        let mut last_event_id = String::new();
        let mut last_retry = None;
        for sent in &events {
            let mut event = Event::new(&sent.event_type).data(&sent.data);
            if let Some(id) = &sent.id {
                event = event.id(id);
            }
            if let Some(ms) = sent.retry_ms {
                event = event.retry(Duration::from_millis(ms));
            }
            match sse.send_event(event) {
                Err(err) => {
                    prop_assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
                    prop_assert!(refused(sent), "refused a valid event: {:?}", sent);
                    prop_assert!(!sse.is_closed());
                    continue;
                }
                Ok(_) => prop_assert!(!refused(sent), "sent an invalid event: {:?}", sent),
            }
            if let Some(id) = &sent.id {
                last_event_id.clone_from(id);
            }
            // A plain event writes every retry, Datastar's default 1000 too.
            if sent.retry_ms.is_some() {
                last_retry = sent.retry_ms;
            }
            if sent.data.is_empty() {
                continue; // no data: the browser dispatches nothing
            }
            let data: Vec<String> = sent.data.iter().map(|d| normalise(d)).collect();
            let event_type = if sent.event_type.is_empty() { "message" } else { sent.event_type.as_str() };
            let mut event = testing::MessageEvent::new(event_type, data.join("\n"))
                .with_last_event_id(last_event_id.clone())
                .with_retry(sent.retry_ms);
            event.id = sent.id.clone();
            expected.push(event);
        }
        let bytes = sse.finish().unwrap();
        let response = testing::decode_response(&bytes).unwrap();
        prop_assert!(response.finished);
        prop_assert!(response.rest.is_empty());
        prop_assert!(!response.stream.pending);
        prop_assert!(response.stream.comments.is_empty());
        prop_assert_eq!(&response.stream.events, &expected);
        prop_assert_eq!(&response.stream.last_event_id, &last_event_id);
        prop_assert_eq!(response.stream.retry, last_retry);
    }

    #[test]
    fn comments_never_become_events(text in nasty_text()) {
        let mut sse = SseResponse::new().start(Vec::new()).unwrap();
        sse.send_comment(&text).unwrap();
        let response = testing::decode_response(&sse.finish().unwrap()).unwrap();
        prop_assert!(response.events().is_empty());
        prop_assert!(!response.stream.pending);
        let lines: Vec<String> = normalise(&text).split('\n').map(str::to_string).collect();
        prop_assert_eq!(&response.stream.comments, &lines);
    }

    #[test]
    fn formatted_events_parse_back_exactly(sent in sent_event()) {
        let mut event = Event::new(&sent.event_type).data(&sent.data);
        if let Some(id) = &sent.id {
            event = event.id(id);
        }
        if let Some(ms) = sent.retry_ms {
            event = event.retry(Duration::from_millis(ms));
        }
        if let Ok(formatted) = FormattedEvent::new(&event) {
            let parsed = FormattedEvent::parse(formatted.as_str().to_string()).unwrap();
            prop_assert_eq!(parsed, formatted);
        }
    }

    #[test]
    fn parsed_text_is_never_more_than_one_event(text in nasty_text()) {
        // Whatever `parse` accepts, a browser reads as at most one event.
        if let Ok(event) = FormattedEvent::parse(text) {
            let stream = testing::parse_event_stream(event.as_str().as_bytes());
            prop_assert!(stream.events.len() <= 1);
            prop_assert!(!stream.pending);
            prop_assert!(stream.comments.is_empty());
        }
    }

    #[test]
    fn framed_datastar_events_are_the_formatted_ones_in_one_chunk(
        text in prop_oneof![3 => "[ -~]{0,300}", 2 => nasty_text()],
        id in prop::option::of(nasty_text()),
        retry_ms in prop::option::of(0..5000u64),
        signals in any::<bool>(),
    ) {
        // `write_framed` takes a path of its own for the Datastar events
        // without options; it must give exactly the general formatter's
        // bytes, or the same refusal, whatever the text, id and retry.
        let elements = PatchElements::new(&text);
        let patch = PatchSignals::new(&text);
        let (mut elements, mut patch) = match &id {
            Some(id) => (elements.id(id), patch.id(id)),
            None => (elements, patch),
        };
        if let Some(ms) = retry_ms {
            elements = elements.retry(Duration::from_millis(ms));
            patch = patch.retry(Duration::from_millis(ms));
        }
        let (formatted, framed) = if signals {
            let mut framed = b"before".to_vec();
            (format_event(&patch), write_framed(&mut framed, &patch).map(|()| framed))
        } else {
            let mut framed = b"before".to_vec();
            (format_event(&elements), write_framed(&mut framed, &elements).map(|()| framed))
        };
        match (formatted, framed) {
            (Ok(text), Ok(framed)) => {
                let expected = [
                    b"before".as_slice(),
                    format!("{:x}\r\n", text.len()).as_bytes(),
                    text.as_bytes(),
                    b"\r\n",
                ]
                .concat();
                prop_assert_eq!(framed, expected);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.kind(), b.kind()),
            (a, b) => prop_assert!(false, "formatted {:?}, framed {:?}", a, b.map(String::from_utf8)),
        }
    }
}
