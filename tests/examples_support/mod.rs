//! Runs the programs in `examples/` as a user would, each on a free loopback
//! port, and talks HTTP to them over real sockets with timeouts.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a client waits for an answer that a server sends at once. It is
/// only there to turn a hang into a failure: the examples' own read
/// timeouts, which a connection left open would wait out, are 10 s or more.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// One `cargo build` at a time: they share the target directory. Holds
/// the examples built so far, which are not built again.
static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A running example, killed (by its own pid) when dropped.
pub struct Example {
    pub addr: SocketAddr,
    child: Child,
}

impl Example {
    /// Builds the example with the features this test was built with, and
    /// starts it on a free port: `args` follow the address.
    pub fn start(name: &str, args: &[&str]) -> Example {
        Example::start_with(name, free_address(), args, &[])
    }

    /// Like [`start`](Example::start), on a given address: to start a
    /// program again where an earlier one ran, as a restart does.
    pub fn start_at(name: &str, addr: SocketAddr, args: &[&str]) -> Example {
        Example::start_with(name, addr, args, &[])
    }

    /// Like [`start_at`](Example::start_at), with `env` added to the
    /// program's environment.
    pub fn start_with(
        name: &str,
        addr: SocketAddr,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Example {
        let binary = build(name);
        let child = Command::new(&binary)
            .arg(addr.to_string())
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let example = Example { addr, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            assert!(
                Instant::now() < deadline,
                "example {name} does not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        example
    }

    /// A connection to the example, with read and write timeouts.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect to the example");
        stream.set_read_timeout(Some(ANSWER_WITHIN)).unwrap();
        stream.set_write_timeout(Some(ANSWER_WITHIN)).unwrap();
        stream
    }
}

impl Example {
    /// Sends the program SIGINT, as Ctrl-C in a terminal does, and waits
    /// (at most 30 s) for it to exit; returns whether it exited with 0.
    pub fn interrupt(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -INT {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the example") {
                return status.success();
            }
            assert!(Instant::now() < deadline, "the example ignored Ctrl-C");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cargo build --example name`, so that `cargo test --test x` works on its
/// own too; returns the binary's path.
fn build(name: &str) -> PathBuf {
    let mut features = Vec::new();
    if cfg!(feature = "redis") {
        features.push("redis");
    }
    if cfg!(feature = "serde") {
        features.push("serde");
    }
    // This test runs from <target>/<profile>/deps; examples are built into
    // <target>/<profile>/examples, with the same profile.
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile.join("examples").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if built.iter().any(|b| b == name) {
        return binary;
    }
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--example", name]);
    if profile.file_name().is_some_and(|p| p == "release") {
        cargo.arg("--release");
    }
    if !features.is_empty() {
        cargo.args(["--features", &features.join(",")]);
    }
    let status = cargo.status().expect("run cargo build");
    assert!(status.success(), "cargo build --example {name} failed");
    built.push(name.to_string());
    binary
}

/// A loopback port nobody listens on (as of now).
pub fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
}

/// A request with a body, in HTTP/1.0, asking to keep the connection.
pub fn http10_keep_alive(method: &str, target: &str, body: &str) -> String {
    format!(
        "{method} {target} HTTP/1.0\r\nConnection: keep-alive\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads until the server closes the connection. An error (the timeout)
/// means the server kept the connection open although its answer ended
/// with the connection.
pub fn read_to_close(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match stream.read_to_end(&mut bytes) {
        Ok(_) => Ok(bytes),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "the server did not close the connection ({e}); got so far: {:?}",
                String::from_utf8_lossy(&bytes)
            ),
        )),
    }
}

/// Reads one response whose body has a `Content-Length`, leaving the
/// connection open; returns the head and the body.
pub fn read_sized(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end + 4]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
            while bytes.len() < end + 4 + length {
                let n = stream.read(&mut chunk).expect("read the body");
                assert!(n > 0, "the connection closed inside the body");
                bytes.extend_from_slice(&chunk[..n]);
            }
            return (head, bytes[end + 4..end + 4 + length].to_vec());
        }
        let n = stream.read(&mut chunk).expect("read the head");
        assert!(n > 0, "the connection closed before a whole head");
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// Sends `request`, then expects a close-delimited event stream that ends
/// with the connection: returns it, decoded.
pub fn http10_stream_that_closes(example: &Example, request: &str) -> dstar::testing::Response {
    let mut stream = example.connect();
    stream.write_all(request.as_bytes()).unwrap();
    let bytes = read_to_close(&mut stream).unwrap();
    let response = dstar::testing::decode_response(&bytes).unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(response.header("transfer-encoding"), None);
    response
}
