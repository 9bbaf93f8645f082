//! The chat room of `examples/chat.rs`, run as several instances that share
//! one Redis stream: a message posted to one instance appears in the tabs of
//! every instance, in the same order everywhere, and every instance shows
//! the same history, after any restart.
//!
//! ```text
//! redis-server --port 6379 --appendonly yes &
//! cargo run --features redis --example redis_chat -- 127.0.0.1:8081 &
//! cargo run --features redis --example redis_chat -- 127.0.0.1:8082
//! # open http://127.0.0.1:8081/ and http://127.0.0.1:8082/ side by side
//! ```
//!
//! The second argument is the Redis URL (default `redis://127.0.0.1:6379/`).
//!
//! - `POST /send` adds the message to the stream; it is not shown here yet.
//!   Every instance, this one included, shows it when it reads it from the
//!   stream, so all of them show the same order, with the same event ids
//!   (the stream's entry ids).
//! - The history comes from the stream: the bridge delivers the newest
//!   entries when it starts (`preload`), and its `deliver_with` hook records
//!   each message. `GET /feed` renders the history inside the bridge's
//!   `subscribe`, under the lock the hook runs under: a new tab never misses
//!   a message nor gets one twice.
//! - A tab that reconnects to any instance, a restarted one included, with
//!   `Last-Event-ID` gets only what it missed (from the ring, or from Redis).
//! - Stop Redis and post: the post fails at once, and the message is shown
//!   on this instance only, marked as such (it was certainly not sent).
//!   Start Redis again: the bridge reads on from where it was, and nothing
//!   posted elsewhere meanwhile is missing.
//! - Ctrl-C stops the bridge, then the hub ([`Hub::stop`]), which cuts every
//!   stream rather than finishing it: the tabs reconnect by themselves, to
//!   this instance once it is back or to another one behind the same proxy.

use dstar::broadcast::{self, Hub, Subscription};
use dstar::datastar::{ElementPatchMode, PatchElements, PatchSignals, client_url};
use dstar::redis_bridge::{Bridge, Config};
use dstar::request::{Request, RequestReader};
use dstar::{FormattedEvent, SseResponse, response};
use serde::Deserialize;
use std::collections::VecDeque;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Messages each instance keeps for new tabs.
const KEEP: usize = 100;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <link rel="icon" href="data:,">
  <title>dstar chat on __INSTANCE__</title>
  <script type="module" src="CLIENT_URL"></script>
  <style>
    body { font: 1rem system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; }
    #messages { list-style: none; padding: 0; min-height: 10rem; }
    #messages li { padding: .25rem 0; border-bottom: 1px solid #eee; }
    #messages li.note { color: #a40; font-style: italic; }
    form { display: flex; gap: .5rem; }
    input[name=text] { flex: 1; }
  </style>
</head>
<body data-signals="{name: 'guest', text: ''}">
  <h1>dstar chat on __INSTANCE__</h1>
  <main data-init="@get('/feed')">
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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Signals {
    name: String,
    text: String,
}

/// The message events new tabs are shown, oldest first. Updated by the
/// bridge's `deliver_with` and read in its `subscribe`, both under the
/// bridge's delivery lock.
type History = Arc<Mutex<VecDeque<FormattedEvent>>>;

struct Room {
    /// The page, with the Datastar client's URL filled in.
    page: String,
    /// `host:port`, shown in the page's title.
    instance: String,
    history: History,
    bridge: Bridge,
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let redis_url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".into());
    let listener = TcpListener::bind(&addr)?;
    let local = listener.local_addr()?;
    let instance = local.to_string();

    let hub = Arc::new(Hub::new(broadcast::Config::new().replay(4 * KEEP)));
    let history = History::default();
    let config = Config::new(redis_url)
        .stream("dstar-chat")
        // The history, from the stream, at start and after a gap.
        .preload(KEEP)
        .deliver_with({
            let history = Arc::clone(&history);
            move |received| {
                let mut history = history.lock().unwrap();
                if let Err(e) = received.deliver() {
                    eprintln!("redis_chat: cannot deliver: {e}");
                    return;
                }
                remember(&mut history, received.event().clone());
            }
        })
        .on_gap({
            let history = Arc::clone(&history);
            move |gap| {
                // Every tab has been cut off, and comes back to a new
                // snapshot: the history, delivered again from the stream.
                eprintln!("redis_chat: messages were lost: {}", gap.reason);
                history.lock().unwrap().clear();
            }
        });
    let bridge = Bridge::start(hub, config)?;
    println!("redis_chat: serving on http://{local}/; {bridge:?}");

