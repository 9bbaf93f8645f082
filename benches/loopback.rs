//! A stream of ~200-byte events over loopback to a reading client: dstar's
//! per-event and burst modes beside raw std servers that write pre-framed
//! bytes, one event per `write` and sixteen per `write`, in the same run.
//!
//! `cargo bench --bench loopback` (add `-- --events N --burst B`).
//! Only the ratios mean anything: this machine is noisy.

use dstar::SseResponse;
use dstar::datastar::PatchElements;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a loopback connection, runs `serve` on the server side while the
/// client reads everything until the server closes; returns the elapsed
/// time from the first byte written to the last byte read, and the count.
fn run(serve: impl FnOnce(TcpStream) + Send + 'static) -> (Duration, usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    for s in [&client, &server] {
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_write_timeout(Some(TIMEOUT)).unwrap();
    }
    let reader = thread::spawn(move || {
        let mut client = client;
        // Reads of up to 256 KiB, as the shared peers' load client makes them.
        let mut buf = vec![0u8; 1 << 18];
        let mut total = 0;
        loop {
            match client.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) => panic!("client read: {e}"),
            }
        }
    });
    let start = Instant::now();
    serve(server);
    let bytes = reader.join().unwrap();
    (start.elapsed(), bytes)
}

const RUNS: usize = 5;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let mut events: usize = 200_000;
    let mut burst: usize = 16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => events = args.next().and_then(|n| n.parse().ok()).unwrap_or(events),
            "--burst" => burst = args.next().and_then(|n| n.parse().ok()).unwrap_or(burst),
            _ => {}
        }
    }
    let html: &'static str = Box::leak(
        format!(
            "<div id=\"feed-item-42\" class=\"item unread\">{}</div>",
            "Hello from a blocking Rust server! ".repeat(4)
        )
        .into_boxed_str(),
    );
    let event = PatchElements::new(html);
    // The raw servers write these exact bytes, framed in advance.
    let mut framed = SseResponse::new().start(Vec::new()).unwrap();
    let head_len = framed.get_ref().len();
    framed.send_event(event).unwrap();
    let one: Vec<u8> = framed.get_ref()[head_len..].to_vec();
    let head: Vec<u8> = framed.get_ref()[..head_len].to_vec();
    let many: Vec<u8> = one.repeat(burst);

    type Server = Box<dyn Fn(usize, usize) -> Box<dyn FnOnce(TcpStream) + Send> + Sync>;
    let contenders: Vec<(&str, Server)> = vec![
        ("raw, 1 event per write", {
            let (head, one) = (head.clone(), one.clone());
            Box::new(move |events, _| {
                let (head, one) = (head.clone(), one.clone());
                Box::new(move |mut s: TcpStream| {
                    s.write_all(&head).unwrap();
                    for _ in 0..events {
                        s.write_all(&one).unwrap();
                    }
                    s.write_all(b"0\r\n\r\n").unwrap();
                })
            })
        }),
        ("dstar send_event", {
            Box::new(move |events, _| {
                Box::new(move |s: TcpStream| {
                    let mut sse = SseResponse::new().start(s).unwrap();
                    for _ in 0..events {
                        sse.send_event(event).unwrap();
                    }
                    sse.finish().unwrap();
                })
            })
        }),
        ("raw, 16 events per write", {
            let (head, many) = (head.clone(), many.clone());
            Box::new(move |events, burst| {
                let (head, many) = (head.clone(), many.clone());
                Box::new(move |mut s: TcpStream| {
                    s.write_all(&head).unwrap();
                    for _ in 0..events / burst {
                        s.write_all(&many).unwrap();
                    }
                    s.write_all(b"0\r\n\r\n").unwrap();
                })
            })
        }),
        ("dstar queue_event + flush", {
            Box::new(move |events, burst| {
                Box::new(move |s: TcpStream| {
                    let mut sse = SseResponse::new().start(s).unwrap();
                    for _ in 0..events / burst {
                        for _ in 0..burst {
                            sse.queue_event(event).unwrap();
                        }
                        sse.flush().unwrap();
                    }
                    sse.finish().unwrap();
                })
            })
        }),
    ];

    let events = events / burst * burst;
    println!(
        "{events} events of {} bytes (framed) per run, burst {burst}; each baseline runs right \
         before its contender, {RUNS} times; medians\n",
        one.len()
    );
    // Interleaving keeps a burst of noise from landing on one side only.
    let mut rates = vec![Vec::new(); contenders.len()];
    let mut ratios = vec![Vec::new(); 2];
    for _ in 0..RUNS {
        for (pair, pair_ratios) in ratios.iter_mut().enumerate() {
            let mut pair_rates = [0.0; 2];
            for (side, rate) in pair_rates.iter_mut().enumerate() {
                let index = pair * 2 + side;
                let (name, server) = &contenders[index];
                let (elapsed, bytes) = run(server(events, burst));
                assert!(
                    bytes >= events * one.len(),
                    "{name}: the client got {bytes} bytes"
                );
                *rate = events as f64 / elapsed.as_secs_f64();
                rates[index].push(*rate);
            }
            pair_ratios.push(pair_rates[1] / pair_rates[0]);
        }
    }
    for ((name, _), rates) in contenders.iter().zip(&rates) {
        let rate = median(rates.clone());
        println!(
            "{name:<28} {:>9.0} events/s {:>8.1} MB/s",
            rate,
            rate * one.len() as f64 / 1e6
        );
    }
    println!(
        "\nper-event mode: {:.2}x the raw one-write-per-event server",
        median(ratios[0].clone())
    );
    println!(
        "burst mode:     {:.2}x the raw {burst}-events-per-write server",
        median(ratios[1].clone())
    );
}
