//! The crash tests' child process: the test binary runs one of its own
//! tests as a child, which reports each acknowledged step on stdout
//! (`ACK` and its fields, on one line, only once the step was
//! acknowledged) and `READY` once it has started; the parent kills it with
//! SIGKILL at the instant it chose and keeps what it had reported.
//!
//! A line cut by the kill was never complete, so the child never moved
//! past it: the parent's `on_ack` parses fields and ignores a line that
//! does not parse.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// When the parent kills the child.
#[derive(Clone, Copy, Debug)]
pub enum Kill {
    /// This long after spawning it: may land in its start-up or recovery.
    AfterSpawn(Duration),
    /// This long after it reported `READY`: lands while it works.
    AfterReady(Duration),
}

/// The longest the parent waits for `READY` (the child is killed then,
/// and the parent's checks still run).
const READY_WAIT_MAX: Duration = Duration::from_secs(30);

/// Runs the test `test` of this binary as a child with `env` set, folds
/// the fields of each `ACK` line it prints into `reported` with `on_ack`,
/// kills it as `kill` says, and returns what it reported.
pub fn run_child<T: Send + 'static>(
    test: &str,
    env: &[(&str, String)],
    kill: Kill,
    mut reported: T,
    on_ack: fn(&mut T, &[&str]),
) -> T {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest prints "test <name> ... " before the test's own
            // output, without a newline: the first line may carry it.
            if line.ends_with("READY") {
                let _ = ready_tx.send(());
                continue;
            }
            let Some(start) = line.find("ACK ") else { continue };
            let fields: Vec<&str> = line[start + 4..].split(' ').collect();
            on_ack(&mut reported, &fields);
        }
        reported
    });
    match kill {
        Kill::AfterSpawn(delay) => std::thread::sleep(delay),
        Kill::AfterReady(delay) => {
            let _ = ready_rx.recv_timeout(READY_WAIT_MAX);
            std::thread::sleep(delay);
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}