    let room = Arc::new(Room {
        page: PAGE.replace("CLIENT_URL", &client_url()?),
        instance,
        history,
        bridge,
    });
    ctrlc::set_handler({
        let room = Arc::clone(&room);
        move || {
            println!("\nredis_chat: stopping; the tabs will reconnect");
            room.bridge.stop();
            room.bridge.hub().stop();
            std::process::exit(0);
        }
    })
    .map_err(io::Error::other)?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let room = Arc::clone(&room);
        thread::spawn(move || {
            if let Err(e) = serve(&room, stream) {
                eprintln!("redis_chat: connection ended: {e}");
            }
        });
    }
    Ok(())
}

/// Serves one connection, as `chat` does: pages and posts on keep-alive,
/// until the page asks for its feed and the connection goes to the hub.
fn serve(room: &Room, stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
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
            ("GET" | "HEAD", "/") => {
                let page = room.page.replace("__INSTANCE__", &room.instance);
                response::write_html(&mut &stream, &page, &request)?;
            }
            ("GET", "/feed") => break request,
            ("POST", "/send") => {
                post(room, &request)?;
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

/// Adds a message to the stream, or shows it here only if it certainly was
/// not sent.
fn post(room: &Room, request: &Request) -> io::Result<()> {
    let json = request.signals().ok().flatten().unwrap_or_default();
    let Signals { name, text } = serde_json::from_str(&json).unwrap_or_default();
    let text: String = text.trim().chars().take(500).collect();
    if text.is_empty() {
        return Ok(());
    }
    let name: String = match name.trim() {
        "" => "anonymous".into(),
        name => name.chars().take(40).collect(),
    };
    let html = format!("<li><b>{}</b>: {}</li>", escape(&name), escape(&text));
    let event = PatchElements::new(&html)
        .selector("#messages")
        .mode(ElementPatchMode::Append);
    // Not shown here yet: the bridge delivers it when it reads it back.
    let e = match room.bridge.publish(event) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    eprintln!("redis_chat: {e}");
    if e.kind() != io::ErrorKind::NotConnected {
        // Redis may have taken it: then every instance shows it, once.
        return Ok(());
    }
    // Certainly not sent: better shown here, marked, than nowhere. The hub
    // gives it an id of its own.
    let html = format!(
        "<li class=\"note\"><b>{}</b>: {} <i>(only on this instance: Redis is unreachable)</i></li>",
        escape(&name),
        escape(&text)
    );
    let event = PatchElements::new(&html)
        .selector("#messages")
        .mode(ElementPatchMode::Append);
    let mut history = room.history.lock().unwrap();
    let local = FormattedEvent::new(&event)?;
    room.bridge.hub().publish_formatted(None, local.clone())?;
    remember(&mut history, local);
    Ok(())
}

fn remember(history: &mut VecDeque<FormattedEvent>, event: FormattedEvent) {
    history.push_back(event);
    if history.len() > KEEP {
        history.pop_front();
    }
}

/// Hands the connection to the hub: an empty list and the history unless
/// the browser is resuming, then every new message. (The stream's
/// `data-init` sits on `<main>`, outside the list the first event morphs.)
fn subscribe(room: &Room, request: &Request, stream: TcpStream) -> io::Result<()> {
    let sse = SseResponse::for_request(request).start_socket(stream)?;
    let empty = FormattedEvent::new(&PatchElements::new("<ul id=\"messages\"></ul>"))?;
    // Rendered under the bridge's delivery lock, so the history and the
    // live messages after it join exactly.
    let replay = room.bridge.subscribe(sse, request.last_event_id(), || {
        let history = room.history.lock().unwrap();
        history
            .iter()
            .fold(Subscription::new().snapshot(empty), |sub, event| {
                sub.snapshot(event.clone())
            })
    })?;
    println!(
        "redis_chat: a tab subscribed ({replay:?}); {:?}",
        room.bridge.stats()
    );
    Ok(())
}

/// HTML-escapes user text: a message must not become markup.
fn escape(text: &str) -> String {
    let mut html = String::with_capacity(text.len());
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
    html
}
