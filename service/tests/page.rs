//! The live page in headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven over WebDriver: the page is loaded once, and
//! the numbers a person watches must move with the orders sent, through
//! the page's own `/events` subscription and fetches — no reload. If
//! Chromium is missing, `tests/install-chromium.sh` installs it (apt); the
//! test is skipped, saying why, only when that fails and
//! `STOCKROOM_REQUIRE_CHROMIUM` is unset (CI sets it).

mod common;

use common::send;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use stockroom_service::{Config, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Polls of the page's numbers, 100 ms apart, before the test gives up.
const POLLS_MAX: u32 = 150;

fn chromium_available() -> Result<(), String> {
    let present = |program: &str| Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    if present("chromium") && present("chromedriver") {
        return Ok(());
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/install-chromium.sh");
    let installed = Command::new("bash").arg(script).status().map_err(|error| error.to_string())?;
    if installed.success() { Ok(()) } else { Err(format!("{script} failed ({installed})")) }
}

/// A chromedriver process, killed on drop.
struct Driver {
    child: Child,
    address: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver { child, address: SocketAddr::from(([127, 0, 0, 1], port)) };
        for _ in 0..POLLS_MAX {
            if tokio::net::TcpStream::connect(driver.address).await.is_ok() {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not listen on {}", driver.address);
    }

    /// One WebDriver command. chromedriver keeps connections open
    /// whatever the request says, so the reply is read by its
    /// `Content-Length`, not to the end of the stream.
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = body.to_string();
        let mut stream = tokio::net::TcpStream::connect(self.address).await.expect("connect to chromedriver");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let mut buffer = [0u8; 4096];
        let reply = tokio::time::timeout(Duration::from_secs(30), async {
            // Bounded: each round reads at least one byte or ends.
            loop {
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|n| n.trim().parse().ok())
                        .expect("chromedriver sends a content-length");
                    if raw.len() >= end + 4 + length {
                        let status = head.split(' ').nth(1).unwrap_or_default().to_owned();
                        return (status, String::from_utf8_lossy(&raw[end + 4..end + 4 + length]).into_owned());
                    }
                }
                let read = stream.read(&mut buffer).await.expect("read");
                assert!(read > 0, "chromedriver closed the connection mid-reply");
                raw.extend_from_slice(&buffer[..read]);
            }
        })
        .await
        .expect("chromedriver answers in time");
        assert_eq!(reply.0, "200", "{method} {path}: {}", reply.1);
        serde_json::from_str::<Value>(&reply.1).expect("JSON")["value"].clone()
    }
}

/// The numbers the page shows under `ids` (`None`: not there, or not a
/// number yet).
async fn shown(driver: &Driver, session: &str, ids: &[&str]) -> Vec<Option<u64>> {
    let script =
        "return arguments[0].map(id => { const e = document.getElementById(id); return e ? e.textContent : null; });";
    let value = driver
        .call("POST", &format!("/session/{session}/execute/sync"), json!({"script": script, "args": [ids]}))
        .await;
    let texts = value.as_array().cloned().unwrap_or_default();
    texts.iter().map(|text| text.as_str().and_then(|t| t.trim().parse().ok())).collect()
}

/// Polls until the page shows `expected` under `ids`, at most
/// [`POLLS_MAX`] times; returns what it showed last.
async fn until_shown(driver: &Driver, session: &str, ids: &[&str], expected: &[Option<u64>]) -> Vec<Option<u64>> {
    let mut last = Vec::new();
    for _ in 0..POLLS_MAX {
        last = shown(driver, session, ids).await;
        if last == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_moves_with_the_orders() {
    if let Err(reason) = chromium_available() {
        assert!(std::env::var_os("STOCKROOM_REQUIRE_CHROMIUM").is_none(), "headless Chromium is required: {reason}");
        println!("SKIPPED: headless Chromium cannot be installed here: {reason}");
        return;
    }
    let config = Config { listen: "127.0.0.1:0".parse().unwrap(), demo: true, workers: 1, ..Config::default() };
    let handle = start(config).await.unwrap();
    let driver = Driver::start().await;
    let capabilities = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    }}}});
    let session =
        driver.call("POST", "/session", capabilities).await["sessionId"].as_str().expect("a session").to_owned();
    driver
        .call("POST", &format!("/session/{session}/url"), json!({"url": format!("http://{}/", handle.address())}))
        .await;

    let ids = ["stock-3", "held-3", "orders-held"];
    let before = until_shown(&driver, &session, &ids, &[Some(1_000), Some(0), Some(0)]).await;
    assert_eq!(before, [Some(1_000), Some(0), Some(0)], "the demo stock of SKU 3 is shown, nothing held");
    for n in 0..7 {
        let key = format!("page-{n}");
        let body = r#"{"lines":[{"sku":3,"quantity":5}]}"#;
        let reply = send(handle.address(), "POST", "/orders?wait=true", &[("idempotency-key", &key)], body).await;
        assert_eq!(reply.status, 201);
    }
    // The same page, not reloaded: its event stream and fetches move the
    // numbers — stock down by the units held, the held-orders card at 7.
    let after = until_shown(&driver, &session, &ids, &[Some(1_000 - 35), Some(35), Some(7)]).await;
    assert_eq!(after, [Some(1_000 - 35), Some(35), Some(7)]);
    driver.call("DELETE", &format!("/session/{session}"), json!({})).await;
    handle.shutdown().await;
}
