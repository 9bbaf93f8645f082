//! What the tests that start their own `redis-server` share.

use std::process::{Command, Stdio};

/// Whether `redis-server` can be run. Without it a test is skipped with a
/// message, except under `CI=true`, where `.ci/run` installs it and its
/// absence is a broken set-up: there this panics.
pub fn redis_server_installed() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !found {
        let message = "redis-server is not installed (Debian: apt-get install redis-server)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{message}; CI must install it"
        );
        eprintln!("SKIPPED: {message}");
    }
    found
}
