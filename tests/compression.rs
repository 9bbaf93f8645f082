//! Compressed streams: negotiation on the wire, round trips decoded chunk
//! by chunk, writers failing at every byte, and the identity fallback.

mod common;

use common::fail_at_every_byte;
use dstar::compression::{Compression, Encoding};
use dstar::testing::{self, ContentDecoder};
use dstar::{Event, FormattedEvent, Request, SseConnection, SseResponse};
use proptest::prelude::*;
use std::io::{self, Write};
use std::time::Duration;

/// The codings this build has.
fn codecs() -> Vec<Encoding> {
    Encoding::ALL
        .into_iter()
        .filter(|e| e.is_available())
        .collect()
}

fn request(accept_encoding: Option<&str>, version: &str) -> Request {
    let mut head = format!("GET /feed HTTP/{version}\r\nHost: x\r\n");
    if let Some(value) = accept_encoding {
        head.push_str(&format!("Accept-Encoding: {value}\r\n"));
    }
    head.push_str("\r\n");
    Request::parse(head.as_bytes()).unwrap()
}

/// A response for `request`, compressed if it negotiates a coding.
fn response(request: &Request, settings: Compression) -> SseResponse {
    SseResponse::for_request(request)
        .without_date()
        .compression(settings)
}

fn only(encoding: Encoding) -> Compression {
    Compression::new().prefer(&[encoding])
}

/// The head of a response, split into lines.
fn head_lines(bytes: &[u8]) -> Vec<String> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    String::from_utf8(bytes[..end].to_vec())
        .unwrap()
        .split("\r\n")
        .map(str::to_string)
        .collect()
}

fn a_few_events<W: Write>(sse: &mut SseConnection<W>) -> io::Result<()> {
    sse.send_event(Event::new("a").data("one\ntwo").id("1"))?;
    sse.send_comment("hi")?;
    sse.check_connection()?;
    sse.send_event(Event::message("three"))?;
    Ok(())
}

#[test]
fn a_client_that_accepts_nothing_we_have_gets_todays_bytes() {
    for header in [
        None,
        Some(""),
        Some("identity"),
        Some("deflate, compress"),
        Some("br;q=0, gzip;q=0, zstd;q=0, *;q=0"),
        Some("identity;q=1, br;q=0.5, gzip;q=0.5, zstd;q=0.5"),
        Some("garbage;;;, q=, ;"),
    ] {
        for version in ["1.1", "1.0"] {
            let request = request(header, version);
            let plain = {
                let mut sse = SseResponse::for_request(&request)
                    .without_date()
                    .start(Vec::new())
                    .unwrap();
                a_few_events(&mut sse).unwrap();
                sse.finish().unwrap()
            };
            let negotiated = {
                let mut sse = response(&request, Compression::new())
                    .start(Vec::new())
                    .unwrap();
                assert_eq!(sse.content_encoding(), None, "{header:?}");
                a_few_events(&mut sse).unwrap();
                sse.finish().unwrap()
            };
            // The same bytes, but for the Vary line when codings were on offer.
            let vary = b"Vary: Accept-Encoding\r\n";
            let without_vary = match negotiated.windows(vary.len()).position(|w| w == vary) {
                Some(at) => [&negotiated[..at], &negotiated[at + vary.len()..]].concat(),
                None => negotiated.clone(),
            };
            assert_eq!(
                without_vary, plain,
                "Accept-Encoding {header:?}, HTTP/{version}"
            );
            let offered = Compression::new().is_enabled();
            assert_eq!(without_vary != negotiated, offered, "{header:?}");
            // Turned off for this response: exactly today's bytes.
            let off = {
                let mut sse = response(&request, Compression::off())
                    .start(Vec::new())
                    .unwrap();
                a_few_events(&mut sse).unwrap();
                sse.finish().unwrap()
            };
            assert_eq!(off, plain);
        }
    }
}

