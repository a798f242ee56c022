//! Every variant of every error type of the value layer has the kind the
//! `ErrorKind` docs give it, and every question agrees with the kind; and
//! [`check`], which the error types of the higher layers use for the same.
//!
//! Each test lists one sample per variant with its expected kind, and names
//! each sample's variant with a `match` that has no wildcard: a new variant
//! does not compile there until it is named, and then fails the coverage
//! check until it has a sample and a kind.

use super::*;
use crate::clock::Timestamp;
use crate::ids::{LotId, OrderId, ReservationId, SkuId};
use crate::lot::LotAttribute;
use crate::quantity::Quantity;
use ErrorKind::{Closed, Limit, System};
use std::collections::BTreeSet;
use std::error::Error;
use std::time::Duration;

pub(crate) const SKU: SkuId = SkuId(1);
const LOT: LotId = LotId(2);
pub(crate) const ID: ReservationId = ReservationId::new(SkuId(1), 3);
const ORDER: OrderId = OrderId(7);

fn q(units: u64) -> Quantity {
    Quantity::new(units).expect("small")
}

/// What [`check`] asks of an error: its kind and its six answers
/// (`is_transient`, `is_insufficient`, `is_not_found`, `is_ended`,
/// `is_conflict`, `is_invalid`, in that order). `questions!` implements it.
pub(crate) trait Answers: fmt::Debug {
    fn kind_of(&self) -> ErrorKind;
    fn answers(&self) -> [bool; 6];
}

/// Checks `cases` (one per variant, named by `variant`, a `match` without
/// a wildcard) against their kinds, that they cover `variants` exactly,
/// and that every question agrees with the kind.
pub(crate) fn check<E: Answers>(cases: &[(E, ErrorKind)], variant: impl Fn(&E) -> &'static str, variants: &[&str]) {
    let named: BTreeSet<&str> = cases.iter().map(|(error, _)| variant(error)).collect();
    let all: BTreeSet<&str> = variants.iter().copied().collect();
    assert_eq!(named, all, "every variant has a sample (and only those)");
    for (error, expected) in cases {
        assert_eq!(error.kind_of(), *expected, "{error:?}");
        let [transient, insufficient, not_found, ended, conflict, invalid] = error.answers();
        assert_eq!(transient, *expected == Transient, "is_transient of {error:?}");
        assert_eq!(insufficient, *expected == Insufficient, "is_insufficient of {error:?}");
        assert_eq!(not_found, *expected == NotFound, "is_not_found of {error:?}");
        assert_eq!(ended, *expected == Ended, "is_ended of {error:?}");
        assert_eq!(conflict, *expected == Conflict, "is_conflict of {error:?}");
        assert_eq!(invalid, *expected == Invalid, "is_invalid of {error:?}");
    }
}

