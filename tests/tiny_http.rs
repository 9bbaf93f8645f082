//! dstar inside a `tiny_http` server: the stream is written through
//! `Request::into_writer()` by an `SseConnection`.
//!
//! tiny_http's own way to stream (a `Response` whose body is a `Read`) copies
//! the body through an 8 KiB chunk buffer that is flushed only when full or
//! at the end, so a live stream's events would arrive late or never. These
//! tests show the events arriving one by one, each before the server sends
//! the next; show the buffering that makes `into_writer` necessary; and check
//! that the connection serves the next request after a finished stream.

mod examples_support;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dstar::testing::{self, Response as Decoded};
use dstar::{Event, SseConnection, SseResponse};
use tiny_http::{HTTPVersion, Method, Request, Response, Server};

/// Bounds every wait in these tests, so that a broken stream fails them
/// instead of hanging them.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How late an event may arrive and still count as prompt: a generous cap.
/// On loopback it takes well under a millisecond, and the lockstep itself
/// shows that no event waits for the next one; the cap only catches an event
/// held back until some timer fires (a heartbeat is 15 s), with a margin
/// for a loaded machine that stays well under [`TIMEOUT`].
const PROMPT: Duration = Duration::from_secs(2);
/// Events in the lockstep stream.
const EVENTS: usize = 5;

