//! The dstar demo: a small Datastar app on a blocking `std::net` server.
//!
//! ```text
//! cargo run --example demo                 # then open http://127.0.0.1:8080/
//! cargo run --example demo -- 0.0.0.0:3000
//! ```
//!
//! Open it in two tabs. Each tab has its own counter, kept in Datastar
//! signals: the buttons POST the signals, the server reads them and answers
//! with an event stream that patches them back. The live panel is shared: a
//! clock, the number of open tabs, and a message board, pushed to every tab
//! through one broadcast hub. A new tab starts from a snapshot of the panel;
//! a tab whose stream drops and reconnects (Datastar closes it while the tab
//! is hidden and reopens it when it is shown again) sends `Last-Event-ID`,
//! and the hub replays what it missed.
//!
//! What it shows of the crate: reading requests and signals
//! ([`RequestReader`], [`Request::signals`]), answering a Datastar action
//! with a short stream that is finished so the connection serves the next
//! request ([`SseConnection::finish`]), and the Datastar events: patch
//! elements (replace, append, remove), patch and remove signals, execute
//! script and console log. Ctrl-C stops it cleanly ([`Hub::stop`]): every
//! live stream gets what was queued for it and is then cut, not finished,
//! so open tabs reconnect by themselves once the server is back (run it
//! again on the same address); the process exits with status 0.
//!
//! The page loads the Datastar client from its CDN, so the browser needs to
//! reach cdn.jsdelivr.net, unless `DATASTAR_CLIENT_URL` names another copy
//! (see [`client_url`]); the server itself needs nothing but std.
//!
//! With `--features compression` (or any of `brotli`, `zstd`, `gzip`) the
//! live stream is compressed in whatever coding the browser accepts; the
//! browser's network panel shows each panel update costing a few dozen
//! bytes. Without them it is sent as it is.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dstar::broadcast::{Config, Hub, Subscription};
use dstar::compression::Compression;
use dstar::datastar::{
    ConsoleLog, ElementPatchMode, ExecuteScript, PatchElements, PatchSignals, RemoveSignals,
    client_url,
};
use dstar::request::{Request, RequestError, RequestErrorKind, RequestReader};
use dstar::{FormattedEvent, SseConnection, SseResponse, response};
use serde::Deserialize;