/// The chain of messages from `error` down its sources.
pub(crate) fn chain(error: &(dyn Error + 'static)) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut next = error.source();
    while let Some(cause) = next {
        assert!(messages.len() < 8, "a source chain ends");
        messages.push(cause.to_string());
        next = cause.source();
    }
    messages
}

#[test]
fn define_errors() {
    check(
        &[(DefineError::AlreadyDefined { sku: SKU }, Conflict), (DefineError::CatalogFull { sku: SKU, max: 8 }, Limit)],
        |e| match e {
            DefineError::AlreadyDefined { .. } => "AlreadyDefined",
            DefineError::CatalogFull { .. } => "CatalogFull",
        },
        &["AlreadyDefined", "CatalogFull"],
    );
}

#[test]
fn receive_errors() {
    check(
        &[
            (ReceiveError::ZeroQuantity { sku: SKU, lot: LOT }, Invalid),
            (ReceiveError::QuantityTooLarge { sku: SKU, lot: LOT, quantity: u64::MAX }, Invalid),
            (
                ReceiveError::AttributeTooLong {
                    sku: SKU,
                    lot: LOT,
                    field: LotAttribute::Supplier,
                    len: 300,
                    max: 256,
                },
                Invalid,
            ),
            (ReceiveError::UnknownSku { sku: SKU }, NotFound),
            (ReceiveError::DuplicateLot { sku: SKU, lot: LOT }, Conflict),
            (ReceiveError::Overflow { sku: SKU, quantity: 5 }, Limit),
            (ReceiveError::TooManyLots { sku: SKU, max: 4 }, Limit),
            (
                ReceiveError::LocationOutOfRange {
                    sku: SKU,
                    lot: LOT,
                    location: crate::ids::LocationId(u32::MAX),
                    max: crate::ids::LOCATION_MAX,
                },
                Invalid,
            ),
            (ReceiveError::Contended { sku: SKU, attempts: 9 }, Transient),
        ],
        |e| match e {
            ReceiveError::ZeroQuantity { .. } => "ZeroQuantity",
            ReceiveError::QuantityTooLarge { .. } => "QuantityTooLarge",
            ReceiveError::AttributeTooLong { .. } => "AttributeTooLong",
            ReceiveError::UnknownSku { .. } => "UnknownSku",
            ReceiveError::DuplicateLot { .. } => "DuplicateLot",
            ReceiveError::Overflow { .. } => "Overflow",
            ReceiveError::TooManyLots { .. } => "TooManyLots",
            ReceiveError::LocationOutOfRange { .. } => "LocationOutOfRange",
            ReceiveError::Contended { .. } => "Contended",
        },
        &[
            "ZeroQuantity",
            "QuantityTooLarge",
            "AttributeTooLong",
            "UnknownSku",
            "DuplicateLot",
            "Overflow",
            "TooManyLots",
            "LocationOutOfRange",
            "Contended",
        ],
    );
}

/// One sample of every `AllocateError` variant, with its kind.
pub(crate) fn allocate_cases() -> Vec<(AllocateError, ErrorKind)> {
    let (day, hour) = (Duration::from_secs(86_400), Duration::from_secs(3_600));
    vec![
        (AllocateError::ZeroQuantity { sku: SKU }, Invalid),
        (AllocateError::QuantityTooLarge { sku: SKU, quantity: u64::MAX }, Invalid),
        (AllocateError::ZeroHold { sku: SKU }, Invalid),
        (AllocateError::HoldTooLong { sku: SKU, requested: day, max: hour }, Invalid),
        (AllocateError::UnknownSku { sku: SKU }, NotFound),
        (AllocateError::VersionMismatch { sku: SKU, expected: 1, current: 2 }, Conflict),
        (AllocateError::Insufficient { sku: SKU, requested: q(5), available: q(2) }, Insufficient),
        (AllocateError::Kit { sku: SKU }, Conflict),
        (AllocateError::BackorderQueueFull { sku: SKU, max: 1_024 }, Limit),
        (AllocateError::BackorderOnTake { sku: SKU }, Invalid),
        (
            AllocateError::InvalidLocations {
                sku: SKU,
                problem: crate::error::LocationsProblem::TooMany { count: 17, max: 16 },
            },
            Invalid,
        ),
        (AllocateError::BackorderWithLocations { sku: SKU }, Invalid),
        (AllocateError::Contended { sku: SKU, attempts: 9 }, Transient),
    ]
}

fn allocate_variant(error: &AllocateError) -> &'static str {
    match error {
        AllocateError::ZeroQuantity { .. } => "ZeroQuantity",
        AllocateError::QuantityTooLarge { .. } => "QuantityTooLarge",
        AllocateError::ZeroHold { .. } => "ZeroHold",
        AllocateError::HoldTooLong { .. } => "HoldTooLong",
        AllocateError::UnknownSku { .. } => "UnknownSku",
        AllocateError::VersionMismatch { .. } => "VersionMismatch",
        AllocateError::Insufficient { .. } => "Insufficient",
        AllocateError::Kit { .. } => "Kit",
        AllocateError::BackorderQueueFull { .. } => "BackorderQueueFull",
        AllocateError::BackorderOnTake { .. } => "BackorderOnTake",
        AllocateError::InvalidLocations { .. } => "InvalidLocations",
        AllocateError::BackorderWithLocations { .. } => "BackorderWithLocations",
        AllocateError::Contended { .. } => "Contended",
    }
}

const ALLOCATE_VARIANTS: [&str; 13] = [
    "ZeroQuantity",
    "QuantityTooLarge",
    "ZeroHold",
    "HoldTooLong",
    "UnknownSku",
    "VersionMismatch",
    "Insufficient",
    "Kit",
    "BackorderQueueFull",
    "BackorderOnTake",
    "InvalidLocations",
    "BackorderWithLocations",
    "Contended",
];

#[test]
fn allocate_errors() {
    check(&allocate_cases(), allocate_variant, &ALLOCATE_VARIANTS);
}

