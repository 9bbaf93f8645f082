//! The official Datastar SDK conformance suite, run against `examples/sdk_test_server.rs` over a
//! real socket, plus cases of our own for what the suite does not cover.
//!
//! The suite lives in `../shared/datastar-sdk-tests` (next to this repository): each case is a
//! directory `get/<case>` or `post/<case>` with `input.json` (the signals to send) and
//! `output.txt` (the expected event stream). Bodies are compared the way the suite's own runner
//! does: split into events at blank lines; per event the non-data fields are compared by name,
//! and the data lines after a stable sort on their first word.

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/sdk_test_server.rs"]
mod server;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use dstar::datastar::{Prefetch, Redirect, ReplaceUrl};
use dstar::testing::{self, Response};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The test server, started once for all tests on an ephemeral port.
fn server() -> SocketAddr {
    static ADDRESS: OnceLock<SocketAddr> = OnceLock::new();
    *ADDRESS.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let address = listener.local_addr().expect("local address");
        thread::spawn(move || server::serve(listener));
        address
    })
}

/// One keep-alive connection to the server.
struct Client {
    stream: TcpStream,
    /// Bytes read past the last response.
    pending: Vec<u8>,
}

impl Client {
    fn connect() -> Client {
        let stream = TcpStream::connect(server()).expect("connect to the test server");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            pending: Vec::new(),
        }
    }

    /// Sends a request and reads one complete response.
    fn exchange(&mut self, request: &[u8]) -> Result<Response, String> {
        self.stream
            .write_all(request)
            .map_err(|err| format!("sending the request failed: {err}"))?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            // Until the response is complete, a decoding error may just mean "read more".
            let unfinished = match testing::decode_response(&self.pending) {
                Ok(response) if response.finished => {
                    self.pending = response.rest.clone();
                    return Ok(response);
                }
                Ok(_) => None,
                Err(err) => Some(err),
            };
            let read = match self.stream.read(&mut chunk) {
                Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => Ok(n),
                Err(err) => Err(err),
            };
            let read = read.map_err(|err| {
                let got = String::from_utf8_lossy(&self.pending);
                let why = unfinished
                    .map(|e| format!(" (decoder: {e})"))
                    .unwrap_or_default();
                format!("no complete response ({err}){why}; got {got:?}")
            })?;
            self.pending.extend_from_slice(&chunk[..read]);
        }
    }

    fn get(&mut self, signals: &str) -> Result<Response, String> {
        let request = format!(
            "GET /test?datastar={} HTTP/1.1\r\n\
             Host: 127.0.0.1\r\n\
             Accept: text/event-stream\r\n\
             datastar-request: true\r\n\
             \r\n",
            percent_encode(signals)
        );
        self.exchange(request.as_bytes())
    }

    fn post(&mut self, signals: &str) -> Result<Response, String> {
        let request = format!(
            "POST /test HTTP/1.1\r\n\
             Host: 127.0.0.1\r\n\
             Accept: text/event-stream\r\n\
             datastar-request: true\r\n\
             Content-Type: application/json\r\n\
             Content-Length: {}\r\n\
             \r\n\
             {signals}",
            signals.len()
        );
        self.exchange(request.as_bytes())
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            write!(out, "%{byte:02X}").unwrap();
        }
    }
    out
}

/// One event of a stream, in the form the suite compares.
#[derive(Debug, PartialEq, Eq)]
struct Compared {
    /// Non-data fields by name.
    fields: BTreeMap<String, Vec<String>>,
    /// Data lines, stably sorted by their first word.
    data: Vec<String>,
}

/// Splits an event stream into events at blank lines and puts each in comparable form.
fn compared(body: &str) -> Vec<Compared> {
    let body = body.replace("\r\n", "\n");
    body.split("\n\n")
        .filter(|block| !block.trim_matches('\n').is_empty())
        .map(|block| {
            let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut data = Vec::new();
            for line in block.trim_matches('\n').split('\n') {
                let (name, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value).to_string();
                if name == "data" {
                    data.push(value);
                } else {
                    fields.entry(name.to_string()).or_default().push(value);
                }
            }
            data.sort_by(|a: &String, b: &String| first_word(a).cmp(first_word(b)));
            Compared { fields, data }
        })
        .collect()
}

