//! A chat room: every open tab posts messages and sees everyone's appear
//! live, through one broadcast hub. A blocking `std::net` server, one thread
//! per connection until a connection turns into an event stream, which the
//! hub then writes.
//!
//! ```text
//! cargo run --example chat            # then open http://127.0.0.1:8080/ in a few tabs
//! cargo run --example chat -- 0.0.0.0:3000
//! ```
//!
//! - `GET /` serves the page, with a fresh tab id in its signals.
//! - `GET /feed` (the page's `data-init`) opens the tab's stream: the whole
//!   room first (or, when the browser reconnects with `Last-Event-ID`, only
//!   the messages it missed), then every new message. The tab id is the
//!   stream's takeover key, so a tab that reconnects replaces its old stream.
//! - `POST /send` (the form's `@post`) adds a message and publishes it once
//!   to every stream.
//!
//! Closed tabs are pruned by the hub's heartbeat (every 5 s here), and the
//! "tabs connected" count drops with them.
//!
//! Ctrl-C stops the hub ([`Hub::stop`]): every stream gets what was queued
//! for it and is then cut rather than finished, so the open tabs reconnect
//! by themselves to the next server started on the same address.

use dstar::broadcast::{Config, Hub, Subscription};
use dstar::datastar::{ElementPatchMode, PatchElements, PatchSignals, client_url};
use dstar::request::{Request, RequestReader};
use dstar::{FormattedEvent, SseResponse, response};
use serde::Deserialize;
use std::fmt::Write as _;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Messages the room keeps, and the most a new tab is shown.
const KEEP: usize = 100;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <link rel="icon" href="data:,">
  <title>dstar chat</title>
  <script type="module" src="CLIENT_URL"></script>
  <style>
    body { font: 1rem system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; }
    #messages { list-style: none; padding: 0; min-height: 10rem; }
    #messages li { padding: .25rem 0; border-bottom: 1px solid #eee; }
    form { display: flex; gap: .5rem; }
    input[name=text] { flex: 1; }
  </style>
</head>
<body data-signals="{tab: '__TAB__', name: '__NAME__', text: ''}">
  <h1>dstar chat</h1>
  <main data-init="@get('/feed')">
    <p><span id="online"></span></p>
    <ul id="messages"></ul>
  </main>
  <form data-on:submit__prevent="$text.trim() && @post('/send')">
    <input data-bind:name placeholder="name" size="10" maxlength="40">
    <input data-bind:text name="text" placeholder="say something" maxlength="500" autofocus>
    <button>Send</button>
  </form>
</body>
</html>
"#;

/// The signals every request from the page carries.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Signals {
    tab: String,
    name: String,
    text: String,
}

struct Message {
    id: u64,
    name: String,
    text: String,
}

struct Room {
    /// The page, with the Datastar client's URL filled in.
    page: String,
    /// The messages, and the lock that orders changes to them with the
    /// streams that start: publishing and subscribing both happen under it,
    /// so a new stream's first render and the live messages after it never
    /// overlap or leave a gap.
    messages: Mutex<Vec<Message>>,
    next_id: AtomicU64,
    next_tab: AtomicU64,
    hub: Hub,
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr)?;
    println!("chat: serving on http://{}/", listener.local_addr()?);

    let room = Arc::new(Room {
        page: PAGE.replace("CLIENT_URL", &client_url()?),
        messages: Mutex::new(Vec::new()),
        next_id: AtomicU64::new(1),
        next_tab: AtomicU64::new(1),
        // A short heartbeat, so that closed tabs leave the count quickly;
        // replay lets a reconnecting tab catch up without a full render.
        hub: Hub::new(
            Config::new()
                .heartbeat(Duration::from_secs(5))
                .replay(4 * KEEP),
        ),
    });
    thread::spawn({
        let room = Arc::clone(&room);
        move || report_presence(&room)
    });
    // A restart should not leave the tabs behind: a cut stream is, to the
    // Datastar client, a network error to retry (a finished one is done).
    ctrlc::set_handler({
        let room = Arc::clone(&room);
        move || {
            println!("\nchat: stopping; the tabs will reconnect to the next server");
            room.hub.stop();
            std::process::exit(0);
        }
    })
    .map_err(io::Error::other)?;

    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("chat: accept failed: {e}");
                continue;
            }
        };
        let room = Arc::clone(&room);
        thread::spawn(move || {
            if let Err(e) = serve(&room, stream) {
                eprintln!("chat: connection ended: {e}");
            }
        });
    }
    Ok(())
}