#[test]
fn events_arrive_one_by_one_and_promptly() {
    let server = TestServer::start();
    let mut client = server.connect();
    client
        .write_all(b"GET /lockstep HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();

    // The server sends event n only once the client has event n-1, so each
    // event must cross on its own: buffered, the first would never arrive
    // and the read below would time out.
    let mut seen = Vec::new();
    for n in 0..EVENTS {
        let sent_at = server.next_event();
        let response = read_until(&mut client, &mut seen, |r| r.events().len() > n);
        let waited = sent_at.elapsed();
        assert!(waited < PROMPT, "event {n} took {waited:?} to arrive");
        let event = &response.events()[n];
        assert_eq!(event.event_type, "tick");
        assert_eq!(event.data, format!("tick {n}"));
        assert_eq!(event.last_event_id, n.to_string());
    }
    server.next_event(); // lets the handler finish the response

    let response = read_until(&mut client, &mut seen, |r| r.finished);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    // One chunk per event: nothing was held back and merged.
    assert_eq!(response.chunks.len(), EVENTS);
    assert_eq!(response.events().len(), EVENTS);
}

#[test]
fn the_connection_serves_the_next_request_after_a_finished_stream() {
    let server = TestServer::start();
    let mut client = server.connect();
    client
        .write_all(
            b"POST /action HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\n{\"count\":1}",
        )
        .unwrap();
    let mut seen = Vec::new();
    let stream = read_until(&mut client, &mut seen, |r| r.finished);
    assert_eq!(stream.events().len(), 1);
    assert_eq!(stream.events()[0].data, "signals {\"count\":2}");
    assert!(stream.rest.is_empty(), "nothing after the stream's end");

    // Same socket, next request: tiny_http takes the connection back once
    // the writer is dropped.
    client
        .write_all(b"GET /plain HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut next = Vec::new();
    let plain = read_until(&mut client, &mut next, |r| r.finished);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body, b"plain");
}

#[test]
fn an_http10_client_gets_a_close_delimited_stream() {
    let server = TestServer::start();
    let mut client = server.connect();
    client
        .write_all(b"POST /action HTTP/1.0\r\nContent-Length: 11\r\n\r\n{\"count\":7}")
        .unwrap();
    // HTTP/1.0 has no chunked coding: the body ends when the server closes.
    let mut bytes = Vec::new();
    client.read_to_end(&mut bytes).unwrap();
    let response = testing::decode_response(&bytes).unwrap();
    assert!(!response.chunked);
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(response.events()[0].data, "signals {\"count\":8}");
}

/// Why `into_writer`: the same events given to tiny_http as a streaming
/// response body sit in its 8 KiB chunk buffer. The body yields its first
/// event at once and then waits; the client gets nothing.
#[test]
fn tiny_http_own_streaming_holds_small_events_back() {
    let server = TestServer::start();
    let mut client = server.connect();
    client
        .write_all(b"GET /buffered HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut head_and_body = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(300);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head_and_body.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => break,
            Err(e) => panic!("read failed: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&head_and_body);
    assert!(
        !text.contains("data: tick 0"),
        "tiny_http sent the event at once (did it stop buffering?): {text:?}"
    );
    // Let the body finish, so the handler thread ends.
    server.next_event();
}

// --- the server --------------------------------------------------------------

struct TestServer {
    addr: SocketAddr,
    server: Arc<Server>,
    /// Each message lets a handler send its next event (or finish).
    go: Sender<()>,
    /// When the handler sent each event.
    sent: Receiver<Instant>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start() -> TestServer {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("bind"));
        let addr = server.server_addr().to_ip().expect("an IP address");
        let (go, go_rx) = mpsc::channel();
        let (sent_tx, sent) = mpsc::channel();
        let go_rx = Arc::new(Mutex::new(go_rx));
        let accept = Arc::clone(&server);
        let thread = thread::spawn(move || {
            let mut handlers = Vec::new();
            // `incoming_requests` ends when the server is unblocked.
            for request in accept.incoming_requests() {
                let go = Arc::clone(&go_rx);
                let sent = sent_tx.clone();
                handlers.push(thread::spawn(move || {
                    if let Err(e) = handle(request, &go, &sent) {
                        eprintln!("tiny_http test server: {e}");
                    }
                }));
            }
            for handler in handlers {
                let _ = handler.join();
            }
        });
        TestServer {
            addr,
            server,
            go,
            sent,
            thread: Some(thread),
        }
    }

    fn connect(&self) -> TcpStream {
        let client = TcpStream::connect_timeout(&self.addr, TIMEOUT).unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        client.set_write_timeout(Some(TIMEOUT)).unwrap();
        client
    }

    /// Lets the handler go on, and returns when it sent its next event.
    fn next_event(&self) -> Instant {
        self.go.send(()).expect("the handler is waiting");
        self.sent
            .recv_timeout(TIMEOUT)
            .expect("the handler sent its event")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Handlers waiting for `go` give up after TIMEOUT at the latest.
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn handle(request: Request, go: &Mutex<Receiver<()>>, sent: &Sender<Instant>) -> io::Result<()> {
    let wait = || match go.lock().unwrap().recv_timeout(TIMEOUT) {
        Ok(()) => Ok(()),
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
            Err(io::Error::new(io::ErrorKind::TimedOut, "the test gave up"))
        }
    };
    match (request.method(), request.url()) {
        (Method::Get, "/lockstep") => {
            let mut sse = SseConnection::start(request.into_writer())?;
            for n in 0..EVENTS {
                wait()?;
                let (data, id) = (format!("tick {n}"), n.to_string());
                sse.send_event(Event::new("tick").data(&data).id(&id))?;
                let _ = sent.send(Instant::now());
            }
            wait()?;
            sse.finish()?;
            let _ = sent.send(Instant::now());
            Ok(())
        }
        (Method::Post, "/action") => {
            let mut request = request;
            let mut body = String::new();
            request.as_reader().read_to_string(&mut body)?;
            let signals: serde_json::Value = serde_json::from_str(&body)?;
            let count = signals["count"].as_i64().unwrap_or(0) + 1;
            let response = if *request.http_version() == HTTPVersion(1, 0) {
                SseResponse::new().close_delimited()
            } else {
                SseResponse::new()
            };
            let mut sse = response.start(request.into_writer())?;
            sse.send_event(
                Event::new("datastar-patch-signals")
                    .data(&format!("signals {{\"count\":{count}}}")),
            )?;
            // Dropping the writer hands the connection back to tiny_http.
            sse.finish().map(drop)
        }
        (Method::Get, "/plain") => request.respond(Response::from_string("plain")),
        (Method::Get, "/buffered") => {
            let body = OneEventThenWait {
                event: Some(b"event: tick\ndata: tick 0\n\n".to_vec()),
                go,
                sent,
            };
            request.respond(Response::new(200.into(), Vec::new(), body, None, None))
        }
        _ => request.respond(Response::empty(404)),
    }
}

/// A response body that yields one event, then blocks until the test says
/// go (as a live stream does between events), then ends.
struct OneEventThenWait<'a> {
    event: Option<Vec<u8>>,
    go: &'a Mutex<Receiver<()>>,
    sent: &'a Sender<Instant>,
}

impl Read for OneEventThenWait<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(event) = self.event.take() {
            buf[..event.len()].copy_from_slice(&event);
            return Ok(event.len());
        }
        // The next event "comes" when the test has looked; then the body ends.
        let _ = self.go.lock().unwrap().recv_timeout(TIMEOUT);
        let _ = self.sent.send(Instant::now());
        Ok(0)
    }
}

