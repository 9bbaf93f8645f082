//! The chat room of `examples/chat.rs`, run as several instances that share
//! one Redis: a message posted to one instance appears in the tabs of every
//! instance, in the same order everywhere.
//!
//! ```text
//! redis-server --port 6379 --save "" --appendonly no &
//! cargo run --features redis --example redis_chat -- 127.0.0.1:8081 &
//! cargo run --features redis --example redis_chat -- 127.0.0.1:8082
//! # open http://127.0.0.1:8081/ and http://127.0.0.1:8082/ side by side
//! ```
//!
//! The second argument is the Redis URL (default `redis://127.0.0.1:6379/`).
//!
//! - `POST /send` publishes the message through the bridge; it is not shown
//!   here yet. Every instance, this one included, shows it when Redis hands
//!   it back, so all of them show the same order.
//! - The bridge's `deliver_with` hook records each message in the room's
//!   history and delivers it to the hub under one lock, and `GET /feed`
//!   renders the history and subscribes under the same lock: a new tab never
//!   misses a message nor gets one twice.
//! - Event ids carry the instance's port and process id, so they are unique
//!   across instances, and a tab that reconnects to any instance with
//!   `Last-Event-ID` gets only what it missed.
//! - Stop Redis and post: the message is shown on this instance only, marked
//!   as such. Start it again: the bridge reconnects by itself and every tab
//!   is told that messages may be missing from that stretch of time.
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Messages each instance keeps for new tabs.
const KEEP: usize = 100;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
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

/// The message events new tabs are shown, oldest first. Its lock orders
/// deliveries to the hub with the streams that start.
type History = Arc<Mutex<VecDeque<FormattedEvent>>>;

struct Room {
    /// The page, with the Datastar client's URL filled in.
    page: String,
    /// `port-pid`: the prefix of this instance's event ids.
    instance: String,
    next_id: AtomicU64,
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
    let instance = format!("{}-{}", local.port(), std::process::id());

    let hub = Arc::new(Hub::new(broadcast::Config::new().replay(4 * KEEP)));
    let history = History::default();
    let config = Config::new(redis_url)
        .channel("dstar-chat")
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
            let (hub, history) = (Arc::clone(&hub), Arc::clone(&history));
            let next_note = AtomicU64::new(1);
            let instance = instance.clone();
            move |gap| {
                eprintln!(
                    "redis_chat: Redis was unreachable for {:?}: {}",
                    gap.duration, gap.error
                );
                let text = format!(
                    "Redis was unreachable for {:.0?}: messages from other instances \
                     may be missing here.",
                    gap.duration
                );
                // With an id, so a tab resuming across the gap is told too.
                let id = format!(
                    "{instance}-note-{}",
                    next_note.fetch_add(1, Ordering::Relaxed)
                );
                let _ = publish_locally(&hub, &history, &note_html(&text), &id);
            }
        });
    let bridge = Bridge::start(hub, config)?;
    println!("redis_chat: serving on http://{local}/ (instance {instance}); {bridge:?}");

    let room = Arc::new(Room {
        page: PAGE.replace("CLIENT_URL", &client_url()?),
        instance,
        next_id: AtomicU64::new(1),
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

/// Publishes a message through Redis, or shows it here only if Redis is
/// unreachable.
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
    let id = format!(
        "{}-{}",
        room.instance,
        room.next_id.fetch_add(1, Ordering::Relaxed)
    );
    let html = format!(
        "<li id=\"m-{id}\"><b>{}</b>: {}</li>",
        escape(&name),
        escape(&text)
    );
    let event = PatchElements::new(&html)
        .selector("#messages")
        .mode(ElementPatchMode::Append)
        .id(&id);
    // Not shown here yet: the bridge delivers it when Redis sends it back.
    let Err(e) = room.bridge.publish(event) else {
        return Ok(());
    };
    eprintln!("redis_chat: {e}");
    // The local hub still works: better shown here than nowhere. (If the
    // connection broke after Redis took the message, it may show twice.)
    let html = format!(
        "<li id=\"m-{id}\"><b>{}</b>: {} <i>(only on this instance: Redis is unreachable)</i></li>",
        escape(&name),
        escape(&text)
    );
    publish_locally(room.bridge.hub(), &room.history, &html, &id)
}

/// Appends a list item to the room on this instance only.
fn publish_locally(hub: &Hub, history: &History, html: &str, id: &str) -> io::Result<()> {
    let event = PatchElements::new(html)
        .selector("#messages")
        .mode(ElementPatchMode::Append)
        .id(id);
    let mut history = history.lock().unwrap();
    hub.publish(event)?;
    remember(&mut history, FormattedEvent::new(&event)?);
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
    let history = room.history.lock().unwrap();
    let empty = PatchElements::new("<ul id=\"messages\"></ul>");
    let mut subscription = Subscription::new()
        .last_event_id(request.last_event_id())
        .snapshot(FormattedEvent::new(&empty)?);
    for event in history.iter() {
        subscription = subscription.snapshot(event.clone());
    }
    let replay = room.bridge.hub().subscribe(sse, subscription)?;
    drop(history);
    println!(
        "redis_chat: a tab subscribed ({replay:?}); {:?}",
        room.bridge.stats()
    );
    Ok(())
}

fn note_html(text: &str) -> String {
    format!("<li class=\"note\">{}</li>", escape(text))
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
