//! Exact bytes on the wire: the head, events, comments and the end of a
//! response, and how many writes and flushes each call makes.

mod common;

use common::Recorder;
use dstar::{Event, SseConnection, SseResponse, testing};
use std::io;
use std::time::Duration;

const HEAD: &str = "HTTP/1.1 200 OK\r\n\
                    Content-Type: text/event-stream\r\n\
                    Cache-Control: no-cache\r\n\
                    Transfer-Encoding: chunked\r\n\
                    \r\n";

fn started() -> SseConnection<Vec<u8>> {
    SseResponse::new().without_date().start(Vec::new()).unwrap()
}

fn written(sse: SseConnection<Vec<u8>>) -> String {
    String::from_utf8(sse.into_inner()).unwrap()
}

/// `payload` framed as one chunk.
fn chunk(payload: &str) -> String {
    format!("{:x}\r\n{payload}\r\n", payload.len())
}

#[test]
fn head_is_exact_and_has_no_connection_header() {
    assert_eq!(written(started()), HEAD);
}

#[test]
fn head_carries_a_date_by_default() {
    let sse = SseConnection::start(Vec::new()).unwrap();
    let response = testing::decode_response(sse.get_ref()).unwrap();
    let date = response.header("date").unwrap();
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    assert_eq!(date.len(), 29, "{date}");
    assert!(date.ends_with(" GMT"), "{date}");
    assert_eq!(response.header("connection"), None);
}

#[test]
fn events_with_and_without_id_and_retry() {
    let mut sse = started();
    sse.send_event(Event::new("a").data("1")).unwrap();
    sse.send_event(Event::new("b").data("2").id("x")).unwrap();
    sse.send_event(Event::new("c").data("3").retry(Duration::from_millis(250)))
        .unwrap();
    sse.send_event(
        Event::new("d")
            .data("4")
            .id("y")
            .retry(Duration::from_secs(1)),
    )
    .unwrap();
    sse.send_event(Event::message("5")).unwrap();
    let expected = [
        HEAD.to_string(),
        chunk("event: a\ndata: 1\n\n"),
        chunk("event: b\nid: x\ndata: 2\n\n"),
        chunk("event: c\nretry: 250\ndata: 3\n\n"),
        // A plain event writes every retry: EventSource's default is the
        // browser's, not Datastar's 1000 ms.
        chunk("event: d\nid: y\nretry: 1000\ndata: 4\n\n"),
        chunk("data: 5\n\n"),
    ]
    .concat();
    assert_eq!(written(sse), expected);
}

#[test]
fn datastar_events_leave_the_default_retry_off() {
    use dstar::datastar::{PatchElements, PatchSignals};
    let mut sse = started();
    sse.send_event(PatchElements::new("<p>").retry(Duration::from_secs(1)))
        .unwrap();
    sse.send_event(
        PatchSignals::new("{}")
            .retry(Duration::from_secs(1))
            .id("1"),
    )
    .unwrap();
    let expected = [
        HEAD.to_string(),
        chunk("event: datastar-patch-elements\ndata: elements <p>\n\n"),
        chunk("event: datastar-patch-signals\nid: 1\ndata: signals {}\n\n"),
    ]
    .concat();
    assert_eq!(written(sse), expected);
}

#[test]
fn comments_and_check_connection_are_their_own_chunks() {
    let mut sse = started();
    sse.send_comment("hello\nthere").unwrap();
    sse.check_connection().unwrap();
    assert_eq!(
        written(sse),
        [HEAD, &chunk(": hello\n: there\n"), &chunk(":\n")].concat()
    );
}

#[test]
fn finish_writes_the_last_chunk_and_returns_the_writer() {
    let mut sse = started();
    sse.send_event(Event::new("a").data("1")).unwrap();
    let bytes = sse.finish().unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        [HEAD, &chunk("event: a\ndata: 1\n\n"), "0\r\n\r\n"].concat()
    );
}

#[test]
fn large_events_get_wide_chunk_sizes() {
    let big = "x".repeat(70_000);
    let mut sse = started();
    sse.send_event(Event::message(big.as_str())).unwrap();
    sse.send_event(Event::message("small")).unwrap();
    sse.send_event(Event::message(big.as_str())).unwrap();
    let payload = format!("data: {big}\n\n");
    assert_eq!(
        written(sse),
        [
            HEAD.to_string(),
            chunk(&payload),
            chunk("data: small\n\n"),
            chunk(&payload)
        ]
        .concat()
    );
}

