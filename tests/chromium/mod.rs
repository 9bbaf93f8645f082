//! Headless Chromium for the browser tests: finding it, starting it in a
//! process group of its own with a fresh profile, and driving it over the
//! DevTools protocol.
//!
//! The protocol runs over a pipe (`--remote-debugging-pipe`: Chromium reads
//! commands from its fd 3 and writes answers to its fd 4, each message a JSON
//! text ended by a NUL), so there is no WebSocket and no port to find. A
//! small shell wrapper maps the child's stdin and stdout onto those two
//! descriptors. When the test process ends, the pipe closes and Chromium
//! exits by itself; the wrapper then removes the profile.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Chromium as `$DSTAR_CHROMIUM`, or `chromium`, `chromium-browser`,
/// `google-chrome` on the `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DSTAR_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Whether the tests run under `CI=true`, where a missing browser or client
/// is a broken set-up rather than a reason to skip.
pub fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The flags every run uses.
const FLAGS: &[&str] = &[
    "--headless",
    // CI runs as root, where Chromium's sandbox cannot start.
    "--no-sandbox",
    "--disable-gpu",
    // No network but loopback here: without these Chromium keeps trying
    // Google's services, slowly and noisily.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    // A small /dev/shm in containers crashes renderers.
    "--disable-dev-shm-usage",
    "--mute-audio",
];

/// A headless Chromium child process, in a process group of its own, with a
/// fresh profile. Dropping it kills the whole group (the browser's renderer
/// and helper processes too), waits for it and removes the profile.
pub struct Browser {
    child: Child,
    dir: PathBuf,
    exit: Option<String>,
}

impl Browser {
    /// Starts Chromium on `url`.
    pub fn launch(chromium: &Path, url: &str) -> io::Result<Browser> {
        let dir = fresh_dir()?;
        let log = fs::File::create(dir.join("chromium.log"))?;
        let spawned = Command::new(chromium)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn();
        Browser::started(spawned, dir)
    }

