//! The service's settings and its command line.
//!
//! Owns: [`Config`] and [`Config::from_args`].
//!
//! Must never: accept a setting it cannot honour, or ignore one it was
//! given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The service's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen (loopback by default).
    pub listen: SocketAddr,
    /// Load the demo catalog: SKUs 1-3 with stock.
    pub demo: bool,
    /// Intake queue capacity (orders waiting for a worker).
    pub queue: usize,
    /// Intake worker threads.
    pub workers: usize,
    /// Orders (and their idempotency keys) remembered.
    pub orders_max: usize,
    /// Hold duration of an order that names none.
    pub hold_default: Duration,
    /// Requests served at once (beyond: 503 at once, never queued).
    pub concurrency_max: usize,
    /// Longest a request may take (then 408).
    pub request_timeout: Duration,
    /// Largest request body, bytes (beyond: 413).
    pub body_max: usize,
    /// Longest a synchronous `POST /orders` waits for its decision.
    pub sync_wait_max: Duration,
    /// Events kept for `Last-Event-ID` resumption.
    pub replay_events: usize,
    /// The runtime's scheduling lag admission control holds the service
    /// to, shedding a share of new orders (429, see `admission`) while it
    /// is above; zero turns admission control off.
    pub shed_lag_target: Duration,
    /// The journal directory (`--data`): the ledger, and with it every
    /// order's Idempotency-Key, survives a restart. `None`: memory only.
    pub data: Option<PathBuf>,
    /// With `data`, how often a checkpoint is written (and the journal
    /// segments it covers deleted).
    pub checkpoint_every: Duration,
}

/// Intake workers with `--data` and no `--workers`: each applies a batch
/// of orders and waits for the group commit that makes them durable, so
/// two keep the disk busy while the other applies.
pub const DATA_WORKERS_DEFAULT: usize = 4;

/// The default of [`Config::shed_lag_target`].
pub const SHED_LAG_TARGET_DEFAULT: Duration = Duration::from_millis(1);
/// The largest `--shed-lag-target-us` accepted (10 ms).
const SHED_LAG_TARGET_US_MAX: usize = 10_000;

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            demo: false,
            queue: 4_096,
            workers: 2,
            orders_max: 2_000_000,
            hold_default: Duration::from_secs(600),
            concurrency_max: 8_192,
            request_timeout: Duration::from_secs(10),
            body_max: 16 * 1024,
            sync_wait_max: Duration::from_secs(5),
            replay_events: 4_096,
            shed_lag_target: SHED_LAG_TARGET_DEFAULT,
            data: None,
            checkpoint_every: Duration::from_secs(60),
        }
    }
}

/// The usage text.
pub const USAGE: &str = "\
stockroom-service: the HTTP order service over stockroom

USAGE: stockroom-service [--listen ADDR] [--demo] [--queue N] [--workers N]
                         [--orders-max N] [--shed-lag-target-us N] [--data DIR]
                         [--checkpoint-secs N]

  --listen ADDR    address to listen on (default 127.0.0.1:8080)
  --demo           load the demo catalog: SKUs 1-3 with stock (with --data,
                   only into an empty ledger)
  --queue N        intake queue capacity (default 4096); a full queue sheds with 429
  --workers N      intake worker threads (default 2; 4 with --data)
  --orders-max N   orders and idempotency keys remembered (default 2000000)
  --shed-lag-target-us N
                   hold the runtime's scheduling lag near N microseconds by
                   shedding a share of new orders with 429 (default 1000;
                   0: never shed by lag, only when the queue is full)
  --data DIR       keep the ledger in a journal in DIR (created if absent):
                   orders, their Idempotency-Keys and the stock survive a
                   restart; an order is reported held (and an answer given)
                   only once it is on disk (fsync, group-committed)
  --checkpoint-secs N
                   with --data, write a checkpoint every N seconds (default
                   60) and delete the journal segments it covers
";

impl Config {
    /// Parses the command line (without the program name).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
        let mut config = Config::default();
        let mut workers_given = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--listen" => {
                    let text = value("--listen")?;
                    config.listen = text.parse().map_err(|error| format!("--listen {text}: {error}"))?;
                }
                "--demo" => config.demo = true,
                "--queue" => config.queue = number(&value("--queue")?, "--queue", 1, 1 << 20)?,
                "--workers" => {
                    config.workers = number(&value("--workers")?, "--workers", 1, 1024)?;
                    workers_given = true;
                }
                "--orders-max" => config.orders_max = number(&value("--orders-max")?, "--orders-max", 64, 1 << 26)?,
                "--shed-lag-target-us" => {
                    let micros =
                        number(&value("--shed-lag-target-us")?, "--shed-lag-target-us", 0, SHED_LAG_TARGET_US_MAX)?;
                    config.shed_lag_target = Duration::from_micros(micros as u64);
                }
                "--data" => config.data = Some(PathBuf::from(value("--data")?)),
                "--checkpoint-secs" => {
                    let seconds = number(&value("--checkpoint-secs")?, "--checkpoint-secs", 1, 86_400)?;
                    config.checkpoint_every = Duration::from_secs(seconds as u64);
                }
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
            }
        }
        if config.data.is_some() && !workers_given {
            config.workers = DATA_WORKERS_DEFAULT;
        }
        Ok(config)
    }
}

fn number(text: &str, name: &str, min: usize, max: usize) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{name} {text}: expected a number from {min} to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        Config::from_args(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn defaults_flags_and_refusals() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(!config.demo);
        let config = parse(&["--listen", "127.0.0.1:0", "--demo", "--queue", "8"]).unwrap();
        assert_eq!((config.listen.port(), config.demo, config.queue), (0, true, 8));
        assert_eq!(config.data, None);
        let config = parse(&["--data", "/tmp/x", "--checkpoint-secs", "5"]).unwrap();
        assert_eq!(config.data.as_deref(), Some(std::path::Path::new("/tmp/x")));
        assert_eq!((config.checkpoint_every, config.workers), (Duration::from_secs(5), DATA_WORKERS_DEFAULT));
        assert_eq!(parse(&["--workers", "3", "--data", "/tmp/x"]).unwrap().workers, 3);
        assert!(parse(&["--checkpoint-secs", "0"]).is_err());
        assert!(parse(&["--data"]).is_err());
        assert!(parse(&["--queue", "0"]).is_err());
        assert_eq!(config.shed_lag_target, SHED_LAG_TARGET_DEFAULT);
        let config = parse(&["--shed-lag-target-us", "500"]).unwrap();
        assert_eq!(config.shed_lag_target, Duration::from_micros(500));
        assert!(parse(&["--shed-lag-target-us", "10001"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
