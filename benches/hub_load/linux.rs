//! The load driver itself: Linux only, for epoll, getrusage, setrlimit,
//! `CLOCK_MONOTONIC` and the figures /proc gives.

use dstar::broadcast::{Config, Hub, Subscription};
use dstar::request::Request;
use dstar::{Event, SseConnection};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
struct Options {
    subscribers: Vec<usize>,
    seconds: u64,
    rate: u64,
    size: usize,
    port: u16,
    writers: usize,
    /// No hub: the publishing thread writes each event to every connection
    /// itself, one `send_event` after another, as the baseline.
    baseline: bool,
}

pub fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let role = match args.peek().map(String::as_str) {
        Some("server") | Some("client") => args.next().unwrap(),
        _ => "driver".to_string(),
    };
    let mut options = Options {
        subscribers: vec![100, 1_000, 10_000],
        seconds: 10,
        rate: 10,
        size: 0,
        port: 0,
        writers: 0,
        baseline: false,
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--subscribers" => {
                options.subscribers = value()
                    .split(',')
                    .map(|n| n.parse().unwrap_or_else(|_| usage("bad --subscribers")))
                    .collect();
            }
            "--seconds" => {
                options.seconds = value().parse().unwrap_or_else(|_| usage("bad --seconds"))
            }
            "--rate" => options.rate = value().parse().unwrap_or_else(|_| usage("bad --rate")),
            "--size" => options.size = value().parse().unwrap_or_else(|_| usage("bad --size")),
            "--port" => options.port = value().parse().unwrap_or_else(|_| usage("bad --port")),
            "--writers" => {
                options.writers = value().parse().unwrap_or_else(|_| usage("bad --writers"))
            }
            "--baseline" => options.baseline = true,
            // `cargo bench` passes this to every bench target.
            "--bench" => {}
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let result = match role.as_str() {
        "server" => server(&options),
        "client" => client(&options),
        _ => driver(&options),
    };
    if let Err(e) = result {
        eprintln!("hub_load {role}: {e}");
        std::process::exit(1);
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "hub_load: {problem}\n\
         usage: hub_load [--subscribers N[,N...]] [--seconds S] [--rate R] [--size BYTES] \\
         [--writers W] [--baseline]"
    );
    std::process::exit(2);
}

fn other(message: impl Into<String>) -> io::Error {
    io::Error::other(message.into())
}

/// Runs one server process per subscriber count and prints a summary.
fn driver(options: &Options) -> io::Result<()> {
    let exe = std::env::current_exe()?;
    println!(
        "hub_load: {} events/s for {} s, subscribers {:?}, 2 cores shared by server and client",
        options.rate, options.seconds, options.subscribers
    );
    let mut rows = Vec::new();
    for &n in &options.subscribers {
        let output = Command::new(&exe)
            .args(["server", "--subscribers", &n.to_string()])
            .args(["--seconds", &options.seconds.to_string()])
            .args(["--rate", &options.rate.to_string()])
            .args(["--size", &options.size.to_string()])
            .args(["--writers", &options.writers.to_string()])
            .args(options.baseline.then_some("--baseline"))
            .stderr(Stdio::inherit())
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        print!("{text}");
        if !output.status.success() {
            return Err(other(format!("the server for N = {n} failed")));
        }
        let summary = text
            .lines()
            .find_map(|l| l.strip_prefix("summary "))
            .ok_or_else(|| other("the server printed no summary"))?;
        rows.push(summary.to_string());
    }
    println!();
    println!(
        "{:>8} {:>10} {:>10} {:>10} {:>12} {:>14} {:>12} {:>10}",
        "N", "p50 ms", "p99 ms", "max ms", "CPU µs/ev", "RSS KiB/sub", "delivered", "missing"
    );
    for row in rows {
        let field = |name: &str| {
            row.split(' ')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("?")
                .to_string()
        };
        println!(
            "{:>8} {:>10} {:>10} {:>10} {:>12} {:>14} {:>12} {:>10}",
            field("n"),
            field("p50_ms"),
            field("p99_ms"),
            field("max_ms"),
            field("cpu_us_per_event"),
            field("rss_kib_per_sub"),
            field("delivered"),
            field("missing"),
        );
    }
    Ok(())
}

