//! Fuzzes the event encoder against the spec decoder, and the decoders
//! against arbitrary bytes.
//!
//! The input is cut at 0xFF bytes into an event type, an id and data pieces
//! (0xFF never occurs in UTF-8, so every piece is free text). Checked: the
//! event is either refused with `InvalidInput` for a reason the docs give, or
//! a browser-exact decoding of the bytes gives back exactly the event sent;
//! and neither `testing::decode_response` nor `FormattedEvent::parse`
//! panics on the raw input, whatever it is.
//!
//! Run it from the repository root with `cargo +nightly fuzz run event`.

#![no_main]

use std::io;

use dstar::{Event, FormattedEvent, SseResponse, testing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = testing::decode_response(input);
    if let Ok(event) = FormattedEvent::parse(String::from_utf8_lossy(input).into_owned()) {
        let stream = testing::parse_event_stream(event.as_str().as_bytes());
        assert!(stream.events.len() <= 1 && !stream.pending);
    }

    let mut parts = input.split(|&b| b == 0xff).map(String::from_utf8_lossy);
    let event_type = parts.next().unwrap_or_default();
    let id = parts.next();
    let data: Vec<String> = parts.map(|p| p.into_owned()).collect();

    let mut event = Event::new(&event_type).data(&data);
    if let Some(id) = &id {
        event = event.id(id);
    }
    let mut sse = SseResponse::new()
        .start(Vec::new())
        .expect("a Vec takes the head");
    let breaks = |s: &str| s.contains(['\r', '\n']);
    let invalid = breaks(&event_type)
        || id
            .as_deref()
            .is_some_and(|id| breaks(id) || id.contains('\0'));
    match sse.send_event(event) {
        Err(err) => {
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(invalid, "refused a valid event");
            return;
        }
        Ok(_) => assert!(!invalid, "sent an invalid event"),
    }
    let bytes = sse.finish().expect("a Vec takes everything");
    let response = testing::decode_response(&bytes).expect("our own output decodes");
    assert!(response.finished && response.stream.comments.is_empty());
    if data.is_empty() {
        assert!(response.events().is_empty());
        return;
    }
    let [received] = response.events() else {
        panic!("one event sent, {} received", response.events().len());
    };
    let expected_type = if event_type.is_empty() {
        "message"
    } else {
        &event_type
    };
    assert_eq!(received.event_type, expected_type);
    let normalised: Vec<String> = data
        .iter()
        .map(|d| d.replace("\r\n", "\n").replace('\r', "\n"))
        .collect();
    assert_eq!(received.data, normalised.join("\n"));
    assert_eq!(received.id.as_deref(), id.as_deref());
});
