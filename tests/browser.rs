//! End to end in a real browser: headless Chromium reads what this crate
//! writes.
//!
//! Our own decoder (`dstar::testing`) follows the specs, but the judge that
//! matters is the browser: a stream it reads differently (line endings, a
//! header it dislikes, a chunk flushed late) is broken whatever our tests say.
//!
//! How it works, without the DevTools protocol: a test server built on this
//! crate serves `tests/browser/page.html`; Chromium is started headless on
//! that page as a child process; the page runs its checks with the browser's
//! own `EventSource` and `fetch()` (no CDN is reachable, and none is needed)
//! and POSTs a JSON report back. The test waits for the report with a
//! timeout, then compares what the browser received with what the server
//! sent. Chromium runs once for all the tests in this file (they share the
//! run through a `OnceLock`), and it is killed on every path by a guard.
//!
//! Chromium is looked up as `$DSTAR_CHROMIUM`, then `chromium`,
//! `chromium-browser`, `google-chrome` on the `PATH`. If it cannot be found or
//! started, the tests fail when `CI=true` (CI installs it, so a missing
//! browser there is a broken setup) and are skipped with a message elsewhere.
#![cfg(unix)]

mod chromium;

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dstar::broadcast::{Config, Hub, Replay, Subscription};
use dstar::connection::Probe;
use dstar::datastar::{
    ConsoleLog, ElementPatchMode, ExecuteScript, PatchElements, PatchSignals, Redirect,
    RemoveSignals,
};
use dstar::request::{Limits, RequestReader};
use dstar::testing::{self, MessageEvent};
use dstar::{Event, FormattedEvent, SseConnection, SseResponse, response};

use chromium::{Browser, find_chromium};
use serde::Deserialize;

/// How long Chromium may take to fetch the page; past this it "cannot be
/// started" (a cold start here takes about a second).
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the page may take to report once loaded; its own checks time out
/// after 70 s in all, so a report normally comes well before this.
const REPORT_TIMEOUT: Duration = Duration::from_secs(90);
/// Read and write timeout of every socket the test server holds.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times the page posts an action and then reuses its connection.
const ACTION_ROUNDS: u32 = 3;
/// The reconnection delay the replay stream asks for. EventSource waits 3 s
/// in Chromium by default, so a reconnect later than that shows the `retry`
/// field was read: a lower bound, which a loaded machine cannot break (only
/// delay), where an upper bound under 3 s could.
const REPLAY_RETRY: Duration = Duration::from_secs(4);
/// Heartbeat interval of the replay hub: short, so that heartbeats are sent
/// while the page listens.
const HEARTBEAT: Duration = Duration::from_millis(100);
/// How many small events go out in one burst.
const BURST: usize = 10_000;

// --- the tests: one browser run, several verdicts ---------------------------

#[test]
fn every_event_arrives_exactly_as_sent() {
    let Some(run) = browser_run() else { return };
    let events = run.report.events.get("events");
    assert_eq!(
        events.errors, 0,
        "the /events stream failed or reconnected ({} opens)",
        events.opens
    );
    assert_same_events("/events", &events.received, &run.expected.events);

    // The cases this is about are really in there.
    let sent = &run.expected.events;
    let has = |what: &str, f: &dyn Fn(&MessageEvent) -> bool| {
        assert!(sent.iter().any(f), "the stream has no {what}");
    };
    has("multi-line data", &|e| e.data.lines().count() > 2);
    has("data from bare CR and CRLF", &|e| {
        e.data.starts_with("bare CR\nthen CRLF\n")
    });
    has("non-ASCII text", &|e| {
        e.data.contains('🦀') && e.event_type.contains('ü')
    });
    has("1 MiB event", &|e| e.data.len() >= 1 << 20);
    assert_eq!(
        sent.iter().filter(|e| e.event_type == "burst").count(),
        BURST
    );
    let ids: BTreeSet<&str> = sent.iter().map(|e| e.last_event_id.as_str()).collect();
    assert!(ids.contains("ïd ✓ with spaces") && ids.contains("ghost-id") && ids.contains(""));
}

