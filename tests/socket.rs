//! Real sockets on 127.0.0.1: a live stream reaches its reader event by
//! event, and a client that goes away is noticed. Every socket has read and
//! write timeouts, so no test can hang.

use dstar::connection::Error;
use dstar::{Closed, Event, SseConnection, testing};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(5);

fn with_timeouts(stream: TcpStream) -> TcpStream {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// A connected pair: (server side, client side).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (with_timeouts(server), with_timeouts(client))
}

/// Reads from `client` until the bytes so far decode to a response that
/// satisfies `done`.
fn read_until(
    client: &mut TcpStream,
    seen: &mut Vec<u8>,
    done: impl Fn(&testing::Response) -> bool,
) -> testing::Response {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(response) = testing::decode_response(seen)
            && done(&response)
        {
            return response;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the server"
        );
        let mut buf = [0u8; 4096];
        let n = client.read(&mut buf).expect("read from the server");
        assert!(n > 0, "the server closed early");
        seen.extend_from_slice(&buf[..n]);
    }
}

fn read_events(client: &mut TcpStream, seen: &mut Vec<u8>, count: usize) -> testing::Response {
    read_until(client, seen, |r| r.events().len() >= count)
}

#[test]
fn a_reader_gets_each_event_as_it_is_sent() {
    let (server, mut client) = pair();
    let (ack, acked) = mpsc::channel::<()>();
    let writer = thread::spawn(move || {
        let mut sse = SseConnection::start_socket(&server)?;
        for i in 0..5 {
            sse.send_event(
                Event::new("tick")
                    .data(format!("{i}\nof 5").as_str())
                    .id(&i.to_string()),
            )?;
            // The next event goes out only once the client has read this one,
            // so nothing can be sitting in a buffer.
            acked.recv_timeout(TIMEOUT).map_err(io::Error::other)?;
        }
        sse.finish().map(drop)
    });
    let mut seen = Vec::new();
    for i in 0..5 {
        let response = read_events(&mut client, &mut seen, i + 1);
        let event = &response.events()[i];
        assert_eq!(event.event_type, "tick");
        assert_eq!(event.data, format!("{i}\nof 5"));
        assert_eq!(event.last_event_id, i.to_string());
        ack.send(()).unwrap();
    }
    writer.join().unwrap().unwrap();
    read_until(&mut client, &mut seen, |r| r.finished);
}

/// Starts a stream, lets the client read the first event, then has the
/// client close its end. Returns the server side, still open.
fn stream_whose_client_left(probe: bool) -> SseConnection<TcpStream> {
    let (server, mut client) = pair();
    let mut sse = if probe {
        SseConnection::start_socket(server).unwrap()
    } else {
        SseConnection::start(server).unwrap()
    };
    sse.send_event(Event::message("hello")).unwrap();
    read_events(&mut client, &mut Vec::new(), 1);
    drop(client);
    // Let the FIN cross the loopback interface.
    thread::sleep(Duration::from_millis(100));
    sse
}

#[test]
fn a_probed_socket_reports_a_departed_client_at_the_first_check() {
    let mut sse = stream_whose_client_left(true);
    let err = sse.check_connection().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    assert!(matches!(Error::of(&err), Some(Error::PeerGone)), "{err:?}");
    assert_eq!(sse.closed(), Some(Closed::PeerHungUp));
    let err = sse.send_event(Event::message("again")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    assert!(matches!(
        Error::of(&err),
        Some(Error::AlreadyClosed(Closed::PeerHungUp))
    ));
}

#[test]
fn the_probe_keeps_the_read_timeout_and_does_not_block() {
    let (server, _client) = pair();
    server
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut sse = SseConnection::start_socket(&server).unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        sse.check_connection().unwrap();
    }
    // Generous: twenty probes of an idle socket must not each wait out a
    // read timeout (1.5 s) or anything like it.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        server.read_timeout().unwrap(),
        Some(Duration::from_millis(1500))
    );
}

#[test]
fn a_read_blocked_on_a_clone_is_not_disturbed_by_probes() {
    let (server, mut client) = pair();
    let reader = server.try_clone().unwrap();
    let (started, wait_started) = mpsc::channel();
    let blocked = thread::spawn(move || {
        started.send(()).unwrap();
        let mut buf = [0u8; 5];
        (&reader).read_exact(&mut buf).map(|()| buf)
    });
    wait_started.recv_timeout(TIMEOUT).unwrap();
    // Give the clone time to block in its read before probing.
    thread::sleep(Duration::from_millis(100));
    let mut sse = SseConnection::start_socket(&server).unwrap();
    for _ in 0..20 {
        sse.check_connection().unwrap();
    }
    client.write_all(b"hello").unwrap();
    assert_eq!(&blocked.join().unwrap().unwrap(), b"hello");
}

#[test]
fn a_pending_byte_hides_the_fin_until_it_is_read() {
    // Documented limit of the probe: a peek sees the pipelined byte, not
    // the FIN behind it; the heartbeat written after the probe is accepted
    // by the kernel, and the end shows once the byte is read.
    let (server, mut client) = pair();
    let mut sse = SseConnection::start_socket(&server).unwrap();
    // Read the head, so the client's close is a FIN and not a reset.
    read_until(&mut client, &mut Vec::new(), |_| true);
    client.write_all(b"G").unwrap();
    drop(client);
    thread::sleep(Duration::from_millis(100));
    assert!(
        sse.check_connection().is_ok(),
        "a pending byte reads as present"
    );
    let mut byte = [0u8; 1];
    (&server).read_exact(&mut byte).unwrap();
    thread::sleep(Duration::from_millis(100));
    let err = sse.check_connection().unwrap_err();
    // Either the probe now sees the FIN, or the reset answering the first
    // heartbeat fails the write: gone, either way.
    assert!(
        matches!(
            Error::of(&err),
            Some(Error::PeerGone | Error::WriteFailed(_))
        ),
        "{err:?}"
    );
}

#[test]
fn any_socket_reports_a_departed_client_by_the_second_check() {
    let mut sse = stream_whose_client_left(false);
    // The first write may still be accepted by the kernel; the peer answers
    // it with a reset, which the next write sees. Heartbeats are seconds
    // apart; a short pause stands in for that.
    let first = sse.check_connection().map(drop);
    thread::sleep(Duration::from_millis(100));
    let second = sse.check_connection().map(drop);
    assert!(
        first.is_err() || second.is_err(),
        "still open after two checks"
    );
    assert!(sse.is_closed());
}

#[test]
fn a_client_that_is_still_there_is_not_reported_gone() {
    let (server, mut client) = pair();
    let mut sse = SseConnection::start_socket(&server).unwrap();
    sse.check_connection().unwrap();
    // A pipelined request waiting to be read is not a hang-up.
    client
        .write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(50));
    sse.check_connection().unwrap();
    sse.check_connection().unwrap();
    // The probe restored blocking mode: reading the pipelined request
    // blocks until bytes are there instead of failing with WouldBlock.
    let mut buf = [0u8; 9];
    (&server).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"GET /next");
    let response = read_until(&mut client, &mut Vec::new(), |r| {
        r.stream.comments.len() == 3
    });
    assert!(response.stream.comments.iter().all(String::is_empty));
}

#[test]
fn a_half_closed_client_is_reported_gone() {
    // EventSource never half-closes; a client that shuts down its sending
    // side is treated as gone, like Go's CloseNotifier does.
    let (server, client) = pair();
    let mut sse = SseConnection::start_socket(&server).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        sse.check_connection().unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
}
