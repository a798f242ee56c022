//! `stockroom-loadgen`: an open-loop load generator for stockroom-service.
//!
//! Requests are scheduled at a fixed arrival rate and each latency is
//! measured from its *scheduled* send time, so a stalled server cannot hide
//! its latency by slowing the generator down (coordinated omission).
//! Each request also records when it was actually written, so the summary
//! splits a latency into the wait on the generator's side (`send_lateness`:
//! the async timer's tick, up to 1 ms; its connection busy with earlier
//! requests; or the generator starved of CPU) and the server's answer time
//! (`*_from_send`).
//! Latencies go into HDR histograms (microseconds, 3 significant digits).
//! Progress goes to stderr once a second; the summary to stdout (`--json`
//! for a machine-readable one). Every run is bounded: by its request count
//! and by `--duration` (the scheduler stops at whichever comes first, and
//! in-flight requests get 10 s more), and it only connects to the loopback
//! address it is given.
//!
//! Scenarios (`--scenario`):
//!
//! - `flash`: one SKU with 10,000 units, unique-key orders of 1 unit,
//!   synchronous (`?wait=true`); checks 0 oversold and that the units held
//!   equal the orders the generator saw held (its tally against the
//!   service's `/audit`).
//! - `retry`: every order sent 4 times at once with one key; checks each
//!   key got one order id, and the tallies agree (0 duplicates).
//! - `sustained`: orders (async, 202), then commits, cancels and stock
//!   reads of earlier orders, at `--rate` for `--duration`; checks no
//!   errors but refusals.
//! - `overload`: orders at `--rate` (set it to 2x the measured capacity);
//!   reports shed (429) and accepted latencies apart.
//!
//! The HTTP client is a minimal HTTP/1.1 keep-alive client on tokio (one
//! request at a time per connection, `content-length` bodies), to keep the
//! generator's own CPU low on a machine whose 2 cores it shares with the
//! server.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The most connections a run opens.
const CONNECTIONS_MAX: usize = 1_000;
/// The most requests a run sends.
const REQUESTS_MAX: u64 = 5_000_000;
/// The longest a run's schedule lasts.
const DURATION_MAX: Duration = Duration::from_secs(600);
/// Extra time for requests in flight when the schedule ends.
const GRACE: Duration = Duration::from_secs(10);
/// The largest response the client reads.
const RESPONSE_MAX: usize = 1 << 20;
/// The flash sale's stock.
const FLASH_UNITS: u64 = 10_000;
/// How often the server's RSS is sampled during a run.
const RSS_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// The most RSS samples a run keeps (`DURATION_MAX` / the interval).
const RSS_SAMPLES_MAX: usize = 120;

#[derive(Clone, Debug)]
struct Args {
    target: SocketAddr,
    scenario: String,
    requests: u64,
    rate: u64,
    connections: usize,
    duration: Duration,
    json: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: stockroom-loadgen --scenario flash|retry|sustained|overload [--target 127.0.0.1:8080]\n\
         \x20      [--requests N] [--rate PER_SECOND] [--connections N] [--duration SECONDS] [--json]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        target: "127.0.0.1:8080".parse().unwrap(),
        scenario: String::new(),
        requests: 20_000,
        rate: 10_000,
        connections: 64,
        duration: Duration::from_secs(60),
        json: false,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        let mut value = || iter.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--target" => args.target = value().parse().unwrap_or_else(|_| usage()),
            "--scenario" => args.scenario = value(),
            "--requests" => args.requests = value().parse().unwrap_or_else(|_| usage()),
            "--rate" => args.rate = value().parse().unwrap_or_else(|_| usage()),
            "--connections" => args.connections = value().parse().unwrap_or_else(|_| usage()),
            "--duration" => args.duration = Duration::from_secs(value().parse().unwrap_or_else(|_| usage())),
            "--json" => args.json = true,
            _ => usage(),
        }
    }
    if !args.target.ip().is_loopback() {
        eprintln!("refusing {}: the generator only targets loopback addresses", args.target);
        std::process::exit(2);
    }
    if !["flash", "retry", "sustained", "overload"].contains(&args.scenario.as_str()) {
        usage();
    }
    args.requests = args.requests.clamp(1, REQUESTS_MAX);
    args.connections = args.connections.clamp(1, CONNECTIONS_MAX);
    args.duration = args.duration.min(DURATION_MAX);
    args.rate = args.rate.max(1);
    args
}

