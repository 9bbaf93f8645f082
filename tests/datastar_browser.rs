//! The examples, used as a person uses them, in headless Chromium with the
//! real Datastar v1.0.1 client.
//!
//! Each test builds and starts an example's own binary on a free loopback
//! port, with `DATASTAR_CLIENT_URL` pointing at a local copy of the client,
//! opens the example's own page in a tab and acts on it through the DevTools
//! protocol: mouse clicks, typing, Enter, a second tab, a reload, a cut
//! stream, a restart. Every wait is a condition polled with a deadline. At
//! the end, each page must have had no console error or warning, no uncaught
//! exception and no failed request, except where a test cuts the network on
//! purpose.
//!
//! One Chromium serves every test in this file (each test has tabs of its
//! own). It needs:
//!
//! - Chromium: `$DSTAR_CHROMIUM`, or `chromium`, `chromium-browser`,
//!   `google-chrome` on the `PATH`;
//! - the client: `$DSTAR_DATASTAR_JS`, the directory holding the v1.0.1 build
//!   (`datastar.js` and the modules it imports) or that `datastar.js` itself.
//!   The PyPI wheel `starhtml` 0.7.0 ships one under `starhtml/static/js/`;
//!   `.ci/datastar-client` fetches it (`.ci/run` does so), see the README.
//!
//! Without either, the tests fail under `CI=true` and are skipped with a
//! message elsewhere.
#![cfg(unix)]

mod chromium;
mod examples_support;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
#[cfg(feature = "redis")]
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use chromium::{Browser, Devtools, Mark, Problem, Tab, find_chromium, under_ci};
use examples_support::{Example, free_address};

/// How long any one thing a user would see may take to appear. Generous:
/// the machine may be busy; a pass takes a fraction of it.
const WAIT: Duration = Duration::from_secs(20);
/// How soon a tab must show the new server's state after a restart or a
/// cut network is back: the client retries after 1 s, then 2 s, 4 s...
const RECONNECT_WITHIN: Duration = Duration::from_secs(15);
/// Read and write timeout of every socket the tests hold.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);
/// The variable that names the local copy of the Datastar client.
const CLIENT_VAR: &str = "DSTAR_DATASTAR_JS";

// --- the 30-lines example ----------------------------------------------------

#[test]
fn thirty_lines_counter_counts_clicks_and_logs_them() {
    let Some(env) = env() else { return };
    let example = env.start("datastar_30_lines");
    let tab = env.open("30-lines", &url(&example, "/"));
    let start = tab.mark();
    // `data-text` has run: the client loaded and the signals are in place.
    wait_text(&tab, "button span", "0");
    for n in 1..=3 {
        tab.click("button");
        wait_text(&tab, "button", &format!("Clicked {n} times"));
    }
    assert_eq!(list(&tab, "#log li"), ["click 1", "click 2", "click 3"]);

    // The count lives in the page's signals: a reload starts again.
    tab.reload().unwrap();
    wait_text(&tab, "button", "Clicked 0 times");
    tab.click("button");
    wait_text(&tab, "#log li", "click 1");
    tab.assert_no_problems_since(start);
    tab.close();
}

// --- the demo ----------------------------------------------------------------