#[test]
fn a_compressed_response_says_so_and_decodes() {
    for encoding in codecs() {
        for version in ["1.1", "1.0"] {
            let request = request(Some("gzip, deflate, br, zstd"), version);
            let mut sse = response(&request, only(encoding))
                .start(Vec::new())
                .unwrap();
            assert_eq!(sse.content_encoding(), Some(encoding));
            a_few_events(&mut sse).unwrap();
            let bytes = sse.finish().unwrap();
            let head = head_lines(&bytes);
            assert!(head.contains(&format!("Content-Encoding: {}", encoding.token())));
            assert!(head.contains(&"Vary: Accept-Encoding".to_string()));
            assert!(head.contains(&"Content-Type: text/event-stream".to_string()));
            let decoded = testing::decode_response(&bytes).unwrap();
            assert_eq!(decoded.chunked, version == "1.1");
            assert_eq!(decoded.finished, version == "1.1");
            let data: Vec<&str> = decoded.events().iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, ["one\ntwo", "three"], "{encoding} HTTP/{version}");
            assert_eq!(decoded.stream.comments, ["hi", ""]);
            // What was sent is not the event stream itself. (zstd may store
            // an event this small as a raw block, so its text can show.)
            let body_start = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert_ne!(&bytes[body_start..], &decoded.body[..], "{encoding}");
        }
    }
}

#[test]
fn a_content_encoding_of_the_applications_own_turns_compression_off() {
    let request = request(Some("br, gzip, zstd"), "1.1");
    let mut sse = response(&request, Compression::new())
        .header("Content-Encoding", "identity")
        .start(Vec::new())
        .unwrap();
    assert_eq!(sse.content_encoding(), None);
    sse.send_event(Event::message("x")).unwrap();
    let bytes = sse.finish().unwrap();
    let head = head_lines(&bytes);
    assert!(!head.iter().any(|l| l.starts_with("Vary")));
    assert!(String::from_utf8_lossy(&bytes).contains("data: x"));
}

#[test]
fn the_client_weights_and_the_servers_order_choose_the_coding() {
    let all = codecs();
    if all.len() < 2 {
        return;
    }
    let (first, second) = (all[0], all[1]);
    let pick = |header: &str, settings: Compression| {
        response(&request(Some(header), "1.1"), settings)
            .start(Vec::new())
            .unwrap()
            .content_encoding()
    };
    let both = format!("{}, {}", first.token(), second.token());
    assert_eq!(pick(&both, Compression::new()), Some(first));
    assert_eq!(
        pick(&both, Compression::new().prefer(&[second, first])),
        Some(second)
    );
    let weighed = format!("{};q=0.4, {};q=0.8", first.token(), second.token());
    assert_eq!(pick(&weighed, Compression::new()), Some(second));
    let refused = format!("{};q=0, *", first.token());
    assert_eq!(pick(&refused, Compression::new()), Some(second));
}

#[test]
fn finishing_ends_the_compressed_stream_and_dropping_leaves_it_cut_short() {
    for encoding in codecs() {
        let start = || {
            let mut sse = SseResponse::new()
                .accept_encoding(encoding.token())
                .compression(Compression::new())
                .start(Vec::new())
                .unwrap();
            sse.send_event(Event::message("kept")).unwrap();
            sse
        };
        let finished = start().finish().unwrap();
        let response = testing::decode_response(&finished).unwrap();
        assert!(response.finished);
        assert_eq!(response.events()[0].data, "kept");
        let mut decoder = ContentDecoder::new(Some(encoding.token())).unwrap();
        decoder.push(&response.chunks.concat()).unwrap();
        decoder.finish().unwrap();

        // Not finished: no terminating chunk, and the compressed stream has
        // no end, though every event sent decodes.
        let cut = start().into_inner();
        let response = testing::decode_response(&cut).unwrap();
        assert!(!response.finished);
        assert_eq!(response.events()[0].data, "kept");
        let mut decoder = ContentDecoder::new(Some(encoding.token())).unwrap();
        decoder.push(&response.chunks.concat()).unwrap();
        assert!(decoder.finish().is_err(), "{encoding}");
    }
}

