//! The HTTP surface: routes, limits, and the start / drain / stop of the
//! service.
//!
//! Owns: [`start`], [`Handle`], the router and every handler but the
//! order book's logic (`orders.rs`) and the feed's (`feed.rs`).
//!
//! Must never: let one client exhaust the process: bodies are capped
//! ([`Config::body_max`], 413), requests time out
//! ([`Config::request_timeout`], 408), requests in progress are capped
//! ([`Config::concurrency_max`]: beyond it, 503 at once, never queued),
//! orders beyond the intake's capacity are shed (429 with `Retry-After`),
//! and so are new orders while the service is behind (`admission`).

use crate::admission::{Admission, AdmitError, Controller};
use crate::config::Config;
use crate::executor::Executor;
use crate::feed::{Feed, Frame};
use crate::orders::{ActError, LineRequest, OrderBook, PlaceError, PlaceRequest};
use crate::problem::Problem;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use stockroom::intake::Intake;
use stockroom::journal::{Durability, JournalOptions};
use stockroom::{
    AdjustError, AdjustmentReason, AllocationPolicy, DefineError, IdempotencyKey, KEY_LEN_MAX, LOCATION_MAX, Ledger,
    LocationId, LotId, NewLot, OrderRequest, QueryError, ReceiveError, SkuId, Timestamp,
};
use tower::ServiceBuilder;

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) config: Config,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) orders: OrderBook,
    pub(crate) feed: Arc<Feed>,
    pub(crate) draining: AtomicBool,
    pub(crate) paused: Arc<AtomicBool>,
    /// Whether a new order is admitted (sheds while the service is behind).
    pub(crate) admission: Arc<Admission>,
    /// HTTP responses by class, for `/metrics`.
    pub(crate) responses: [AtomicU64; 6],
}

type Shared = Arc<App>;

/// A running service.
#[derive(Debug)]
pub struct Handle {
    app: Shared,
    address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
    /// The checkpoint task, with a journal.
    checkpoints: Option<tokio::task::JoinHandle<()>>,
}

impl Handle {
    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The ledger it serves.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.app.ledger
    }

    /// Starts draining: `POST /orders` answers 503 and `/health` says so;
    /// everything else is served.
    pub fn begin_drain(&self) {
        self.app.draining.store(true, Ordering::SeqCst);
    }

    /// Holds the intake's workers (at most `executor::PAUSE_MAX` each), so
    /// the queue fills: a drill for the 429 path.
    pub fn pause_intake(&self, paused: bool) {
        self.app.paused.store(paused, Ordering::SeqCst);
    }

    /// Sheds `share` of new orders as "behind" (see
    /// [`Admission::drill`](crate::admission::Admission::drill)): a drill
    /// for the admission path.
    pub fn shed_behind(&self, share: f64) {
        self.app.admission.drill(share);
    }

    /// Drains and stops: no new orders, every accepted order decided
    /// (the intake's shutdown), with a journal a last checkpoint written,
    /// connections closed gracefully.
    pub async fn shutdown(mut self) {
        self.begin_drain();
        self.pause_intake(false);
        let app = Arc::clone(&self.app);
        // The intake's shutdown blocks until its workers drained the queue.
        let report = tokio::task::spawn_blocking(move || app.orders.intake().shutdown()).await;
        if let Ok(report) = report {
            tracing::info!(complete = report.is_complete(), "intake drained");
        }
        if let Some(checkpoints) = self.checkpoints.take() {
            checkpoints.abort();
            // Every decided order is durable already (its worker waited);
            // the changes made since by commits and cancels were
            // acknowledged by their requests. A last checkpoint makes the
            // next start's recovery short.
            checkpoint(&self.app).await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
    }
}