#[test]
fn demo_counter_patches_and_removes_signals_and_runs_the_tenth_click_script() {
    let Some(env) = env() else { return };
    let demo = env.start("demo");
    let tab = env.open("demo", &url(&demo, "/"));
    let start = tab.mark();
    wait_for_demo(&tab);

    let signals = |tab: &Tab| -> Value {
        serde_json::from_str(&tab.text("pre[data-json-signals]")).unwrap_or(Value::Null)
    };
    tab.click("button[data-on\\:click*='/counter/inc']");
    wait_text(&tab, "#count", "1");
    tab.wait("lastAction +1", WAIT, "JSON.parse(document.querySelector('pre[data-json-signals]').innerText).lastAction?.op === '+1'");
    tab.click("button[data-on\\:click*='/counter/dec']");
    wait_text(&tab, "#count", "0");
    tab.wait("lastAction −1", WAIT, "JSON.parse(document.querySelector('pre[data-json-signals]').innerText).lastAction?.op === '−1'");
    let shown = signals(&tab);
    assert!(
        shown["lastAction"]["at"]
            .as_str()
            .is_some_and(|at| at.len() == 8),
        "{shown}"
    );

    // Reset patches the count and removes `lastAction` altogether.
    tab.click("button[data-on\\:click*='/counter/reset']");
    tab.wait(
        "lastAction removed",
        WAIT,
        "!('lastAction' in JSON.parse(document.querySelector('pre[data-json-signals]').innerText))",
    );
    let shown = signals(&tab);
    assert_eq!(shown["count"], json!(0), "{shown}");

    // The tenth click runs the server's script: it animates the count.
    tab.eval(
        "window.countAnimations = 0; const animate = Element.prototype.animate; \
         Element.prototype.animate = function (...args) { \
           if (this.id === 'count') window.countAnimations++; return animate.apply(this, args); }",
    )
    .unwrap();
    for n in 1..=10 {
        tab.click("button[data-on\\:click*='/counter/inc']");
        wait_text(&tab, "#count", &format!("{n}"));
        if n == 9 {
            assert_eq!(tab.eval("window.countAnimations").unwrap(), json!(0));
        }
    }
    tab.wait(
        "the tenth click's animation",
        WAIT,
        "window.countAnimations === 1",
    );
    // The script removes itself once run.
    tab.wait(
        "the script gone",
        WAIT,
        "document.querySelectorAll('body script').length === 0",
    );
    assert_eq!(signals(&tab)["count"], json!(10));
    tab.assert_no_problems_since(start);
    tab.close();
}

#[test]
fn demo_live_panel_clock_open_tabs_and_message_board() {
    let Some(env) = env() else { return };
    let demo = env.start("demo");
    let a = env.open("demo tab A", &url(&demo, "/"));
    let b = env.open("demo tab B", &url(&demo, "/"));
    let (start_a, start_b) = (a.mark(), b.mark());
    for tab in [&a, &b] {
        wait_for_demo(tab);
        wait_text(tab, "#visitors", "👀 2 open tabs");
    }
    wait_for_ticks(&a, "#clock");
    wait_for_ticks(&b, "#clock");

    // User text is shown as text, never as markup.
    let nasty = r#"<img src=x onerror="window.injected=1"> & "quotes" <b>bold</b>"#;
    say(&a, nasty);
    for tab in [&a, &b] {
        tab.wait(
            "the nasty message",
            WAIT,
            &format!(
                "document.querySelector('#messages .text')?.innerText === {}",
                json!(nasty)
            ),
        );
        assert_eq!(
            tab.eval("document.querySelectorAll('#messages img, #messages b').length")
                .unwrap(),
            json!(0)
        );
        assert_eq!(tab.eval("window.injected ?? 0").unwrap(), json!(0));
    }

    // Deleting in one tab deletes for everyone.
    b.click("#messages li button");
    for tab in [&a, &b] {
        tab.wait(
            "the board empty",
            WAIT,
            "document.querySelectorAll('#messages li').length === 0",
        );
    }

    // The board keeps the last 12.
    let sent: Vec<String> = (1..=13).map(|n| format!("message {n}")).collect();
    for text in &sent {
        say(&a, text);
    }
    let expected = &sent[1..];
    for tab in [&a, &b] {
        wait_for_board(tab, expected);
    }

    // A closed tab leaves the count.
    b.assert_no_problems_since(start_b);
    b.close();
    wait_text(&a, "#visitors", "👀 1 open tab");
    wait_for_board(&a, expected);
    a.assert_no_problems_since(start_a);
    a.close();
}

