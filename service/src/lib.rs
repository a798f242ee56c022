//! stockroom-service: the HTTP order service the seeds describe, embedding
//! stockroom: orders through the intake with idempotency keys, shedding
//! with 429, graceful drain, stock queries, a change feed, metrics and a
//! live page.
//!
//! Index, one idea per file:
//!
//! - [`config`]: settings and the command line (`--listen`, `--demo`, ...);
//! - [`server`]: routes, limits, [`start`] and [`Handle`] (drain, stop);
//! - [`admission`]: sheds new orders (429) while the service is behind,
//!   by the runtime's scheduling lag (queueing delay, not queue length);
//! - [`orders`]: the order book, the one module that maps an HTTP order
//!   onto the ledger (place / status / commit / cancel);
//! - [`executor`]: what the intake's workers apply orders to;
//! - [`feed`]: `GET /events` (server-sent events, `Last-Event-ID`);
//! - `prometheus`: `GET /metrics`;
//! - [`problem`]: errors as `application/problem+json`;
//! - `page.html`: `GET /`, the page a person watches during a sale.

pub mod admission;
pub mod config;
pub mod executor;
pub mod feed;
pub mod orders;
pub mod problem;
mod prometheus;
pub mod server;

pub use config::Config;
pub use server::{Handle, start};