// --- the client --------------------------------------------------------------

/// Reads into `seen` until the decoded response satisfies `done`.
fn read_until(
    client: &mut TcpStream,
    seen: &mut Vec<u8>,
    done: impl Fn(&Decoded) -> bool,
) -> Decoded {
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(response) = testing::decode_response(seen)
            && done(&response)
        {
            return response;
        }
        match client.read(&mut buf) {
            Ok(0) => panic!(
                "the server closed the connection; got {:?}",
                String::from_utf8_lossy(seen)
            ),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "no more within {TIMEOUT:?} ({e}); got {:?}",
                String::from_utf8_lossy(seen)
            ),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// `examples/tiny_http.rs` itself, run as a program.
mod example {
    use super::examples_support::{Example, http10_keep_alive, read_sized, read_to_close};
    use std::io::{Read, Write};

    /// Datastar sends the page's signals in the query of every GET: the
    /// stream must be found by its path.
    #[test]
    fn the_example_routes_its_stream_on_the_path_not_the_query() {
        let example = Example::start("tiny_http", &[]);
        let mut stream = example.connect();
        let get = "GET /clock?datastar=%7B%22clicks%22%3A0%7D HTTP/1.1\r\nHost: x\r\n\
                   Accept: text/event-stream\r\nDatastar-Request: true\r\n\r\n";
        stream.write_all(get.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 1024];
        while !bytes.windows(6).any(|w| w == b"clock\"") {
            let n = stream.read(&mut chunk).expect("a clock event");
            assert!(
                n > 0,
                "the connection closed: {:?}",
                String::from_utf8_lossy(&bytes)
            );
            bytes.extend_from_slice(&chunk[..n]);
        }
        let response = dstar::testing::decode_response(&bytes).unwrap();
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(response.header("content-type"), Some("text/event-stream"));
        assert!(response.events()[0].data.contains("<span id=\"clock\">"));
    }

    /// The click's answer has a length, so an HTTP/1.0 client, which has no
    /// chunked coding, knows where it ends without waiting for the
    /// connection to close: a close-delimited stream written through
    /// `into_writer` would have waited on tiny_http, which keeps a
    /// keep-alive connection open after the writer is dropped. A client that
    /// did not ask to keep the connection sees it closed.
    #[test]
    fn the_example_answers_http10_actions_with_a_length() {
        let example = Example::start("tiny_http", &[]);
        let mut stream = example.connect();
        let request = http10_keep_alive("POST", "/click?datastar=x", r#"{"clicks":1}"#);
        stream.write_all(request.as_bytes()).unwrap();
        let (head, body) = read_sized(&mut stream);
        assert!(head.contains(" 200 OK\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: text/event-stream\r\n"),
            "{head}"
        );
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("data: signals {\"clicks\":2}\n"), "{text}");

        let body = r#"{"clicks":0}"#;
        let request = format!(
            "POST /click HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = example.connect();
        stream.write_all(request.as_bytes()).unwrap();
        let bytes = read_to_close(&mut stream).unwrap();
        assert!(String::from_utf8_lossy(&bytes).contains(r#"signals {"clicks":1}"#));
    }
}