#[test]
fn demo_resumes_a_cut_stream_with_last_event_id_without_duplicates_or_gaps() {
    let Some(env) = env() else { return };
    let demo = env.start("demo");
    let proxy = Proxy::start(demo.addr);
    let tab = env.open("demo via a proxy", &format!("http://{}/", proxy.addr));
    let start = tab.mark();
    wait_for_demo(&tab);
    say(&tab, "before the cut");
    wait_for_board(&tab, &["before the cut"]);

    // The network drops every connection; while it is down, two messages
    // are posted (by someone else, straight to the server), and the clock
    // ticks on.
    let cut_at = tab.mark();
    proxy.cut();
    for text in ["while cut 1", "while cut 2"] {
        let body = json!({ "tab": "tsomeone", "count": 0, "message": text }).to_string();
        let status = post(demo.addr, "/messages", &body);
        assert_eq!(status, 200, "posting {text:?}");
    }
    proxy.restore();

    let expected = ["before the cut", "while cut 1", "while cut 2"];
    wait_for_list_within(&tab, "#messages .text", &expected, RECONNECT_WITHIN);
    wait_for_board(&tab, &expected);
    wait_for_ticks(&tab, "#clock");

    // The reconnect asked to resume, and was answered with what it missed
    // rather than a fresh snapshot.
    let resumed = proxy.wait_for_stream_with_last_event_id();
    let body = String::from_utf8_lossy(&resumed);
    assert!(
        !body.contains("id=\"live\""),
        "the resumed stream started with a snapshot:\n{body}"
    );
    for text in ["while cut 1", "while cut 2"] {
        assert_eq!(
            body.matches(text).count(),
            1,
            "{text:?} in the resumed stream:\n{body}"
        );
    }
    assert!(
        !body.contains("before the cut"),
        "replayed an event the tab had:\n{body}"
    );
    wait_for_board(&tab, &expected);

    // The cut itself fails the stream's request; nothing else may fail.
    assert_no_problems_but_stream_failures(&tab, start, cut_at, "/stream");
    tab.close();
}

#[test]
fn demo_restart_on_the_same_port_brings_open_tabs_to_the_new_process() {
    let Some(env) = env() else { return };
    let mut demo = env.start("demo");
    let a = env.open("demo tab A", &url(&demo, "/"));
    let b = env.open("demo tab B", &url(&demo, "/"));
    let start = [a.mark(), b.mark()];
    for tab in [&a, &b] {
        wait_for_demo(tab);
        wait_text(tab, "#visitors", "👀 2 open tabs");
    }
    for n in 1..=6 {
        say(&a, &format!("old {n}"));
    }
    let old: Vec<String> = (1..=6).map(|n| format!("old {n}")).collect();
    wait_for_board(&b, &old);

    // A deploy: Ctrl-C, and a new process on the same port, which gets
    // busy at once (more events than the old one had sent ids for).
    let cut_at = [a.mark(), b.mark()];
    ctrl_c(&mut demo, "demo");
    let demo = env.start_on("demo", demo.addr, &[]);
    let new: Vec<String> = (1..=13).map(|n| format!("new {n}")).collect();
    for text in &new {
        let body = json!({ "tab": "tdeployer", "count": 0, "message": text }).to_string();
        assert_eq!(post(demo.addr, "/messages", &body), 200, "posting {text:?}");
    }

    // Without a reload, both tabs show the new process's state: the new
    // board exactly, a ticking clock, both tabs counted. Datastar retries
    // a second after the cut, then backs off: seconds, not a reload.
    let restarted = Instant::now();
    for tab in [&a, &b] {
        wait_for_list_within(tab, "#messages .text", &new[1..], RECONNECT_WITHIN);
        eprintln!(
            "{} showed the new board {} ms after the restart",
            tab.name,
            restarted.elapsed().as_millis()
        );
        wait_text(tab, "#visitors", "👀 2 open tabs");
        wait_for_ticks(tab, "#clock");
        wait_for_board(tab, &new[1..]);
    }
    for (i, tab) in [&a, &b].into_iter().enumerate() {
        assert_no_problems_but_stream_failures(tab, start[i], cut_at[i], "/stream");
    }
    a.close();
    b.close();
}

// --- chat ----------------------------------------------------------------------

