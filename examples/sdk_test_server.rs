//! The Datastar SDK test server, for the official conformance suite.
//!
//! `/test` reads `{"events": [...]}` (from the `datastar` query parameter of a GET, or the body
//! of a POST), answers with an event stream holding each event in turn, and ends the response.
//! Event descriptions use the suite's vocabulary: `patchElements`, `removeElements`,
//! `patchSignals` (`signals-raw` sent as given, else `signals` as compact JSON), `removeSignals`
//! and `executeScript`, with `eventId` and `retryDuration` on any of them.
//!
//! Every event is built and checked before the response starts, so input the crate refuses is
//! answered with `400 Bad Request` and a message, never with a stream cut short. Connections are
//! kept alive for further requests; each gets its own thread, TCP_NODELAY and read/write
//! timeouts.
//!
//! With `--features compression` a request with `Accept-Encoding` gets its stream compressed;
//! one without gets exactly the bytes of a build without compression.
//!
//! ```text
//! cargo run --example sdk_test_server        # listens on 127.0.0.1:7331
//! ```

use std::fmt;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use dstar::compression::Compression;
use dstar::datastar::{ExecuteScript, PatchElements, PatchSignals, RemoveSignals};
use dstar::request::{Request, RequestReader};
use dstar::{FormattedEvent, SseResponse, response};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

/// How long a read or a write may block before the connection is given up.
const TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:7331")?;
    println!(
        "Datastar SDK test server on http://{}/test",
        listener.local_addr()?
    );
    serve(listener)
}

/// Accepts connections forever, one thread each.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            // A connection that failed before it was accepted says nothing about the next one.
            Err(err) => {
                eprintln!("accept failed: {err}");
                continue;
            }
        };
        thread::spawn(move || {
            if let Err(err) = handle(stream) {
                eprintln!("connection ended with an error: {err}");
            }
        });
    }
    Ok(())
}

/// Serves every request of one connection, until the client closes it, stays idle past the
/// read timeout, or asks to close.
pub fn handle(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut connection = RequestReader::new(stream);
    loop {
        let request = match connection.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(err) => {
                // The framing is lost: answer (it says `Connection: close`) and hang up.
                return response::write_error(connection.get_mut(), &err);
            }
        };
        // Whether the connection carries another request is the reader's to decide: it stops
        // after a request that asked to close, or whose answer ends with the connection (an
        // event stream to an HTTP/1.0 client).
        let stream = connection.get_mut();
        if request.path() != "/test" {
            response::write_not_found(stream, &request)?;
        } else if !matches!(request.method(), "GET" | "POST") {
            response::write_text(stream, 405, "use GET or POST\n", &request)?;
        } else {
            match events(&request) {
                Ok(events) => {
                    let mut sse = SseResponse::for_request(&request)
                        .compression(Compression::new())
                        .start(&mut *stream)?;
                    for event in &events {
                        sse.send_formatted(event)?;
                    }
                    sse.finish()?;
                }
                Err(refused) => {
                    response::write_text(stream, 400, &format!("{refused}\n"), &request)?;
                }
            }
        }
    }
}

/// Reads the request's events and formats each one, or says why they cannot be sent.
fn events(request: &Request) -> Result<Vec<FormattedEvent>, Refused> {
    let signals = request
        .signals()
        .map_err(|err| Refused(err.to_string()))?
        .ok_or_else(|| Refused("the request carries no signals".into()))?;
    let input: Input = serde_json::from_str(&signals)
        .map_err(|err| Refused(format!("the signals are not a test description: {err}")))?;
    input
        .events
        .iter()
        .enumerate()
        .map(|(at, event)| build(event).map_err(|err| Refused(format!("event {at}: {err}"))))
        .collect()
}

/// Why a request is answered with 400.
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize)]
struct Input {
    events: Vec<TestEvent>,
}

/// One event description; fields that do not apply to its type are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestEvent {
    #[serde(rename = "type")]
    kind: String,
    event_id: Option<String>,
    retry_duration: Option<u64>,
    elements: Option<String>,
    selector: Option<String>,
    mode: Option<String>,
    namespace: Option<String>,
    use_view_transition: Option<bool>,
    view_transition_selector: Option<String>,
    signals: Option<Json>,
    #[serde(rename = "signals-raw")]
    signals_raw: Option<String>,
    only_if_missing: Option<bool>,
    paths: Option<Vec<String>>,
    script: Option<String>,
    auto_remove: Option<bool>,
    attributes: Option<Json>,
}

