//! Compressed streams on the repeated-morph workload: a 40-row, ~4.3 KB
//! table re-sent as a Datastar `patch-elements` event with one score
//! changed each time, 500 times.
//!
//! For identity, gzip, brotli and zstd, in one run: bytes per event and
//! ratio against identity, with the window kept for the whole stream (what
//! dstar does) and with the compressor restarted for every event (what a
//! server that compresses each response separately gets); CPU µs per event
//! (formatting included, so identity is the baseline); memory per idle
//! stream after the workload (heap bytes in use, from `mallinfo2`, which
//! also counts the C zstd library's allocations). zstd *is* the C reference
//! library; there is no C brotli or zlib among the dev-dependencies.
//!
//! `cargo bench --bench compression --features brotli,gzip,zstd`, with
//! - `-- --events N` to change the count,
//! - `-- --sweep` to compare quality/level and window settings (how the
//!   defaults were chosen),
//! - `-- --hub` to measure CPU per delivery through a hub with 1,000
//!   in-memory subscribers, with and without compression.
//!
//! Only the ratios mean anything on a shared machine.
//!
//! Linux (glibc) only, for `mallinfo2` and `getrusage`; elsewhere it says so
//! and exits, so that `cargo bench --no-run` and clippy work on every
//! platform.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[path = "compression/linux.rs"]
mod linux;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn main() {
    linux::main();
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() {
    eprintln!("the compression benchmark reads glibc's mallinfo2 and getrusage: Linux only");
}