#[test]
fn chat_across_two_tabs() {
    let Some(env) = env() else { return };
    let chat = env.start("chat");
    let a = env.open("chat tab A", &url(&chat, "/"));
    let b = env.open("chat tab B", &url(&chat, "/"));
    let start = [a.mark(), b.mark()];
    for tab in [&a, &b] {
        wait_text(tab, "#online", "2 tabs connected");
    }

    a.type_over("input[data-bind\\:name]", "alice");
    chat_say(&a, "<b>hi</b> & bye");
    chat_say(&b, "hello alice");

    let expected = ["alice: <b>hi</b> & bye", "guest-2: hello alice"];
    for tab in [&a, &b] {
        wait_for_list(tab, "#messages li", &expected);
        // Only the names are bold: the text stayed text.
        assert_eq!(
            tab.eval("document.querySelectorAll('#messages li b').length")
                .unwrap(),
            json!(2)
        );
    }

    // A reload starts from the whole room.
    b.reload().unwrap();
    wait_for_list(&b, "#messages li", &expected);
    wait_text(&b, "#online", "2 tabs connected");
    for (i, tab) in [&a, &b].into_iter().enumerate() {
        tab.assert_no_problems_since(start[i]);
    }
    a.close();
    b.close();
}

#[test]
fn chat_restart_on_the_same_port_brings_an_open_tab_to_the_new_process() {
    let Some(env) = env() else { return };
    let mut chat = env.start("chat");
    let tab = env.open("chat", &url(&chat, "/"));
    let start = tab.mark();
    wait_text(&tab, "#online", "1 tab connected");
    for text in ["old 1", "old 2", "old 3"] {
        chat_say(&tab, text);
    }
    wait_for_list(
        &tab,
        "#messages li",
        &["guest-1: old 1", "guest-1: old 2", "guest-1: old 3"],
    );

    let cut_at = tab.mark();
    ctrl_c(&mut chat, "chat");
    let chat = env.start_on("chat", chat.addr, &[]);
    let new: Vec<String> = (1..=5).map(|n| format!("new {n}")).collect();
    for text in &new {
        let body = json!({ "tab": "", "name": "bob", "text": text }).to_string();
        assert_eq!(post(chat.addr, "/send", &body), 200, "posting {text:?}");
    }
    let expected: Vec<String> = new.iter().map(|text| format!("bob: {text}")).collect();
    wait_for_list_within(&tab, "#messages li", &expected, RECONNECT_WITHIN);
    wait_text(&tab, "#online", "1 tab connected");
    assert_no_problems_but_stream_failures(&tab, start, cut_at, "/feed");
    tab.close();
}

#[cfg(feature = "redis")]
#[test]
fn redis_chat_instances_show_the_same_messages_in_the_same_order() {
    let Some(env) = env() else { return };
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let redis_url = format!("redis://{}/", redis.addr);
    let one = env.start_on("redis_chat", free_address(), &[&redis_url]);
    let two = env.start_on("redis_chat", free_address(), &[&redis_url]);
    let a = env.open("redis_chat one", &url(&one, "/"));
    let b = env.open("redis_chat two", &url(&two, "/"));
    let start = [a.mark(), b.mark()];
    for tab in [&a, &b] {
        // The form works once the client has bound the inputs.
        tab.wait(
            "the name bound",
            WAIT,
            "document.querySelector('input[data-bind\\\\:name]').value === 'guest'",
        );
    }
    a.type_over("input[data-bind\\:name]", "ann");
    chat_say(&a, "from one <i>&</i>");
    wait_for_list(&b, "#messages li", &["ann: from one <i>&</i>"]);
    chat_say(&b, "from two");
    let expected = ["ann: from one <i>&</i>", "guest: from two"];
    for (i, tab) in [&a, &b].into_iter().enumerate() {
        wait_for_list(tab, "#messages li", &expected);
        assert_eq!(
            tab.eval("document.querySelectorAll('#messages i').length")
                .unwrap(),
            json!(0)
        );
        tab.assert_no_problems_since(start[i]);
    }
    a.close();
    b.close();
}