#[test]
fn release_errors() {
    check(
        &[
            (ReleaseError::UnknownSku { id: ID }, NotFound),
            (ReleaseError::UnknownReservation { id: ID }, NotFound),
            (ReleaseError::Ended { id: ID }, Ended),
            (ReleaseError::Expired { id: ID, deadline: Timestamp(5) }, Ended),
            (ReleaseError::OrderPart { id: ID, order: ORDER }, Conflict),
            (ReleaseError::Contended { id: ID, attempts: 9 }, Transient),
        ],
        |e| match e {
            ReleaseError::UnknownSku { .. } => "UnknownSku",
            ReleaseError::UnknownReservation { .. } => "UnknownReservation",
            ReleaseError::Ended { .. } => "Ended",
            ReleaseError::Expired { .. } => "Expired",
            ReleaseError::OrderPart { .. } => "OrderPart",
            ReleaseError::Contended { .. } => "Contended",
        },
        &["UnknownSku", "UnknownReservation", "Ended", "Expired", "OrderPart", "Contended"],
    );
}

#[test]
fn commit_errors() {
    check(
        &[
            (CommitError::ZeroQuantity { id: ID }, Invalid),
            (CommitError::QuantityTooLarge { id: ID, quantity: u64::MAX }, Invalid),
            (CommitError::UnknownSku { id: ID }, NotFound),
            (CommitError::UnknownReservation { id: ID }, NotFound),
            (CommitError::Ended { id: ID }, Ended),
            (CommitError::Expired { id: ID, deadline: Timestamp(5) }, Ended),
            (CommitError::Waiting { id: ID, outstanding: q(2) }, Insufficient),
            (CommitError::ExceedsHeld { id: ID, requested: q(5), held: q(3) }, Insufficient),
            (CommitError::OrderPart { id: ID, order: ORDER }, Conflict),
            (CommitError::Contended { id: ID, attempts: 9 }, Transient),
        ],
        |e| match e {
            CommitError::ZeroQuantity { .. } => "ZeroQuantity",
            CommitError::QuantityTooLarge { .. } => "QuantityTooLarge",
            CommitError::UnknownSku { .. } => "UnknownSku",
            CommitError::UnknownReservation { .. } => "UnknownReservation",
            CommitError::Ended { .. } => "Ended",
            CommitError::Expired { .. } => "Expired",
            CommitError::Waiting { .. } => "Waiting",
            CommitError::ExceedsHeld { .. } => "ExceedsHeld",
            CommitError::OrderPart { .. } => "OrderPart",
            CommitError::Contended { .. } => "Contended",
        },
        &[
            "ZeroQuantity",
            "QuantityTooLarge",
            "UnknownSku",
            "UnknownReservation",
            "Ended",
            "Expired",
            "Waiting",
            "ExceedsHeld",
            "OrderPart",
            "Contended",
        ],
    );
}

#[test]
fn adjust_errors() {
    let out_of_range = |delta| AdjustError::OutOfRange { sku: SKU, lot: LOT, on_hand: q(10), delta };
    check(
        &[
            (AdjustError::ZeroDelta { sku: SKU, lot: LOT }, Invalid),
            (AdjustError::DeltaTooLarge { sku: SKU, lot: LOT, delta: i64::MIN }, Invalid),
            (AdjustError::UnknownSku { sku: SKU }, NotFound),
            (AdjustError::UnknownLot { sku: SKU, lot: LOT }, NotFound),
            (AdjustError::VersionMismatch { sku: SKU, expected: 1, current: 2 }, Conflict),
            (out_of_range(-11), Insufficient),
            (out_of_range(Quantity::MAX.get() as i64), Limit),
            (AdjustError::Contended { sku: SKU, attempts: 9 }, Transient),
        ],
        |e| match e {
            AdjustError::ZeroDelta { .. } => "ZeroDelta",
            AdjustError::DeltaTooLarge { .. } => "DeltaTooLarge",
            AdjustError::UnknownSku { .. } => "UnknownSku",
            AdjustError::UnknownLot { .. } => "UnknownLot",
            AdjustError::VersionMismatch { .. } => "VersionMismatch",
            AdjustError::OutOfRange { .. } => "OutOfRange",
            AdjustError::Contended { .. } => "Contended",
        },
        &["ZeroDelta", "DeltaTooLarge", "UnknownSku", "UnknownLot", "VersionMismatch", "OutOfRange", "Contended"],
    );
}