/// Builds the ledger, the intake and the routes, binds `config.listen`
/// and serves in the background.
pub async fn start(config: Config) -> std::io::Result<Handle> {
    let ledger = Arc::new(open_ledger(&config)?);
    let events = ledger.subscribe(65_536).map_err(|error| std::io::Error::other(error.to_string()))?;
    // With a journal, the demo catalog goes only into an empty ledger: a
    // restart keeps the stock it had.
    if config.demo && ledger.skus().is_empty() {
        load_demo(&ledger);
        acknowledge(&ledger).await.map_err(|problem| std::io::Error::other(format!("{problem:?}")))?;
    }
    let paused = Arc::new(AtomicBool::new(false));
    let intake = Intake::builder()
        .capacity(config.queue)
        .workers(config.workers)
        .thread_name("stockroom-service-intake")
        .build(Executor::new(Arc::clone(&ledger), Arc::clone(&paused)))
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let orders = OrderBook::new(Arc::clone(&ledger), intake, config.orders_max, config.hold_default);
    let feed = Feed::new(config.replay_events);
    tokio::spawn(Arc::clone(&feed).pump(events));
    let admission = if config.shed_lag_target.is_zero() {
        Admission::open()
    } else {
        Admission::probed(Controller::new(config.shed_lag_target))
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    let app = Arc::new(App {
        config,
        ledger,
        orders,
        feed,
        draining: AtomicBool::new(false),
        paused,
        admission,
        responses: Default::default(),
    });
    let router = router(Arc::clone(&app));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(error) = serve.await {
            tracing::error!(%error, "server stopped");
        }
    });
    let checkpoints = app.config.data.is_some().then(|| tokio::spawn(checkpoint_every(Arc::clone(&app))));
    tracing::info!(%address, "stockroom-service listening");
    Ok(Handle { app, address, stop: Some(stop), served: Some(served), checkpoints })
}

/// The ledger: in memory, or opened from the journal in `config.data`
/// (created if absent), in `Sync` mode.
fn open_ledger(config: &Config) -> std::io::Result<Ledger> {
    let builder = Ledger::builder().events(true);
    let Some(dir) = &config.data else {
        return builder.build().map_err(|error| std::io::Error::other(error.to_string()));
    };
    let options = JournalOptions::new(Durability::Sync);
    let (ledger, recovered) = builder
        .open(dir, options)
        .map_err(|error| std::io::Error::other(format!("--data {}: {error}", dir.display())))?;
    tracing::info!(
        dir = %dir.display(),
        changes = recovered.changes,
        dropped = recovered.dropped,
        outcomes_lost = recovered.outcomes_lost,
        orphan_parts_released = recovered.orphan_parts_released,
        "ledger recovered from its journal"
    );
    Ok(ledger)
}

/// Waits until every change so far is durable (a no-op without a
/// journal); a failure is a 503 the caller answers instead of success.
/// The wait parks no runtime thread: the journal's writer wakes the task
/// when its group commit covers the changes.
async fn acknowledge(ledger: &Ledger) -> Result<(), Problem> {
    if ledger.journal().is_none() {
        return Ok(());
    }
    ledger.acknowledged().await.map(drop).map_err(|error| Problem::not_durable(error.to_string()))
}

/// Writes a checkpoint every `config.checkpoint_every` (the journal's
/// segments it covers are deleted), until the service stops.
async fn checkpoint_every(app: Shared) {
    let mut ticks = tokio::time::interval(app.config.checkpoint_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate
    loop {
        ticks.tick().await;
        checkpoint(&app).await;
    }
}

async fn checkpoint(app: &Shared) {
    let ledger = Arc::clone(&app.ledger);
    match tokio::task::spawn_blocking(move || ledger.checkpoint()).await {
        Ok(Ok(info)) => tracing::info!(?info, "checkpoint written"),
        Ok(Err(error)) => tracing::error!(%error, "checkpoint failed"),
        Err(error) => tracing::error!(%error, "checkpoint task failed"),
    }
}

/// SKUs 1-3, FIFO, with stock (the demo catalog).
fn load_demo(ledger: &Ledger) {
    for (sku, units) in [(1, 10_000), (2, 5_000), (3, 1_000)] {
        let _ = ledger.define_sku(SkuId(sku), AllocationPolicy::Fifo);
        let lot = NewLot::new(LotId(1), units).at(LocationId(1));
        let _ = ledger.receive(SkuId(sku), lot);
    }
}

fn router(app: Shared) -> Router {
    let limits = ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(|error: tower::BoxError| async move {
            if error.is::<tower::timeout::error::Elapsed>() {
                Problem::new_status(StatusCode::REQUEST_TIMEOUT, "the request took too long")
            } else {
                Problem::new_status(StatusCode::SERVICE_UNAVAILABLE, "too many requests in progress")
            }
        }))
        .load_shed()
        .concurrency_limit(app.config.concurrency_max)
        .timeout(app.config.request_timeout);
    Router::new()
        .route("/", get(page))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/stats", get(stats))
        .route("/audit", get(audit))
        .route("/events", get(events))
        .route("/orders", post(place))
        .route("/orders/{id}", get(order_status))
        .route("/orders/{id}/commit", post(commit))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/inventory", get(inventory_all))
        .route("/inventory/{sku}", get(inventory))
        .route("/skus", post(define_sku))
        .route("/skus/{sku}/lots", post(receive))
        .route("/skus/{sku}/lots/{lot}/adjustments", post(adjust))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&app), count_responses))
        .layer(limits)
        .layer(DefaultBodyLimit::max(app.config.body_max))
        .with_state(app)
}

