//! The service on an ephemeral loopback port, driven through every
//! endpoint and every error status: 400, 404, 409, 422, 429 (with
//! `Retry-After`), 503 while draining. Each assertion checks an answer the
//! service computes; none can pass with the endpoint missing.

mod common;

use common::{send, stream_prefix};
use std::time::Duration;
use stockroom_service::{Config, Handle, start};

async fn service(queue: usize) -> Handle {
    // Admission by scheduling lag off: these tests check answers, and a
    // debug build on a busy machine may lag (its rule is unit-tested in
    // `admission.rs`; its effect is measured by `scripts/load.sh`).
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        demo: true,
        queue,
        workers: 1,
        shed_lag_target: Duration::ZERO,
        ..Config::default()
    };
    start(config).await.expect("the service starts")
}

fn key(name: &str) -> [(&'static str, &str); 1] {
    [("idempotency-key", name)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_lifecycle_and_errors() {
    let handle = service(64).await;
    let at = handle.address();

    let health = send(at, "GET", "/health", &[], "").await;
    assert_eq!((health.status, health.json()["status"].as_str()), (200, Some("ok")));

    // 400: no key; 400: not JSON; 422: a field named.
    let order = r#"{"lines":[{"sku":1,"quantity":2}],"hold_seconds":60}"#;
    assert_eq!(send(at, "POST", "/orders", &[], order).await.status, 400);
    assert_eq!(send(at, "POST", "/orders", &key("k0"), "{not json").await.status, 400);
    let invalid = send(at, "POST", "/orders", &key("k0"), r#"{"lines":[{"sku":1,"quantity":0}]}"#).await;
    assert_eq!((invalid.status, invalid.header("content-type")), (422, Some("application/problem+json")));
    assert_eq!(invalid.json()["field"], "lines[0].quantity");
    let unknown_sku = send(at, "POST", "/orders", &key("k0"), r#"{"lines":[{"sku":99,"quantity":1}]}"#).await;
    assert_eq!((unknown_sku.status, unknown_sku.json()["field"].as_str()), (422, Some("lines[0].sku")));
    let long_hold =
        send(at, "POST", "/orders", &key("k0"), r#"{"lines":[{"sku":1,"quantity":1}],"hold_seconds":0}"#).await;
    assert_eq!((long_hold.status, long_hold.json()["field"].as_str()), (422, Some("hold_seconds")));

    // 202 + Location; a retry with the same key and body gets the same order.
    let accepted = send(at, "POST", "/orders", &key("k1"), order).await;
    assert_eq!(accepted.status, 202);
    let location = accepted.header("location").expect("a Location").to_owned();
    let retry = send(at, "POST", "/orders", &key("k1"), order).await;
    assert_eq!((retry.status, retry.header("location")), (202, Some(location.as_str())));
    assert_eq!(retry.json()["duplicate"], true);
    // 409: the same key with another body.
    let reused = send(at, "POST", "/orders", &key("k1"), r#"{"lines":[{"sku":1,"quantity":3}]}"#).await;
    assert_eq!(reused.status, 409);

    // The order becomes held; committing it moves the units.
    let mut status = serde_json::Value::Null;
    for _ in 0..200 {
        status = send(at, "GET", &location, &[], "").await.json();
        if status["status"] != "queued" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status["status"], "held");
    let committed = send(at, "POST", &format!("{location}/commit"), &[], "").await;
    assert_eq!((committed.status, committed.json()["status"].as_str()), (200, Some("committed")));
    assert_eq!(send(at, "POST", &format!("{location}/cancel"), &[], "").await.status, 409, "committed: no cancel");
    let stock = send(at, "GET", "/inventory/1", &[], "").await.json();
    assert_eq!((stock["committed"].as_u64(), stock["available"].as_u64()), (Some(2), Some(9_998)));

    // Synchronous: 201 held, then cancelled; 409 when refused.
    let held = send(at, "POST", "/orders?wait=true", &key("k2"), r#"{"lines":[{"sku":3,"quantity":400}]}"#).await;
    assert_eq!((held.status, held.json()["status"].as_str()), (201, Some("held")));
    let cancel_path = format!("{}/cancel", held.header("location").unwrap());
    assert_eq!(send(at, "POST", &cancel_path, &[], "").await.json()["status"], "released");
    let refused = send(at, "POST", "/orders?wait=true", &key("k3"), r#"{"lines":[{"sku":3,"quantity":1001}]}"#).await;
    assert_eq!((refused.status, refused.json()["status"].as_str()), (409, Some("refused")));
    assert!(refused.json()["reason"].as_str().unwrap().contains("line 0"));

    // 404s.
    assert_eq!(send(at, "GET", "/orders/12345", &[], "").await.status, 404);
    assert_eq!(send(at, "GET", "/orders/nope", &[], "").await.status, 404);
    assert_eq!(send(at, "GET", "/inventory/77", &[], "").await.status, 404);

    // Catalog administration.
    assert_eq!(send(at, "POST", "/skus", &[], r#"{"sku":10,"policy":"fefo"}"#).await.status, 201);
    assert_eq!(send(at, "POST", "/skus", &[], r#"{"sku":10}"#).await.status, 409);
    assert_eq!(send(at, "POST", "/skus", &[], r#"{"sku":11,"policy":"lifo"}"#).await.status, 422);
    let lot = r#"{"lot":1,"quantity":50,"expires_at_ms":1,"location":1}"#;
    assert_eq!(send(at, "POST", "/skus/10/lots", &[], lot).await.status, 201);
    assert_eq!(send(at, "POST", "/skus/10/lots", &[], r#"{"lot":2,"quantity":20,"location":2}"#).await.status, 201);
    assert_eq!(send(at, "POST", "/skus/10/lots", &[], r#"{"lot":3,"quantity":0}"#).await.status, 422);
    let adjusted = send(at, "POST", "/skus/10/lots/2/adjustments", &[], r#"{"delta":-5,"reason":"damage"}"#).await;
    assert_eq!(adjusted.status, 200);
    assert_eq!(
        send(at, "POST", "/skus/10/lots/2/adjustments", &[], r#"{"delta":0,"reason":"damage"}"#).await.status,
        422
    );
    assert_eq!(
        send(at, "POST", "/skus/10/lots/9/adjustments", &[], r#"{"delta":1,"reason":"recount"}"#).await.status,
        404
    );
    let inventory = send(at, "GET", "/inventory/10", &[], "").await.json();
    assert_eq!(inventory["expired"], 50, "lot 1 expired at 1 ms past the epoch");
    assert_eq!(inventory["available"], 15);
    assert_eq!(inventory["locations"]["2"]["available"], 15);
    assert_eq!(inventory["locations"]["1"]["available"], 0);

    // Metrics, stats, audit, the page.
    let metrics = send(at, "GET", "/metrics", &[], "").await;
    assert!(
        metrics.body.contains("stockroom_commands_total{command=\"allocate_order\",outcome=\"ok\"} 2"),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains("stockroom_http_orders_total{result=\"duplicate\"} 1"));
    assert!(metrics.body.contains("stockroom_journal_lag 0"));
    let audit = send(at, "GET", "/audit", &[], "").await.json();
    assert_eq!(audit["clean"], true);
    assert_eq!(audit["orders"]["committed"], 1);
    let page = send(at, "GET", "/", &[], "").await;
    assert!(page.status == 200 && page.body.contains("EventSource(\"/events\")"));

    // The feed: from the start, and resumed after an id.
    let feed = stream_prefix(at, "/events", &[("last-event-id", "0")], "id: 3\n").await;
    assert!(feed.contains("event: change") && feed.contains("id: 1\n") && feed.contains("\"Defined\""), "{feed}");
    let resumed = stream_prefix(at, "/events", &[("last-event-id", "5")], "id: 6\n").await;
    assert!(resumed.contains("id: 6\n") && !resumed.contains("id: 5\n"), "{resumed}");

    // 503 while draining.
    handle.begin_drain();
    let draining = send(at, "POST", "/orders", &key("k9"), order).await;
    assert_eq!((draining.status, draining.header("retry-after")), (503, Some("1")));
    assert_eq!(send(at, "GET", "/health", &[], "").await.status, 503);
    handle.shutdown().await;
}

/// While the service sheds new orders as behind (429 `behind` with
/// `Retry-After`), a retry of an order already placed still gets its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shedding_while_behind_spares_retries_of_placed_orders() {
    let handle = service(64).await;
    let at = handle.address();
    let order = r#"{"lines":[{"sku":1,"quantity":1}]}"#;
    assert_eq!(send(at, "POST", "/orders", &key("placed"), order).await.status, 202);
    handle.shed_behind(0.99);
    let mut shed = 0;
    for n in 0..10 {
        let reply = send(at, "POST", "/orders", &key(&format!("new{n}")), order).await;
        if reply.status == 429 {
            assert_eq!(reply.header("retry-after"), Some("1"));
            assert!(reply.body.contains("behind"), "{}", reply.body);
            shed += 1;
        }
    }
    assert!(shed >= 8, "0.99 of new orders shed: {shed} of 10");
    for _ in 0..10 {
        let retry = send(at, "POST", "/orders", &key("placed"), order).await;
        assert_eq!(retry.status, 202, "a retry of a placed order is never shed: {}", retry.body);
        assert!(retry.body.contains("\"duplicate\":true"), "{}", retry.body);
    }
    handle.shutdown().await;
}

/// With the workers held, a small intake fills: further orders are shed
/// with 429 and `Retry-After`; a shed order's key is free for its retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_intake_sheds_with_429() {
    let handle = service(2).await;
    let at = handle.address();
    handle.pause_intake(true);
    let order = r#"{"lines":[{"sku":1,"quantity":1}]}"#;
    let mut statuses = Vec::new();
    for n in 0..8 {
        let reply = send(at, "POST", "/orders", &key(&format!("s{n}")), order).await;
        if reply.status == 429 {
            assert_eq!(reply.header("retry-after"), Some("1"));
            assert_eq!(reply.header("content-type"), Some("application/problem+json"));
        }
        statuses.push(reply.status);
    }
    let accepted = statuses.iter().filter(|&&status| status == 202).count();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!((2..=4).contains(&accepted), "queue 2, one worker holding one, maybe one in hand: {statuses:?}");
    handle.pause_intake(false);
    let shed_key = format!("s{}", statuses.iter().position(|&status| status == 429).unwrap());
    let mut retried = 429;
    for _ in 0..100 {
        retried = send(at, "POST", "/orders", &key(&shed_key), order).await.status;
        if retried == 202 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(retried, 202, "the shed order's key was not taken");
    let metrics = send(at, "GET", "/metrics", &[], "").await.body;
    assert!(metrics.contains("stockroom_intake_shed_total "), "{metrics}");
    assert!(metrics.contains("stockroom_http_orders_shed_total{reason=\"intake_full\"} "), "{metrics}");
    assert!(metrics.contains("stockroom_http_orders_shed_total{reason=\"behind\"} 0"), "{metrics}");
    handle.shutdown().await;
}