#[test]
fn a_refused_event_leaves_the_compressor_untouched() {
    for encoding in codecs() {
        let mut sse =
            SseConnection::body_only_compressed(Vec::new(), encoding, &Compression::new()).unwrap();
        sse.send_event(Event::message("before")).unwrap();
        let len = sse.get_ref().len();
        let refused = sse
            .send_event(Event::new("bad\ntype").data("x"))
            .unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
        let refused = sse
            .send_all([Event::message("a"), Event::new("bad\r").data("b")])
            .unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
        sse.queue_event(Event::message("queued")).unwrap();
        assert!(sse.queue_event(Event::message("q").id("bad\0")).is_err());
        assert_eq!(sse.get_ref().len(), len, "nothing was written");
        sse.send_all([Event::message("all 1"), Event::message("all 2")])
            .unwrap();
        sse.send_event(Event::message("after")).unwrap();
        let bytes = sse.finish().unwrap();
        let mut decoder = ContentDecoder::new(Some(encoding.token())).unwrap();
        decoder.push(&bytes).unwrap();
        decoder.finish().unwrap();
        let data: Vec<String> = testing::parse_event_stream(decoder.decoded())
            .events
            .into_iter()
            .map(|e| e.data)
            .collect();
        assert_eq!(data, ["before", "queued", "all 1", "all 2", "after"]);
    }
}

#[test]
fn a_codec_missing_from_this_build_is_unsupported() {
    for encoding in Encoding::ALL {
        let made = SseConnection::body_only_compressed(Vec::new(), encoding, &Compression::new());
        match made {
            Ok(sse) => {
                assert!(encoding.is_available());
                assert_eq!(sse.content_encoding(), Some(encoding));
            }
            Err(e) => {
                assert!(!encoding.is_available());
                assert_eq!(e.kind(), io::ErrorKind::Unsupported);
            }
        }
        // Never negotiated when missing, whatever the client says.
        let sse = SseResponse::new()
            .accept_encoding(encoding.token())
            .compression(Compression::new().prefer(&[encoding]))
            .start(Vec::new())
            .unwrap();
        assert_eq!(sse.content_encoding().is_some(), encoding.is_available());
    }
}

#[test]
fn large_and_incompressible_events_round_trip() {
    // Pseudo-random text larger than any internal block or window.
    let mut state = 0x9e37_79b9_u32;
    let noise: String = (0..300_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            char::from(b' ' + (state % 94) as u8)
        })
        .collect();
    for encoding in codecs() {
        let mut sse = SseResponse::new()
            .accept_encoding(encoding.token())
            .compression(Compression::new())
            .start(Vec::new())
            .unwrap();
        sse.send_event(Event::message(noise.as_str())).unwrap();
        sse.send_event(Event::message("small")).unwrap();
        sse.send_event(Event::message(noise.as_str())).unwrap();
        let response = testing::decode_response(&sse.finish().unwrap()).unwrap();
        let events = response.events();
        assert_eq!(events.len(), 3, "{encoding}");
        assert_eq!(events[0].data, noise);
        assert_eq!(events[1].data, "small");
        assert_eq!(events[2].data, noise);
    }
}

// --- writers failing at every byte ------------------------------------------

/// A session whose stream is compressed in `encoding`.
fn compressed(encoding: Encoding) -> SseResponse {
    SseResponse::new()
        .without_date()
        .accept_encoding("gzip, deflate, br, zstd")
        .compression(Compression::new().prefer(&[encoding]))
}

#[test]
fn a_failure_at_any_byte_of_a_compressed_stream_closes_it_and_nothing_follows() {
    for encoding in codecs() {
        fail_at_every_byte(|| compressed(encoding), &encoding.to_string());
    }
}

// --- round trips, decoded chunk by chunk --------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Event(String, Vec<String>, Option<String>),
    Comment(String),
    Heartbeat,
    Queue(Vec<String>),
    SendAll(Vec<(String, String)>),
    Formatted(String),
    Repeat(usize),
}

fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop::sample::select(vec![
            "\r", "\n", "\r\n", ":", " ", "data: x", "<tr id=\"row-1\"><td>", "</td></tr>",
            "é", "😀", "\u{feff}", "\0",
        ])
        .prop_map(str::to_string),
        2 => "[a-z0-9 ]{1,12}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|p| p.concat())
}

fn op() -> impl Strategy<Value = Op> {
    let event_type = prop_oneof![3 => "[a-z-]{0,12}", 1 => text()];
    prop_oneof![
        6 => (event_type.clone(), prop::collection::vec(text(), 0..4), prop::option::of(text()))
            .prop_map(|(t, d, id)| Op::Event(t, d, id)),
        2 => text().prop_map(Op::Comment),
        1 => Just(Op::Heartbeat),
        2 => prop::collection::vec(text(), 1..4).prop_map(Op::Queue),
        2 => prop::collection::vec((event_type, text()), 1..4).prop_map(Op::SendAll),
        1 => text().prop_map(Op::Formatted),
        2 => (1usize..4).prop_map(Op::Repeat),
    ]
}

