//! The receive errors of a [`Subscription`](super::Subscription): one enum
//! per receive operation, variants in precedence order, each with
//! `is_transient()`.
//!
//! Owns: [`RecvError`], [`TryRecvError`], [`RecvTimeoutError`].
//!
//! Must never: carry anything but why nothing was received.

/// [`Subscription::recv`](super::Subscription::recv) failed: the hub was
/// dropped and everything it sent has been received.
///
/// Final: no event will ever arrive on this subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The hub was dropped (the ledger with it) and the channel is drained.
    #[error("the event hub was dropped and every event it sent has been received")]
    Disconnected,
}

impl RecvError {
    /// Always false: a disconnected subscription stays disconnected.
    pub fn is_transient(&self) -> bool {
        false
    }
}

/// [`Subscription::try_recv`](super::Subscription::try_recv) found nothing
/// to return.
///
/// Variants are in precedence order: a disconnected, drained subscription
/// answers [`Disconnected`](TryRecvError::Disconnected), never `Empty`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// The hub was dropped and the channel is drained. Final.
    #[error("the event hub was dropped and every event it sent has been received")]
    Disconnected,
    /// Nothing is ready now. Transient: try again later.
    #[error("no event is ready")]
    Empty,
}

impl TryRecvError {
    /// True for [`TryRecvError::Disconnected`].
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TryRecvError::Disconnected)
    }

    /// True for [`TryRecvError::Empty`].
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// True when trying again may succeed ([`TryRecvError::Empty`]).
    pub fn is_transient(&self) -> bool {
        self.is_empty()
    }
}

/// [`Subscription::recv_timeout`](super::Subscription::recv_timeout)
/// returned without an event.
///
/// Variants are in precedence order: a disconnected, drained subscription
/// answers [`Disconnected`](RecvTimeoutError::Disconnected) at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecvTimeoutError {
    /// The hub was dropped and the channel is drained. Final.
    #[error("the event hub was dropped and every event it sent has been received")]
    Disconnected,
    /// Nothing arrived within the timeout. Transient.
    #[error("no event arrived within the timeout")]
    Timeout,
}

impl RecvTimeoutError {
    /// True for [`RecvTimeoutError::Disconnected`].
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvTimeoutError::Disconnected)
    }

    /// True for [`RecvTimeoutError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// True when waiting again may succeed ([`RecvTimeoutError::Timeout`]).
    pub fn is_transient(&self) -> bool {
        self.is_timeout()
    }
}