/// One keep-alive connection.
struct Connection {
    reader: BufReader<TcpStream>,
    target: SocketAddr,
}

/// A response: status, `location`, body.
struct Reply {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

impl Connection {
    async fn open(target: SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(target).await?;
        stream.set_nodelay(true)?;
        Ok(Connection { reader: BufReader::new(stream), target })
    }

    async fn request(&mut self, method: &str, path: &str, key: Option<&str>, body: &str) -> std::io::Result<Reply> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.target);
        if let Some(key) = key {
            head.push_str("idempotency-key: ");
            head.push_str(key);
            head.push_str("\r\n");
        }
        head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len()));
        head.push_str(body);
        self.reader.get_mut().write_all(head.as_bytes()).await?;
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let status =
            line.split(' ').nth(1).and_then(|code| code.parse().ok()).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad status line {line:?}"))
            })?;
        let mut length = 0;
        let mut location = None;
        // Bounded: a response head has a few headers; 64 at most.
        for _ in 0..64 {
            line.clear();
            self.reader.read_line(&mut line).await?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                if name == "content-length" {
                    length = value.trim().parse().unwrap_or(0);
                } else if name == "location" {
                    location = Some(value.trim().to_owned());
                }
            }
        }
        if length > RESPONSE_MAX {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "response too large"));
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await?;
        Ok(Reply { status, location, body })
    }
}

/// One scheduled request.
#[derive(Clone, Debug)]
enum Job {
    /// An order with this key; `sync` waits for the decision.
    Order {
        key: String,
        quantity: u64,
        sku: u64,
        sync: bool,
    },
    Commit,
    Cancel,
    Read {
        sku: u64,
    },
}