#[test]
fn eventsource_reconnects_with_last_event_id_and_gets_the_missed_events() {
    let Some(run) = browser_run() else { return };
    let replay = run.report.replay.get("replay");
    let expected: Vec<MessageEvent> = ["snapshot", "r1", "r2", "r3", "r4", "r5", "r6"]
        .iter()
        .map(|name| {
            let id = if *name == "snapshot" { "" } else { name };
            message("replay", &format!("{name} data"), id)
        })
        .collect();
    assert_same_events("/replay", &replay.received, &expected);
    assert_eq!(replay.opens, 2, "one open, one reconnect");

    // The server saw the reconnect carry the id of the last event it got,
    // and the hub answered it from its ring.
    let starts = &run.server.replay_starts;
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_eq!(starts[0].last_event_id, None);
    assert_eq!(starts[0].replay, Replay::NotRequested);
    assert_eq!(starts[1].last_event_id.as_deref(), Some("r2"));
    assert_eq!(starts[1].replay, Replay::Replayed(3));

    // The browser waited what `retry:` asked, not its own default of 3 s
    // (the upper bound is only a generous cap).
    let dropped = run.server.dropped_at.expect("the stream was dropped");
    let waited = starts[1].at.duration_since(dropped);
    assert!(
        waited >= REPLAY_RETRY.mul_f32(0.85) && waited < REPLAY_RETRY * 4,
        "reconnected {waited:?} after the drop, asked for {REPLAY_RETRY:?}"
    );
}

#[test]
fn a_post_answered_with_sse_is_read_whole_and_its_connection_reused() {
    let Some(run) = browser_run() else { return };
    let rounds = run.report.action.get("action");
    assert_eq!(rounds.len(), ACTION_ROUNDS as usize);
    for (round, got) in rounds.iter().enumerate() {
        assert_eq!(got.round as usize, round);
        assert_eq!(got.status, 200);
        assert_eq!(got.content_type.as_deref(), Some("text/event-stream"));
        assert!(
            got.acked,
            "round {round}: the first event did not reach fetch() before the response ended"
        );
        let expected = &run.server.action_bodies[round];
        assert!(
            got.text == *expected,
            "round {round}: fetch() read {} bytes, the server sent {}",
            got.text.len(),
            expected.len()
        );
        assert_eq!(got.after, "after");

        // Keep-alive after a finished stream: the next request came on the
        // very connection that carried the stream.
        let action = run.server.connection_of(&format!("/action?round={round}"));
        let after = run.server.connection_of(&format!("/after?round={round}"));
        assert_eq!(
            action, after,
            "round {round}: /after came on connection {after}, the stream was on {action}"
        );
    }
    let held = &run.server.acks;
    assert_eq!(held.len(), ACTION_ROUNDS as usize, "acks: {held:?}");
}

#[test]
fn comments_and_heartbeats_are_ignored() {
    let Some(run) = browser_run() else { return };
    // The showcase stream is full of comments, including ones that look like
    // fields; the browser's events match the events alone.
    assert!(
        run.expected.comments >= 5,
        "{} comments",
        run.expected.comments
    );
    let events = run.report.events.get("events");
    assert_eq!(events.received.len(), run.expected.events.len());

    // The hub sent heartbeats on the resumed replay stream before its last
    // event, while the page listened (the wire copy shows them), and the
    // page saw only the events.
    let wire = run
        .server
        .replay_wire
        .last()
        .expect("a copy of the replay stream");
    let decoded = testing::decode_response(wire).expect("the replay stream decodes");
    let body = String::from_utf8_lossy(&decoded.body);
    let before_last = &body[..body.find("id: r6").expect("r6 was sent")];
    let heartbeats = testing::parse_event_stream(before_last.as_bytes()).comments;
    assert!(
        !heartbeats.is_empty(),
        "no heartbeat went out on the resumed replay stream before its last event"
    );
    let replay = run.report.replay.get("replay");
    assert!(replay.received.iter().all(|e| e.data.ends_with(" data")));
}

