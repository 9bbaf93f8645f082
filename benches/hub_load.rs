//! Load driver for the broadcast hub: N subscribers over loopback, events
//! published at a fixed rate.
//!
//! ```text
//! cargo bench --bench hub_load -- --subscribers 100,1000,10000 --seconds 10 --rate 10
//! ```
//!
//! For each N, the driver starts a fresh **server** process (this binary,
//! `server` role) so that its figures are the hub's alone, and the server
//! starts a **client** process (`client` role) that opens the N connections
//! and reads them all from one epoll thread. The server:
//!
//! 1. reads each request with dstar's request reader, starts the SSE
//!    response and subscribes the socket to a hub with the default config;
//! 2. once every client has its response head, waits a second for the
//!    writer threads to go idle and measures resident memory (VmRSS) again:
//!    the difference, divided by N, is the server's memory per idle
//!    subscriber (writer thread stack, queue, connection buffer, socket
//!    object; kernel socket buffers and kernel thread stacks are not in
//!    VmRSS);
//! 3. publishes `rate × seconds` events at a fixed rate, each carrying its
//!    CLOCK_MONOTONIC publish time, waits until the hub has delivered every
//!    one, and divides the CPU time it used (user + system, all threads) by
//!    the events delivered.
//!
//! The client timestamps every event when its read returns and reports
//! publish→delivery latency percentiles, and the slowest delivery of each
//! second's events (a steady tail and a growing backlog look different
//! there). Client and server share the machine's cores, so the latency
//! includes the client's own time to get to each socket; the server also
//! reports how long the hub took to write each event to every subscriber,
//! which is its side alone.
//!
//! Loopback traffic passes through each CPU's network backlog queue
//! (`net.core.netdev_max_backlog`, 1000 packets by default). Ten thousand
//! small writes at once can overflow it; the kernel then drops packets and
//! TCP resends them after a timeout of 200 ms or more, which shows up as
//! latency spikes that have nothing to do with the hub. The server reports
//! the drops it saw (`/proc/net/softnet_stat`).
//!
//! Options: `--subscribers N[,N...]` (default 100,1000,10000), `--seconds S`
//! (default 10), `--rate R` events per second (default 10), `--size B` bytes
//! of data per event (default: just the sequence number and time stamp),
//! `--writers W` shared writer threads (default: the hub's, one per core),
//! `--baseline`: no hub; the publishing thread writes each event to every
//! connection itself with `send_event`, one after another — what the same
//! deliveries cost without the hub, over the same sockets and client.
//!
//! Linux only (epoll, getrusage, setrlimit, /proc); elsewhere it says so and
//! exits, so that `cargo bench --no-run` and clippy work on every platform.

#[cfg(target_os = "linux")]
#[path = "hub_load/linux.rs"]
mod linux;

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("hub_load drives the hub with epoll, getrusage and /proc: it runs on Linux only");
}