/// Serves one connection: pages and posts on keep-alive, until the page
/// asks for its feed and the connection is handed to the hub.
fn serve(room: &Room, stream: TcpStream) -> io::Result<()> {
    // Nagle's algorithm holds a small write back until the previous one is
    // acknowledged; every event is a small write, so it would sit there.
    stream.set_nodelay(true)?;
    // A client that stalls halfway through a request must not hold this
    // thread forever; once the stream is the hub's, the hub sets its own
    // write timeout.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;

    let mut requests = RequestReader::new(&stream);
    let feed = loop {
        let request = match requests.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) => return response::write_error(&mut &stream, &e),
        };
        match (request.method(), request.path()) {
            ("GET" | "HEAD", "/") => response::write_html(&mut &stream, &page(room), &request)?,
            ("GET", "/feed") => break request,
            ("POST", "/send") => {
                post(room, &request)?;
                // The answer clears the input box of the tab that sent it.
                let mut sse = SseResponse::for_request(&request).start(&stream)?;
                sse.send_event(PatchSignals::new(r#"{"text":""}"#))?;
                sse.finish()?;
            }
            _ => response::write_not_found(&mut &stream, &request)?,
        }
    };
    drop(requests);
    subscribe(room, &feed, stream)
}

/// The page, with a tab id of its own and a guest name.
fn page(room: &Room) -> String {
    let n = room.next_tab.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    room.page
        .replace("__TAB__", &format!("tab-{n}-{nanos:x}"))
        .replace("__NAME__", &format!("guest-{n}"))
}

fn signals(request: &Request) -> Signals {
    let text = request.signals().ok().flatten().unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

/// Adds a message and publishes it, formatted once, to every tab.
fn post(room: &Room, request: &Request) -> io::Result<()> {
    let Signals { name, text, .. } = signals(request);
    let text: String = text.trim().chars().take(500).collect();
    if text.is_empty() {
        return Ok(());
    }
    let name: String = match name.trim() {
        "" => "anonymous".into(),
        name => name.chars().take(40).collect(),
    };
    let message = Message {
        id: room.next_id.fetch_add(1, Ordering::Relaxed),
        name,
        text,
    };
    let mut html = String::new();
    render(&mut html, &message);

    let mut messages = room.messages.lock().unwrap();
    // The hub gives the event an id of its own (unique to this process): a
    // tab that reconnects says which event it saw last, and the hub replays
    // the ones after it, or sends the whole room if that id is not its own.
    let event = PatchElements::new(&html)
        .selector("#messages")
        .mode(ElementPatchMode::Append);
    room.hub.publish(event)?;
    messages.push(message);
    if messages.len() > KEEP {
        messages.remove(0);
    }
    Ok(())
}

/// Hands the connection to the hub: the whole room first unless the
/// browser is resuming, then every new message.
fn subscribe(room: &Room, request: &Request, stream: TcpStream) -> io::Result<()> {
    let tab = signals(request).tab;
    let sse = SseResponse::for_request(request).start_socket(stream)?;
    let messages = room.messages.lock().unwrap();
    let mut html = String::from("<ul id=\"messages\">");
    for message in messages.iter() {
        render(&mut html, message);
    }
    html.push_str("</ul>");
    // Morphs the list by its id, replacing whatever the tab showed. (The
    // stream's `data-init` sits outside it, on `<main>`, so the morph
    // cannot touch the attribute that opened the stream.)
    let whole_room = FormattedEvent::new(&PatchElements::new(&html))?;
    let mut subscription = Subscription::new()
        .last_event_id(request.last_event_id())
        .snapshot(whole_room);
    if !tab.is_empty() {
        subscription = subscription.key(tab);
    }
    let replay = room.hub.subscribe(sse, subscription)?;
    drop(messages);
    println!(
        "chat: a tab subscribed ({replay:?}); {:?}",
        room.hub.stats()
    );
    Ok(())
}

fn render(html: &mut String, message: &Message) {
    let _ = write!(html, "<li id=\"m-{}\"><b>", message.id);
    escape(html, &message.name);
    html.push_str("</b>: ");
    escape(html, &message.text);
    html.push_str("</li>");
}

/// HTML-escapes user text: a message must not become markup.
fn escape(html: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            c => html.push(c),
        }
    }
}

/// Publishes the number of open tabs whenever it changes: it rises as tabs
/// subscribe and falls as the hub prunes the ones that closed.
fn report_presence(room: &Room) {
    let mut shown = usize::MAX;
    loop {
        let online = room.hub.stats().subscribers;
        if online != shown {
            let html = format!(
                "<span id=\"online\">{online} tab{} connected</span>",
                if online == 1 { "" } else { "s" }
            );
            if room.hub.publish(PatchElements::new(&html)).is_ok() {
                shown = online;
            }
        }
        thread::sleep(Duration::from_millis(500));
    }
}
