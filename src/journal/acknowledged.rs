//! Awaiting durability: [`Durable`], a future that resolves once a record
//! is durable, for hosts on an async runtime (feature `async`).
//!
//! Owns: [`Durable`] and [`Journal::durable`].
//!
//! Must never: block the task's thread (it registers its waker with the
//! writer's wait list and returns `Pending`), resolve before the record
//! is durable, or sleep through the wake-up that makes it durable (the
//! wait list's `register` then check is the waiter's half of its
//! store-buffering fence pair: see `waitlist.rs` # Orderings).

use super::error::DurabilityError;
use super::log::Journal;
use super::shared::Shared;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

/// Resolves once record `seq` is durable (`Ok`), or the journal failed
/// before it was (`Err`). Made by [`Journal::durable`].
#[must_use = "a future does nothing unless awaited"]
pub struct Durable<'a> {
    shared: &'a Shared,
    seq: u64,
    /// An answer known when the future was made (a record never appended).
    early: Option<DurabilityError>,
}

impl core::fmt::Debug for Durable<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Durable").field("seq", &self.seq).field("early", &self.early).finish()
    }
}

impl Journal {
    /// A future that resolves once record `seq` is durable: the async form
    /// of [`Journal::wait_durable`]. Awaiting it parks no thread: the
    /// writer wakes the task when its group commit covers `seq`.
    pub fn durable(&self, seq: u64) -> Durable<'_> {
        let next = self.next_seq();
        let early = (seq == 0 || seq >= next).then_some(DurabilityError::NotAppended { seq, next });
        Durable { shared: self.shared(), seq, early }
    }
}

impl Future for Durable<'_> {
    type Output = Result<(), DurabilityError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(error) = self.early.take() {
            return Poll::Ready(Err(error));
        }
        if let Some(answer) = self.shared.durability(self.seq) {
            return Poll::Ready(answer);
        }
        self.shared.durable_waiters.register(self.seq, cx.waker().clone());
        match self.shared.durability(self.seq) {
            Some(answer) => Poll::Ready(answer),
            None => Poll::Pending,
        }
    }
}
