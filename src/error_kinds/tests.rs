//! Every variant of the errors `error_kinds.rs` maps has the kind the
//! `ErrorKind` docs give it, and every question agrees with the kind
//! (for the event receivers, their own `is_transient()` too).

use super::*;
use crate::clock::Timestamp;
use crate::error::kind::tests::{ID, SKU, check};
use crate::ids::{OrderId, SkuId};
use crate::orders::OrderState;
use crate::quantity::Quantity;

const ORDER: OrderId = OrderId(7);

#[test]
fn query_errors() {
    check(
        &[
            (QueryError::UnknownSku { sku: SKU }, NotFound),
            (QueryError::UnknownReservation { id: ID }, NotFound),
            (QueryError::UnknownOrder { order: ORDER }, NotFound),
            (QueryError::Ended { id: ID }, Ended),
            (QueryError::Expired { id: ID, deadline: Timestamp(5) }, Ended),
            (QueryError::Contended { sku: SKU, attempts: 9 }, Transient),
        ],
        |e| match e {
            QueryError::UnknownSku { .. } => "UnknownSku",
            QueryError::UnknownReservation { .. } => "UnknownReservation",
            QueryError::UnknownOrder { .. } => "UnknownOrder",
            QueryError::Ended { .. } => "Ended",
            QueryError::Expired { .. } => "Expired",
            QueryError::Contended { .. } => "Contended",
        },
        &["UnknownSku", "UnknownReservation", "UnknownOrder", "Ended", "Expired", "Contended"],
    );
}
#[test]
fn settings_subscription_and_key_errors() {
    check(
        &[(SubscribeError::EventsOff, Invalid), (SubscribeError::Capacity { capacity: 0, max: 9 }, Invalid)],
        |e| match e {
            SubscribeError::EventsOff => "EventsOff",
            SubscribeError::Capacity { .. } => "Capacity",
        },
        &["EventsOff", "Capacity"],
    );
    check(
        &[(LedgerBuildError::ZeroHoldMax, Invalid), (LedgerBuildError::EmptyKeyWindow, Invalid)],
        |e| match e {
            LedgerBuildError::ZeroHoldMax => "ZeroHoldMax",
            LedgerBuildError::EmptyKeyWindow => "EmptyKeyWindow",
        },
        &["ZeroHoldMax", "EmptyKeyWindow"],
    );
    check(
        &[(KeyError::Empty, Invalid), (KeyError::TooLong { len: 999 }, Invalid)],
        |e| match e {
            KeyError::Empty => "Empty",
            KeyError::TooLong { .. } => "TooLong",
        },
        &["Empty", "TooLong"],
    );
}
#[test]
fn receive_errors_of_a_subscription() {
    check(
        &[(RecvError::Disconnected, Closed)],
        |e| match e {
            RecvError::Disconnected => "Disconnected",
        },
        &["Disconnected"],
    );
    check(
        &[(TryRecvError::Disconnected, Closed), (TryRecvError::Empty, Transient)],
        |e| match e {
            TryRecvError::Disconnected => "Disconnected",
            TryRecvError::Empty => "Empty",
        },
        &["Disconnected", "Empty"],
    );
    check(
        &[(RecvTimeoutError::Disconnected, Closed), (RecvTimeoutError::Timeout, Transient)],
        |e| match e {
            RecvTimeoutError::Disconnected => "Disconnected",
            RecvTimeoutError::Timeout => "Timeout",
        },
        &["Disconnected", "Timeout"],
    );
}

#[test]
fn order_change_errors_take_the_kind_of_what_stopped_them() {
    let q = |units| Quantity::new(units).expect("small");
    let part = |failure| OrderChangeError::Part { order: ORDER, index: 1, reservation: ID, failure };
    check(
        &[
            (OrderChangeError::UnknownOrder { order: ORDER }, NotFound),
            (OrderChangeError::Busy { order: ORDER }, Transient),
            (OrderChangeError::Ended { order: ORDER, state: OrderState::Committed }, Ended),
            (part(PartFailure::Lapsed { deadline: Timestamp(5) }), Ended),
            (part(PartFailure::Ended), Ended),
            (part(PartFailure::Shorted { held: q(1), granted: q(2) }), Insufficient),
            (part(PartFailure::Waiting { outstanding: q(2) }), Insufficient),
            (part(PartFailure::NoDeadline), Conflict),
            (part(PartFailure::BeyondMaximum { latest: Timestamp(9) }), Limit),
            (OrderChangeError::ZeroDuration { order: ORDER }, Invalid),
        ],
        |e| match e {
            OrderChangeError::UnknownOrder { .. } => "UnknownOrder",
            OrderChangeError::Busy { .. } => "Busy",
            OrderChangeError::Ended { .. } => "Ended",
            OrderChangeError::Part { failure, .. } => match failure {
                PartFailure::Lapsed { .. } => "Part/Lapsed",
                PartFailure::Ended => "Part/Ended",
                PartFailure::Shorted { .. } => "Part/Shorted",
                PartFailure::Waiting { .. } => "Part/Waiting",
                PartFailure::NoDeadline => "Part/NoDeadline",
                PartFailure::BeyondMaximum { .. } => "Part/BeyondMaximum",
            },
            OrderChangeError::ZeroDuration { .. } => "ZeroDuration",
        },
        &[
            "UnknownOrder",
            "Busy",
            "Ended",
            "Part/Lapsed",
            "Part/Ended",
            "Part/Shorted",
            "Part/Waiting",
            "Part/NoDeadline",
            "Part/BeyondMaximum",
            "ZeroDuration",
        ],
    );
}

#[test]
fn kit_errors() {
    let (kit, sku) = (SkuId(9), SKU);
    check(
        &[
            (KitError::Empty { kit }, Invalid),
            (KitError::TooManyComponents { kit, components: 33, max: 32 }, Invalid),
            (KitError::InvalidQuantity { kit, sku, quantity: 0 }, Invalid),
            (KitError::DuplicateComponent { kit, sku }, Invalid),
            (KitError::UnknownComponent { kit, sku }, NotFound),
            (KitError::AlreadyDefined { kit }, Conflict),
            (KitError::CatalogFull { kit, max: 8 }, Limit),
        ],
        |e| match e {
            KitError::Empty { .. } => "Empty",
            KitError::TooManyComponents { .. } => "TooManyComponents",
            KitError::InvalidQuantity { .. } => "InvalidQuantity",
            KitError::DuplicateComponent { .. } => "DuplicateComponent",
            KitError::UnknownComponent { .. } => "UnknownComponent",
            KitError::AlreadyDefined { .. } => "AlreadyDefined",
            KitError::CatalogFull { .. } => "CatalogFull",
        },
        &[
            "Empty",
            "TooManyComponents",
            "InvalidQuantity",
            "DuplicateComponent",
            "UnknownComponent",
            "AlreadyDefined",
            "CatalogFull",
        ],
    );
}