/// A throwaway `redis-server` on a free loopback port, killed on drop.
#[cfg(feature = "redis")]
struct RedisServer {
    addr: SocketAddr,
    child: Child,
}

#[cfg(feature = "redis")]
impl RedisServer {
    /// `None` (after saying why) if `redis-server` is not installed and
    /// this is not CI.
    fn start() -> Option<RedisServer> {
        let addr = free_address();
        let spawned = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &addr.port().to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if !under_ci() => {
                eprintln!("SKIPPED: cannot start redis-server ({e}; apt-get install redis-server)");
                return None;
            }
            Err(e) => panic!("under CI=true, redis-server must start: {e}"),
        };
        let redis = RedisServer { addr, child };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect_timeout(&addr, SOCKET_TIMEOUT).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {addr}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }
}

#[cfg(feature = "redis")]
impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- clock and tiny_http -------------------------------------------------------

#[test]
fn clock_ticks() {
    let Some(env) = env() else { return };
    let clock = env.start("clock");
    let tab = env.open("clock", &url(&clock, "/"));
    let start = tab.mark();
    wait_for_ticks(&tab, "#clock");
    tab.assert_no_problems_since(start);
    tab.close();
}

#[test]
fn tiny_http_clock_ticks_and_the_button_counts() {
    let Some(env) = env() else { return };
    let server = env.start("tiny_http");
    let tab = env.open("tiny_http", &url(&server, "/"));
    let start = tab.mark();
    wait_for_ticks(&tab, "#clock");
    for n in 1..=3 {
        tab.click("button");
        wait_text(&tab, "[data-text]", &format!("{n}"));
    }
    wait_for_ticks(&tab, "#clock");
    tab.assert_no_problems_since(start);
    tab.close();
}

// --- what the tests look for -----------------------------------------------------

/// Waits until the first element matching `selector` shows exactly `text`.
fn wait_text(tab: &Tab, selector: &str, text: &str) {
    let js = format!(
        "document.querySelector({})?.innerText === {}",
        json!(selector),
        json!(text)
    );
    tab.wait(&format!("{selector} to show {text:?}"), WAIT, &js);
}

/// Waits until the demo's page is live: the client has run and the live
/// stream has delivered its snapshot.
fn wait_for_demo(tab: &Tab) {
    wait_text(tab, "#count", "0");
    tab.wait(
        "the live panel",
        WAIT,
        "document.getElementById('clock') !== null",
    );
}

/// Waits until the clock shows a time, then another.
fn wait_for_ticks(tab: &Tab, selector: &str) {
    let js = format!(
        "(/\\d\\d:\\d\\d:\\d\\d/.exec(document.querySelector({})?.innerText ?? '') ?? [null])[0]",
        json!(selector)
    );
    let first = tab.wait("the clock", WAIT, &js);
    tab.wait(
        "the clock to tick",
        WAIT,
        &format!("(() => {{ const now = {js}; return now !== null && now !== {first}; }})()"),
    );
}

/// Posts a message in the demo the way a user does: type, Enter, and the
/// input is emptied by the server's answer.
fn say(tab: &Tab, text: &str) {
    tab.type_into("#message", text);
    tab.press_enter();
    tab.wait(
        &format!("{text:?} sent"),
        WAIT,
        "document.getElementById('message').value === ''",
    );
}

/// Sends a message in the chat the way a user does: type, Enter, and the
/// input is emptied by the server's answer.
fn chat_say(tab: &Tab, text: &str) {
    tab.type_into("input[name=text]", text);
    tab.press_enter();
    tab.wait(
        &format!("{text:?} sent"),
        WAIT,
        "document.querySelector('input[name=text]').value === ''",
    );
}

/// Waits until the demo's board holds exactly `expected`, in order.
fn wait_for_board(tab: &Tab, expected: &[impl AsRef<str>]) {
    wait_for_list(tab, "#messages .text", expected);
    // Every message once: no element id twice.
    let ids = tab
        .eval("[...document.querySelectorAll('#messages li')].map(li => li.id)")
        .unwrap();
    let ids: Vec<&str> = ids
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "{}: the board holds a message twice: {ids:?}",
        tab.name
    );
}