#[test]
fn extend_errors() {
    check(
        &[
            (ExtendError::ZeroDuration { id: ID }, Invalid),
            (ExtendError::UnknownSku { id: ID }, NotFound),
            (ExtendError::UnknownReservation { id: ID }, NotFound),
            (ExtendError::Ended { id: ID }, Ended),
            (ExtendError::Expired { id: ID, deadline: Timestamp(5) }, Ended),
            (ExtendError::NoDeadline { id: ID }, Conflict),
            (ExtendError::BeyondMaximum { id: ID, requested: Timestamp(9), latest: Timestamp(8) }, Limit),
            (ExtendError::OrderPart { id: ID, order: ORDER }, Conflict),
            (ExtendError::Contended { id: ID, attempts: 9 }, Transient),
        ],
        |e| match e {
            ExtendError::ZeroDuration { .. } => "ZeroDuration",
            ExtendError::UnknownSku { .. } => "UnknownSku",
            ExtendError::UnknownReservation { .. } => "UnknownReservation",
            ExtendError::Ended { .. } => "Ended",
            ExtendError::Expired { .. } => "Expired",
            ExtendError::NoDeadline { .. } => "NoDeadline",
            ExtendError::BeyondMaximum { .. } => "BeyondMaximum",
            ExtendError::OrderPart { .. } => "OrderPart",
            ExtendError::Contended { .. } => "Contended",
        },
        &[
            "ZeroDuration",
            "UnknownSku",
            "UnknownReservation",
            "Ended",
            "Expired",
            "NoDeadline",
            "BeyondMaximum",
            "OrderPart",
            "Contended",
        ],
    );
}

#[test]
fn expire_errors() {
    check(
        &[(ExpireError::InFuture { now: Timestamp(9), clock: Timestamp(5) }, Invalid)],
        |e| match e {
            ExpireError::InFuture { .. } => "InFuture",
        },
        &["InFuture"],
    );
}

#[test]
fn threshold_errors() {
    check(
        &[
            (ThresholdError::TooLarge { sku: SKU, threshold: u64::MAX }, Invalid),
            (ThresholdError::UnknownSku { sku: SKU }, NotFound),
            (ThresholdError::Contended { sku: SKU, attempts: 9 }, Transient),
        ],
        |e| match e {
            ThresholdError::TooLarge { .. } => "TooLarge",
            ThresholdError::UnknownSku { .. } => "UnknownSku",
            ThresholdError::Contended { .. } => "Contended",
        },
        &["TooLarge", "UnknownSku", "Contended"],
    );
}

/// An order's own refusals, and one refused line per kind a line can have.
fn order_cases() -> Vec<(OrderError, ErrorKind)> {
    let mut cases = vec![
        (OrderError::Empty, Invalid),
        (OrderError::TooManyLines { lines: 300, max: 256 }, Invalid),
        (OrderError::ZeroHold, Invalid),
        (OrderError::HoldTooLong { requested: Duration::from_secs(9), max: Duration::from_secs(1) }, Invalid),
    ];
    for (index, (error, kind)) in allocate_cases().into_iter().enumerate() {
        cases.push((OrderError::Line { index, error }, kind));
    }
    cases
}

#[test]
fn order_errors_take_a_refused_line_s_kind() {
    check(
        &order_cases(),
        |e| match e {
            OrderError::Empty => "Empty",
            OrderError::TooManyLines { .. } => "TooManyLines",
            OrderError::ZeroHold => "ZeroHold",
            OrderError::HoldTooLong { .. } => "HoldTooLong",
            OrderError::Line { .. } => "Line",
        },
        &["Empty", "TooManyLines", "ZeroHold", "HoldTooLong", "Line"],
    );
}