/// Sets the options every event has. (The builders share no trait: each is a plain type.)
macro_rules! with_id_and_retry {
    ($builder:expr, $event:expr) => {{
        let mut builder = $builder;
        if let Some(id) = &$event.event_id {
            builder = builder.id(id);
        }
        if let Some(ms) = $event.retry_duration {
            builder = builder.retry(Duration::from_millis(ms));
        }
        builder
    }};
}

fn build(event: &TestEvent) -> io::Result<FormattedEvent> {
    match event.kind.as_str() {
        "patchElements" => {
            let mut patch = PatchElements::new(event.elements.as_deref().unwrap_or_default());
            if let Some(mode) = &event.mode {
                patch = patch.mode(mode.parse()?);
            }
            FormattedEvent::new(&with_id_and_retry!(element_options(patch, event)?, event))
        }
        "removeElements" => {
            let selector = event
                .selector
                .as_deref()
                .ok_or_else(|| invalid("removeElements needs a selector"))?;
            let patch = element_options(PatchElements::remove(selector), event)?;
            FormattedEvent::new(&with_id_and_retry!(patch, event))
        }
        "patchSignals" => {
            let compact;
            let signals = match (&event.signals_raw, &event.signals) {
                (Some(raw), _) => raw.as_str(),
                (None, Some(signals)) => {
                    compact = signals.to_string();
                    &compact
                }
                (None, None) => "{}",
            };
            let patch =
                PatchSignals::new(signals).only_if_missing(event.only_if_missing.unwrap_or(false));
            FormattedEvent::new(&with_id_and_retry!(patch, event))
        }
        "removeSignals" => {
            let paths = event
                .paths
                .as_deref()
                .ok_or_else(|| invalid("removeSignals needs paths"))?;
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            FormattedEvent::new(&with_id_and_retry!(RemoveSignals::new(&paths), event))
        }
        "executeScript" => {
            let attributes = match &event.attributes {
                None => Vec::new(),
                Some(Json::Object(members)) => members
                    .iter()
                    .map(|(name, value)| match value {
                        Json::String(text) => (name.clone(), text.clone()),
                        other => (name.clone(), other.to_string()),
                    })
                    .collect(),
                Some(_) => return Err(invalid("executeScript attributes must be an object")),
            };
            let attributes: Vec<(&str, &str)> = attributes
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let script = ExecuteScript::new(event.script.as_deref().unwrap_or_default())
                .auto_remove(event.auto_remove.unwrap_or(true))
                .attributes(&attributes);
            FormattedEvent::new(&with_id_and_retry!(script, event))
        }
        other => Err(invalid(&format!("unknown event type {other:?}"))),
    }
}

/// The element options both `patchElements` and `removeElements` may carry.
fn element_options<'a>(
    mut patch: PatchElements<'a>,
    event: &'a TestEvent,
) -> io::Result<PatchElements<'a>> {
    if let Some(selector) = &event.selector {
        patch = patch.selector(selector);
    }
    if let Some(namespace) = &event.namespace {
        patch = patch.namespace(namespace.parse()?);
    }
    if let Some(on) = event.use_view_transition {
        patch = patch.use_view_transition(on);
    }
    if let Some(selector) = &event.view_transition_selector {
        patch = patch.view_transition_selector(selector);
    }
    Ok(patch)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// A JSON value that keeps object members in document order, unlike `serde_json::Value`
/// without its `preserve_order` feature: the suite expects signals re-sent in the order they
/// were given, and script attributes written in that order.
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Compact JSON text, as the suite expects signals to be sent.
impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let string = |f: &mut fmt::Formatter<'_>, s: &str| {
            f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?)
        };
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Number(n) => write!(f, "{n}"),
            Json::String(s) => string(f, s),
            Json::Array(items) => {
                f.write_str("[")?;
                for (at, item) in items.iter().enumerate() {
                    if at > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Object(members) => {
                f.write_str("{")?;
                for (at, (name, value)) in members.iter().enumerate() {
                    if at > 0 {
                        f.write_str(",")?;
                    }
                    string(f, name)?;
                    write!(f, ":{value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(n)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry()? {
            members.push(member);
        }
        Ok(Json::Object(members))
    }
}