/// Waits until the elements matching `selector` have exactly these texts.
fn wait_for_list(tab: &Tab, selector: &str, expected: &[impl AsRef<str>]) {
    wait_for_list_within(tab, selector, expected, WAIT);
}

fn wait_for_list_within(
    tab: &Tab,
    selector: &str,
    expected: &[impl AsRef<str>],
    timeout: Duration,
) {
    let expected: Vec<&str> = expected.iter().map(AsRef::as_ref).collect();
    let js = format!(
        "JSON.stringify([...document.querySelectorAll({})].map(e => e.innerText)) === {}",
        json!(selector),
        json!(json!(expected).to_string())
    );
    tab.wait(&format!("{selector} to be {expected:?}"), timeout, &js);
}

fn list(tab: &Tab, selector: &str) -> Vec<String> {
    let js = format!(
        "[...document.querySelectorAll({})].map(e => e.innerText)",
        json!(selector)
    );
    serde_json::from_value(tab.eval(&js).unwrap()).unwrap()
}

/// No problem in `tab` since `start`, except failures of the stream's own
/// request (`path`) after the network was cut at `cut_at`.
fn assert_no_problems_but_stream_failures(tab: &Tab, start: Mark, cut_at: Mark, path: &str) {
    let before: Vec<_> = {
        let all = tab.problems_since(start);
        let after = tab.problems_since(cut_at).len();
        all[..all.len() - after].to_vec()
    };
    assert!(
        before.is_empty(),
        "{}: before the cut: {before:#?}",
        tab.name
    );
    let unexpected: Vec<_> = tab
        .problems_since(cut_at)
        .into_iter()
        .filter(|p| !is_stream_failure(p, path))
        .collect();
    assert!(unexpected.is_empty(), "{}: {unexpected:#?}", tab.name);
}

/// Whether `problem` is the stream at `path` failing as a network cut makes
/// it fail: its request fails (the browser logs that), and Datastar says it
/// will retry.
fn is_stream_failure(problem: &Problem, path: &str) -> bool {
    let is_stream = |url: &str| {
        let url_path = url
            .split_once("://")
            .map_or("", |(_, rest)| rest.find('/').map_or("", |at| &rest[at..]));
        url_path == path || url_path.starts_with(&format!("{path}?"))
    };
    let text = problem.text.as_str();
    if is_stream(&problem.url) {
        return text.starts_with("request failed: ")
            || text.starts_with("log \"error\": \"Failed to load resource: net::");
    }
    // Datastar's own console errors while it retries.
    if let Some((_, rest)) = text.split_once("Datastar failed to reach ") {
        return rest
            .split_once(' ')
            .is_some_and(|(url, why)| is_stream(url) && why.starts_with("retrying in "));
    }
    text == r#"console.error: [{"type":"string","value":"network error"}]"#
}

// --- the shared browser and client -----------------------------------------------

/// What every test shares: one Chromium, and the local copy of the client.
struct Env {
    devtools: Arc<Devtools>,
    /// Kept for the life of the process: Chromium exits when the test
    /// process closes the pipe.
    _browser: Mutex<Browser>,
    client_url: String,
}

