//! The example servers, run as programs and driven over real sockets by an
//! HTTP/1.0 client that asks to keep its connection alive.
//!
//! An event stream to an HTTP/1.0 client has no chunked coding, so it ends
//! only when the server closes the connection. A server that took the
//! client's `Connection: keep-alive` at its word would wait for a next
//! request while the client waits for the end of the stream, until a read
//! timeout (10 s or more in the examples) broke the tie. Each test checks
//! that the example closes the connection itself: the client sees the end
//! of the stream well within `ANSWER_WITHIN`, not at its own read timeout.
//! (The tiny_http example is tested in `tests/tiny_http.rs`, and the SDK
//! test server in `tests/datastar_sdk.rs`.)
//!
//! And Ctrl-C, which stops a server for a restart: the live streams must be
//! cut, not finished, or the Datastar client never reconnects.

mod examples_support;
#[cfg(feature = "redis")]
mod redis_support;

use examples_support::{
    Example, http10_keep_alive, http10_stream_that_closes, read_sized, read_to_close,
};
use std::io::{Read, Write};

#[test]
fn datastar_30_lines_ends_an_http10_stream_by_closing() {
    let example = Example::start("datastar_30_lines", &[]);
    let request = http10_keep_alive("POST", "/click", r#"{"count":41}"#);
    let response = http10_stream_that_closes(&example, &request);
    let events = response.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].data, r#"signals {"count":42}"#);
}

#[test]
fn demo_ends_an_http10_action_stream_by_closing() {
    let example = Example::start("demo", &[]);
    let body = r#"{"tab":"t-1","count":6,"message":""}"#;
    let request = http10_keep_alive("POST", "/counter/inc", body);
    let response = http10_stream_that_closes(&example, &request);
    assert!(
        response
            .events()
            .iter()
            .any(|e| e.data.contains(r#""count":7"#)),
        "{:?}",
        response.events()
    );
}

#[test]
fn chat_ends_an_http10_action_stream_by_closing() {
    let example = Example::start("chat", &[]);
    let body = r#"{"tab":"t-1","name":"ann","text":"hello"}"#;
    let request = http10_keep_alive("POST", "/send", body);
    let response = http10_stream_that_closes(&example, &request);
    assert_eq!(response.events()[0].data, r#"signals {"text":""}"#);
}

#[test]
fn clock_keeps_an_http10_connection_for_pages_and_streams_on_the_path() {
    let example = Example::start("clock", &[]);
    let mut stream = example.connect();
    // A page has a length, so the connection carries the next request...
    stream
        .write_all(http10_keep_alive("GET", "/", "").as_bytes())
        .unwrap();
    let (head, page) = read_sized(&mut stream);
    assert!(head.contains("Connection: keep-alive\r\n"), "{head}");
    assert!(String::from_utf8_lossy(&page).contains("@get('/clock')"));
    // ...which is the stream, with Datastar's signals in the query: routed
    // on its path, and ended by the connection, which nothing follows.
    let get = "GET /clock?datastar=%7B%7D HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    stream.write_all(get.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    while !bytes.windows(6).any(|w| w == b"clock\"") {
        let n = stream.read(&mut chunk).expect("a clock event");
        assert!(n > 0, "the stream ended early: {bytes:?}");
        bytes.extend_from_slice(&chunk[..n]);
    }
    let response = dstar::testing::decode_response(&bytes).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(response.events()[0].data.contains("<span id=\"clock\">"));
}

#[cfg(feature = "redis")]
#[test]
fn redis_chat_ends_an_http10_action_stream_by_closing_and_ctrl_c_cuts_its_streams() {
    use std::process::{Command, Stdio};

    if !redis_support::redis_server_installed() {
        return;
    }
    let port = examples_support::free_address().port();
    let mut redis = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let url = format!("redis://127.0.0.1:{port}/");
    let outcome = std::panic::catch_unwind(|| {
        let example = Example::start("redis_chat", &[&url]);
        let body = r#"{"name":"ann","text":"hello"}"#;
        let request = http10_keep_alive("POST", "/send", body);
        let response = http10_stream_that_closes(&example, &request);
        assert_eq!(response.events()[0].data, r#"signals {"text":""}"#);
        // And its Ctrl-C cuts the live streams, as the chat's does.
        let get = "GET /feed?datastar=%7B%7D HTTP/1.1\r\nHost: x\r\n\r\n";
        let response = stream_through_ctrl_c(example, get);
        assert!(
            !response.finished,
            "the stream was finished: Datastar would not reconnect"
        );
    });
    let _ = redis.kill();
    let _ = redis.wait();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The same client, against an HTTP/1.1 `Connection: close` request: the
/// stream is chunked, says `Connection: close`, and the server closes.
#[test]
fn an_http11_client_asking_to_close_gets_a_finished_stream_and_the_close() {
    let example = Example::start("datastar_30_lines", &[]);
    let mut stream = example.connect();
    let body = r#"{"count":1}"#;
    let request = format!(
        "POST /click HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let response = dstar::testing::decode_response(&read_to_close(&mut stream).unwrap()).unwrap();
    assert!(response.finished);
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(response.events()[0].data, r#"signals {"count":2}"#);
}

/// Opens a live stream with `request`, waits for its first event, presses
/// Ctrl-C, and returns what the stream got, decoded, once the program exits.
fn stream_through_ctrl_c(mut example: Example, request: &str) -> dstar::testing::Response {
    let mut stream = example.connect();
    stream.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    while dstar::testing::decode_response(&bytes).map_or(true, |r| r.events().is_empty()) {
        let n = stream.read(&mut chunk).expect("the stream's first event");
        assert!(
            n > 0,
            "the stream ended: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&chunk[..n]);
    }
    assert!(example.interrupt(), "the example exits with status 0");
    bytes.extend(read_to_close(&mut stream).unwrap());
    dstar::testing::decode_response(&bytes).unwrap()
}

#[test]
fn demo_ctrl_c_cuts_the_live_streams_so_tabs_reconnect() {
    let example = Example::start("demo", &[]);
    let addr = example.addr;
    let get = "GET /stream?datastar=%7B%22tab%22%3A%22t-1%22%7D HTTP/1.1\r\nHost: x\r\n\r\n";
    let response = stream_through_ctrl_c(example, get);
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert!(
        !response.finished,
        "the stream was finished: Datastar would not reconnect"
    );

    // The tab's retry finds the next process on the same address, which can
    // bind it at once although the streams it cut are in TIME_WAIT.
    let restarted = Example::start_at("demo", addr, &[]);
    let mut stream = restarted.connect();
    stream.write_all(get.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    while dstar::testing::decode_response(&bytes).map_or(true, |r| r.events().is_empty()) {
        let n = stream
            .read(&mut chunk)
            .expect("the new stream's first event");
        assert!(n > 0, "the new stream ended");
        bytes.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn chat_ctrl_c_cuts_the_live_streams_so_tabs_reconnect() {
    let example = Example::start("chat", &[]);
    let get = "GET /feed?datastar=%7B%22tab%22%3A%22t-1%22%7D HTTP/1.1\r\nHost: x\r\n\r\n";
    let response = stream_through_ctrl_c(example, get);
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert!(
        !response.finished,
        "the stream was finished: Datastar would not reconnect"
    );
}
