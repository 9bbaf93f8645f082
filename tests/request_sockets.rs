//! Request reading over real TCP sockets on 127.0.0.1: keep-alive, `100 Continue`, and clients
//! that are too slow. Every socket gets read and write timeouts, so no test can hang.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use dstar::request::{Limits, RequestErrorKind, RequestReader};
use dstar::response;

/// Generous next to what the tests wait for, so they only fire when something is broken.
const SAFETY_TIMEOUT: Duration = Duration::from_secs(5);

fn with_timeouts(stream: TcpStream, read: Duration) -> TcpStream {
    stream.set_read_timeout(Some(read)).unwrap();
    stream.set_write_timeout(Some(SAFETY_TIMEOUT)).unwrap();
    stream
}

/// A listener on a free port, and a connected client.
fn connect() -> (TcpListener, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    (listener, with_timeouts(client, SAFETY_TIMEOUT))
}

/// Reads one response with a `Content-Length`, returning its head and body.
fn read_response(stream: &mut TcpStream) -> io::Result<(String, String)> {
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .map_or(0, |value| value.parse().unwrap());
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok((head, String::from_utf8(body).unwrap()))
}

/// Serves one connection the way an example server would: answer every request with its
/// path, until the client is done. Returns the paths served and the error that ended it.
fn serve(stream: TcpStream, limits: Limits) -> (Vec<String>, Option<dstar::RequestError>) {
    let mut connection = RequestReader::with_limits(stream, limits);
    let mut served = Vec::new();
    loop {
        let request = match connection.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => return (served, None),
            Err(err) => {
                let _ = response::write_error(connection.get_mut(), &err);
                return (served, Some(err));
            }
        };
        let reply = format!("{} {}", request.path(), request.body().len());
        response::write_text(connection.get_mut(), 200, &reply, &request).unwrap();
        served.push(request.path().to_owned());
    }
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let (listener, mut client) = connect();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        serve(with_timeouts(stream, SAFETY_TIMEOUT), Limits::default())
    });

    client
        .write_all(b"GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (head, body) = read_response(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Connection: keep-alive\r\n"), "{head}");
    assert_eq!(body, "/first 0");

    // The same connection carries the next request, which has a body.
    client
        .write_all(
            b"POST /second HTTP/1.1\r\nHost: localhost\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
        )
        .unwrap();
    let (_, body) = read_response(&mut client).unwrap();
    assert_eq!(body, "/second 7");

    // Closing the connection ends the server loop cleanly.
    drop(client);
    let (served, error) = server.join().unwrap();
    assert_eq!(served, ["/first", "/second"]);
    assert!(error.is_none(), "{error:?}");
}

#[test]
fn a_dripping_client_is_cut_off_by_the_request_deadline() {
    let (listener, mut client) = connect();
    let deadline = Duration::from_millis(1000);
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        // Each byte arrives well within the per-read timeout, so only the deadline can stop it.
        let stream = with_timeouts(stream, Duration::from_secs(2));
        let started = Instant::now();
        let (served, error) = serve(stream, Limits::default().request_timeout(Some(deadline)));
        (served, error, started.elapsed())
    });

    // A head that would take far longer than the deadline at this pace. The client drips until
    // the server has given up (or the whole head is sent, which fails the test below), so how
    // fast this machine runs the two threads changes only how long the test takes.
    let head = b"GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaa\r\n\r\n";
    let drip = Duration::from_millis(250);
    for byte in head {
        if server.is_finished() || client.write_all(&[*byte]).is_err() {
            break; // the server gave up on us
        }
        thread::sleep(drip);
    }

    let (served, error, elapsed) = server.join().unwrap();
    assert!(served.is_empty());
    let error = error.expect("the slow request must fail");
    assert_eq!(error.kind(), RequestErrorKind::Timeout);
    assert_eq!(error.status(), 408);
    // The request deadline cut it off, not the socket's read timeout (which keeps its I/O error
    // as the source): no read ever waited the 2 s the socket allows.
    assert!(std::error::Error::source(&error).is_none(), "{error}");
    // Never before the deadline, and long before the head could have arrived at this pace.
    assert!(elapsed >= deadline, "{elapsed:?}");
    let whole_head = drip * u32::try_from(head.len()).unwrap();
    assert!(elapsed < whole_head, "{elapsed:?}");

    let (head, body) = read_response(&mut client).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{head}"
    );
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert!(body.contains("request timeout"), "{body}");
}

#[test]
fn a_client_that_stalls_mid_request_hits_the_read_timeout() {
    let (listener, mut client) = connect();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        serve(
            with_timeouts(stream, Duration::from_millis(300)),
            Limits::default(),
        )
    });

    client
        .write_all(b"GET /stalled HTTP/1.1\r\nHost: loc")
        .unwrap();
    let (head, _) = read_response(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 408 "), "{head}");

    let (served, error) = server.join().unwrap();
    assert!(served.is_empty());
    let error = error.expect("a stalled request fails");
    assert_eq!(error.kind(), RequestErrorKind::Timeout);
    // The socket's own timeout error is kept as the source.
    let source = std::error::Error::source(&error).expect("an I/O source");
    assert!(source.downcast_ref::<io::Error>().is_some());
}

#[test]
fn an_idle_keep_alive_connection_ends_quietly() {
    let (listener, mut client) = connect();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        serve(
            with_timeouts(stream, Duration::from_millis(300)),
            Limits::default(),
        )
    });

    client
        .write_all(b"GET /once HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (_, body) = read_response(&mut client).unwrap();
    assert_eq!(body, "/once 0");

    // Say nothing more: the server closes without an error response.
    let (served, error) = server.join().unwrap();
    assert_eq!(served, ["/once"]);
    assert!(error.is_none(), "{error:?}");
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}

#[test]
fn expect_100_continue_over_a_socket() {
    let (listener, mut client) = connect();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        serve(with_timeouts(stream, SAFETY_TIMEOUT), Limits::default())
    });

    client
        .write_all(
            b"PUT /upload HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n\
              Content-Length: 5\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    // The client holds its body back until the server invites it.
    let mut interim = [0; 25];
    client.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    client.write_all(b"hello").unwrap();

    let (head, body) = read_response(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert_eq!(body, "/upload 5");
    let (served, _) = server.join().unwrap();
    assert_eq!(served, ["/upload"]);
}

#[test]
fn an_oversized_body_is_refused_before_it_is_sent() {
    let (listener, mut client) = connect();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        serve(
            with_timeouts(stream, SAFETY_TIMEOUT),
            Limits::default().max_body(1000),
        )
    });

    client
        .write_all(
            b"POST / HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 1001\r\n\r\n",
        )
        .unwrap();
    let (head, body) = read_response(&mut client).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
        "{head}"
    );
    assert!(body.contains("1000-byte limit"), "{body}");
    let (_, error) = server.join().unwrap();
    assert_eq!(error.unwrap().kind(), RequestErrorKind::BodyTooLarge);
}