fn first_word(line: &str) -> &str {
    line.split(' ').next().unwrap_or(line)
}

/// A readable account of how `actual` differs from `expected`, or `None` if it does not.
fn difference(expected: &str, actual: &str) -> Option<String> {
    let (want, got) = (compared(expected), compared(actual));
    if want == got {
        return None;
    }
    let render = |events: &[Compared]| -> Vec<String> {
        let mut lines = Vec::new();
        for (at, event) in events.iter().enumerate() {
            lines.push(format!("--- event {at}"));
            for (name, values) in &event.fields {
                lines.extend(values.iter().map(|value| format!("{name}: {value}")));
            }
            lines.extend(event.data.iter().map(|line| format!("data: {line}")));
        }
        lines
    };
    let (want, got) = (render(&want), render(&got));
    let mut report = String::from("(- expected, + actual; data lines sorted by first word)\n");
    for at in 0..want.len().max(got.len()) {
        match (want.get(at), got.get(at)) {
            (Some(w), Some(g)) if w == g => writeln!(report, "  {w:?}"),
            (w, g) => {
                if let Some(w) = w {
                    writeln!(report, "- {w:?}").unwrap();
                }
                match g {
                    Some(g) => writeln!(report, "+ {g:?}"),
                    None => Ok(()),
                }
            }
        }
        .unwrap();
    }
    Some(report)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

struct Case {
    name: String,
    method: Method,
    input: String,
    output: String,
}

/// Loads every case of the suite, or says why it cannot.
fn load_suite() -> Result<Vec<Case>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datastar-sdk-tests");
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for (dir, method) in [("get", Method::Get), ("post", Method::Post)] {
        let dir_path = root.join(dir);
        let entries = fs::read_dir(&dir_path)
            .map_err(|err| format!("cannot read {}: {err}", dir_path.display()))?;
        let mut names: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_dir())
            .collect();
        names.sort();
        for case_dir in names {
            let name = format!("{dir}/{}", case_dir.file_name().unwrap().to_string_lossy());
            let read = |file: &str| {
                fs::read_to_string(case_dir.join(file))
                    .map_err(|err| format!("{name}/{file}: {err}"))
            };
            match (read("input.json"), read("output.txt")) {
                (Ok(input), Ok(output)) => cases.push(Case {
                    name,
                    method,
                    input,
                    output,
                }),
                (input, output) => problems.extend(input.err().into_iter().chain(output.err())),
            }
        }
    }
    if !problems.is_empty() {
        return Err(format!("missing case files: {}", problems.join("; ")));
    }
    if cases.is_empty() {
        return Err(format!("no cases under {}", root.display()));
    }
    Ok(cases)
}