// --- one run, shared ---------------------------------------------------------

/// What one browser run produced: the page's report, and what the server
/// sent and saw.
struct Run {
    report: Report,
    expected: Showcase,
    server: ServerRecord,
}

/// Runs the browser once for every test in this file. `None`: skipped.
fn browser_run() -> Option<&'static Run> {
    static RUN: OnceLock<Outcome> = OnceLock::new();
    // Every failure is kept as a value rather than a panic: a panic here
    // would leave the cell empty, and the next test would start Chromium
    // again.
    let outcome = RUN.get_or_init(|| {
        let started = Instant::now();
        let outcome = run_browser();
        eprintln!(
            "browser run took {:.2} s in all",
            started.elapsed().as_secs_f64()
        );
        outcome
    });
    match outcome {
        Outcome::Ran(run) => Some(run),
        Outcome::Failed(why) => panic!("{why}"),
        Outcome::Unavailable(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Chromium is required under CI=true: {why}")
        }
        Outcome::Unavailable(why) => {
            eprintln!("SKIPPED: the browser tests need Chromium: {why}");
            None
        }
    }
}

enum Outcome {
    Ran(Box<Run>),
    /// Chromium could not be found or started.
    Unavailable(String),
    /// Anything that went wrong once the browser had loaded the page.
    Failed(String),
}

fn run_browser() -> Outcome {
    let Some(chromium) = find_chromium() else {
        return Outcome::Unavailable(
            "no chromium, chromium-browser or google-chrome on the PATH (or set DSTAR_CHROMIUM)"
                .into(),
        );
    };
    let showcase = Showcase::build();
    let mut server = match Server::start(&showcase) {
        Ok(server) => server,
        Err(e) => return Outcome::Failed(format!("cannot start the test server: {e}")),
    };
    let url = format!("http://{}/", server.addr);
    let started = Instant::now();
    let mut browser = match Browser::launch(&chromium, &url) {
        Ok(browser) => browser,
        Err(e) => return Outcome::Unavailable(format!("{}: {e}", chromium.display())),
    };

    // Until the page has loaded, a browser that dies or hangs "cannot start".
    if !server.wait_for(PAGE_TIMEOUT, &mut browser, |s| s.page_loaded) {
        return Outcome::Unavailable(format!(
            "{} did not load the page within {PAGE_TIMEOUT:?}{}",
            chromium.display(),
            browser.describe()
        ));
    }
    if !server.wait_for(REPORT_TIMEOUT, &mut browser, |s| s.record.report.is_some()) {
        return Outcome::Failed(format!(
            "the page sent no report within {REPORT_TIMEOUT:?}{}",
            browser.describe()
        ));
    }
    let elapsed = started.elapsed();
    drop(browser);
    let record = server.stop();
    let report: Report = match serde_json::from_slice(record.report.as_deref().unwrap_or_default())
    {
        Ok(report) => report,
        Err(e) => return Outcome::Failed(format!("the page's report does not parse: {e}")),
    };
    if !report.errors.is_empty() {
        return Outcome::Failed(format!("the page hit errors: {:?}", report.errors));
    }
    eprintln!(
        "Chromium started, loaded the page and ran every check in {:.2} s \
         (action {} ms, events {} ms, replay {} ms in the page; {})",
        elapsed.as_secs_f64(),
        report.action.ms,
        report.events.ms,
        report.replay.ms,
        report.user_agent,
    );
    Outcome::Ran(Box::new(Run {
        report,
        expected: showcase,
        server: record,
    }))
}

// --- the page's report -------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    user_agent: String,
    action: Check<Vec<ActionRound>>,
    events: Check<Collected>,
    replay: Check<Collected>,
    errors: Vec<String>,
}