impl Env {
    fn open(&self, name: &str, url: &str) -> Tab {
        self.devtools
            .open(name, url)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// The shared browser, started on first use; `None` when a test is skipped.
fn env() -> Option<&'static Env> {
    static ENV: OnceLock<Result<Env, String>> = OnceLock::new();
    match ENV.get_or_init(start_env) {
        Ok(env) => Some(env),
        Err(why) if under_ci() => panic!("under CI=true, the Datastar browser tests need {why}"),
        Err(why) => {
            eprintln!("SKIPPED: the Datastar browser tests need {why}");
            None
        }
    }
}

fn start_env() -> Result<Env, String> {
    let client = client_dir()?;
    let chromium = find_chromium().ok_or(
        "Chromium: no chromium, chromium-browser or google-chrome on the PATH \
         (apt-get install chromium, or set DSTAR_CHROMIUM)",
    )?;
    let static_addr = serve_client(client).map_err(|e| format!("a static server: {e}"))?;
    let (browser, devtools) = Browser::launch_with_devtools(&chromium)
        .map_err(|e| format!("Chromium ({}) to start: {e}", chromium.display()))?;
    let devtools = Arc::new(devtools);
    let version = devtools
        .call(None, "Browser.getVersion", json!({}))
        .map_err(|e| format!("Chromium ({}) to answer: {e}", chromium.display()))?;
    eprintln!("browser: {}", version["product"].as_str().unwrap_or("?"));
    Ok(Env {
        devtools,
        _browser: Mutex::new(browser),
        client_url: format!("http://{static_addr}/datastar.js"),
    })
}

/// The directory of the local Datastar client, from `$DSTAR_DATASTAR_JS`.
fn client_dir() -> Result<PathBuf, String> {
    let how = "Get it with `export DSTAR_DATASTAR_JS=$(.ci/datastar-client)`, which downloads \
               the PyPI wheel starhtml 0.7.0 with pip and unpacks its static/js/ into \
               target/datastar/js (see the README)";
    let Some(path) = std::env::var_os(CLIENT_VAR) else {
        return Err(format!(
            "the Datastar v1.0.1 client: {CLIENT_VAR} is not set. {how}"
        ));
    };
    let mut path = PathBuf::from(path);
    if path.is_relative() {
        path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    }
    if path.is_file() {
        path.pop();
    }
    let main = path.join("datastar.js");
    let text = fs::read_to_string(&main)
        .map_err(|e| format!("the Datastar client: {}: {e}. {how}", main.display()))?;
    if !text.contains("Datastar v1.0.1") {
        return Err(format!(
            "the Datastar v1.0.1 client: {} is another build. {how}",
            main.display()
        ));
    }
    Ok(path)
}

/// Serves the client's files on a port of their own, as a CDN would: as
/// JavaScript, to any origin (module scripts are fetched with CORS).
fn serve_client(dir: PathBuf) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            thread::spawn(move || serve_file(&stream, &dir));
        }
    });
    Ok(addr)
}

