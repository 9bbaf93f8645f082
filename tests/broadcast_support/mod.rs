//! Loopback sockets for the broadcast hub tests: a listener that hands
//! accepted streams to a hub, and a client that decodes what it receives.
#![allow(dead_code)] // each test binary uses a different subset

use dstar::broadcast::{Hub, Replay, Subscription};
use dstar::testing::{self, MessageEvent};
use dstar::{SseConnection, SseResponse};
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// How long a client waits for one read: long enough for a loaded CI
/// machine, short enough that a lost event fails the test instead of
/// hanging it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits (polling, at most 10 s) until `done` holds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub struct Server {
    listener: TcpListener,
}

impl Server {
    pub fn new() -> Server {
        Server {
            listener: TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener"),
        }
    }

    /// Connects a client, and subscribes the accepted socket to `hub`.
    pub fn subscribe(&self, hub: &Hub, sub: Subscription) -> Client {
        self.subscribe_with(hub, sub).0
    }

    /// Like [`subscribe`](Server::subscribe), and returns a clone of the
    /// accepted socket too, as an application that reads requests on it
    /// would keep.
    pub fn subscribe_keeping_socket(&self, hub: &Hub, sub: Subscription) -> (Client, TcpStream) {
        let client = Client::connect(&self.listener);
        let (socket, _) = self.listener.accept().expect("accept");
        socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let kept = socket.try_clone().expect("clone the socket");
        let conn = SseResponse::new()
            .start_socket(socket)
            .expect("start the response");
        hub.subscribe(conn, sub).expect("subscribe");
        (client, kept)
    }

    /// Like [`subscribe`](Server::subscribe), with how the stream started.
    pub fn subscribe_with(&self, hub: &Hub, sub: Subscription) -> (Client, Replay) {
        let client = Client::connect(&self.listener);
        let (socket, _) = self.listener.accept().expect("accept");
        // The hub sets the write timeout itself; the read timeout is only for
        // this test, which never reads from the server side.
        socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        socket.set_nodelay(true).unwrap();
        let conn: SseConnection<TcpStream> = SseResponse::new()
            .start_socket(socket)
            .expect("start the response");
        let replay = hub.subscribe(conn, sub).expect("subscribe");
        (client, replay)
    }

    /// Connects a client, and hands the accepted socket's started stream to
    /// `subscribe` (a Redis bridge's, say).
    pub fn subscribe_by(
        &self,
        subscribe: impl FnOnce(SseConnection<TcpStream>) -> io::Result<Replay>,
    ) -> (Client, Replay) {
        let client = Client::connect(&self.listener);
        let (socket, _) = self.listener.accept().expect("accept");
        socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        socket.set_nodelay(true).unwrap();
        let conn = SseResponse::new()
            .start_socket(socket)
            .expect("start the response");
        (client, subscribe(conn).expect("subscribe"))
    }
}

/// The client end of one stream, decoding it chunk by chunk as it arrives.
pub struct Client {
    socket: TcpStream,
    /// Bytes received and not yet decoded.
    buf: Vec<u8>,
    head_seen: bool,
    /// The events so far; data longer than 64 bytes is cut to 64.
    pub events: Vec<MessageEvent>,
    /// Comment lines seen (heartbeats).
    pub comments: usize,
    /// The terminating chunk arrived.
    pub finished: bool,
    /// The server closed the connection.
    pub eof: bool,
}

impl Client {
    fn connect(listener: &TcpListener) -> Client {
        let socket = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
        socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        socket.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        Client {
            socket,
            buf: Vec::new(),
            head_seen: false,
            events: Vec::new(),
            comments: 0,
            finished: false,
            eof: false,
        }
    }

    /// The data of each event so far.
    pub fn data(&self) -> Vec<String> {
        self.events.iter().map(|e| e.data.clone()).collect()
    }

    /// Reads until at least `n` events have arrived.
    pub fn wait_for_events(&mut self, n: usize) {
        while self.events.len() < n {
            assert!(
                !self.eof,
                "the stream ended after {} of {n} events",
                self.events.len()
            );
            self.read_some()
                .unwrap_or_else(|e| panic!("waiting for event {n}: {e}"));
        }
    }

    /// Reads until `done` holds.
    pub fn read_until(&mut self, done: impl Fn(&Client) -> bool) {
        while !done(self) {
            assert!(!self.eof, "the stream ended");
            self.read_some()
                .unwrap_or_else(|e| panic!("reading the stream: {e}"));
        }
    }

    /// Reads until the server closes the connection.
    pub fn read_to_end(&mut self) {
        while !self.eof {
            self.read_some()
                .unwrap_or_else(|e| panic!("waiting for the end of the stream: {e}"));
        }
    }

    fn read_some(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.socket.read(&mut chunk)?;
        if n == 0 {
            self.eof = true;
            return Ok(());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        self.decode();
        Ok(())
    }

    fn decode(&mut self) {
        if !self.head_seen {
            let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = testing::decode_response(&self.buf[..end + 4]).expect("a valid head");
            assert_eq!(head.status, 200);
            assert_eq!(head.header("content-type"), Some("text/event-stream"));
            self.buf.drain(..end + 4);
            self.head_seen = true;
        }
        let body = testing::decode_chunked(&self.buf).expect("valid chunked framing");
        for chunk in &body.chunks {
            // The connection frames every event, and every heartbeat, as
            // one chunk of its own.
            let stream = testing::parse_event_stream(chunk);
            assert!(!stream.pending, "a chunk ended inside an event");
            self.comments += stream.comments.len();
            for mut event in stream.events {
                event.data.truncate(64);
                self.events.push(event);
            }
        }
        self.finished |= body.finished;
        self.buf = body.rest;
    }
}