fn server(options: &Options) -> io::Result<()> {
    let n = options.subscribers[0];
    raise_fd_limit(n as u64 + 256)?;
    let events = options.rate * options.seconds;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let hub = Arc::new(Hub::new(Config::new().writers(options.writers)));
    let rss_before = vm_rss_kib()?;

    let mut client = Command::new(std::env::current_exe()?)
        .args(["client", "--subscribers", &n.to_string()])
        .args(["--port", &port.to_string()])
        .args(["--seconds", &options.seconds.to_string()])
        .args(["--rate", &options.rate.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut client_lines = BufReader::new(client.stdout.take().unwrap()).lines();

    let connecting = Instant::now();
    let acceptor = {
        let hub = Arc::clone(&hub);
        let baseline = options.baseline;
        thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept(&listener, &hub, n, baseline))?
    };
    let ready = client_lines.next().transpose()?.unwrap_or_default();
    if ready != "ready" {
        return Err(other(format!("the client did not get ready: {ready:?}")));
    }
    let mut direct = acceptor
        .join()
        .map_err(|_| other("the acceptor panicked"))??;
    let connect_time = connecting.elapsed();
    // Deliveries the baseline made itself; the hub counts its own.
    let mut direct_delivered = 0;
    let delivered = |direct_delivered: u64| hub.stats().delivered + direct_delivered;
    if !options.baseline && hub.stats().subscribers != n {
        return Err(other(format!("only {:?} subscribed", hub.stats())));
    }
    // Let every writer thread reach its idle wait before measuring.
    thread::sleep(Duration::from_secs(1));
    let rss_idle = vm_rss_kib()?;
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    let rss_per_sub = (rss_idle - rss_before) as f64 / n as f64;
    println!(
        "N={n}: {n} subscribed in {:.2} s; server threads {threads}; VmRSS {rss_before} KiB → \
         {rss_idle} KiB idle = {rss_per_sub:.1} KiB per subscriber",
        connect_time.as_secs_f64()
    );

    let padding = "x".repeat(options.size);
    let drops_before = softnet_drops();
    let cpu_start = cpu_time();
    let delivered_start = delivered(0);
    let period = Duration::from_secs(1) / options.rate as u32;
    let start = Instant::now();
    // How long the hub took to write each event to every subscriber, seen
    // from the server alone: `delivered` polled every millisecond until the
    // next event is due.
    let mut fan_out_ms: Vec<f64> = Vec::new();
    let mut publish_ms: Vec<f64> = Vec::new();
    for seq in 0..events {
        let due = start + period * seq as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let data = format!("{seq} {} {padding}", monotonic_ns());
        let published = Instant::now();
        let id = seq.to_string();
        let event = Event::new("tick").data(&data).id(&id);
        if options.baseline {
            for conn in &mut direct {
                conn.send_event(event)?;
                direct_delivered += 1;
            }
        } else {
            hub.publish(event)?;
        }
        publish_ms.push(published.elapsed().as_secs_f64() * 1e3);
        let next = start + period * (seq as u32 + 1);
        let target = delivered_start + (seq + 1) * n as u64;
        while Instant::now() < next {
            if delivered(direct_delivered) >= target {
                fan_out_ms.push(published.elapsed().as_secs_f64() * 1e3);
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
    let published_in = start.elapsed();
    let drops_after = softnet_drops();
    let quantile = |values: &mut Vec<f64>, q: f64| {
        values.sort_by(f64::total_cmp);
        let at = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len().max(1));
        values.get(at - 1).copied().unwrap_or(f64::NAN)
    };
    println!(
        "N={n}: server side: publish() took p50 {:.2} ms, max {:.2} ms; written to all {n} \
         subscribers within p50 {:.1} ms, p99 {:.1} ms of publishing ({} of {events} events \
         done before the next was due); loopback backlog drops {}",
        quantile(&mut publish_ms, 0.5),
        quantile(&mut publish_ms, 1.0),
        quantile(&mut fan_out_ms, 0.5),
        quantile(&mut fan_out_ms, 0.99),
        fan_out_ms.len(),
        drops_after - drops_before,
    );
    let expected = n as u64 * events;
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(direct_delivered) - delivered_start < expected && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let cpu = cpu_time() - cpu_start;
    let stats = hub.stats();
    let delivered = delivered(direct_delivered) - delivered_start;
    let cpu_per_event = cpu.as_secs_f64() * 1e6 / delivered.max(1) as f64;
    println!(
        "N={n}: published {events} events in {:.2} s; server CPU {:.2} s for {delivered} \
         deliveries = {cpu_per_event:.2} µs per delivered event; evicted {}, disconnected {}, \
         hand-offs {}",
        published_in.as_secs_f64(),
        cpu.as_secs_f64(),
        stats.evicted,
        stats.disconnected,
        stats.handoffs,
    );

    let result = client_lines.next().transpose()?.unwrap_or_default();
    let stopping = Instant::now();
    hub.stop();
    let stop_time = stopping.elapsed();
    client.wait()?;
    let latency = result
        .strip_prefix("result ")
        .ok_or_else(|| other(format!("the client reported {result:?}")))?;
    println!(
        "N={n}: client {latency}; hub stopped in {:.0} ms",
        stop_time.as_secs_f64() * 1e3
    );
    println!(
        "summary n={n} {latency} cpu_us_per_event={cpu_per_event:.2} rss_kib_per_sub={rss_per_sub:.1}"
    );
    Ok(())
}

/// Accepts `n` connections: reads each request, starts its event stream and
/// hands it to the hub, as a server's connection handler would; for the
/// baseline, returns the connections instead.
fn accept(
    listener: &TcpListener,
    hub: &Hub,
    n: usize,
    baseline: bool,
) -> io::Result<Vec<SseConnection<TcpStream>>> {
    let mut direct = Vec::new();
    for _ in 0..n {
        let (mut socket, _) = listener.accept()?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        // Small events must not wait for Nagle's algorithm.
        socket.set_nodelay(true)?;
        let request = Request::read(&mut socket).map_err(io::Error::from)?;
        if request.path() != "/feed" {
            return Err(other(format!("unexpected request for {}", request.path())));
        }
        let conn = SseConnection::start_socket(socket)?;
        if baseline {
            direct.push(conn);
        } else {
            hub.subscribe(conn, Subscription::new())?;
        }
    }
    Ok(direct)
}

/// One client connection, read without blocking.
struct Conn {
    stream: TcpStream,
    /// Received bytes not yet parsed.
    pending: Vec<u8>,
    head_seen: bool,
    next_seq: u64,
}

fn client(options: &Options) -> io::Result<()> {
    let n = options.subscribers[0];
    let events = options.rate * options.seconds;
    raise_fd_limit(n as u64 + 256)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], options.port));
    let epoll = Epoll::new()?;
    let mut conns: Vec<Conn> = Vec::with_capacity(n);

    let mut latencies_us: Vec<u32> = Vec::with_capacity(n * events as usize);
    // The slowest delivery of the events of each second, to tell a steady
    // tail from a backlog that grows.
    let mut worst_per_second: Vec<u64> = Vec::new();
    let mut heads = 0;
    let mut out_of_order = 0u64;
    let mut received = 0u64;
    let expected = n as u64 * events;
    let mut ready_sent = false;
    let mut buf = vec![0u8; 64 * 1024];
    let mut ready_list = Vec::with_capacity(1024);
    let deadline = Instant::now() + Duration::from_secs(options.seconds + 90);
    while received < expected && Instant::now() < deadline {
        // Connect in batches, each once the last one has its response
        // heads: more connections than the listen backlog (128) at once
        // would have SYNs dropped and retried a second later.
        if conns.len() < n && heads == conns.len() {
            for i in conns.len()..n.min(conns.len() + 100) {
                let mut stream = TcpStream::connect(addr)?;
                stream.write_all(
                    b"GET /feed HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n",
                )?;
                stream.set_nonblocking(true)?;
                epoll.add(&stream, i as u64)?;
                conns.push(Conn {
                    stream,
                    pending: Vec::new(),
                    head_seen: false,
                    next_seq: 0,
                });
            }
        }
        epoll.wait(&mut ready_list, 1000)?;
        for &i in &ready_list {
            let conn = &mut conns[i as usize];
            loop {
                match conn.stream.read(&mut buf) {
                    Ok(0) => return Err(other("the server closed a stream")),
                    Ok(len) => {
                        let now = monotonic_ns();
                        conn.pending.extend_from_slice(&buf[..len]);
                        if !conn.head_seen {
                            let Some(end) = find(&conn.pending, b"\r\n\r\n") else {
                                continue;
                            };
                            conn.pending.drain(..end + 4);
                            conn.head_seen = true;
                            heads += 1;
                        }
                        for (seq, sent) in take_events(&mut conn.pending) {
                            let second = (seq / options.rate) as usize;
                            if worst_per_second.len() <= second {
                                worst_per_second.resize(second + 1, 0);
                            }
                            let latency = now.saturating_sub(sent) / 1000;
                            worst_per_second[second] = worst_per_second[second].max(latency);
                            if seq != conn.next_seq {
                                out_of_order += 1;
                            }
                            conn.next_seq = seq + 1;
                            received += 1;
                            latencies_us.push(((now.saturating_sub(sent)) / 1000) as u32);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if !ready_sent && heads == n {
            let mut stdout = io::stdout().lock();
            writeln!(stdout, "ready")?;
            stdout.flush()?;
            ready_sent = true;
        }
    }
    let client_cpu = cpu_time();
    let worst: Vec<String> = worst_per_second
        .iter()
        .map(|us| format!("{}", us / 1000))
        .collect();
    eprintln!(
        "N={n}: slowest delivery per second of events, ms: {}",
        worst.join(" ")
    );
    latencies_us.sort_unstable();
    let pct = |p: f64| {
        if latencies_us.is_empty() {
            return f64::NAN;
        }
        let at = ((latencies_us.len() as f64 * p).ceil() as usize).clamp(1, latencies_us.len());
        latencies_us[at - 1] as f64 / 1e3
    };
    println!(
        "result delivered={received} missing={} out_of_order={out_of_order} p50_ms={:.2} \
         p99_ms={:.2} max_ms={:.2} client_cpu_us_per_event={:.2}",
        expected - received,
        pct(0.50),
        pct(0.99),
        pct(1.0),
        client_cpu.as_secs_f64() * 1e6 / received.max(1) as f64,
    );
    Ok(())
}

/// Takes the complete `data: <seq> <publish time>` lines out of `pending`,
/// keeping an incomplete one for the next read. Everything else (chunk
/// sizes, `event:` and `id:` lines, heartbeats) is skipped.
fn take_events(pending: &mut Vec<u8>) -> Vec<(u64, u64)> {
    let mut found = Vec::new();
    let mut at = 0;
    let mut keep_from = pending.len().saturating_sub(5);
    while let Some(start) = find(&pending[at..], b"data: ").map(|p| at + p) {
        let Some(end) = find(&pending[start..], b"\n").map(|p| start + p) else {
            keep_from = start;
            break;
        };
        let line = std::str::from_utf8(&pending[start + 6..end]).unwrap_or("");
        let mut fields = line.split(' ');
        if let (Some(Ok(seq)), Some(Ok(sent))) =
            (fields.next().map(str::parse), fields.next().map(str::parse))
        {
            found.push((seq, sent));
        }
        at = end;
        keep_from = keep_from.max(end);
    }
    pending.drain(..keep_from.min(pending.len()));
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The minimal epoll wrapper the client needs.
struct Epoll(i32);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: plain system call; the descriptor is closed in Drop.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll(fd))
    }

    fn add(&self, stream: &TcpStream, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open, and `event` outlives the call.
        let rc =
            unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, stream.as_raw_fd(), &mut event) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, ready: &mut Vec<u64>, timeout_ms: i32) -> io::Result<()> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 1024];
        // SAFETY: `events` is valid for 1024 entries.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), 1024, timeout_ms) };
        ready.clear();
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(err)
            };
        }
        ready.extend(events[..n as usize].iter().map(|e| e.u64));
        Ok(())
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for both processes.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// User plus system CPU time of this process, all threads.
fn cpu_time() -> Duration {
    // SAFETY: `usage` is a valid out-pointer; zeroed is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Packets the kernel dropped because a CPU's backlog queue was full
/// (`/proc/net/softnet_stat`, second column, summed over CPUs). Loopback
/// traffic goes through that queue; a drop costs a TCP retransmission.
fn softnet_drops() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/softnet_stat") else {
        return 0;
    };
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|hex| u64::from_str_radix(hex, 16).ok())
        .sum()
}

/// VmRSS of this process, in KiB.
fn vm_rss_kib() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| other("no VmRSS in /proc/self/status"))
}

/// Raises the open-file limit to at least `wanted` (both limits, as root
/// may; otherwise as far as the hard limit allows).
fn raise_fd_limit(wanted: u64) -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur >= wanted {
        return Ok(());
    }
    let raised = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: limit.rlim_max.max(wanted),
    };
    // SAFETY: `raised` is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return Ok(());
    }
    let capped = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) };
    if limit.rlim_max < wanted {
        return Err(other(format!(
            "need {wanted} open files, the hard limit is {}",
            limit.rlim_max
        )));
    }
    Ok(())
}