/// What the run saw.
struct Tally {
    statuses: HashMap<u16, u64>,
    errors: u64,
    backlog_dropped: u64,
    held_units: u64,
    held_orders: u64,
    /// Order id per key (the retry storm's duplicate check).
    ids_by_key: HashMap<String, Vec<u64>>,
    /// Orders answered 202 (ids), for commits and cancels.
    placed: Vec<u64>,
    accepted: Histogram<u64>,
    shed: Histogram<u64>,
    all: Histogram<u64>,
    /// From the written request to its answer.
    accepted_from_send: Histogram<u64>,
    shed_from_send: Histogram<u64>,
    /// From the scheduled send time to the request written.
    send_lateness: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

#[derive(Serialize)]
struct Latency {
    count: u64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn latency(histogram: &Histogram<u64>) -> Latency {
    let ms = |micros: u64| micros as f64 / 1_000.0;
    Latency {
        count: histogram.len(),
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p95_ms: ms(histogram.value_at_quantile(0.95)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        max_ms: ms(histogram.max()),
    }
}

#[derive(Serialize)]
struct Summary {
    scenario: String,
    requests_scheduled: u64,
    rate_per_second: u64,
    connections: usize,
    elapsed_seconds: f64,
    achieved_per_second: f64,
    statuses: HashMap<u16, u64>,
    errors: u64,
    backlog_dropped: u64,
    latency_all: Latency,
    latency_accepted: Latency,
    latency_shed: Latency,
    latency_accepted_from_send: Latency,
    latency_shed_from_send: Latency,
    send_lateness: Latency,
    held_orders: u64,
    held_units: u64,
    checks: Vec<(String, bool)>,
    server_rss_kib: Vec<u64>,
    passed: bool,
}

fn rss_of_server(target: SocketAddr) -> Option<u64> {
    // The server's RSS, if it runs on this machine and `ss`/`/proc` tell.
    let output = std::process::Command::new("ss").args(["-ltnp"]).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let port = format!(":{}", target.port());
    let line = text.lines().find(|line| line.contains(&port))?;
    let pid: u32 = line.split("pid=").nth(1)?.split(',').next()?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|line| line.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

async fn setup(target: SocketAddr, scenario: &str) -> std::io::Result<u64> {
    let mut connection = Connection::open(target).await?;
    // A fresh SKU per run, so runs against one service do not mix.
    let sku = 1_000_000
        + (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 1_000_000) as u64;
    let reply = connection.request("POST", "/skus", None, &format!("{{\"sku\":{sku},\"policy\":\"fifo\"}}")).await?;
    if reply.status != 201 {
        return Err(std::io::Error::other(format!("defining SKU {sku}: {}", reply.status)));
    }
    let units = if scenario == "flash" { FLASH_UNITS } else { 1 << 39 };
    let reply = connection
        .request("POST", &format!("/skus/{sku}/lots"), None, &format!("{{\"lot\":1,\"quantity\":{units}}}"))
        .await?;
    if reply.status != 201 {
        return Err(std::io::Error::other(format!("receiving into SKU {sku}: {}", reply.status)));
    }
    Ok(sku)
}

fn id_of(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body).ok()?.get("id")?.as_u64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = parse_args();
    let sku = match setup(args.target, &args.scenario).await {
        Ok(sku) => sku,
        Err(error) => {
            eprintln!("setup failed against {}: {error} (is the service running?)", args.target);
            std::process::exit(1);
        }
    };
    let tally = Arc::new(Mutex::new(Tally {
        statuses: HashMap::new(),
        errors: 0,
        backlog_dropped: 0,
        held_units: 0,
        held_orders: 0,
        ids_by_key: HashMap::new(),
        placed: Vec::new(),
        accepted: histogram(),
        shed: histogram(),
        all: histogram(),
        accepted_from_send: histogram(),
        shed_from_send: histogram(),
        send_lateness: histogram(),
    }));
    let placed_ids = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let in_flight = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        // Connected before the schedule starts, one at a time: a storm of
        // connects is not part of any scenario (a connection that fails
        // here is retried at its first request, and counted if it fails).
        let opened = Connection::open(args.target).await.ok();
        let (sender, mut receiver) = mpsc::channel::<(Instant, Job)>(64);
        senders.push(sender);
        let (tally, placed_ids, done, in_flight) =
            (Arc::clone(&tally), Arc::clone(&placed_ids), Arc::clone(&done), Arc::clone(&in_flight));
        let target = args.target;
        workers.push(tokio::spawn(async move {
            let mut connection = opened;
            // Bounded by the channel: ends when the scheduler drops it.
            loop {
                let Some((scheduled, job)) = receiver.recv().await else { break };
                if connection.is_none() {
                    connection = Connection::open(target).await.ok();
                }
                let sent = Instant::now();
                let result = match (&mut connection, &job) {
                    (None, _) => Err(std::io::Error::other("cannot connect")),
                    (Some(c), Job::Order { key, quantity, sku, sync }) => {
                        let path = if *sync { "/orders?wait=true" } else { "/orders" };
                        c.request(
                            "POST",
                            path,
                            Some(key),
                            &format!("{{\"lines\":[{{\"sku\":{sku},\"quantity\":{quantity}}}]}}"),
                        )
                        .await
                    }
                    (Some(c), Job::Commit | Job::Cancel) => {
                        let id = placed_ids.lock().unwrap().pop();
                        match id {
                            Some(id) => {
                                let verb = if matches!(job, Job::Commit) { "commit" } else { "cancel" };
                                c.request("POST", &format!("/orders/{id}/{verb}"), None, "").await
                            }
                            None => c.request("GET", "/health", None, "").await,
                        }
                    }
                    (Some(c), Job::Read { sku }) => c.request("GET", &format!("/inventory/{sku}"), None, "").await,
                };
                let micros = scheduled.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                let micros_from_send = sent.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                let micros_late = sent.saturating_duration_since(scheduled).as_micros().clamp(1, 60_000_000) as u64;
                let mut tally = tally.lock().unwrap();
                match result {
                    Err(_) => {
                        tally.errors += 1;
                        connection = None;
                    }
                    Ok(reply) => {
                        *tally.statuses.entry(reply.status).or_insert(0) += 1;
                        let _ = tally.all.record(micros);
                        let _ = tally.send_lateness.record(micros_late);
                        if reply.status == 429 {
                            let _ = tally.shed.record(micros);
                            let _ = tally.shed_from_send.record(micros_from_send);
                        } else {
                            let _ = tally.accepted.record(micros);
                            let _ = tally.accepted_from_send.record(micros_from_send);
                        }
                        if let Job::Order { key, quantity, .. } = &job {
                            let id = id_of(&reply.body)
                                .or_else(|| reply.location.as_deref().and_then(|l| l.rsplit('/').next()?.parse().ok()));
                            if reply.status == 201 {
                                tally.held_orders += 1;
                                tally.held_units += quantity;
                            }
                            if let (Some(id), 201 | 202) = (id, reply.status) {
                                tally.ids_by_key.entry(key.clone()).or_default().push(id);
                                if reply.status == 202 {
                                    placed_ids.lock().unwrap().push(id);
                                    tally.placed.push(id);
                                }
                            }
                        }
                    }
                }
                drop(tally);
                done.fetch_add(1, Ordering::Relaxed);
                in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        }));
    }
    // Progress on stderr.
    let progress = {
        let (done, in_flight) = (Arc::clone(&done), Arc::clone(&in_flight));
        let scenario = args.scenario.clone();
        tokio::spawn(async move {
            let mut last = 0;
            // Bounded by the run: aborted when it ends.
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = done.load(Ordering::Relaxed);
                eprintln!("[{scenario}] {now} done, {}/s, {} in flight", now - last, in_flight.load(Ordering::Relaxed));
                last = now;
            }
        })
    };
    let mut rss = Vec::new();
    rss.extend(rss_of_server(args.target));
    // The server's RSS every few seconds, off the schedule's task (`ss` is
    // a process: it runs on the blocking pool).
    let rss_samples = Arc::new(Mutex::new(Vec::new()));
    let rss_probe = {
        let (target, samples) = (args.target, Arc::clone(&rss_samples));
        tokio::spawn(async move {
            // Bounded by the run (aborted when the schedule ends) and by RSS_SAMPLES_MAX.
            for _ in 0..RSS_SAMPLES_MAX {
                tokio::time::sleep(RSS_PROBE_INTERVAL).await;
                if let Ok(Some(kib)) = tokio::task::spawn_blocking(move || rss_of_server(target)).await {
                    samples.lock().unwrap().push(kib);
                }
            }
        })
    };
    let started = Instant::now();
    let (scheduled_count, dropped) = schedule(&args, sku, started, senders, &in_flight).await;
    rss_probe.abort();
    rss.extend(rss_samples.lock().unwrap().iter().copied());
    let grace = tokio::time::sleep(GRACE);
    tokio::pin!(grace);
    for worker in workers {
        tokio::select! {
            _ = worker => {}
            _ = &mut grace => break,
        }
    }
    let elapsed = started.elapsed();
    progress.abort();
    rss.extend(rss_of_server(args.target));
    tokio::time::sleep(Duration::from_millis(300)).await;
    rss.extend(rss_of_server(args.target));

    // The service's side, for the checks.
    let audit = match Connection::open(args.target).await {
        Ok(mut c) => c
            .request("GET", "/audit", None, "")
            .await
            .ok()
            .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok()),
        Err(_) => None,
    };
    let mut tally = tally.lock().unwrap();
    tally.backlog_dropped = dropped;
    let mut checks = Vec::new();
    let sku_state = audit.as_ref().map(|a| a["skus"][sku.to_string()].clone()).unwrap_or_default();
    let held = sku_state["held"].as_u64().unwrap_or(u64::MAX);
    let committed = sku_state["committed"].as_u64().unwrap_or(u64::MAX);
    let received = sku_state["received"].as_u64().unwrap_or(0);
    checks.push(("ledger audit clean".to_owned(), audit.as_ref().is_some_and(|a| a["clean"] == true)));
    checks.push(("0 oversold: held + committed <= received".to_owned(), held.saturating_add(committed) <= received));
    let duplicate_keys = tally.ids_by_key.values().filter(|ids| ids.iter().any(|id| *id != ids[0])).count();
    checks.push((format!("0 duplicate orders ({duplicate_keys} keys with two ids)"), duplicate_keys == 0));
    checks.push(("no transport errors".to_owned(), tally.errors == 0));
    match args.scenario.as_str() {
        "flash" => {
            checks.push((
                format!("held units {held} = the generator's tally {}", tally.held_units),
                held == tally.held_units,
            ));
            let sold_out = tally.statuses.get(&409).copied().unwrap_or(0);
            let shed = tally.statuses.get(&429).copied().unwrap_or(0);
            checks.push((
                format!(
                    "every attempt answered held, sold out or shed ({} + {sold_out} + {shed} of {scheduled_count})",
                    tally.held_orders
                ),
                tally.held_orders + sold_out + shed + dropped == scheduled_count,
            ));
        }
        "retry" => {
            let keys = tally.ids_by_key.len() as u64;
            checks.push((format!("units held {held} <= distinct keys accepted {keys}"), held <= keys));
        }
        _ => {
            let server_errors: u64 = tally.statuses.iter().filter(|(s, _)| **s >= 500).map(|(_, n)| n).sum();
            checks.push((format!("no 5xx ({server_errors})"), server_errors == 0));
        }
    }
    let summary = Summary {
        scenario: args.scenario.clone(),
        requests_scheduled: scheduled_count,
        rate_per_second: args.rate,
        connections: args.connections,
        elapsed_seconds: elapsed.as_secs_f64(),
        achieved_per_second: tally.all.len() as f64 / elapsed.as_secs_f64(),
        statuses: tally.statuses.clone(),
        errors: tally.errors,
        backlog_dropped: dropped,
        latency_all: latency(&tally.all),
        latency_accepted: latency(&tally.accepted),
        latency_shed: latency(&tally.shed),
        latency_accepted_from_send: latency(&tally.accepted_from_send),
        latency_shed_from_send: latency(&tally.shed_from_send),
        send_lateness: latency(&tally.send_lateness),
        held_orders: tally.held_orders,
        held_units: tally.held_units,
        passed: checks.iter().all(|(_, ok)| *ok),
        checks,
        server_rss_kib: rss,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    } else {
        println!(
            "{}: {} requests in {:.1}s ({:.0}/s), statuses {:?}, errors {}, backlog-dropped {}",
            summary.scenario,
            summary.requests_scheduled,
            summary.elapsed_seconds,
            summary.achieved_per_second,
            summary.statuses,
            summary.errors,
            summary.backlog_dropped
        );
        for (name, l) in [
            ("all", &summary.latency_all),
            ("accepted", &summary.latency_accepted),
            ("shed", &summary.latency_shed),
            ("accepted, from send", &summary.latency_accepted_from_send),
            ("shed, from send", &summary.latency_shed_from_send),
            ("send lateness (scheduled to written)", &summary.send_lateness),
        ] {
            println!(
                "  latency {name}: n={} p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
            );
        }
        println!("  server RSS (KiB) over the run: {:?}", summary.server_rss_kib);
        for (check, ok) in &summary.checks {
            println!("  [{}] {check}", if *ok { "ok" } else { "FAILED" });
        }
    }
    if !summary.passed {
        std::process::exit(1);
    }
}

/// Hands request i to a connection at `started + i / rate` (the async
/// timer's resolution: 1 ms); stops at `--requests` or `--duration`.
/// Returns (scheduled, dropped because every connection was behind).
async fn schedule(
    args: &Args,
    sku: u64,
    started: Instant,
    senders: Vec<mpsc::Sender<(Instant, Job)>>,
    in_flight: &AtomicU64,
) -> (u64, u64) {
    let copies = if args.scenario == "retry" { 4 } else { 1 };
    let mut scheduled_count = 0;
    let mut dropped = 0;
    for i in 0..args.requests {
        let at = started + Duration::from_secs_f64(i as f64 / args.rate as f64);
        if at.duration_since(started) > args.duration {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let job = match args.scenario.as_str() {
            "flash" => Job::Order { key: format!("f{sku}-{i}"), quantity: 1, sku, sync: true },
            "retry" => Job::Order { key: format!("r{sku}-{}", i / copies), quantity: 1, sku, sync: i % 4 == 0 },
            "sustained" => match i % 10 {
                0..=6 => Job::Order { key: format!("s{sku}-{i}"), quantity: 1, sku, sync: false },
                7 => Job::Commit,
                8 => Job::Cancel,
                _ => Job::Read { sku },
            },
            _ => Job::Order { key: format!("o{sku}-{i}"), quantity: 1, sku, sync: false },
        };
        in_flight.fetch_add(1, Ordering::Relaxed);
        // Round robin; the retry storm's 4 copies land on 4 connections.
        if senders[i as usize % senders.len()].try_send((at, job)).is_err() {
            // Every connection is behind by a full backlog: counted, never waited for.
            in_flight.fetch_sub(1, Ordering::Relaxed);
            dropped += 1;
        }
        scheduled_count += 1;
    }
    (scheduled_count, dropped)
}