/// A table like a Datastar page re-renders, `n` rows.
fn table(n: usize) -> String {
    (0..n * 10)
        .map(|i| format!("<tr id=\"row-{i}\"><td>{}</td></tr>", i * 7 % 13))
        .collect()
}

fn apply<W: Write>(sse: &mut SseConnection<W>, op: &Op) -> Result<(), io::ErrorKind> {
    let result = match op {
        Op::Event(t, data, id) => {
            let mut event = Event::new(t).data(data);
            if let Some(id) = id {
                event = event.id(id);
            }
            sse.send_event(event).map(drop)
        }
        Op::Comment(text) => sse.send_comment(text).map(drop),
        Op::Heartbeat => sse.check_connection().map(drop),
        Op::Queue(texts) => texts
            .iter()
            .try_for_each(|t| sse.queue_event(Event::message(t.as_str())).map(drop))
            .and_then(|()| sse.flush().map(drop)),
        Op::SendAll(events) => sse
            .send_all(events.iter().map(|(t, d)| Event::new(t).data(d.as_str())))
            .map(drop),
        Op::Formatted(data) => {
            let formatted = FormattedEvent::new(&Event::new("f").data(data.as_str())).unwrap();
            sse.send_formatted(&formatted).map(drop)
        }
        Op::Repeat(n) => sse
            .send_event(Event::new("morph").data(table(*n).as_str()))
            .map(drop),
    };
    result.map_err(|e| e.kind())
}

/// Runs `ops` on an identity stream and a compressed one side by side, then
/// decodes the compressed one chunk by chunk (or write by write, when
/// close-delimited): after every chunk the decoded text is a prefix of the
/// identity stream that ends where an event ends, and after every call it
/// is exactly the identity stream so far, so no event is held back, split,
/// or written raw.
fn round_trip(encoding: Encoding, chunked: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let start = |settings: Compression| {
        let mut response = SseResponse::new()
            .without_date()
            .accept_encoding(encoding.token())
            .compression(settings);
        if !chunked {
            response = response.close_delimited();
        }
        response.start(Vec::new()).unwrap()
    };
    let mut plain = start(Compression::off());
    let mut packed = start(Compression::new().prefer(&[encoding]));
    prop_assert_eq!(packed.content_encoding(), Some(encoding));
    let head_len = packed.get_ref().len();
    // After each call: the compressed wire length and the identity body.
    let mut marks = vec![(head_len, Vec::new())];
    let plain_head = plain.get_ref().len();
    for op in ops {
        let a = apply(&mut plain, op);
        let b = apply(&mut packed, op);
        prop_assert_eq!(a, b, "{:?}", op);
        let body = if chunked {
            testing::decode_chunked(&plain.get_ref()[plain_head..])
                .unwrap()
                .chunks
                .concat()
        } else {
            plain.get_ref()[plain_head..].to_vec()
        };
        marks.push((packed.get_ref().len(), body));
    }
    let wire = packed.finish().unwrap();
    let identity_body = marks.last().unwrap().1.clone();

    let mut decoder = ContentDecoder::new(Some(encoding.token())).unwrap();
    let mut fed = 0; // chunks (or bytes, close-delimited) fed so far
    for (end, expected) in &marks[1..] {
        let pieces: Vec<Vec<u8>> = if chunked {
            let decoded = testing::decode_chunked(&wire[head_len..*end]).unwrap();
            prop_assert!(decoded.rest.is_empty(), "a call ended inside a chunk");
            let new = decoded.chunks[fed..].to_vec();
            fed = decoded.chunks.len();
            new
        } else {
            let new = vec![wire[head_len + fed..*end].to_vec()];
            fed = *end - head_len;
            new
        };
        for piece in pieces {
            decoder.push(&piece).unwrap();
            let so_far = decoder.decoded();
            prop_assert!(
                identity_body.starts_with(so_far),
                "decoded bytes that were never sent"
            );
            // Each chunk ends where an event (or comment) ends.
            prop_assert!(
                !testing::parse_event_stream(so_far).pending,
                "a chunk ended inside an event"
            );
        }
        prop_assert_eq!(decoder.decoded(), &expected[..], "held back after a call");
    }
    // The end of the compressed stream, and nothing more.
    let rest = if chunked {
        let decoded = testing::decode_chunked(&wire[head_len..]).unwrap();
        prop_assert!(decoded.finished);
        decoded.chunks[fed..].concat()
    } else {
        wire[head_len + fed..].to_vec()
    };
    decoder.push(&rest).unwrap();
    decoder.finish().unwrap();
    prop_assert_eq!(decoder.decoded(), &identity_body[..]);
    let response = testing::decode_response(&wire).unwrap();
    prop_assert_eq!(response.body, identity_body);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn compressed_streams_decode_after_every_chunk(
        ops in prop::collection::vec(op(), 0..12),
        chunked in any::<bool>(),
    ) {
        for encoding in codecs() {
            round_trip(encoding, chunked, &ops)?;
        }
    }
}