#[test]
fn close_delimited_and_body_only() {
    let mut sse = SseResponse::new()
        .without_date()
        .close_delimited()
        .start(Vec::new())
        .unwrap();
    sse.send_event(Event::message("x")).unwrap();
    assert_eq!(
        String::from_utf8(sse.finish().unwrap()).unwrap(),
        "HTTP/1.1 200 OK\r\n\
         Content-Type: text/event-stream\r\n\
         Cache-Control: no-cache\r\n\
         Connection: close\r\n\
         \r\n\
         data: x\n\n"
    );

    let mut sse = SseConnection::body_only(Vec::new());
    assert!(sse.get_ref().is_empty(), "no head");
    sse.send_event(Event::message("x")).unwrap();
    sse.check_connection().unwrap();
    assert_eq!(
        String::from_utf8(sse.finish().unwrap()).unwrap(),
        "data: x\n\n:\n"
    );
}

#[test]
fn status_and_headers() {
    let sse = SseResponse::new()
        .without_date()
        .status(201)
        .header("X-Accel-Buffering", "no")
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("Set-Cookie", "a=b; Path=/")
        .start(Vec::new())
        .unwrap();
    assert_eq!(
        written(sse),
        "HTTP/1.1 201 Created\r\n\
         Cache-Control: no-cache\r\n\
         Transfer-Encoding: chunked\r\n\
         X-Accel-Buffering: no\r\n\
         content-type: text/event-stream; charset=utf-8\r\n\
         Set-Cookie: a=b; Path=/\r\n\
         \r\n"
    );
    let sse = SseResponse::new()
        .without_date()
        .status(299)
        .start(Vec::new())
        .unwrap();
    assert!(written(sse).starts_with("HTTP/1.1 299 \r\n"));
}

#[test]
fn a_date_of_the_callers_replaces_the_default_one() {
    let date = "Sun, 06 Nov 1994 08:49:37 GMT";
    let sse = SseResponse::new()
        .header("date", date)
        .start(Vec::new())
        .unwrap();
    let head = written(sse);
    assert_eq!(head.matches("ate: ").count(), 1, "{head}");
    assert!(head.contains(&format!("\r\ndate: {date}\r\n")), "{head}");
    let response = testing::decode_response(head.as_bytes()).unwrap();
    assert_eq!(response.header("Date"), Some(date));
}