    /// Starts Chromium with the DevTools protocol on a pipe, and returns the
    /// client end of it too.
    pub fn launch_with_devtools(chromium: &Path) -> io::Result<(Browser, Devtools)> {
        let dir = fresh_dir()?;
        let log = fs::File::create(dir.join("chromium.log"))?;
        // fd 3 and 4 are the protocol's; stdin and stdout become the
        // browser's ordinary ones again. The shell stays as the group's
        // leader and removes the profile once Chromium has exited, which it
        // does by itself when the pipe closes with the test process.
        let script = r#"dir=$1; shift; "$@" 3<&0 4>&1 </dev/null >&2; status=$?; rm -rf "$dir"; exit $status"#;
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&dir)
            .arg(chromium)
            .args(FLAGS)
            .arg("--remote-debugging-pipe")
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn();
        let mut browser = Browser::started(spawned, dir)?;
        let (Some(input), Some(output)) = (browser.child.stdin.take(), browser.child.stdout.take())
        else {
            return Err(io::Error::other("no pipe to the browser"));
        };
        let log = browser.dir.join("chromium.log");
        Ok((browser, Devtools::new(input, output, log)))
    }

    fn started(spawned: io::Result<Child>, dir: PathBuf) -> io::Result<Browser> {
        match spawned {
            Ok(child) => Ok(Browser {
                child,
                dir,
                exit: None,
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    pub fn exited(&mut self) -> bool {
        if self.exit.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exit = Some(status.to_string());
        }
        self.exit.is_some()
    }

    /// How the browser ended, and the end of its log, for a failure message.
    pub fn describe(&mut self) -> String {
        let status = if self.exited() {
            format!("; it exited: {}", self.exit.as_deref().unwrap_or("?"))
        } else {
            String::new()
        };
        format!("{status}{}", log_tail(&self.dir.join("chromium.log")))
    }

    /// Sends `signal` to the browser's whole process group.
    fn signal_group(&self, signal: &str) -> bool {
        // The group id is the child's pid (`process_group(0)`); std has no
        // safe kill(2), so the `kill` program sends it.
        signal_group(self.child.id(), signal)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.exited() {
            // Politely first, so Chromium takes its helpers down with it.
            self.signal_group("-TERM");
            let deadline = Instant::now() + Duration::from_secs(3);
            while !self.exited() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
        // Whatever is left of the group, and the browser itself if `kill`
        // could not be run.
        self.signal_group("-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Helpers may still be writing to the profile for a moment.
        for _ in 0..20 {
            if fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sends `signal` (`-TERM`, `-INT`, ...) to the process group `group`.
pub fn signal_group(group: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([signal, "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh, empty directory for one browser's profile and log.
fn fresh_dir() -> io::Result<PathBuf> {
    static LAUNCHES: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dstar-browser-{}-{}",
        std::process::id(),
        LAUNCHES.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The last lines of a log file, for a failure message.
pub fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!(
        "\n--- {} (last lines) ---\n{}",
        path.display(),
        tail.join("\n")
    )
}

// --- the DevTools protocol -----------------------------------------------------

/// How long one protocol command may take to be answered.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The client end of the DevTools pipe. Commands may be sent from several
/// threads at once; a reader thread files the answers by id and keeps every
/// event, in order, for the tabs to look through.
pub struct Devtools {
    input: Mutex<ChildStdin>,
    next_id: AtomicU64,
    shared: Arc<Shared>,
    log: PathBuf,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    replies: HashMap<u64, Value>,
    events: Vec<Value>,
    /// Why the pipe closed, once it has.
    closed: Option<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Devtools {
    fn new(input: ChildStdin, output: ChildStdout, log: PathBuf) -> Devtools {
        let shared = Arc::new(Shared::default());
        let reader = Arc::clone(&shared);
        thread::spawn(move || read_messages(output, &reader));
        Devtools {
            input: Mutex::new(input),
            next_id: AtomicU64::new(1),
            shared,
            log,
        }
    }

    /// Sends a command (to a tab's session, or to the browser) and waits for
    /// its answer.
    pub fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        {
            let mut input = self.input.lock().unwrap_or_else(PoisonError::into_inner);
            input
                .write_all(&bytes)
                .and_then(|()| input.flush())
                .map_err(|e| format!("{method}: cannot write to the browser: {e}"))?;
        }
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let mut state = self.shared.lock();
        loop {
            if let Some(mut reply) = state.replies.remove(&id) {
                if let Some(error) = reply.get("error") {
                    return Err(format!("{method}: {error}"));
                }
                return Ok(reply["result"].take());
            }
            if let Some(why) = &state.closed {
                return Err(format!(
                    "{method}: the browser's pipe closed: {why}{}",
                    log_tail(&self.log)
                ));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("{method}: no answer within {COMMAND_TIMEOUT:?}"));
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Opens a new tab on `url`, with everything the tests watch enabled
    /// before the page starts loading.
    pub fn open(self: &Arc<Self>, name: &str, url: &str) -> Result<Tab, String> {
        // A window of its own: a background tab would be hidden (Datastar closes
        // its streams then) and would not render, so input to it would wait.
        let target = self.call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank", "newWindow": true }),
        )?;
        let target = target["targetId"]
            .as_str()
            .ok_or("no targetId")?
            .to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        )?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_string();
        let tab = Tab {
            devtools: Arc::clone(self),
            name: name.to_string(),
            session,
            target,
        };
        for domain in ["Runtime", "Network", "Log", "Page"] {
            tab.call(&format!("{domain}.enable"), json!({}))?;
        }
        tab.navigate(url)?;
        Ok(tab)
    }

    /// The events of one tab from the `from`th event on, each with its
    /// place among all events.
    fn events_of(&self, session: &str, from: usize) -> Vec<(usize, Value)> {
        let state = self.shared.lock();
        let from = from.min(state.events.len());
        state.events[from..]
            .iter()
            .enumerate()
            .filter(|(_, e)| e["sessionId"].as_str() == Some(session))
            .map(|(at, e)| (from + at, e.clone()))
            .collect()
    }

    fn event_count(&self) -> usize {
        self.shared.lock().events.len()
    }
}

fn read_messages(output: ChildStdout, shared: &Shared) {
    let mut output = BufReader::new(output);
    let mut message = Vec::new();
    let why = loop {
        message.clear();
        match output.read_until(0, &mut message) {
            Ok(0) => break "end of file".to_string(),
            Ok(_) => {}
            Err(e) => break e.to_string(),
        }
        if message.last() == Some(&0) {
            message.pop();
        }
        let Ok(value) = serde_json::from_slice::<Value>(&message) else {
            continue;
        };
        let mut state = shared.lock();
        match value["id"].as_u64() {
            Some(id) => {
                state.replies.insert(id, value);
            }
            None => state.events.push(value),
        }
        drop(state);
        shared.changed.notify_all();
    };
    shared.lock().closed = Some(why);
    shared.changed.notify_all();
}

/// One tab, attached over the protocol.
pub struct Tab {
    devtools: Arc<Devtools>,
    /// Named in failure messages.
    pub name: String,
    session: String,
    target: String,
}

/// A point in a tab's history of events, from which to look for problems.
#[derive(Clone, Copy, Debug)]
pub struct Mark(usize);

/// How often a condition is checked while waiting for it.
const POLL: Duration = Duration::from_millis(50);

impl Tab {
    pub fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        self.devtools.call(Some(&self.session), method, params)
    }

    pub fn navigate(&self, url: &str) -> Result<(), String> {
        let answer = self.call("Page.navigate", json!({ "url": url }))?;
        match answer.get("errorText") {
            Some(error) => Err(format!("{}: cannot open {url}: {error}", self.name)),
            None => Ok(()),
        }
    }

    /// Reloads the page, as the user's F5 does.
    pub fn reload(&self) -> Result<(), String> {
        self.call("Page.reload", json!({})).map(drop)
    }

    /// Evaluates `js` in the page (awaiting a promise) and returns its value
    /// as JSON.
    pub fn eval(&self, js: &str) -> Result<Value, String> {
        let answer = self.call(
            "Runtime.evaluate",
            json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(details) = answer.get("exceptionDetails") {
            let text = details["exception"]["description"]
                .as_str()
                .or(details["text"].as_str())
                .unwrap_or("an exception");
            return Err(format!("{}: `{js}` threw {text}", self.name));
        }
        Ok(answer["result"]["value"].clone())
    }

    /// Waits until `js` evaluates to something truthy (and not `null`), and
    /// returns that value; panics after `timeout` with what it last saw.
    pub fn wait(&self, what: &str, timeout: Duration, js: &str) -> Value {
        let deadline = Instant::now() + timeout;
        let check =
            format!("(() => {{ try {{ return ({js}); }} catch (e) {{ return null; }} }})()");
        loop {
            let value = self.eval(&check).unwrap_or(Value::Null);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: waited {timeout:?} for {what} (`{js}`), in vain; the page shows:\n{}\nproblems: {:#?}",
                    self.name,
                    self.text("body"),
                    self.problems_since(Mark(0)),
                );
            }
            thread::sleep(POLL);
        }
    }

    /// The text of the first element matching `selector`, or `""`.
    pub fn text(&self, selector: &str) -> String {
        let js = format!(
            "document.querySelector({})?.innerText ?? ''",
            json!(selector)
        );
        match self.eval(&js) {
            Ok(Value::String(text)) => text,
            Ok(other) => other.to_string(),
            Err(e) => format!("({e})"),
        }
    }

    /// Clicks the element matching `selector` with the mouse, in its middle,
    /// after scrolling it into view.
    pub fn click(&self, selector: &str) {
        let js = format!(
            "(() => {{ const el = document.querySelector({}); if (!el) return null; \
             el.scrollIntoView({{block: 'center'}}); const r = el.getBoundingClientRect(); \
             return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            json!(selector)
        );
        let at = self.eval(&js).unwrap_or_else(|e| panic!("{e}"));
        let (Some(x), Some(y)) = (at[0].as_f64(), at[1].as_f64()) else {
            panic!("{}: nothing to click at {selector:?}", self.name);
        };
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            let params = json!({
                "type": kind, "x": x, "y": y, "button": "left",
                "buttons": if kind == "mousePressed" { 1 } else { 0 },
                "clickCount": if kind == "mouseMoved" { 0 } else { 1 },
            });
            self.call("Input.dispatchMouseEvent", params)
                .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        }
    }

    /// Clicks into `selector` and types `text`, as a keyboard would insert it.
    pub fn type_into(&self, selector: &str, text: &str) {
        self.click(selector);
        self.insert_text(text);
    }

    /// Clicks into `selector`, selects what it holds and types `text` over it.
    pub fn type_over(&self, selector: &str, text: &str) {
        self.click(selector);
        self.eval(&format!(
            "document.querySelector({}).select()",
            json!(selector)
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        self.insert_text(text);
    }

    fn insert_text(&self, text: &str) {
        self.call("Input.insertText", json!({ "text": text }))
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
    }

    /// Presses and releases Enter in the focused element.
    pub fn press_enter(&self) {
        for kind in ["keyDown", "keyUp"] {
            let mut params = json!({
                "type": kind, "key": "Enter", "code": "Enter",
                "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
            });
            if kind == "keyDown" {
                params["text"] = json!("\r");
            }
            self.call("Input.dispatchKeyEvent", params)
                .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        }
    }

    /// Now, in this tab's history: problems after it can be looked for.
    pub fn mark(&self) -> Mark {
        Mark(self.devtools.event_count())
    }

    /// What went wrong in the page since `mark`: uncaught exceptions,
    /// console errors and warnings, browser log errors, failed requests and
    /// error responses (the examples' pages carry an inline icon, so even the
    /// browser's own `/favicon.ico` request would count). A request the page
    /// itself cancelled is not a failure.
    pub fn problems_since(&self, mark: Mark) -> Vec<Problem> {
        let mut urls = HashMap::new();
        let mut problems = Vec::new();
        // Requests are named from the start, so that a failure after the
        // mark of a request sent before it has its URL.
        for (at, event) in self.devtools.events_of(&self.session, 0) {
            let params = &event["params"];
            let method = event["method"].as_str().unwrap_or("");
            if method == "Network.requestWillBeSent" {
                let id = params["requestId"].as_str().unwrap_or("").to_string();
                let url = params["request"]["url"].as_str().unwrap_or("").to_string();
                urls.insert(id, url);
                continue;
            }
            if at < mark.0 {
                continue;
            }
            let text = match method {
                "Network.loadingFailed" if params["canceled"] != json!(true) => {
                    format!("request failed: {}", params["errorText"])
                }
                "Network.responseReceived"
                    if params["response"]["status"].as_u64() >= Some(400) =>
                {
                    format!("HTTP {}", params["response"]["status"])
                }
                "Runtime.exceptionThrown" => format!(
                    "uncaught: {}",
                    params["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .unwrap_or_else(|| params["exceptionDetails"]["text"]
                            .as_str()
                            .unwrap_or("?"))
                ),
                "Runtime.consoleAPICalled"
                    if matches!(
                        params["type"].as_str(),
                        Some("error" | "warning" | "assert")
                    ) =>
                {
                    format!(
                        "console.{}: {}",
                        params["type"].as_str().unwrap_or(""),
                        params["args"]
                    )
                }
                "Log.entryAdded"
                    if matches!(params["entry"]["level"].as_str(), Some("error" | "warning")) =>
                {
                    format!(
                        "log {}: {}",
                        params["entry"]["level"], params["entry"]["text"]
                    )
                }
                _ => continue,
            };
            let url = params["requestId"]
                .as_str()
                .and_then(|id| urls.get(id).cloned())
                .or_else(|| params["response"]["url"].as_str().map(str::to_string))
                .or_else(|| params["entry"]["url"].as_str().map(str::to_string))
                .unwrap_or_default();
            problems.push(Problem { text, url });
        }
        problems
    }

    /// Panics if anything went wrong in the page since `mark`.
    pub fn assert_no_problems_since(&self, mark: Mark) {
        let problems = self.problems_since(mark);
        assert!(problems.is_empty(), "{}: {problems:#?}", self.name);
    }

    /// Closes the tab, as the user's Ctrl-W does.
    pub fn close(self) {
        let _ = self.devtools.call(
            None,
            "Target.closeTarget",
            json!({ "targetId": self.target }),
        );
    }
}

/// Something that went wrong in a page, and the URL it concerns (if any).
#[derive(Debug, Clone)]
pub struct Problem {
    pub text: String,
    pub url: String,
}