/// One check's outcome in the page: a result, or the error that ended it.
#[derive(Deserialize)]
struct Check<T> {
    result: Option<T>,
    error: Option<String>,
    ms: u64,
}

impl<T> Check<T> {
    fn get(&self, name: &str) -> &T {
        match (&self.result, &self.error) {
            (Some(result), _) => result,
            (None, Some(error)) => panic!("the page's {name} check failed: {error}"),
            (None, None) => panic!("the page's {name} check has no result"),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionRound {
    round: u32,
    status: u16,
    content_type: Option<String>,
    text: String,
    acked: bool,
    after: String,
}

#[derive(Deserialize)]
struct Collected {
    received: Vec<Received>,
    opens: u32,
    errors: u32,
}

/// An event as the page's `EventSource` dispatched it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Received {
    #[serde(rename = "type")]
    event_type: String,
    data: String,
    last_event_id: String,
}

fn message(event_type: &str, data: &str, last_event_id: &str) -> MessageEvent {
    MessageEvent::new(event_type, data).with_last_event_id(last_event_id)
}

/// Compares what the browser dispatched with what a spec reading of the
/// sent bytes dispatches, and names the first difference.
fn assert_same_events(stream: &str, received: &[Received], expected: &[MessageEvent]) {
    for (i, (got, want)) in received.iter().zip(expected).enumerate() {
        let same = got.event_type == want.event_type
            && got.data == want.data
            && got.last_event_id == want.last_event_id;
        assert!(
            same,
            "{stream}: event {i} differs\n browser: type {:?} id {:?} data {}\n    sent: type {:?} id {:?} data {}",
            got.event_type,
            got.last_event_id,
            shorten(&got.data),
            want.event_type,
            want.last_event_id,
            shorten(&want.data),
        );
    }
    assert_eq!(
        received.len(),
        expected.len(),
        "{stream}: the browser dispatched {} events, the server sent {}",
        received.len(),
        expected.len()
    );
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(120) {
        Some((end, _)) => format!("{:?}... ({} bytes)", &text[..end], text.len()),
        None => format!("{text:?}"),
    }
}

// --- what the /events stream sends ------------------------------------------

/// The /events stream: every kind of event and comment the crate writes, with
/// the edge cases of the event-stream format.
struct Showcase {
    payload: Arc<Payload>,
    /// The events a browser must dispatch, read off the sent bytes by the
    /// crate's spec decoder.
    events: Vec<MessageEvent>,
    /// How many comments the stream holds.
    comments: usize,
}

impl Showcase {
    fn build() -> Showcase {
        // 1 MiB and more of 1-, 2-, 3- and 4-byte characters, so that
        // characters straddle every write and chunk boundary.
        let unit = "dstar é € 🦀 ";
        let one_line = unit.repeat((1 << 20) / unit.len() + 1);
        let mut many_lines = String::new();
        let breaks = ["\n", "\r", "\r\n"];
        for i in 0.. {
            if many_lines.len() >= 1 << 20 {
                break;
            }
            many_lines.push_str(&format!("line {i} ü 🦀{}", breaks[i % 3]));
        }
        let burst = (0..BURST).map(|i| i.to_string()).collect();
        let payload = Payload {
            one_line,
            many_lines,
            burst,
        };
        let mut sse = SseConnection::body_only(Vec::new());
        payload.send(&mut sse).expect("the showcase is valid");
        let stream = testing::parse_event_stream(sse.get_ref());
        assert!(!stream.pending, "the showcase ends with a whole event");
        Showcase {
            payload: Arc::new(payload),
            events: stream.events,
            comments: stream.comments.len(),
        }
    }

    /// The event types the page listens for.
    fn types(&self) -> Vec<&str> {
        let types: BTreeSet<&str> = self.events.iter().map(|e| e.event_type.as_str()).collect();
        types.into_iter().collect()
    }
}

/// The large parts of the showcase, shared with the server.
struct Payload {
    one_line: String,
    many_lines: String,
    burst: Vec<String>,
}

impl Payload {
    /// Writes the stream; run once into a `Vec` for the expected events and
    /// once into the browser's socket.
    fn send<W: Write>(&self, sse: &mut SseConnection<W>) -> io::Result<()> {
        sse.send_comment("a comment before the first event")?;
        sse.send_event(Event::message("a plain message"))?
            .send_event(Event::new("update").data("a type and an id").id("1"))?
            .send_event(Event::new("update").data("the last id carries over"))?
            .send_event(Event::new("lines").data("one\ntwo\n\nfour, after an empty third"))?
            .send_event(Event::new("lines").data("bare CR\rthen CRLF\r\nthen LF\nend"))?
            .send_event(Event::new("lines").data("\r\n\r\nbreaks first and last\r\r"))?
            .send_event(Event::new("lines").data(&["pieces", "of\r\ndata"]))?;
        sse.send_event(Event::new("edge").data(""))?
            .send_event(Event::new("edge").data("  two spaces: one is the separator"))?
            .send_event(
                Event::new("edge").data("data: x\nevent: y\nid: z\nretry: 1\n: not a comment"),
            )?
            .send_event(Event::new("edge").data("NUL \0 and DEL \x7f inside"))?
            .send_event(
                Event::new("ünïcödé-type")
                    .data("héllo wörld — 日本語 — 🦀 — \u{feff}BOM inside — \u{2028}\u{2029}")
                    .id("ïd ✓ with spaces"),
            )?;
        // No data: not dispatched, but its id becomes the last event id.
        sse.send_event(Event::new("ghost").id("ghost-id"))?
            .send_event(Event::message("after the ghost").retry(Duration::from_millis(2500)))?
            .send_event(Event::message("the id is reset").id(""))?;
        sse.check_connection()?;
        sse.send_comment(
            "data: a comment that looks like data\nevent: and a type\r\nid: and an id",
        )?;

        // The Datastar vocabulary, as the raw events a browser sees.
        let removed = ["user.name", "draft"];
        sse.send_event(
            PatchElements::new("<div id=\"a\">\n  <p>hi</p>\r\n</div>")
                .selector("#a")
                .mode(ElementPatchMode::Inner)
                .id("ds-1"),
        )?
        .send_event(PatchElements::remove("#gone"))?
        .send_event(PatchSignals::new("{\"count\": 1,\n \"name\": \"ä\"}"))?
        .send_event(RemoveSignals::new(&removed))?
        .send_event(ExecuteScript::new("console.log('</script>')\nlet x = 1;"))?
        .send_event(Redirect::new("/elsewhere?x=\"y\""))?
        .send_event(ConsoleLog::new("logged\nwith a break"))?;
        let once = FormattedEvent::new(&Event::new("formatted").data("formatted once").id("f1"))?;
        sse.send_formatted(&once)?.send_formatted(&once)?;

        sse.send_event(Event::new("large").data(&self.one_line))?
            .send_event(Event::new("large").data(&self.many_lines).id("large"))?;

        // The burst: queued and written in as few writes as the connection's
        // queue allows (it writes out every 64 KiB).
        for n in &self.burst {
            sse.queue_event(Event::new("burst").data(n).id(n))?;
        }
        sse.flush()?;
        sse.send_comment("after the burst")?;
        let tail = ["a", "b", "c"].map(|s| Event::new("all").data(s));
        sse.send_all(tail)?;
        sse.send_event(Event::new("end").data("that was all"))?;
        Ok(())
    }
}

// --- the test server -------------------------------------------------------

/// What the server saw and sent, for the assertions.
#[derive(Default)]
struct ServerRecord {
    report: Option<Vec<u8>>,
    /// Every request: the connection it came on, and its target.
    requests: Vec<(u64, String)>,
    replay_starts: Vec<ReplayStart>,
    /// When the server cut the first replay stream.
    dropped_at: Option<Instant>,
    /// A copy of the bytes written on each replay stream.
    replay_wire: Vec<Vec<u8>>,
    /// The body sent for each action round.
    action_bodies: Vec<String>,
    /// The action rounds the page acknowledged while their stream was open.
    acks: Vec<u32>,
}

impl ServerRecord {
    /// The connection the request with this target came on.
    fn connection_of(&self, target: &str) -> u64 {
        let mut found = self.requests.iter().filter(|(_, t)| t == target);
        let (conn, _) = found
            .next()
            .unwrap_or_else(|| panic!("no request for {target}"));
        assert!(found.next().is_none(), "{target} was requested twice");
        *conn
    }
}

#[derive(Debug)]
struct ReplayStart {
    last_event_id: Option<String>,
    replay: Replay,
    at: Instant,
}

struct State {
    page_loaded: bool,
    record: ServerRecord,
    /// The socket of the replay stream the hub is writing, to cut it.
    replay_socket: Option<TcpStream>,
    /// Copies of the bytes written on each replay stream, as they grow.
    replay_taps: Vec<Arc<Mutex<Vec<u8>>>>,
    /// Clones of every accepted socket, shut down when the server stops so
    /// that no connection thread waits out its timeout.
    sockets: Vec<TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    page: String,
    payload: Arc<Payload>,
    state: Mutex<State>,
    changed: Condvar,
    hub: Hub,
    stopping: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A connection thread that panicked has failed its part already; the
        // record is still worth reading.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }
}

struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    fn start(showcase: &Showcase) -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let config = serde_json::json!({
            "eventTypes": showcase.types(),
            "replayTypes": ["replay"],
            "rounds": ACTION_ROUNDS,
        });
        let page = include_str!("browser/page.html").replace("__CONFIG__", &config.to_string());
        let shared = Arc::new(Shared {
            page,
            payload: Arc::clone(&showcase.payload),
            state: Mutex::new(State {
                page_loaded: false,
                record: ServerRecord {
                    action_bodies: vec![String::new(); ACTION_ROUNDS as usize],
                    ..ServerRecord::default()
                },
                replay_socket: None,
                replay_taps: Vec::new(),
                sockets: Vec::new(),
                threads: Vec::new(),
            }),
            changed: Condvar::new(),
            hub: Hub::new(
                Config::new()
                    .replay(64)
                    .heartbeat(HEARTBEAT)
                    .write_timeout(SOCKET_TIMEOUT),
            ),
            stopping: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::spawn(move || accept_loop(&listener, &accept_shared));
        Ok(Server {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// Waits until `done` holds, the browser exits, or `timeout` passes.
    fn wait_for(
        &self,
        timeout: Duration,
        browser: &mut Browser,
        done: impl Fn(&State) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if done(&state) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || browser.exited() {
                return false;
            }
            // Wake now and then to notice a browser that died.
            let wait = (deadline - now).min(Duration::from_millis(200));
            state = self
                .shared
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stops everything and returns the record.
    fn stop(&mut self) -> ServerRecord {
        self.shutdown();
        let mut state = self.shared.lock();
        let taps = std::mem::take(&mut state.replay_taps);
        state.record.replay_wire = taps
            .iter()
            .map(|tap| tap.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .collect();
        std::mem::take(&mut state.record)
    }

    fn shutdown(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        // Wake the blocking accept() with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, SOCKET_TIMEOUT);
        let _ = accept.join();
        self.shared.hub.stop();
        let threads = {
            let mut state = self.shared.lock();
            for socket in state.sockets.drain(..) {
                let _ = socket.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut state.threads)
        };
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let conn = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        let thread_shared = Arc::clone(shared);
        let thread = thread::spawn(move || {
            if let Err(e) = serve(conn, &stream, &thread_shared) {
                // Expected when the browser closes a stream; shown for a failure.
                eprintln!("test server: connection {conn} ended: {e}");
            }
        });
        let mut state = shared.lock();
        state.sockets.push(clone);
        state.threads.push(thread);
    }
}

/// Serves one connection: requests until it is closed or becomes a stream.
fn serve(conn: u64, stream: &TcpStream, shared: &Shared) -> io::Result<()> {
    // Each event is a small write; Nagle's algorithm would hold one back
    // until the previous one is acknowledged.
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
    stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
    // The report carries the 2 MiB of large events back.
    let limits = Limits::default().max_body(64 << 20);
    let mut reader = RequestReader::with_limits(stream, limits);
    let mut out = stream;
    loop {
        let request = match reader.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) => return response::write_error(&mut out, &e),
        };
        shared.update(|s| s.record.requests.push((conn, request.target().to_string())));
        let round = || -> u32 {
            request
                .query_param("round")
                .and_then(|r| r.parse().ok())
                .unwrap_or(u32::MAX)
        };
        // Everything but the action's connection is answered with
        // `Connection: close`, so that the connection the action stream used
        // is the only idle one the browser could reuse.
        match (request.method(), request.path()) {
            ("GET", "/") => {
                response::write_html(&mut out, &shared.page, response::Reply::close())?;
                shared.update(|s| s.page_loaded = true);
                return Ok(());
            }
            ("GET", "/events") => return stream_showcase(stream, shared),
            ("GET", "/replay") => {
                return stream_replay(stream, request.last_event_id(), shared);
            }
            ("POST", "/replay/drop") => {
                drop_replay(shared)?;
                return response::write_text(&mut out, 200, "dropped", response::Reply::close());
            }
            ("POST", "/action") => {
                let signals = request.signals().map_err(io::Error::from)?;
                stream_action(stream, round(), signals.as_deref(), shared)?;
                if !request.keep_alive() {
                    return Ok(());
                }
            }
            ("POST", "/ack") => {
                shared.update(|s| s.record.acks.push(round()));
                return response::write_text(&mut out, 200, "ok", response::Reply::close());
            }
            ("GET", "/after") => {
                response::write_text(&mut out, 200, "after", &request)?;
                if !request.keep_alive() {
                    return Ok(());
                }
            }
            ("POST", "/report") => {
                let body = request.into_body();
                shared.update(|s| s.record.report = Some(body));
                return response::write_text(&mut out, 200, "thanks", response::Reply::close());
            }
            _ => return response::write_not_found(&mut out, response::Reply::close()),
        }
    }
}

fn stream_showcase(stream: &TcpStream, shared: &Shared) -> io::Result<()> {
    let mut sse = SseConnection::start_socket(stream)?;
    shared.payload.send(&mut sse)?;
    // The page closes the stream once it has the last event; until then the
    // stream stays open, since a finished one would make EventSource
    // reconnect. (A read that times out ends the wait too.)
    let _ = (&*stream).read(&mut [0u8; 64]);
    Ok(())
}

/// Stream of the replay check: a hub subscriber with the browser's
/// `Last-Event-ID`.
fn stream_replay(
    stream: &TcpStream,
    last_event_id: Option<&str>,
    shared: &Shared,
) -> io::Result<()> {
    let tap = Tap {
        socket: stream.try_clone()?,
        copy: Arc::new(Mutex::new(Vec::new())),
    };
    let copy = Arc::clone(&tap.copy);
    // The hub sets the write timeout itself only on a bare TcpStream; this
    // writer wraps one, so it is set here (the socket already has one, set
    // again to say so).
    stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
    let sse = SseResponse::new().start_socket(tap)?;
    let snapshot = FormattedEvent::new(&Event::new("replay").data("snapshot data"))?;
    let subscription = Subscription::new()
        .key("replay-tab")
        .last_event_id(last_event_id)
        .snapshot(snapshot);
    let socket = stream.try_clone()?;
    let replay = shared.hub.subscribe(sse, subscription)?;
    shared.update(|s| {
        s.replay_socket = Some(socket);
        s.replay_taps.push(copy);
        s.record.replay_starts.push(ReplayStart {
            last_event_id: last_event_id.map(str::to_string),
            replay,
            at: Instant::now(),
        });
    });
    if last_event_id.is_none() {
        // A short retry, so the reconnect comes quickly.
        shared.hub.publish(
            Event::new("replay")
                .data("r1 data")
                .id("r1")
                .retry(REPLAY_RETRY),
        )?;
        shared
            .hub
            .publish(Event::new("replay").data("r2 data").id("r2"))?;
    } else {
        // Idle for a few heartbeats before the live event, so the page gets
        // heartbeats it must ignore.
        thread::sleep(HEARTBEAT * 4);
        shared
            .hub
            .publish(Event::new("replay").data("r6 data").id("r6"))?;
    }
    Ok(())
}

/// Cuts the replay stream without finishing it, then publishes what the
/// page will miss while it is away.
fn drop_replay(shared: &Shared) -> io::Result<()> {
    let socket = shared.lock().replay_socket.take();
    let socket = socket.ok_or_else(|| io::Error::other("no replay stream to drop"))?;
    socket.shutdown(Shutdown::Both)?;
    shared.update(|s| s.record.dropped_at = Some(Instant::now()));
    for n in 3..=5 {
        let name = format!("r{n}");
        let data = format!("{name} data");
        shared
            .hub
            .publish(Event::new("replay").data(&data).id(&name))?;
    }
    Ok(())
}

/// A Datastar action's answer: one event, a pause until the page says it has
/// it, the rest, and the end of the response; the connection then serves
/// the next request.
fn stream_action(
    stream: &TcpStream,
    round: u32,
    signals: Option<&str>,
    shared: &Shared,
) -> io::Result<()> {
    let signals = signals.unwrap_or("{}");
    let parsed: serde_json::Value = serde_json::from_str(signals)?;
    let echo = serde_json::json!({ "seen": parsed, "round": round }).to_string();
    let html = format!(
        "<ul id=\"rounds\">\n{}</ul>",
        (0..2000)
            .map(|i| format!("  <li>round {round}, item {i} — ü 🦀</li>\n"))
            .collect::<String>()
    );
    let first = FormattedEvent::new(&PatchSignals::new(&echo))?;
    let rest = [
        FormattedEvent::new(&PatchElements::new(&html).mode(ElementPatchMode::Outer))?,
        FormattedEvent::new(&ExecuteScript::new("console.log('done')"))?,
        FormattedEvent::new(&RemoveSignals::new(&["seen"]))?,
    ];
    let body: String = std::iter::once(&first)
        .chain(&rest)
        .map(FormattedEvent::as_str)
        .collect();
    shared.update(|s| {
        if let Some(slot) = s.record.action_bodies.get_mut(round as usize) {
            *slot = body;
        }
    });

    let mut sse = SseConnection::start_socket(stream)?;
    sse.send_formatted(&first)?;
    // Hold the rest back until the page has read the first event through
    // fetch(): a response that only arrived whole would never be acked.
    let deadline = Instant::now() + SOCKET_TIMEOUT;
    let mut state = shared.lock();
    while !state.record.acks.contains(&round)
        && Instant::now() < deadline
        && !shared.stopping.load(Ordering::SeqCst)
    {
        state = shared
            .changed
            .wait_timeout(state, Duration::from_millis(100))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    drop(state);
    for event in &rest {
        sse.queue_formatted(event)?;
    }
    sse.finish()?;
    Ok(())
}

/// A socket that keeps a copy of everything written to it, so the test can
/// see the heartbeats the hub sent.
struct Tap {
    socket: TcpStream,
    copy: Arc<Mutex<Vec<u8>>>,
}

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.socket.write(buf)?;
        self.copy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

impl Probe for Tap {
    fn peer_hung_up(&self) -> io::Result<bool> {
        self.socket.peer_hung_up()
    }
}
