//! A [`Subscription`] as a `futures_core::Stream` (the `async` feature):
//! the same deliveries as [`Subscription::recv`], awaited instead of
//! blocked on, on any executor.
//!
//! Owns: the `Stream` impl.
//!
//! Must never: lose a wake-up, or block. A poll takes what is ready
//! (dispatching pending events itself when the channel is empty, as
//! [`Subscription::try_recv`] does); if nothing is, it registers the
//! task's waker on the subscription's [`Link`](super::link::Link) and
//! looks at the channel again before returning `Pending` (the hand-off of
//! `src/waker.rs`); the outlet wakes the link after every delivery it
//! sends, and when it goes (the stream then ends).
//!
//! What wakes a waiting stream is a delivery, and deliveries are
//! dispatched by publishers (every command that changes a SKU) and by
//! receivers: a stream whose next event waits at a gap (a publisher
//! stalled between its change and its publish) gets it when the stalled
//! publisher publishes, or at the next change or receive anywhere in the
//! ledger. A host that wants the hub's gap timer to run while the whole
//! ledger is idle polls (or `try_recv`s) from time to time, as the blocking
//! `recv` does every 16 ms.

use super::error::TryRecvError;
use super::subscription::{Delivery, Subscription};
use core::pin::Pin;
use core::task::{Context, Poll};
use crossbeam::channel;

/// Yields each [`Delivery`] in order; ends (`None`) once the ledger is
/// dropped and everything it sent has been received.
///
/// ```
/// use futures_util::StreamExt;
/// use stockroom::{AllocationPolicy, Change, Delivery, Ledger, LotId, NewLot, SkuId};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let ledger = Ledger::builder().events(true).build()?;
/// let mut events = ledger.subscribe(64)?;
/// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
/// ledger.receive(SkuId(1), NewLot::new(LotId(1), 5))?;
/// let Some(Delivery::Event(defined)) = events.next().await else { panic!("an event") };
/// assert!(matches!(defined.change, Change::Defined(_)));
/// let Some(Delivery::Event(received)) = events.next().await else { panic!("an event") };
/// assert!(matches!(received.change, Change::Received(_)));
/// drop(ledger);
/// assert!(events.next().await.is_none(), "the ledger is gone: the stream ends");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
impl<E> futures_core::Stream for Subscription<E> {
    type Item = Delivery<E>;

    fn poll_next(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Delivery<E>>> {
        match self.try_recv() {
            Ok(delivery) => return Poll::Ready(Some(delivery)),
            Err(TryRecvError::Disconnected) => return Poll::Ready(None),
            Err(TryRecvError::Empty) => {}
        }
        self.closed.wakers.register(context.waker());
        // The second look of the hand-off protocol (`src/waker.rs`): a
        // delivery sent before the registration is seen here, one sent
        // after it wakes the task.
        match self.receiver.try_recv() {
            Ok(delivery) => Poll::Ready(Some(delivery)),
            Err(channel::TryRecvError::Disconnected) => Poll::Ready(None),
            Err(channel::TryRecvError::Empty) => Poll::Pending,
        }
    }
}
