//! The change feed over HTTP: `GET /events` as server-sent events, from one
//! subscription to the ledger, resumable with `Last-Event-ID`.
//!
//! Owns: the pump task (the ledger's subscription as a stream, turned into
//! SSE frames), the replay ring of the last [`Config::replay_events`]
//! frames, and the broadcast to connected clients.
//!
//! Must never: make a command wait for a client (the ledger's hub drops
//! events for a slow subscriber and counts them; a slow client here misses
//! frames of the broadcast and is told so), or hold more than the ring and
//! the broadcast's capacity.
//!
//! Event ids are the hub's sequence numbers (strictly increasing). A client
//! that reconnects with `Last-Event-ID: n` gets every frame after `n` still
//! in the ring, then the live feed; if frames after `n` already left the
//! ring it first gets an `event: reset` (re-read `/inventory`). Without a
//! journal there is no history beyond the ring.
//!
//! [`Config::replay_events`]: crate::Config::replay_events

use axum::response::sse::Event as SseEvent;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stockroom::{Delivery, Event, Subscription};
use tokio::sync::broadcast;

/// One SSE frame: its id (0 for a lag notice), its event name and its data.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The hub's sequence number (0: not an event).
    pub seq: u64,
    /// `change` or `lagged`.
    pub name: &'static str,
    /// JSON.
    pub data: Arc<str>,
}

impl Frame {
    /// The frame as an axum SSE event.
    pub fn to_sse(&self) -> SseEvent {
        let event = SseEvent::default().event(self.name).data(&*self.data);
        if self.seq > 0 { event.id(self.seq.to_string()) } else { event }
    }
}

/// The feed's shared state.
#[derive(Debug)]
pub struct Feed {
    ring: Mutex<VecDeque<Frame>>,
    ring_max: usize,
    live: broadcast::Sender<Frame>,
    /// Frames published so far (`/metrics`).
    pub published: std::sync::atomic::AtomicU64,
}

impl Feed {
    /// An empty feed keeping `ring_max` frames.
    pub fn new(ring_max: usize) -> Arc<Feed> {
        let (live, _) = broadcast::channel(ring_max.max(16));
        Arc::new(Feed {
            ring: Mutex::new(VecDeque::with_capacity(ring_max)),
            ring_max: ring_max.max(1),
            live,
            published: 0.into(),
        })
    }

    fn push(&self, frame: Frame) {
        let mut ring = self.ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ring.len() == self.ring_max {
            ring.pop_front();
        }
        ring.push_back(frame.clone());
        // Under the ring's lock, so a client joining sees each frame once:
        // in its replay or on its receiver. No receiver: nobody to tell.
        let _ = self.live.send(frame);
        self.published.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs until the ledger is dropped: every delivery becomes a frame.
    pub async fn pump(self: Arc<Feed>, mut events: Subscription<Event>) {
        loop {
            // The stream is woken by every delivery; the timeout also lets
            // an idle ledger's gap timer run (see stockroom's stream docs).
            let delivery = match tokio::time::timeout(Duration::from_millis(250), events.next()).await {
                Ok(Some(delivery)) => delivery,
                Ok(None) => return,
                Err(_) => continue,
            };
            let frame = match delivery {
                Delivery::Event(event) => Frame {
                    seq: event.seq,
                    name: "change",
                    data: serde_json::to_string(&event).unwrap_or_default().into(),
                },
                Delivery::Lagged { missed } => {
                    Frame { seq: 0, name: "lagged", data: format!("{{\"missed\":{missed}}}").into() }
                }
            };
            self.push(frame);
        }
    }

    /// What a client resuming after `last` gets first, and its live
    /// receiver (taken under the ring's lock: nothing missed, nothing twice).
    pub fn join(&self, last: Option<u64>) -> (Vec<Frame>, broadcast::Receiver<Frame>) {
        let ring = self.ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let receiver = self.live.subscribe();
        let Some(last) = last else { return (Vec::new(), receiver) };
        let mut replay = Vec::new();
        let oldest = ring.iter().find(|frame| frame.seq > 0).map(|frame| frame.seq);
        if oldest.is_some_and(|oldest| oldest > last + 1) {
            replay.push(Frame {
                seq: 0,
                name: "reset",
                data: "{\"reason\":\"events after the given id left the replay window\"}".into(),
            });
        }
        replay.extend(ring.iter().filter(|frame| frame.seq > last).cloned());
        (replay, receiver)
    }
}