#[test]
fn heads_that_would_break_are_refused_before_writing() {
    let refused = [
        SseResponse::new().header("X-A", "a\r\nInjected: 1"),
        SseResponse::new().header("X-A", "a\rb"),
        SseResponse::new().header("X-A", "a\nb"),
        SseResponse::new().header("X-A", "a\0b"),
        SseResponse::new().header("X A", "b"),
        SseResponse::new().header("X-A:", "b"),
        SseResponse::new().header("", "b"),
        SseResponse::new().header("X-\u{e9}", "b"),
        SseResponse::new().header("Content-Length", "5"),
        SseResponse::new().header("transfer-encoding", "gzip"),
        SseResponse::new().header("Connection", "keep-alive"),
        SseResponse::new().header("TRAILER", "X-Checksum"),
        SseResponse::new().header("Upgrade", "websocket"),
        SseResponse::new().header("keep-alive", "timeout=5"),
        SseResponse::new().status(204),
        SseResponse::new().status(304),
        SseResponse::new().status(101),
        SseResponse::new().status(600),
        SseResponse::new().status(42),
    ];
    for response in refused {
        let mut out = Vec::new();
        let err = response.clone().start(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{response:?}");
        assert!(out.is_empty(), "{response:?} wrote {out:?}");
    }
    // Tabs and non-ASCII (obs-text) are legal in values.
    SseResponse::new()
        .header("X-A", "a\tb \u{e9}")
        .start(Vec::new())
        .unwrap();
}

#[test]
fn refused_events_write_nothing_and_keep_the_connection_open() {
    let mut sse = started();
    for bad in [
        Event::new("a\nb"),
        Event::new("a\r"),
        Event::new("t").id("1\r\n"),
        Event::new("t").id("\0"),
    ] {
        let err = sse.send_event(bad.data("x")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(!sse.is_closed());
    }
    assert_eq!(written(sse), HEAD);
}

#[test]
fn a_refused_burst_sends_none_of_its_events() {
    let mut sse = started();
    sse.queue_event(Event::message("queued before")).unwrap();
    let burst = [
        Event::message("1"),
        Event::new("bad\n"),
        Event::message("3"),
    ];
    assert!(sse.send_all(burst).is_err());
    sse.flush().unwrap();
    assert_eq!(
        written(sse),
        [HEAD, &chunk("data: queued before\n\n")].concat()
    );
}

#[test]
fn one_write_and_one_flush_per_send() {
    let mut sse = SseResponse::new().start(Recorder::default()).unwrap();
    assert_eq!(sse.get_ref().writes.len(), 1, "the head is one write");
    assert_eq!(sse.get_ref().flushes, 1, "and is flushed at once");
    for i in 0..5 {
        sse.send_event(Event::new("tick").data("line\nline").id(&i.to_string()))
            .unwrap();
    }
    sse.check_connection().unwrap();
    assert_eq!(sse.get_ref().writes.len(), 7);
    assert_eq!(sse.get_ref().flushes, 7);
    let recorder = sse.finish().unwrap();
    assert_eq!(recorder.writes.len(), 8);
    assert_eq!(recorder.flushes, 8);
    let response = testing::decode_response(&recorder.bytes()).unwrap();
    assert_eq!(response.chunks.len(), 6, "one chunk per event and comment");
    assert!(response.finished);
}

#[test]
fn queued_events_go_out_in_one_write() {
    let mut sse = SseResponse::new().start(Recorder::default()).unwrap();
    for i in 0..16 {
        sse.queue_event(Event::new("tick").data(&i.to_string()))
            .unwrap();
    }
    assert_eq!(
        sse.get_ref().writes.len(),
        1,
        "nothing written while queueing"
    );
    sse.flush().unwrap();
    assert_eq!(sse.get_ref().writes.len(), 2);
    assert_eq!(sse.get_ref().flushes, 2);
    let ticks: Vec<Event> = (0..3).map(|_| Event::new("tick").data("x")).collect();
    sse.send_all(&ticks).unwrap();
    let recorder = sse.finish().unwrap();
    assert_eq!(recorder.writes.len(), 4);
    let response = testing::decode_response(&recorder.bytes()).unwrap();
    assert_eq!(response.chunks.len(), 19);
    let data: Vec<_> = response.events().iter().map(|e| e.data.as_str()).collect();
    assert_eq!(&data[..3], ["0", "1", "2"]);
}

#[test]
fn a_long_burst_is_written_out_in_bounded_pieces() {
    let mut sse = SseResponse::new().start(Recorder::default()).unwrap();
    let line = "y".repeat(1000);
    for _ in 0..200 {
        sse.queue_event(Event::message(line.as_str())).unwrap();
        assert!(sse.queued_len() < 8 * 1024 + 1100);
    }
    let writes = sse.get_ref().writes.len();
    // 200 events of ~1 KB in pieces of at least 8 KiB.
    assert!((20..=26).contains(&writes), "{writes} writes");
    assert_eq!(sse.get_ref().flushes, 1, "written out, not flushed");
    let recorder = sse.finish().unwrap();
    let response = testing::decode_response(&recorder.bytes()).unwrap();
    assert_eq!(response.events().len(), 200);
}

#[test]
fn dropping_an_unfinished_connection_writes_nothing_more() {
    let mut out = Vec::new();
    {
        let mut sse = SseResponse::new().without_date().start(&mut out).unwrap();
        sse.send_event(Event::message("sent")).unwrap();
        sse.queue_event(Event::message("queued, never sent"))
            .unwrap();
    }
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text, [HEAD, &chunk("data: sent\n\n")].concat());
    let response = testing::decode_response(text.as_bytes()).unwrap();
    assert!(
        !response.finished,
        "the client can tell the body was cut short"
    );
}

#[test]
fn chaining_stops_at_the_first_error() {
    let mut sse = started();
    let result = sse
        .send_event(Event::message("1"))
        .and_then(|s| s.send_event(Event::new("bad\n")))
        .and_then(|s| s.send_event(Event::message("never")));
    assert!(result.is_err());
    assert_eq!(written(sse), [HEAD, &chunk("data: 1\n\n")].concat());
}

#[test]
fn a_keep_alive_writer_carries_the_next_response() {
    let mut out = Vec::new();
    for n in ["1", "2"] {
        let mut sse = SseResponse::new().without_date().start(&mut out).unwrap();
        sse.send_event(Event::message(n)).unwrap();
        sse.finish().unwrap();
    }
    let first = testing::decode_response(&out).unwrap();
    assert!(first.finished);
    assert_eq!(first.events()[0].data, "1");
    let second = testing::decode_response(&first.rest).unwrap();
    assert!(second.finished);
    assert_eq!(second.events()[0].data, "2");
    assert!(second.rest.is_empty());
}