fn serve_file(stream: &TcpStream, dir: &Path) {
    let _ = stream.set_read_timeout(Some(SOCKET_TIMEOUT));
    let _ = stream.set_write_timeout(Some(SOCKET_TIMEOUT));
    let mut reader = dstar::RequestReader::new(stream);
    let Ok(Some(request)) = reader.next_request() else {
        return;
    };
    let name = request.path().trim_start_matches('/');
    let safe = !name.is_empty()
        && name.ends_with(".js")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !name.contains("..");
    let file = if safe {
        fs::read(dir.join(name)).ok()
    } else {
        None
    };
    let (status, body) = match file {
        Some(body) => ("200 OK", body),
        None => ("404 Not Found", b"not found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/javascript; charset=utf-8\r\n\
         Access-Control-Allow-Origin: *\r\nCache-Control: no-store\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut out = stream;
    let _ = out
        .write_all(head.as_bytes())
        .and_then(|()| out.write_all(&body));
}

// --- the examples ----------------------------------------------------------------

impl Env {
    /// Starts an example on a free port, its page loading the local client.
    fn start(&self, name: &str) -> Example {
        self.start_on(name, free_address(), &[])
    }

    /// Starts an example on `addr`, with `args` after the address.
    fn start_on(&self, name: &str, addr: SocketAddr, args: &[&str]) -> Example {
        Example::start_with(
            name,
            addr,
            args,
            &[("DATASTAR_CLIENT_URL", &self.client_url)],
        )
    }
}

/// The URL of `path` on `example`.
fn url(example: &Example, path: &str) -> String {
    format!("http://{}{path}", example.addr)
}

/// Stops `example` the way a user does, with Ctrl-C, and expects it to
/// exit by itself with status 0.
fn ctrl_c(example: &mut Example, name: &str) {
    assert!(
        example.interrupt(),
        "{name} did not exit with 0 after Ctrl-C"
    );
}

/// POSTs `body` as Datastar would and returns the status.
fn post(addr: SocketAddr, path: &str, body: &str) -> u16 {
    let mut stream = TcpStream::connect_timeout(&addr, SOCKET_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(SOCKET_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(SOCKET_TIMEOUT)).unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Datastar-Request: true\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the answer");
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

// --- a network that can be cut -------------------------------------------------

/// A loopback TCP proxy in front of an example, recording what crosses it.
/// `cut` drops every connection and holds new ones until `restore`, as a
/// network that goes away and comes back does.
struct Proxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
}

#[derive(Default)]
struct ProxyShared {
    state: Mutex<ProxyState>,
    changed: Condvar,
    stopping: AtomicBool,
}

#[derive(Default)]
struct ProxyState {
    down: bool,
    open: Vec<TcpStream>,
    connections: Vec<Arc<Mutex<Recorded>>>,
}

/// What crossed one connection.
#[derive(Default)]
struct Recorded {
    request: Vec<u8>,
    response: Vec<u8>,
}

impl ProxyShared {
    fn lock(&self) -> MutexGuard<'_, ProxyState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(ProxyShared::default());
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if accepting.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let shared = Arc::clone(&accepting);
                thread::spawn(move || proxy_connection(client, upstream, &shared));
            }
        });
        Proxy { addr, shared }
    }

    fn cut(&self) {
        let mut state = self.shared.lock();
        state.down = true;
        for socket in state.open.drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.shared.lock().down = false;
        self.shared.changed.notify_all();
    }

    /// The first connection whose request resumed a stream, once its
    /// response has some events in it.
    fn wait_for_stream_with_last_event_id(&self) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self.shared.lock().connections.iter().find_map(|c| {
                let c = c.lock().unwrap_or_else(PoisonError::into_inner);
                // A connection may have carried other requests first; the
                // stream is the last one it carries.
                let requests = String::from_utf8_lossy(&c.request).to_ascii_lowercase();
                let stream = &requests[requests.rfind("get /stream")?..];
                let head = stream.split("\r\n\r\n").next()?;
                if !head.contains("\r\nlast-event-id:") {
                    return None;
                }
                let at = c.response.windows(9).rposition(|w| w == b"HTTP/1.1 ")?;
                Some(c.response[at..].to_vec())
            });
            if let Some(found) = found {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no stream resumed with Last-Event-ID within {WAIT:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, SOCKET_TIMEOUT);
        self.cut();
        self.restore();
    }
}

fn proxy_connection(client: TcpStream, upstream: SocketAddr, shared: &ProxyShared) {
    // While the network is down, a new connection waits (a bounded time).
    {
        let deadline = Instant::now() + WAIT;
        let mut state = shared.lock();
        while state.down && Instant::now() < deadline {
            state = shared
                .changed
                .wait_timeout(state, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
    let Ok(server) = TcpStream::connect_timeout(&upstream, SOCKET_TIMEOUT) else {
        return;
    };
    let record = Arc::new(Mutex::new(Recorded::default()));
    {
        let mut state = shared.lock();
        let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) else {
            return;
        };
        state.open.push(c);
        state.open.push(s);
        state.connections.push(Arc::clone(&record));
    }
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up_record = Arc::clone(&record);
    let up = thread::spawn(move || pump(client2, server2, &up_record, true));
    pump(server, client, &record, false);
    let _ = up.join();
}

/// Copies `from` to `to` until either ends, recording the bytes.
fn pump(mut from: TcpStream, mut to: TcpStream, record: &Mutex<Recorded>, upstream: bool) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut record = record.lock().unwrap_or_else(PoisonError::into_inner);
            let side = if upstream {
                &mut record.request
            } else {
                &mut record.response
            };
            side.extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