/// Messages the board keeps; the oldest goes when one more arrives.
const MAX_MESSAGES: usize = 12;
/// Longest message, in characters.
const MAX_MESSAGE_CHARS: usize = 280;

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr)?;
    let local = listener.local_addr()?;
    println!("dstar demo: listening on {local}, port {}", local.port());
    println!(
        "open http://{}/ in a browser (Ctrl-C stops the server)",
        browsable(local)
    );

    let app = Arc::new(App::new(PAGE.replace("CLIENT_URL", &client_url()?)));

    // Ctrl-C: the handler only raises the flag and wakes the accept loop
    // with a connection of its own; main does the rest, on its own thread.
    let wake = wake_address(local);
    let on_ctrl_c = Arc::clone(&app);
    ctrlc::set_handler(move || {
        on_ctrl_c.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
    })
    .map_err(io::Error::other)?;

    let ticker = {
        let app = Arc::clone(&app);
        thread::Builder::new()
            .name("demo-ticker".into())
            .spawn(move || tick(&app))?
    };

    for stream in listener.incoming() {
        if app.stopping.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(stream) => {
                let app = Arc::clone(&app);
                thread::spawn(move || {
                    if let Err(e) = serve(&stream, &app) {
                        eprintln!("demo: connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors, say: wait a little rather than spin.
                eprintln!("demo: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }

    let streams = app.hub.stats().subscribers;
    println!("\ndemo: stopping; cutting {streams} live stream(s) for their tabs to reconnect");
    ticker.thread().unpark();
    let _ = ticker.join();
    // Writes what is queued, then cuts every stream and joins its thread: a
    // tab sees a network error and retries, reaching the next server.
    // (`Hub::finish` would end them cleanly, and Datastar would not retry.)
    app.hub.stop();
    println!("demo: stopped");
    // Connection threads still reading a request hold nothing worth saving;
    // they end with the process.
    Ok(())
}

/// The state shared by every connection.
struct App {
    /// The page, with the Datastar client's URL filled in.
    page: String,
    hub: Hub,
    live: Mutex<Live>,
    stopping: AtomicBool,
    tab_ids: RandomState,
}

/// The live panel. Changes to it are published under its lock, and new
/// streams take their snapshot and subscribe under the same lock, so a
/// snapshot and the events after it never overlap or leave a gap.
struct Live {
    messages: VecDeque<Message>,
    next_message: u64,
    visitors: usize,
}

struct Message {
    id: u64,
    author: String,
    time: String,
    text: String,
}

impl App {
    fn new(page: String) -> App {
        App {
            page,
            hub: Hub::new(
                Config::new()
                    // A closed tab is noticed within this long.
                    .heartbeat(Duration::from_secs(5))
                    // Enough to resume a tab that was hidden for two minutes:
                    // the clock ticks and the messages between them.
                    .replay(128),
            ),
            live: Mutex::new(Live {
                messages: VecDeque::new(),
                next_message: 1,
                visitors: 0,
            }),
            stopping: AtomicBool::new(false),
            tab_ids: RandomState::new(),
        }
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a patch to every tab. The hub gives it an id that no other
    /// process uses, so a tab that reconnects, even to a restarted demo, is
    /// resumed only from an event of this one. Called with the state locked
    /// (`_live`), which orders publishes with the snapshots tabs start from.
    fn publish(&self, _live: &mut Live, patch: PatchElements<'_>) {
        if let Err(e) = self.hub.publish(patch) {
            eprintln!("demo: cannot publish: {e}");
        }
    }

    /// Publishes the visitor count if it changed.
    fn update_visitors(&self, live: &mut Live) {
        let visitors = self.hub.stats().subscribers;
        if visitors != live.visitors {
            live.visitors = visitors;
            self.publish(live, PatchElements::new(&visitors_html(visitors)));
        }
    }
}

/// Once a second: the clock, and the visitor count when it changed.
fn tick(app: &App) {
    while !app.stopping.load(Ordering::SeqCst) {
        {
            let mut live = app.live();
            app.publish(&mut live, PatchElements::new(&clock_html()));
            app.update_visitors(&mut live);
        }
        // Woken early by main at shutdown.
        thread::park_timeout(Duration::from_secs(1));
    }
}

/// Serves one connection: requests until it closes or becomes a live stream.
fn serve(stream: &TcpStream, app: &App) -> io::Result<()> {
    // Each event is a small write; Nagle's algorithm would hold one back
    // until the previous one is acknowledged.
    stream.set_nodelay(true)?;
    // A client that stalls mid-request, or stops reading, must not hold this
    // thread forever. (The hub sets its own write timeout on live streams.)
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;

    let mut reader = RequestReader::new(stream);
    let mut out = stream;
    loop {
        let request = match reader.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) => return response::write_error(&mut out, &e),
        };
        // `signals()` finds them (query or body) and checks the JSON is
        // well-formed; serde_json checks they have the shape this page gives
        // them.
        let signals: Signals = match request.signals() {
            Ok(None) => Signals::default(),
            Ok(Some(json)) => match serde_json::from_str(&json) {
                Ok(signals) => signals,
                Err(e) => {
                    let message = format!("unexpected signals: {e}");
                    let refused = RequestError::new(RequestErrorKind::BadSignals, message);
                    return response::write_error(&mut out, &refused);
                }
            },
            Err(e) => return response::write_error(&mut out, &e),
        };
        // An action's answer is a short event stream, chunked and finished
        // for HTTP/1.1; for HTTP/1.0 it is ended by closing the connection,
        // and the reader then reads no further request.
        let sse = || SseResponse::for_request(&request).start_socket(stream);
        match (request.method(), request.path()) {
            ("GET" | "HEAD", "/") => response::write_html(&mut out, &page(app), &request)?,
            ("GET", "/stream") => return subscribe(stream, &request, &signals, app),
            ("POST", "/counter/inc") => counter(sse()?, signals.count.saturating_add(1), "+1")?,
            ("POST", "/counter/dec") => counter(sse()?, signals.count.saturating_sub(1), "−1")?,
            ("POST", "/counter/reset") => counter_reset(sse()?)?,
            ("POST", "/messages") => post_message(sse()?, &signals, app)?,
            ("DELETE", path) if path.starts_with("/messages/") => {
                delete_message(sse()?, &path["/messages/".len()..], app)?
            }
            _ => response::write_not_found(&mut out, &request)?,
        }
    }
}

/// The answer to an action, on the request's connection.
type Sse<'a> = SseConnection<&'a TcpStream>;

/// The signals this page has; Datastar sends all of them with each action.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Signals {
    tab: String,
    count: i64,
    message: String,
}

/// The live stream of one tab: a snapshot (or what it missed), then every
/// change to the panel. The hub writes it from here on.
fn subscribe(
    stream: &TcpStream,
    request: &Request,
    signals: &Signals,
    app: &App,
) -> io::Result<()> {
    // Compressed if this build has a coding the browser accepts.
    let sse = SseResponse::for_request(request)
        .compression(Compression::new())
        .start_socket(stream.try_clone()?)?;
    let mut live = app.live();
    let panel = panel_html(&live);
    let mut subscription = Subscription::new()
        .last_event_id(request.last_event_id())
        .snapshot(FormattedEvent::new(&PatchElements::new(&panel))?)
        .snapshot(FormattedEvent::new(&ConsoleLog::new(
            "dstar demo: live stream connected",
        ))?);
    // A tab that reconnects replaces its old stream instead of leaving it
    // for the heartbeat to find.
    if !signals.tab.is_empty() {
        subscription = subscription.key(signals.tab.clone());
    }
    app.hub.subscribe(sse, subscription)?;
    app.update_visitors(&mut live);
    Ok(())
}

/// Answers a counter button: the new count and what was done, as a signal
/// patch, in a stream that is finished so the connection can carry the next
/// click.
fn counter(mut sse: Sse<'_>, count: i64, op: &str) -> io::Result<()> {
    let patch = serde_json::json!({
        "count": count,
        "lastAction": { "op": op, "at": time_of_day(SystemTime::now()) },
    });
    sse.send_event(PatchSignals::new(&patch.to_string()))?;
    if count != 0 && count % 10 == 0 {
        // Every tenth: a little celebration, run in the page.
        sse.send_event(ExecuteScript::new(
            "document.getElementById('count').animate(\
             [{transform: 'scale(1)'}, {transform: 'scale(1.8)'}, {transform: 'scale(1)'}],\
             {duration: 500, easing: 'ease-out'})",
        ))?;
    }
    sse.finish().map(drop)
}

/// Resets the counter, and removes the `lastAction` signal altogether (watch
/// it go in the page's signals panel).
fn counter_reset(mut sse: Sse<'_>) -> io::Result<()> {
    sse.send_event(PatchSignals::new("{\"count\":0}"))?
        .send_event(RemoveSignals::new(&["lastAction"]))?
        .send_event(ConsoleLog::new("dstar demo: counter reset"))?;
    sse.finish().map(drop)
}

fn post_message(mut sse: Sse<'_>, signals: &Signals, app: &App) -> io::Result<()> {
    let text = signals.message.trim();
    let problem = if text.is_empty() {
        Some("Write something first.".to_string())
    } else if text.chars().count() > MAX_MESSAGE_CHARS {
        Some(format!("At most {MAX_MESSAGE_CHARS} characters, please."))
    } else {
        None
    };
    if let Some(problem) = problem {
        // Rendered on the server: the page needs no signal for it.
        let html = format!(
            "<p id=\"error\" class=\"error\">{}</p>",
            escape_html(&problem)
        );
        sse.send_event(PatchElements::new(&html))?;
        return sse.finish().map(drop);
    }

    {
        let mut live = app.live();
        let message = Message {
            id: live.next_message,
            author: author_of(&signals.tab),
            time: time_of_day(SystemTime::now()),
            text: text.to_string(),
        };
        live.next_message += 1;
        let html = message_html(&message);
        live.messages.push_back(message);
        app.publish(
            &mut live,
            PatchElements::new(&html)
                .selector("#messages")
                .mode(ElementPatchMode::Append),
        );
        if live.messages.len() > MAX_MESSAGES
            && let Some(oldest) = live.messages.pop_front()
        {
            let selector = format!("#msg-{}", oldest.id);
            app.publish(&mut live, PatchElements::remove(&selector));
        }
    }

    // To the poster only: clear the input and any error, and put the cursor
    // back in the input.
    sse.send_event(PatchSignals::new("{\"message\":\"\"}"))?
        .send_event(PatchElements::new(EMPTY_ERROR))?
        .send_event(ExecuteScript::new(
            "document.getElementById('message').focus()",
        ))?;
    sse.finish().map(drop)
}

fn delete_message(sse: Sse<'_>, id: &str, app: &App) -> io::Result<()> {
    {
        let mut live = app.live();
        if let Ok(id) = id.parse::<u64>()
            && let Some(at) = live.messages.iter().position(|m| m.id == id)
        {
            live.messages.remove(at);
            let selector = format!("#msg-{id}");
            app.publish(&mut live, PatchElements::remove(&selector));
        }
    }
    // Nothing to patch for the one who clicked: the broadcast reaches them
    // too. The empty stream just ends the action.
    sse.finish().map(drop)
}

// --- HTML ------------------------------------------------------------------

fn page(app: &App) -> String {
    // A fresh id per page load: it keys this tab's live stream in the hub.
    let tab = format!("t{:012x}", app.tab_ids.hash_one(SystemTime::now()) >> 16);
    app.page.replace("TAB_ID", &tab)
}

const EMPTY_ERROR: &str = "<p id=\"error\" class=\"error\"></p>";

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <link rel="icon" href="data:,">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>dstar demo</title>
  <script type="module" src="CLIENT_URL"></script>
  <style>
    :root { font-family: system-ui, sans-serif; color: #1d2433; background: #f4f5f8; }
    body { max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
    h1 { margin-bottom: .2rem; }
    .sub { color: #5b6478; margin-top: 0; }
    section { background: white; border-radius: .75rem; padding: 1rem 1.25rem; margin: 1rem 0;
              box-shadow: 0 1px 3px rgb(0 0 0 / .08); }
    h2 { font-size: 1rem; text-transform: uppercase; letter-spacing: .06em; color: #5b6478; }
    #count { display: inline-block; vertical-align: middle; font-size: 3rem; font-weight: 700; min-width: 4ch; text-align: center; }
    button { font: inherit; vertical-align: middle; padding: .35rem .8rem; border-radius: .4rem; border: 1px solid #c5cad6;
             background: #fff; cursor: pointer; }
    button:hover { background: #eef0f5; }
    .stats { display: flex; gap: 2rem; font-size: 1.1rem; }
    #messages { list-style: none; padding: 0; }
    #messages:empty::before { content: "No messages yet. Say hello!"; color: #8a91a3; }
    #messages li { display: flex; gap: .6rem; align-items: baseline; padding: .3rem 0;
                   border-bottom: 1px solid #eef0f5; }
    #messages .meta { color: #8a91a3; font-size: .85rem; white-space: nowrap; }
    #messages .text { flex: 1; overflow-wrap: anywhere; }
    #messages button { padding: 0 .45rem; font-size: .8rem; }
    .compose { display: flex; gap: .5rem; }
    .compose input { flex: 1; font: inherit; padding: .35rem .6rem; border-radius: .4rem; border: 1px solid #c5cad6; }
    .error { color: #b3261e; }
    details pre { background: #f4f5f8; padding: .5rem; border-radius: .4rem; }
    footer { color: #8a91a3; font-size: .85rem; }
  </style>
</head>
<body data-signals='{"tab": "TAB_ID", "count": 0, "message": ""}' data-init="@get('/stream')">
  <h1>dstar demo</h1>
  <p class="sub">Datastar on a blocking Rust server: <code>std::net</code>, a thread per connection, and dstar.</p>

  <section>
    <h2>Your counter</h2>
    <p>Kept in this tab's signals; each click POSTs them and the server patches them back.</p>
    <button data-on:click="@post('/counter/dec')">−1</button>
    <span id="count" data-text="$count">0</span>
    <button data-on:click="@post('/counter/inc')">+1</button>
    <button data-on:click="@post('/counter/reset')">reset</button>
  </section>

  <section id="live">
    <p>Connecting to the live stream… (the page needs the Datastar client: see DATASTAR_CLIENT_URL)</p>
  </section>

  <section>
    <h2>Say something</h2>
    <div class="compose">
      <input id="message" data-bind:message placeholder="A message for every open tab"
             maxlength="280" data-on:keydown="evt.key === 'Enter' && @post('/messages')">
      <button data-on:click="@post('/messages')">Send</button>
    </div>
    <p id="error" class="error"></p>
  </section>

  <details open>
    <summary>This tab's signals (patched and removed by the server)</summary>
    <pre data-json-signals></pre>
  </details>

  <footer><p>Open a second tab: the panel is shared, the counter is not. Switch away and back: the stream reconnects and resumes by <code>Last-Event-ID</code>.</p></footer>
</body>
</html>
"#;

/// The whole live panel: the snapshot a new tab starts from.
fn panel_html(live: &Live) -> String {
    let mut html = String::from(
        "<section id=\"live\">\n  <h2>Live, for every tab</h2>\n  <div class=\"stats\">\n    ",
    );
    html.push_str(&clock_html());
    html.push_str("\n    ");
    html.push_str(&visitors_html(live.visitors));
    html.push_str("\n  </div>\n  <ul id=\"messages\">");
    for message in &live.messages {
        html.push_str(&message_html(message));
    }
    html.push_str("</ul>\n</section>");
    html
}

fn clock_html() -> String {
    format!(
        "<span id=\"clock\">🕒 {} UTC</span>",
        time_of_day(SystemTime::now())
    )
}

fn visitors_html(visitors: usize) -> String {
    let tabs = if visitors == 1 { "tab" } else { "tabs" };
    format!("<span id=\"visitors\">👀 {visitors} open {tabs}</span>")
}

fn message_html(message: &Message) -> String {
    format!(
        "<li id=\"msg-{id}\"><span class=\"meta\">{time} · {author}</span>\
         <span class=\"text\">{text}</span>\
         <button title=\"Delete for everyone\" data-on:click=\"@delete('/messages/{id}')\">×</button></li>",
        id = message.id,
        time = message.time,
        author = escape_html(&message.author),
        text = escape_html(&message.text),
    )
}

/// A short name for a tab, from its id.
fn author_of(tab: &str) -> String {
    let short: String = tab
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(5)
        .collect();
    if short.is_empty() {
        "someone".into()
    } else {
        format!("tab {short}")
    }
}

/// Escapes text for HTML content and quoted attribute values.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `HH:MM:SS` in UTC: std has no time zones.
fn time_of_day(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    let mut out = String::new();
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    out
}

// --- addresses ---------------------------------------------------------------

/// The address to put in a browser: a wildcard bind is reachable on loopback.
fn browsable(addr: SocketAddr) -> SocketAddr {
    wake_address(addr)
}

/// An address that reaches the listener from this machine.
fn wake_address(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}