#[test]
fn a_long_morphing_stream_stays_small_and_exact() {
    for encoding in codecs() {
        let ops: Vec<Op> = (0..200)
            .map(|i| match i % 50 {
                0 => Op::Heartbeat,
                _ => Op::Repeat(2 + i % 3),
            })
            .collect();
        round_trip(encoding, true, &ops).unwrap();
        let mut sse =
            SseConnection::body_only_compressed(Vec::new(), encoding, &Compression::new()).unwrap();
        let mut plain = 0;
        for _ in 0..100 {
            let html = table(4);
            plain += dstar::format_event(&Event::new("morph").data(html.as_str()))
                .unwrap()
                .len();
            sse.send_event(Event::new("morph").data(html.as_str()))
                .unwrap();
        }
        let packed = sse.finish().unwrap().len();
        assert!(
            packed * 20 < plain,
            "{encoding}: {packed} bytes for {plain}: the window does not persist"
        );
    }
}

#[test]
fn hub_subscribers_each_get_their_own_compressed_stream() {
    use dstar::broadcast::{Config, Hub, Subscription};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    let hub = Hub::new(Config::new().heartbeat(Duration::from_secs(60)));
    let mut outputs = Vec::new();
    let mut settings = vec![Compression::off()];
    settings.extend(codecs().into_iter().map(only));
    for (i, settings) in settings.iter().enumerate() {
        let out = Shared::default();
        let sse = SseResponse::new()
            .accept_encoding("gzip, deflate, br, zstd")
            .compression(*settings)
            .start(out.clone())
            .unwrap();
        let encoding = sse.content_encoding();
        hub.subscribe(sse, Subscription::new().key(format!("tab-{i}")))
            .unwrap();
        outputs.push((encoding, out));
    }
    assert_eq!(hub.stats().compressed, codecs().len());
    for n in 0..20 {
        hub.publish(Event::new("morph").data(table(2 + n % 2).as_str()))
            .unwrap();
    }
    hub.stop();
    assert_eq!(hub.stats().compressed, 0);
    for (encoding, out) in outputs {
        let bytes = out.0.lock().unwrap().clone();
        let response = testing::decode_response(&bytes).unwrap();
        assert_eq!(
            response.header("content-encoding"),
            encoding.map(Encoding::token)
        );
        assert_eq!(response.events().len(), 20, "{encoding:?}");
        assert_eq!(response.events()[19].data, table(3));
    }
}

/// A stream cut short (as `Hub::stop` leaves it) decodes whole even when
/// everything arrives in one read: brotli's decoder reports that it needs
/// input while a full output buffer's worth is still pending, so a decoder
/// that stops there returned 4 KiB of a 90 KiB body.
#[test]
fn a_cut_stream_read_in_one_piece_decodes_every_event() {
    for encoding in codecs() {
        let mut sse = SseResponse::new()
            .accept_encoding(encoding.token())
            .compression(only(encoding))
            .start(Vec::new())
            .unwrap();
        for n in 0..20 {
            sse.send_event(Event::new("morph").data(table(2 + n % 2).as_str()))
                .unwrap();
        }
        let bytes = sse.into_inner(); // no terminating chunk, no end of stream
        let response = testing::decode_response(&bytes).unwrap();
        assert!(!response.finished);
        assert_eq!(response.events().len(), 20, "{encoding:?}");
        assert_eq!(response.events()[19].data, table(3), "{encoding:?}");
    }
}