#[test]
fn official_sdk_suite() {
    let cases = match load_suite() {
        Ok(cases) => cases,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the Datastar SDK suite is required under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED the official Datastar SDK suite: {why}");
            return;
        }
    };
    // All cases on one keep-alive connection: every response must leave it usable.
    let mut client = Client::connect();
    let mut failures = Vec::new();
    for case in &cases {
        let response = match case.method {
            Method::Get => client.get(&case.input),
            Method::Post => client.post(&case.input),
        };
        let problem = match response {
            Err(err) => {
                // The connection state is unknown after a failed exchange.
                client = Client::connect();
                Some(err)
            }
            Ok(response) if response.status != 200 => Some(format!(
                "status {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )),
            Ok(response) if response.header("content-type") != Some("text/event-stream") => Some(
                format!("content type {:?}", response.header("content-type")),
            ),
            Ok(response) => difference(&case.output, &String::from_utf8_lossy(&response.body)),
        };
        if let Some(problem) = problem {
            failures.push(format!("{}:\n{problem}", case.name));
        }
    }
    let passed = cases.len() - failures.len();
    eprintln!(
        "official Datastar SDK cases: {passed}/{} passed",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} official cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Sends `{"events": [event]}` by GET and returns the response.
fn send_one(client: &mut Client, event: &str) -> Response {
    client
        .get(&format!(r#"{{"events":[{event}]}}"#))
        .unwrap_or_else(|err| panic!("{event}: {err}"))
}

fn body(response: &Response) -> String {
    String::from_utf8(response.body.clone()).unwrap()
}

#[test]
fn options_the_suite_lacks_are_sent_in_the_adr_order() {
    let mut client = Client::connect();
    let cases = [
        (
            r##"{"type":"patchElements","elements":"<circle id=\"c\"/>\n<rect id=\"r\"/>","selector":"#vis","mode":"append","namespace":"svg","useViewTransition":true,"viewTransitionSelector":"#vis","eventId":"n1","retryDuration":1500}"##,
            "event: datastar-patch-elements\nid: n1\nretry: 1500\n\
             data: selector #vis\ndata: mode append\ndata: useViewTransition true\n\
             data: viewTransitionSelector #vis\ndata: namespace svg\n\
             data: elements <circle id=\"c\"/>\ndata: elements <rect id=\"r\"/>\n\n",
        ),
        (
            r##"{"type":"patchElements","elements":"<mi id=\"x\">x</mi>","namespace":"mathml","viewTransitionSelector":"#unused"}"##,
            "event: datastar-patch-elements\ndata: namespace mathml\n\
             data: elements <mi id=\"x\">x</mi>\n\n",
        ),
        (
            r##"{"type":"removeElements","selector":"#gone","eventId":"r1"}"##,
            "event: datastar-patch-elements\nid: r1\ndata: selector #gone\ndata: mode remove\n\n",
        ),
        (
            r#"{"type":"removeSignals","paths":["user.name","user.email","draft"]}"#,
            "event: datastar-patch-signals\n\
             data: signals {\"user\":{\"name\":null,\"email\":null},\"draft\":null}\n\n",
        ),
        (
            r#"{"type":"patchSignals","signals":{"b":1,"a":{"d":[true,null,"x"],"c":2.5}}}"#,
            "event: datastar-patch-signals\ndata: signals {\"b\":1,\"a\":{\"d\":[true,null,\"x\"],\"c\":2.5}}\n\n",
        ),
        (
            r#"{"type":"executeScript","script":"let s = '</script><script>alert(1)</script>';\nlet t = '</SCRIPT >'"}"#,
            "event: datastar-patch-elements\ndata: mode append\ndata: selector body\n\
             data: elements <script data-effect=\"el.remove()\">\
             let s = '<\\/script>\\u003Cscript>alert(1)<\\/script>';\n\
             data: elements let t = '<\\/SCRIPT >'</script>\n\n",
        ),
        (
            r#"{"type":"executeScript","script":"go()","attributes":{"type":"module","data-x":"\"><b>&"}}"#,
            "event: datastar-patch-elements\ndata: mode append\ndata: selector body\n\
             data: elements <script type=\"module\" data-x=\"&quot;&gt;&lt;b&gt;&amp;\" \
             data-effect=\"el.remove()\">go()</script>\n\n",
        ),
    ];
    for (event, expected) in cases {
        let response = send_one(&mut client, event);
        assert_eq!(response.status, 200, "{event}: {}", body(&response));
        assert_eq!(body(&response), expected, "{event}");
    }
}

#[test]
fn a_line_break_in_any_option_is_a_400_and_the_connection_lives_on() {
    let mut client = Client::connect();
    let cases = [
        (
            r##"{"type":"patchElements","elements":"<p id=\"p\"></p>","selector":"#a\rdata: x"}"##,
            "selector",
        ),
        (
            r##"{"type":"patchElements","elements":"<p id=\"p\"></p>","useViewTransition":true,"viewTransitionSelector":"#a\rb"}"##,
            "viewTransitionSelector",
        ),
        (
            r##"{"type":"patchElements","elements":"<p id=\"p\"></p>","viewTransitionSelector":"#a\nb"}"##,
            "viewTransitionSelector",
        ),
        (
            r#"{"type":"patchElements","elements":"<p id=\"p\"></p>","eventId":"1\rretry: 0"}"#,
            "event id",
        ),
        (
            r#"{"type":"patchElements","elements":"<p id=\"p\"></p>","namespace":"svg\r"}"#,
            "namespace",
        ),
        (
            r#"{"type":"patchElements","elements":"<p id=\"p\"></p>","mode":"append\r"}"#,
            "patch mode",
        ),
        (
            r##"{"type":"removeElements","selector":"#a\r\nb"}"##,
            "selector",
        ),
        (
            r#"{"type":"patchSignals","signals":{"a":1},"eventId":"\r"}"#,
            "event id",
        ),
        (
            r#"{"type":"patchSignals","signals-raw":"{\"a\":\r}"}"#,
            "signals",
        ),
        (
            r#"{"type":"removeSignals","paths":["a.b\r"]}"#,
            "signal path",
        ),
        (
            r#"{"type":"executeScript","script":"go()","attributes":{"type":"module\r"}}"#,
            "script attribute type",
        ),
        (
            r#"{"type":"executeScript","script":"go()","attributes":{"ty\rpe":"module"}}"#,
            "script attribute name",
        ),
        (
            r#"{"type":"executeScript","script":"go()","eventId":"a\rb"}"#,
            "event id",
        ),
        (r#"{"type":"noSuchEvent"}"#, "unknown event type"),
    ];
    for (event, option) in cases {
        let response = send_one(&mut client, event);
        assert_eq!(response.status, 400, "{event}: {}", body(&response));
        let message = body(&response);
        assert!(message.contains(option), "{event}: {message}");
        assert_eq!(response.header("connection"), Some("keep-alive"));
    }
    // The same connection still serves a good request.
    let ok = send_one(
        &mut client,
        r#"{"type":"patchElements","elements":"<p id=\"p\"></p>"}"#,
    );
    assert_eq!(
        body(&ok),
        "event: datastar-patch-elements\ndata: elements <p id=\"p\"></p>\n\n"
    );
}

#[test]
fn malformed_requests_get_a_clear_4xx() {
    let mut client = Client::connect();
    let response = client.get("{not json").unwrap();
    assert_eq!(response.status, 400);
    assert!(body(&response).contains("signals"), "{}", body(&response));
    let response = client.get(r#"{"no":"events"}"#).unwrap();
    assert_eq!(response.status, 400);
    let response = client
        .exchange(b"GET /test HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(response.status, 400, "{}", body(&response));
    let response = client
        .exchange(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(response.status, 404);
    let response = client
        .exchange(b"PUT /test HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(response.status, 405);
    // A request that cannot be framed ends the connection, with an answer first.
    let response = client
        .exchange(
            b"POST /test HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        )
        .unwrap();
    assert_eq!(response.status, 400);
    assert_eq!(response.header("connection"), Some("close"));
}

#[test]
fn connection_close_is_honoured() {
    let mut client = Client::connect();
    let request = format!(
        "GET /test?datastar={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        percent_encode(r#"{"events":[{"type":"patchSignals","signals":{"a":1}}]}"#)
    );
    let response = client.exchange(request.as_bytes()).unwrap();
    assert_eq!(
        body(&response),
        "event: datastar-patch-signals\ndata: signals {\"a\":1}\n\n"
    );
    let mut rest = Vec::new();
    client.stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn http_1_0_gets_a_close_delimited_stream() {
    let mut client = Client::connect();
    let request = format!(
        "GET /test?datastar={} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        percent_encode(r#"{"events":[{"type":"patchSignals","signals":{"a":1}}]}"#)
    );
    client.stream.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    client.stream.read_to_end(&mut bytes).unwrap();
    let response = testing::decode_response(&bytes).unwrap();
    assert!(!response.chunked);
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(
        body(&response),
        "event: datastar-patch-signals\ndata: signals {\"a\":1}\n\n"
    );
}

/// The redirect policy, case by case: what is allowed by default, with the opt-in, and never.
#[test]
fn redirect_policy() {
    let allowed = |url: &str, other_origins: bool| {
        dstar::format_event(&Redirect::new(url).allow_other_origins(other_origins)).is_ok()
    };
    for same_origin in ["/", "/account", "?tab=2", "#top", "next/page", "../up", ""] {
        assert!(allowed(same_origin, false), "{same_origin:?}");
    }
    for other in [
        "https://example.com/",
        "http://example.com",
        "HTTPS://EXAMPLE.COM",
        "//example.com/x",
        "/\\example.com",
        "\\\\example.com",
        "https:example.com",
    ] {
        assert!(
            !allowed(other, false),
            "{other:?} allowed without the opt-in"
        );
        assert!(allowed(other, true), "{other:?} refused with the opt-in");
    }
    for never in [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "\tjavascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "java\rscript:alert(1)",
        "\u{0}javascript:alert(1)",
        "\u{1b}javascript:alert(1)",
        "javascript\u{7f}:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox",
        "livescript:x",
        "file:///etc/passwd",
        "/ok\r\n",
    ] {
        assert!(!allowed(never, true), "{never:?} allowed");
        assert!(!allowed(never, false), "{never:?} allowed");
        assert!(
            dstar::format_event(&ReplaceUrl::new(never)).is_err(),
            "{never:?}"
        );
        assert!(
            dstar::format_event(&Prefetch::new(&[never])).is_err(),
            "{never:?}"
        );
    }
    let err = dstar::format_event(&Redirect::new("https://evil.example/")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().starts_with("redirect URL"), "{err}");
}

#[test]
fn the_comparison_rule_itself() {
    let expected = "event: e\nid: 1\ndata: b 2\ndata: a 1\ndata: b 1\n\n";
    assert_eq!(
        difference(
            expected,
            "id: 1\nevent: e\ndata: a 1\ndata: b 2\ndata: b 1\n\n"
        ),
        None
    );
    // Same first word: the original order matters (the sort is stable).
    assert!(
        difference(
            expected,
            "event: e\nid: 1\ndata: a 1\ndata: b 1\ndata: b 2\n\n"
        )
        .is_some()
    );
    assert!(difference(expected, "event: e\ndata: a 1\ndata: b 2\ndata: b 1\n\n").is_some());
    let report = difference("event: e\ndata: x\n\n", "event: e\ndata: y\n\n").unwrap();
    assert!(report.contains("- \"data: x\"\n+ \"data: y\""), "{report}");
}

/// The official cases again, with `Accept-Encoding` naming each coding this build has: the
/// stream is compressed in it and decodes to the golden output.
#[test]
fn official_sdk_suite_compressed() {
    use dstar::compression::Encoding;
    let Ok(cases) = load_suite() else {
        eprintln!("SKIPPED the compressed official cases: the suite is not there");
        return;
    };
    let mut client = Client::connect();
    for encoding in Encoding::ALL.into_iter().filter(|e| e.is_available()) {
        for case in &cases {
            let signals = &case.input;
            let request = match case.method {
                Method::Get => format!(
                    "GET /test?datastar={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                     Accept-Encoding: {}\r\n\r\n",
                    percent_encode(signals),
                    encoding.token()
                ),
                Method::Post => format!(
                    "POST /test HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: {}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{signals}",
                    encoding.token(),
                    signals.len()
                ),
            };
            let response = client
                .exchange(request.as_bytes())
                .unwrap_or_else(|e| panic!("{} ({encoding}): {e}", case.name));
            assert_eq!(response.status, 200, "{}", case.name);
            assert_eq!(response.header("content-encoding"), Some(encoding.token()));
            assert_eq!(response.header("vary"), Some("Accept-Encoding"));
            let body = String::from_utf8_lossy(&response.body);
            if let Some(problem) = difference(&case.output, &body) {
                panic!("{} ({encoding}): {problem}", case.name);
            }
        }
    }
}