/// One sample of every command error, wrapping a sample of each variant
/// of its cause.
pub(crate) fn command_cases() -> Vec<(CommandError, ErrorKind)> {
    let mut cases: Vec<(CommandError, ErrorKind)> = vec![
        (DefineError::AlreadyDefined { sku: SKU }.into(), Conflict),
        (ReceiveError::DuplicateLot { sku: SKU, lot: LOT }.into(), Conflict),
        (ReceiveError::TooManyLots { sku: SKU, max: 4 }.into(), Limit),
        (ReleaseError::Expired { id: ID, deadline: Timestamp(5) }.into(), Ended),
        (ReleaseError::Contended { id: ID, attempts: 9 }.into(), Transient),
        (CommitError::ExceedsHeld { id: ID, requested: q(5), held: q(3) }.into(), Insufficient),
        (AdjustError::UnknownLot { sku: SKU, lot: LOT }.into(), NotFound),
        (ExtendError::NoDeadline { id: ID }.into(), Conflict),
        (ExpireError::InFuture { now: Timestamp(9), clock: Timestamp(5) }.into(), Invalid),
        (ThresholdError::Contended { sku: SKU, attempts: 9 }.into(), Transient),
        (crate::orders::OrderChangeError::Busy { order: ORDER }.into(), Transient),
        (crate::orders::OrderChangeError::UnknownOrder { order: ORDER }.into(), NotFound),
        (crate::kits::KitError::AlreadyDefined { kit: SKU }.into(), Conflict),
        (
            crate::returns::ReturnError::MoreThanLeft { sku: SKU, lot: LOT, quantity: q(3), left: q(1) }.into(),
            Insufficient,
        ),
        (CommandError::OutcomeLost, System),
    ];
    cases.extend(allocate_cases().into_iter().map(|(error, kind)| (error.into(), kind)));
    cases.extend(order_cases().into_iter().map(|(error, kind)| (error.into(), kind)));
    cases
}

#[test]
fn command_errors_take_their_cause_s_kind() {
    check(
        &command_cases(),
        |e| match e {
            CommandError::Define(_) => "Define",
            CommandError::Receive(_) => "Receive",
            CommandError::Allocate(_) => "Allocate",
            CommandError::Release(_) => "Release",
            CommandError::Commit(_) => "Commit",
            CommandError::Adjust(_) => "Adjust",
            CommandError::Extend(_) => "Extend",
            CommandError::Expire(_) => "Expire",
            CommandError::Order(_) => "Order",
            CommandError::Threshold(_) => "Threshold",
            CommandError::OrderChange(_) => "OrderChange",
            CommandError::Kit(_) => "Kit",
            CommandError::Return(_) => "Return",
            CommandError::OutcomeLost => "OutcomeLost",
        },
        &[
            "Define",
            "Receive",
            "Allocate",
            "Release",
            "Commit",
            "Adjust",
            "Extend",
            "Expire",
            "Order",
            "Threshold",
            "OrderChange",
            "Kit",
            "Return",
            "OutcomeLost",
        ],
    );
}

#[test]
fn kinds_print_their_name() {
    let names: Vec<&str> = ErrorKind::ALL.iter().map(|kind| kind.as_str()).collect();
    assert_eq!(
        names,
        ["invalid", "not found", "conflict", "ended", "insufficient", "limit", "transient", "closed", "system"]
    );
    for kind in ErrorKind::ALL {
        // No wildcard: a new kind must be added to `ALL` (and so here).
        let listed = match kind {
            Invalid | NotFound | Conflict | Ended | Insufficient | Limit | Transient | Closed | System => kind,
        };
        assert_eq!(listed.to_string(), kind.as_str());
    }
}

#[test]
fn quantity_errors() {
    let too_large = Quantity::new(u64::MAX).expect_err("past the maximum");
    check(
        &[(too_large, Invalid)],
        |_: &QuantityTooLarge| "QuantityTooLarge", // a struct: one shape
        &["QuantityTooLarge"],
    );
}

#[test]
fn command_and_order_errors_hand_out_their_cause_as_the_source_and_do_not_repeat_it() {
    let insufficient = AllocateError::Insufficient { sku: SKU, requested: q(5), available: q(2) };
    let line = OrderError::Line { index: 1, error: insufficient.clone() };
    let command = CommandError::from(line.clone());
    assert_eq!(
        chain(&command),
        ["the order was refused", "order line 1 was refused", "sku:1: 5 requested, 2 available"]
    );
    assert_eq!(command.source().and_then(|e| e.downcast_ref::<OrderError>()), Some(&line));
    assert_eq!(line.source().and_then(|e| e.downcast_ref::<AllocateError>()), Some(&insufficient));
    assert!(insufficient.source().is_none(), "a command's own error is the root");
    // Every command error's source is its cause, and no message repeats its
    // cause's. `OutcomeLost` is the one without a cause: no command refused
    // it (a recovery recorded it).
    assert!(CommandError::OutcomeLost.source().is_none());
    for (error, _) in command_cases().into_iter().filter(|(error, _)| *error != CommandError::OutcomeLost) {
        let messages = chain(&error);
        assert!(messages.len() >= 2, "{error:?} has a source");
        for pair in messages.windows(2) {
            assert!(!pair[0].contains(&pair[1]), "{:?} repeats its cause {:?}", pair[0], pair[1]);
        }
    }
}
