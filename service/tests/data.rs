//! `--data DIR`: the service's binary, killed with SIGKILL and restarted
//! on the same journal directory, keeps every answered order exactly once.
//!
//! Before the kill, orders are placed and answered synchronously (held,
//! committed, cancelled): an answer is given only once the order is on
//! disk. After the restart, the stock is what those answers said (the demo
//! catalog is not loaded a second time), a retry of each key gets its
//! order back in the state it reached (never a second order), a key
//! reused with another body is refused, and the replayed order can still
//! be committed. Every wait is bounded.

mod common;

use common::{Reply, send};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The deadlock guard for the service's start.
const GUARD: Duration = Duration::from_secs(30);

/// The service's binary on an ephemeral port over `dir`, and its address
/// (read from its "listening on" line).
fn start(dir: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stockroom-service"))
        .args(["--listen", "127.0.0.1:0", "--demo", "--shed-lag-target-us", "0", "--workers", "4", "--data"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the service's binary starts");
    let stderr = child.stderr.take().expect("piped");
    let (found_tx, found_rx) = std::sync::mpsc::channel();
    // Reads stderr to its end (so the child never blocks on a full pipe).
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(address) = line.strip_prefix("listening on http://") {
                let _ = found_tx.send(address.parse::<SocketAddr>().expect("an address"));
            }
        }
    });
    let address = found_rx.recv_timeout(GUARD).expect("the service listens within the guard");
    (child, address)
}

fn key(name: &str) -> [(&'static str, &str); 1] {
    [("idempotency-key", name)]
}

async fn place(at: SocketAddr, name: &str, body: &str) -> Reply {
    send(at, "POST", "/orders?wait=true", &key(name), body).await
}

async fn sku_1(at: SocketAddr) -> (u64, u64, u64) {
    let stock = send(at, "GET", "/inventory/1", &[], "").await.json();
    let units = |field: &str| stock[field].as_u64().expect("a count");
    (units("available"), units("held"), units("committed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_a_sigkill_exactly_once() {
    let dir = std::env::temp_dir().join(format!("stockroom-service-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let two = r#"{"lines":[{"sku":1,"quantity":2}],"hold_seconds":600}"#;
    let three = r#"{"lines":[{"sku":1,"quantity":3}],"hold_seconds":600}"#;

    let (mut first, at) = start(&dir);
    let held = place(at, "held", two).await;
    assert_eq!((held.status, held.json()["status"].as_str()), (201, Some("held")), "{}", held.body);
    let sold = place(at, "sold", three).await;
    assert_eq!(sold.status, 201, "{}", sold.body);
    let sold_at = sold.header("location").expect("a Location").to_owned();
    assert_eq!(send(at, "POST", &format!("{sold_at}/commit"), &[], "").await.status, 200);
    let cancelled = place(at, "cancelled", two).await;
    let cancelled_at = cancelled.header("location").expect("a Location").to_owned();
    assert_eq!(send(at, "POST", &format!("{cancelled_at}/cancel"), &[], "").await.status, 200);
    let unretried = place(at, "unretried", r#"{"lines":[{"sku":2,"quantity":1}]}"#).await;
    assert_eq!(unretried.json()["status"], "held", "{}", unretried.body);
    assert_eq!(sku_1(at).await, (10_000 - 5, 2, 3));
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");

    let started = Instant::now();
    let (mut second, at) = start(&dir);
    assert!(started.elapsed() < GUARD);
    // The answered changes survived; the demo stock was not added again.
    assert_eq!(sku_1(at).await, (10_000 - 5, 2, 3));
    // Each key's retry gets its order as it stood, never a second order.
    let again = place(at, "held", two).await;
    assert_eq!((again.status, again.json()["status"].as_str()), (201, Some("held")), "{}", again.body);
    let again_sold = place(at, "sold", three).await;
    assert_eq!(again_sold.json()["status"], "committed", "{}", again_sold.body);
    let again_cancelled = place(at, "cancelled", two).await;
    assert_eq!(again_cancelled.json()["status"], "released", "{}", again_cancelled.body);
    assert_eq!(sku_1(at).await, (10_000 - 5, 2, 3));
    // A key reused with another body is refused, and changes nothing:
    // by the service's book once the key was seen since the restart, by
    // the ledger's journaled key when it was not.
    let reused = place(at, "held", three).await;
    assert_eq!(
        (reused.status, reused.json()["type"].as_str()),
        (409, Some("https://stockroom.invalid/problems/key-reused"))
    );
    let reused = place(at, "unretried", three).await;
    assert_eq!((reused.status, reused.json()["status"].as_str()), (409, Some("refused")), "{}", reused.body);
    assert!(reused.json()["reason"].as_str().is_some_and(|reason| reason.contains("differs")), "{}", reused.body);
    assert_eq!(sku_1(at).await, (10_000 - 5, 2, 3));
    // The replayed order is the ledger's order: it commits.
    let again_at = again.header("location").expect("a Location").to_owned();
    let committed = send(at, "POST", &format!("{again_at}/commit"), &[], "").await;
    assert_eq!((committed.status, committed.json()["status"].as_str()), (200, Some("committed")));
    assert_eq!(sku_1(at).await, (10_000 - 5, 0, 5));
    // A new key after the restart is a new order.
    assert_eq!(place(at, "new", two).await.json()["status"], "held");
    assert_eq!(sku_1(at).await, (10_000 - 7, 2, 5));
    assert_eq!(send(at, "GET", "/audit", &[], "").await.json()["clean"], true);
    second.kill().expect("SIGKILL");
    second.wait().expect("reaped");
    let _ = std::fs::remove_dir_all(&dir);
}