impl Problem {
    /// A bare problem for a status the limits produce.
    fn new_status(status: StatusCode, detail: &'static str) -> Response {
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            format!("{{\"status\":{},\"detail\":\"{detail}\"}}", status.as_u16()),
        )
            .into_response()
    }
}

async fn count_responses(
    State(app): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let class = (response.status().as_u16() / 100).min(5) as usize;
    app.responses[class].fetch_add(1, Ordering::Relaxed);
    response
}

/// Parses a JSON body, naming the offending field on failure (422), or 400
/// for a body that is not JSON at all.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => Ok(value),
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                Err(Problem::bad_request(format!("the body is not JSON: {inner}")))
            } else {
                Err(Problem::invalid(if path == "." { "body".to_owned() } else { path }, inner.to_string()))
            }
        }
    }
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

async fn health(State(app): State<Shared>) -> Response {
    if app.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "draining"}))).into_response()
    } else {
        axum::Json(serde_json::json!({"status": "ok"})).into_response()
    }
}

async fn metrics(State(app): State<Shared>) -> Response {
    let text = crate::prometheus::render(&app);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Counters for the page (JSON).
async fn stats(State(app): State<Shared>) -> Response {
    let counts = &app.orders.counts;
    let metrics = app.ledger.metrics().with_intake(&app.orders.intake().stats());
    axum::Json(serde_json::json!({
        "orders_accepted": counts.accepted.load(Ordering::Relaxed),
        "orders_held": counts.held.load(Ordering::Relaxed),
        "orders_refused": counts.refused.load(Ordering::Relaxed),
        "orders_shed": counts.shed.load(Ordering::Relaxed),
        "orders_shed_behind": app.admission.shed.load(Ordering::Relaxed),
        "orders_committed": counts.committed.load(Ordering::Relaxed),
        "orders_released": counts.released.load(Ordering::Relaxed),
        "duplicates": counts.duplicates.load(Ordering::Relaxed),
        "holds_live": metrics.holds_live,
        "intake_queue_depth": metrics.intake_queue_depth,
    }))
    .into_response()
}

/// What the service holds, for a load generator to check its own tally
/// against: orders by state, units per SKU, and the ledger's audit.
async fn audit(State(app): State<Shared>) -> Response {
    let app2 = Arc::clone(&app);
    let tally = tokio::task::spawn_blocking(move || app2.orders.tally()).await.unwrap_or_default();
    let mut skus = BTreeMap::new();
    for sku in app.ledger.skus() {
        if let Ok(snapshot) = app.ledger.snapshot(sku) {
            let totals = snapshot.totals();
            skus.insert(
                sku.0.to_string(),
                serde_json::json!({
                    "received": totals.received.get(), "adjusted": totals.adjusted,
                    "available": totals.available.get(), "held": totals.held.get(),
                    "committed": totals.committed.get(),
                }),
            );
        }
    }
    let report = app.ledger.audit();
    axum::Json(serde_json::json!({
        "clean": report.is_clean(),
        "violations": report.violations.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>(),
        "orders": tally,
        "duplicates_answered": app.orders.counts.duplicates.load(Ordering::Relaxed),
        "skus": skus,
    }))
    .into_response()
}

async fn events(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let last = headers.get("last-event-id").and_then(|value| value.to_str().ok()).and_then(|text| text.parse().ok());
    let (replay, receiver) = app.feed.join(last);
    let after = replay.iter().map(|frame| frame.seq).max().or(last).unwrap_or(0);
    let live = futures_util::stream::unfold((receiver, after), |(mut receiver, after)| async move {
        // Bounded per call: each lagged notice is followed by a receive.
        loop {
            match receiver.recv().await {
                Ok(frame) if frame.seq > 0 && frame.seq <= after => continue,
                Ok(frame) => return Some((frame, (receiver, after))),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    let frame = Frame { seq: 0, name: "lagged", data: format!("{{\"missed\":{missed}}}").into() };
                    return Some((frame, (receiver, after)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream =
        futures_util::stream::iter(replay).chain(live).map(|frame| Ok::<_, std::convert::Infallible>(frame.to_sse()));
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))).into_response()
}

/// `Retry-After` of an order refused because the service is behind.
const RETRY_AFTER_BEHIND_SECONDS: u64 = 1;

#[derive(Deserialize)]
struct PlaceQuery {
    /// Wait for the decision (`?wait=true`): 201 held, 409 refused.
    #[serde(default)]
    wait: bool,
}

/// Checks an order's fields beyond their types (422 naming the field).
fn validate(app: &App, request: &PlaceRequest) -> Result<(), Problem> {
    if request.lines.is_empty() {
        return Err(Problem::invalid("lines", "an order needs at least one line"));
    }
    if request.lines.len() > OrderRequest::LINES_MAX {
        return Err(Problem::invalid("lines", format!("at most {} lines", OrderRequest::LINES_MAX)));
    }
    for (index, LineRequest { sku, quantity }) in request.lines.iter().enumerate() {
        if *quantity == 0 || *quantity > stockroom::Quantity::MAX.get() {
            return Err(Problem::invalid(format!("lines[{index}].quantity"), "must be 1 or more, within the maximum"));
        }
        // `available` reads the lots, not the holds: O(lots), unlike a snapshot.
        if app.ledger.available(SkuId(*sku), Duration::ZERO).is_err() {
            return Err(Problem::invalid(format!("lines[{index}].sku"), format!("SKU {sku} is not defined")));
        }
    }
    if let Some(seconds) = request.hold_seconds {
        if seconds == 0 || Duration::from_secs(seconds) > app.ledger.hold_max() {
            return Err(Problem::invalid(
                "hold_seconds",
                format!("must be from 1 to {}", app.ledger.hold_max().as_secs()),
            ));
        }
    }
    Ok(())
}

async fn place(
    State(app): State<Shared>,
    Query(query): Query<PlaceQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    if app.draining.load(Ordering::SeqCst) {
        return Err(Problem::draining());
    }
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| Problem::bad_request("the Idempotency-Key header is required"))?
        .to_str()
        .map_err(|_| Problem::bad_request("the Idempotency-Key header must be visible ASCII"))?;
    if IdempotencyKey::new(key).is_err() {
        return Err(Problem::bad_request(format!("the Idempotency-Key must be 1 to {KEY_LEN_MAX} bytes")));
    }
    // Before the body is parsed (a refusal must cost little), and never for
    // a retry of an order already placed: it gets its order back.
    if !app.orders.knows(key) {
        if let Err(AdmitError::Behind { .. }) = app.admission.admit() {
            return Err(Problem::behind(RETRY_AFTER_BEHIND_SECONDS));
        }
    }
    let request: PlaceRequest = parse(&body)?;
    validate(&app, &request)?;
    let placed = match app.orders.place(key, request) {
        Ok(placed) => placed,
        Err(PlaceError::KeyReused) => {
            return Err(Problem::conflict("key-reused", "this Idempotency-Key was used for a different order"));
        }
        Err(PlaceError::Shed) => return Err(Problem::shed(1)),
        Err(PlaceError::Draining) => return Err(Problem::draining()),
        Err(PlaceError::InvalidKey) => {
            return Err(Problem::bad_request(format!("the Idempotency-Key must be 1 to {KEY_LEN_MAX} bytes")));
        }
    };
    let location = format!("/orders/{}", placed.id);
    if !query.wait {
        let body = serde_json::json!({"id": placed.id, "status": "queued", "duplicate": placed.duplicate});
        return Ok(with_location(StatusCode::ACCEPTED, &location, body));
    }
    if tokio::time::timeout(app.config.sync_wait_max, placed.ticket).await.is_err() {
        return Err(Problem::undecided(&location));
    }
    let status = app.orders.status(placed.id).ok_or_else(|| Problem::not_found("the order was forgotten"))?;
    let code = if status.status == "refused" { StatusCode::CONFLICT } else { StatusCode::CREATED };
    let mut body = serde_json::to_value(&status).unwrap_or_default();
    body["duplicate"] = placed.duplicate.into();
    Ok(with_location(code, &location, body))
}

fn with_location(status: StatusCode, location: &str, body: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn order_id(text: &str) -> Result<u64, Problem> {
    text.parse().map_err(|_| Problem::not_found(format!("no order {text}")))
}

async fn order_status(State(app): State<Shared>, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = order_id(&id)?;
    let status = app.orders.status(id).ok_or_else(|| Problem::not_found(format!("no order {id}")))?;
    Ok(axum::Json(status).into_response())
}

fn act(result: Result<crate::orders::OrderStatus, ActError>, id: u64, verb: &str) -> Result<Response, Problem> {
    match result {
        Ok(status) => Ok(axum::Json(status).into_response()),
        Err(ActError::Unknown) => Err(Problem::not_found(format!("no order {id}"))),
        Err(ActError::WrongState(state)) => {
            Err(Problem::conflict("order-state", format!("order {id} is {state}: it cannot be {verb}")))
        }
    }
}

async fn commit(State(app): State<Shared>, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = order_id(&id)?;
    let response = act(app.orders.commit(id), id, "committed")?;
    acknowledge(&app.ledger).await?;
    Ok(response)
}

async fn cancel(State(app): State<Shared>, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = order_id(&id)?;
    let response = act(app.orders.cancel(id), id, "cancelled")?;
    acknowledge(&app.ledger).await?;
    Ok(response)
}

fn sku_id(text: &str) -> Result<SkuId, Problem> {
    text.parse().map(SkuId).map_err(|_| Problem::invalid("sku", format!("{text} is not a SKU id")))
}

/// A SKU's stock as JSON, from `Ledger::stock`: O(lots) per read (the
/// ledger keeps events), where a snapshot would list every live hold.
/// Held and committed units are told apart per SKU; per lot and per
/// location the body gives what is available, expired, and held or
/// committed.
fn inventory_of(app: &App, sku: SkuId) -> Result<serde_json::Value, QueryError> {
    let stock = app.ledger.stock(sku)?;
    let now = app.ledger.now();
    let mut lots = Vec::new();
    let mut locations: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for lot in &stock.lots {
        let location = lot.location.map(|location| location.0.to_string());
        let entry = locations.entry(location.clone().unwrap_or_else(|| "unspecified".to_owned())).or_default();
        entry.0 += lot.available.get();
        entry.1 += lot.held_or_committed.get();
        lots.push(serde_json::json!({
            "lot": lot.lot.0, "available": lot.available.get(), "held_or_committed": lot.held_or_committed.get(),
            "expires_at_ms": lot.expires_at.map(Timestamp::as_millis), "expired": lot.expires_at.is_some_and(|expiry| expiry <= now),
            "expired_units": lot.expired.get(), "location": location,
        }));
    }
    let per_location: BTreeMap<_, _> = locations
        .into_iter()
        .map(|(name, (available, out))| (name, serde_json::json!({"available": available, "held_or_committed": out})))
        .collect();
    Ok(serde_json::json!({
        "sku": sku.0, "version": stock.version,
        "available": stock.available.get(), "held": stock.held.get(),
        "committed": stock.committed.get(), "expired": stock.expired.get(),
        "lots": lots, "locations": per_location,
    }))
}

async fn inventory(State(app): State<Shared>, Path(sku): Path<String>) -> Result<Response, Problem> {
    let sku = sku_id(&sku).map_err(|_| Problem::not_found(format!("no SKU {sku}")))?;
    let body = inventory_of(&app, sku).map_err(|_| Problem::not_found(format!("no SKU {}", sku.0)))?;
    Ok(axum::Json(body).into_response())
}

async fn inventory_all(State(app): State<Shared>) -> Response {
    let mut skus = app.ledger.skus();
    skus.sort_unstable();
    skus.truncate(1_000);
    let all: Vec<_> = skus.into_iter().filter_map(|sku| inventory_of(&app, sku).ok()).collect();
    axum::Json(all).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefineRequest {
    sku: u64,
    #[serde(default)]
    policy: Policy,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Policy {
    #[default]
    Fefo,
    Fifo,
}

async fn define_sku(State(app): State<Shared>, body: Bytes) -> Result<Response, Problem> {
    let request: DefineRequest = parse(&body)?;
    let policy = match request.policy {
        Policy::Fefo => AllocationPolicy::Fefo,
        Policy::Fifo => AllocationPolicy::Fifo,
    };
    let response = match app.ledger.define_sku(SkuId(request.sku), policy) {
        Ok(defined) => Ok(with_location(
            StatusCode::CREATED,
            &format!("/inventory/{}", request.sku),
            serde_json::json!({"sku": defined.sku.0, "version": defined.version}),
        )),
        Err(DefineError::AlreadyDefined { sku }) => {
            Err(Problem::conflict("already-defined", format!("SKU {} is already defined", sku.0)))
        }
        Err(error) => Err(Problem::conflict("refused", error.to_string())),
    };
    if response.is_ok() {
        acknowledge(&app.ledger).await?;
    }
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiveRequest {
    lot: u64,
    quantity: u64,
    #[serde(default)]
    expires_at_ms: Option<u64>,
    /// The location id (0 to `stockroom::LOCATION_MAX`).
    #[serde(default)]
    location: Option<u32>,
}

async fn receive(State(app): State<Shared>, Path(sku): Path<String>, body: Bytes) -> Result<Response, Problem> {
    let sku = sku_id(&sku)?;
    let request: ReceiveRequest = parse(&body)?;
    if request.location.is_some_and(|location| location > LOCATION_MAX) {
        return Err(Problem::invalid("location", format!("at most {LOCATION_MAX}")));
    }
    let mut lot = NewLot::new(LotId(request.lot), request.quantity);
    if let Some(expiry) = request.expires_at_ms {
        lot = lot.expires_at(Timestamp::from_millis(expiry));
    }
    if let Some(location) = request.location {
        lot = lot.at(LocationId(location));
    }
    let response = match app.ledger.receive(sku, lot) {
        Ok(received) => Ok(with_location(
            StatusCode::CREATED,
            &format!("/inventory/{}", sku.0),
            serde_json::json!({"sku": sku.0, "lot": received.lot.0, "version": received.version}),
        )),
        Err(ReceiveError::ZeroQuantity { .. } | ReceiveError::QuantityTooLarge { .. }) => {
            Err(Problem::invalid("quantity", "must be 1 or more, within the maximum"))
        }
        Err(ReceiveError::UnknownSku { .. }) => Err(Problem::not_found(format!("no SKU {}", sku.0))),
        Err(error) => Err(Problem::conflict("refused", error.to_string())),
    };
    if response.is_ok() {
        acknowledge(&app.ledger).await?;
    }
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustRequest {
    delta: i64,
    reason: Reason,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Reason {
    Receipt,
    Spoilage,
    Recount,
    Damage,
    Recalibration,
    Expiry,
    Other,
}

async fn adjust(
    State(app): State<Shared>,
    Path((sku, lot)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Problem> {
    let sku = sku_id(&sku)?;
    let lot = LotId(lot.parse().map_err(|_| Problem::invalid("lot", format!("{lot} is not a lot id")))?);
    let request: AdjustRequest = parse(&body)?;
    let reason = match request.reason {
        Reason::Receipt => AdjustmentReason::Receipt,
        Reason::Spoilage => AdjustmentReason::Spoilage,
        Reason::Recount => AdjustmentReason::Recount,
        Reason::Damage => AdjustmentReason::Damage,
        Reason::Recalibration => AdjustmentReason::Recalibration,
        Reason::Expiry => AdjustmentReason::Expiry,
        Reason::Other => AdjustmentReason::Other,
    };
    let response = match app.ledger.adjust(sku, lot, request.delta, reason) {
        Ok(adjusted) => Ok(axum::Json(serde_json::json!({
            "sku": sku.0, "lot": lot.0, "version": adjusted.version,
            "shorted_reservations": adjusted.shortfalls.len(),
        }))
        .into_response()),
        Err(AdjustError::ZeroDelta { .. } | AdjustError::DeltaTooLarge { .. }) => {
            Err(Problem::invalid("delta", "must be non-zero, within the maximum"))
        }
        Err(AdjustError::UnknownSku { .. } | AdjustError::UnknownLot { .. }) => {
            Err(Problem::not_found(format!("no lot {} of SKU {}", lot.0, sku.0)))
        }
        Err(AdjustError::OutOfRange { .. }) => Err(Problem::invalid("delta", "would take the lot out of range")),
        Err(error) => Err(Problem::conflict("refused", error.to_string())),
    };
    if response.is_ok() {
        acknowledge(&app.ledger).await?;
    }
    response
}
