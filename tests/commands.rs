//! Unit tests of every command against `docs/semantics.md`: each error
//! variant of every error enum is produced with its exact value (and, where
//! several apply, the first in precedence order wins), and a refused command
//! leaves every SKU's snapshot — version and data — unchanged. Also the
//! allocation rules (FEFO across lots, FIFO, per-request policy, minimum
//! shelf life, expired lots skipped as the clock moves, partial fills),
//! commit and adjustment details, `is_transient`, serde round trips,
//! `execute` agreeing with the direct calls, and `Ledger: Send + Sync`.
//!
//! `Contended` variants need 2^16 lost compare-and-swap races in a row and
//! cannot be produced deterministically; only their `is_transient` and
//! serde behaviour are tested here.

mod common;

use common::manual_ledger;
use std::fmt::Debug;
use std::time::Duration;
use stockroom::{
    AdjustError, Adjusted, AdjustmentReason, AllocateError, AllocateRequest, Allocation, AllocationPolicy, Command,
    CommandError, CommitError, Committed, DefineError, FillMode, Ledger, Line, Lines, LotAttribute, LotAttributes,
    LotId, LotQuantities, NewLot, Outcome, Quantity, QueryError, ReceiveError, Received, ReleaseError, Released,
    Reservation, ReservationId, Sale, Shortfall, SkuDefined, SkuId, SnapshotData, Timestamp,
};

const SKU: SkuId = SkuId(1);
const OTHER: SkuId = SkuId(2);
const UNDEFINED: SkuId = SkuId(99);
const MAX: u64 = Quantity::MAX.get();

fn qty(units: u64) -> Quantity {
    Quantity::new(units).expect("test quantities are in range")
}

fn line(lot: u64, units: u64) -> Line {
    Line { lot: LotId(lot), quantity: qty(units) }
}

fn res(seq: u64) -> ReservationId {
    ReservationId::new(SKU, seq)
}

/// A lot's counters (the struct may grow: built from its default).
fn quantities(received: u64, adjusted: i64, available: u64, held: u64, committed: u64) -> LotQuantities {
    let mut quantities = LotQuantities::default();
    quantities.received = qty(received);
    quantities.adjusted = adjusted;
    quantities.available = qty(available);
    quantities.held = qty(held);
    quantities.committed = qty(committed);
    quantities
}

/// Every defined SKU's snapshot data, sorted by SKU.
fn everything(ledger: &Ledger) -> Vec<SnapshotData> {
    let mut skus = ledger.skus();
    skus.sort();
    skus.into_iter().map(|sku| ledger.snapshot(sku).expect("a listed SKU has a snapshot").to_data()).collect()
}

fn data(ledger: &Ledger, sku: SkuId) -> SnapshotData {
    ledger.snapshot(sku).expect("the SKU is defined").to_data()
}

fn lot_quantities(ledger: &Ledger, sku: SkuId, lot: u64) -> LotQuantities {
    ledger.snapshot(sku).expect("the SKU is defined").lot(LotId(lot)).expect("the lot exists").quantities
}

/// Runs `command`, asserts it is refused with exactly `expected`, and that
/// no SKU's snapshot (version or contents) changed and the audit is clean.
#[track_caller]
fn assert_refused<T: Debug, E: Debug + PartialEq>(
    ledger: &Ledger,
    expected: E,
    command: impl FnOnce(&Ledger) -> Result<T, E>,
) {
    let before = everything(ledger);
    match command(ledger) {
        Ok(outcome) => panic!("expected refusal {expected:?}, got success {outcome:?}"),
        Err(error) => assert_eq!(error, expected, "wrong refusal"),
    }
    assert_eq!(everything(ledger), before, "a refused command changed a snapshot");
    assert!(ledger.audit().is_clean(), "audit after refusal: {:?}", ledger.audit().violations);
}

/// A ledger at t = 1000 with SKU 1 (FEFO) and SKU 2 (FIFO) defined, empty.
fn ledger() -> Ledger {
    let (ledger, _clock) = manual_ledger(1_000);
    ledger.define_sku(SKU, AllocationPolicy::Fefo).expect("define SKU 1");
    ledger.define_sku(OTHER, AllocationPolicy::Fifo).expect("define SKU 2");
    ledger
}

/// `ledger()` with lot 1 (10 units) and lot 2 (5 units) of SKU 1.
fn stocked() -> Ledger {
    let ledger = ledger();
    ledger.receive(SKU, NewLot::new(LotId(1), 10)).expect("receive lot 1");
    ledger.receive(SKU, NewLot::new(LotId(2), 5)).expect("receive lot 2");
    ledger
}

// ---------------------------------------------------------------- define

#[test]
fn define_sku_creates_an_empty_sku_at_version_zero() {
    let (ledger, _clock) = manual_ledger(0);
    assert_eq!(ledger.define_sku(SKU, AllocationPolicy::Fifo), Ok(SkuDefined::new(SKU, 0)));
    assert_eq!(
        data(&ledger, SKU),
        SnapshotData {
            sku: SKU,
            version: 0,
            policy: AllocationPolicy::Fifo,
            lots: vec![],
            reservations: vec![],
            totals: LotQuantities::default(),
        }
    );
    assert_eq!(ledger.skus(), vec![SKU]);
}

#[test]
fn define_existing_sku_is_already_defined_and_keeps_its_state() {
    let ledger = stocked();
    assert_refused(&ledger, DefineError::AlreadyDefined { sku: SKU }, |l| l.define_sku(SKU, AllocationPolicy::Fifo));
    assert_eq!(data(&ledger, SKU).policy, AllocationPolicy::Fefo, "the first definition's policy stays");
}

// ---------------------------------------------------------------- receive

#[test]
fn receive_adds_a_lot_received_now_unless_the_lot_says_when() {
    let ledger = ledger();
    let first = ledger.receive(SKU, NewLot::new(LotId(7), 12)).expect("receive lot 7");
    assert_eq!(first, Received::new(SKU, LotId(7), Timestamp(1_000), 1));
    let dated = NewLot::new(LotId(8), 3).received_at(Timestamp(5)).expires_at(Timestamp(9_000));
    let second = ledger.receive(SKU, dated).expect("receive lot 8");
    assert_eq!(second, Received::new(SKU, LotId(8), Timestamp(5), 2));

    let snapshot = data(&ledger, SKU);
    assert_eq!(snapshot.version, 2);
    let lot = snapshot.lots.iter().find(|lot| lot.id == LotId(7)).expect("lot 7 is in the snapshot");
    assert_eq!(lot.quantities, quantities(12, 0, 12, 0, 0));
    assert_eq!(lot.expires_at, None);
    assert_eq!(snapshot.totals.received, qty(15));
    assert_eq!(snapshot.totals.available, qty(15));
}

#[test]
fn receive_keeps_lot_attributes() {
    let ledger = ledger();
    let attributes = LotAttributes::default().supplier("mill");
    ledger.receive(SKU, NewLot::new(LotId(1), 1).attributes(attributes.clone())).expect("receive");
    let lot = ledger.snapshot(SKU).expect("defined").lot(LotId(1)).expect("lot 1");
    assert_eq!(lot.attributes.as_deref(), Some(&attributes));
}

#[test]
fn receive_of_a_supplier_past_its_maximum_is_attribute_too_long() {
    let ledger = stocked();
    let max = LotAttributes::SUPPLIER_LEN_MAX;
    let supplier = |len: usize| LotAttributes::default().supplier("s".repeat(len));
    let before = data(&ledger, SKU);
    for len in [1 << 20, max + 1] {
        let refused =
            ReceiveError::AttributeTooLong { sku: SKU, lot: LotId(3), field: LotAttribute::Supplier, len, max };
        assert_refused(&ledger, refused.clone(), |l| {
            l.receive(SKU, NewLot::new(LotId(3), 5).attributes(supplier(len)))
        });
        assert!(refused.is_invalid() && !refused.to_string().contains("sss"), "{refused}: the length, not the text");
    }
    assert_eq!(data(&ledger, SKU), before, "the SKU is unchanged: same version, lots and totals");
    // Precedence: input checks in field order (the quantity first), all before the lookup.
    assert_refused(&ledger, ReceiveError::ZeroQuantity { sku: SKU, lot: LotId(3) }, |l| {
        l.receive(SKU, NewLot::new(LotId(3), 0).attributes(supplier(max + 1)))
    });
    let undefined = SkuId(77);
    let refused = ReceiveError::AttributeTooLong {
        sku: undefined,
        lot: LotId(3),
        field: LotAttribute::Supplier,
        len: max + 1,
        max,
    };
    assert_refused(&ledger, refused, |l| l.receive(undefined, NewLot::new(LotId(3), 5).attributes(supplier(max + 1))));
    // At the maximum it is accepted, and kept.
    ledger.receive(SKU, NewLot::new(LotId(3), 5).attributes(supplier(max))).expect("a supplier at its maximum");
    let lot = ledger.snapshot(SKU).expect("defined").lot(LotId(3)).expect("lot 3");
    assert_eq!(lot.attributes.as_deref(), Some(&supplier(max)));
}

#[test]
fn receive_zero_units_is_zero_quantity() {
    let ledger = ledger();
    assert_refused(&ledger, ReceiveError::ZeroQuantity { sku: SKU, lot: LotId(1) }, |l| {
        l.receive(SKU, NewLot::new(LotId(1), 0))
    });
}

#[test]
fn receive_more_than_max_is_quantity_too_large() {
    let ledger = ledger();
    for quantity in [MAX + 1, u64::MAX] {
        assert_refused(&ledger, ReceiveError::QuantityTooLarge { sku: SKU, lot: LotId(1), quantity }, |l| {
            l.receive(SKU, NewLot::new(LotId(1), quantity))
        });
    }
}

#[test]
fn receive_into_undefined_sku_is_unknown_sku() {
    let ledger = ledger();
    assert_refused(&ledger, ReceiveError::UnknownSku { sku: UNDEFINED }, |l| {
        l.receive(UNDEFINED, NewLot::new(LotId(1), 1))
    });
}

#[test]
fn receive_an_existing_lot_id_is_duplicate_lot() {
    let ledger = stocked();
    assert_refused(&ledger, ReceiveError::DuplicateLot { sku: SKU, lot: LotId(2) }, |l| {
        l.receive(SKU, NewLot::new(LotId(2), 1))
    });
    // The same lot id in another SKU is a different lot.
    ledger.receive(OTHER, NewLot::new(LotId(2), 1)).expect("lot ids are per SKU");
}

#[test]
fn receive_past_the_total_maximum_is_overflow_and_exactly_max_is_fine() {
    let ledger = ledger();
    ledger.receive(SKU, NewLot::new(LotId(1), MAX - 5)).expect("MAX - 5 fits");
    assert_refused(&ledger, ReceiveError::Overflow { sku: SKU, quantity: 6 }, |l| {
        l.receive(SKU, NewLot::new(LotId(2), 6))
    });
    ledger.receive(SKU, NewLot::new(LotId(2), 5)).expect("exactly MAX in total fits");
    assert_eq!(data(&ledger, SKU).totals.received, Quantity::MAX);
}

#[test]
fn receive_overflow_counts_positive_adjustments_and_not_shrinks() {
    let ledger = ledger();
    ledger.receive(SKU, NewLot::new(LotId(1), 10)).expect("receive");
    ledger.adjust(SKU, LotId(1), 10, AdjustmentReason::Recount).expect("grow by 10");
    ledger.adjust(SKU, LotId(1), -15, AdjustmentReason::Spoilage).expect("shrink by 15");
    // Inflow is 20 (10 received + 10 grown); the shrink does not give room back.
    assert_refused(&ledger, ReceiveError::Overflow { sku: SKU, quantity: MAX - 19 }, |l| {
        l.receive(SKU, NewLot::new(LotId(2), MAX - 19))
    });
    ledger.receive(SKU, NewLot::new(LotId(2), MAX - 20)).expect("inflow exactly MAX");
}

#[test]
fn receive_errors_follow_precedence_order() {
    let ledger = stocked();
    // Zero beats unknown SKU; too large beats unknown SKU; unknown SKU beats
    // everything about lots; duplicate beats overflow.
    assert_refused(&ledger, ReceiveError::ZeroQuantity { sku: UNDEFINED, lot: LotId(1) }, |l| {
        l.receive(UNDEFINED, NewLot::new(LotId(1), 0))
    });
    assert_refused(
        &ledger,
        ReceiveError::QuantityTooLarge { sku: UNDEFINED, lot: LotId(1), quantity: u64::MAX },
        |l| l.receive(UNDEFINED, NewLot::new(LotId(1), u64::MAX)),
    );
    assert_refused(&ledger, ReceiveError::ZeroQuantity { sku: SKU, lot: LotId(1) }, |l| {
        l.receive(SKU, NewLot::new(LotId(1), 0))
    });
    assert_refused(&ledger, ReceiveError::DuplicateLot { sku: SKU, lot: LotId(1) }, |l| {
        l.receive(SKU, NewLot::new(LotId(1), MAX))
    });
}

// ---------------------------------------------------------------- allocate / take

type Op = fn(&Ledger, &AllocateRequest) -> Result<Vec<Line>, AllocateError>;

fn allocate_lines(ledger: &Ledger, request: &AllocateRequest) -> Result<Vec<Line>, AllocateError> {
    ledger.allocate(request).map(|allocation| allocation.lines.to_vec())
}

fn take_lines(ledger: &Ledger, request: &AllocateRequest) -> Result<Vec<Line>, AllocateError> {
    ledger.take(request).map(|sale| sale.lines.to_vec())
}

const OPS: [Op; 2] = [allocate_lines, take_lines];

#[test]
fn allocate_and_take_refuse_zero_units_with_zero_quantity() {
    for op in OPS {
        let ledger = stocked();
        let request = AllocateRequest::new(SKU, 0).fill(FillMode::Partial);
        assert_refused(&ledger, AllocateError::ZeroQuantity { sku: SKU }, |l| op(l, &request));
    }
}

#[test]
fn allocate_and_take_refuse_more_than_max_with_quantity_too_large() {
    for op in OPS {
        let ledger = stocked();
        for quantity in [MAX + 1, u64::MAX] {
            let request = AllocateRequest::new(SKU, quantity);
            assert_refused(&ledger, AllocateError::QuantityTooLarge { sku: SKU, quantity }, |l| op(l, &request));
        }
    }
}

#[test]
fn allocate_and_take_of_undefined_sku_are_unknown_sku_after_input_checks() {
    for op in OPS {
        let ledger = stocked();
        assert_refused(&ledger, AllocateError::UnknownSku { sku: UNDEFINED }, |l| {
            op(l, &AllocateRequest::new(UNDEFINED, 1))
        });
        assert_refused(&ledger, AllocateError::ZeroQuantity { sku: UNDEFINED }, |l| {
            op(l, &AllocateRequest::new(UNDEFINED, 0))
        });
        assert_refused(&ledger, AllocateError::QuantityTooLarge { sku: UNDEFINED, quantity: MAX + 1 }, |l| {
            op(l, &AllocateRequest::new(UNDEFINED, MAX + 1))
        });
    }
}

#[test]
fn fill_or_kill_short_of_stock_is_insufficient_with_every_eligible_unit() {
    for op in OPS {
        let ledger = stocked();
        let insufficient = AllocateError::Insufficient { sku: SKU, requested: qty(16), available: qty(15) };
        assert_refused(&ledger, insufficient, |l| op(l, &AllocateRequest::new(SKU, 16)));
    }
}

#[test]
fn partial_fill_with_nothing_eligible_is_insufficient_with_zero_available() {
    for op in OPS {
        let ledger = ledger();
        let request = AllocateRequest::new(SKU, 3).fill(FillMode::Partial);
        let empty = AllocateError::Insufficient { sku: SKU, requested: qty(3), available: qty(0) };
        assert_refused(&ledger, empty.clone(), |l| op(l, &request));
        // Stock that exists but has expired does not count either.
        ledger.receive(SKU, NewLot::new(LotId(1), 4).expires_at(Timestamp(1_000))).expect("receive expired lot");
        assert_refused(&ledger, empty, |l| op(l, &request));
    }
}

#[test]
fn partial_fill_takes_what_the_eligible_lots_have() {
    let ledger = stocked();
    let request = AllocateRequest::new(SKU, 40).fill(FillMode::Partial);
    let allocation = ledger.allocate(&request).expect("partial allocation of 15");
    // Define is version 0, the receipts 1 and 2: the allocation is version
    // 3, and its seq is the version it produced.
    assert_eq!(allocation, Allocation::new(res(3), vec![line(1, 10), line(2, 5)], None, 3));
    assert_eq!(allocation.quantity(), qty(15));
    let snapshot = data(&ledger, SKU);
    assert_eq!(snapshot.totals.available, qty(0));
    assert_eq!(snapshot.totals.held, qty(15));
    assert_eq!(
        snapshot.reservations,
        vec![Reservation::new(res(3), vec![line(1, 10), line(2, 5)], qty(15), qty(0), None)]
    );
    ledger.receive(SKU, NewLot::new(LotId(3), 2)).expect("restock");
    let sale = ledger.take(&request).expect("partial sale of 2");
    assert_eq!(sale, Sale::new(SKU, vec![line(3, 2)], 5));
}

#[test]
fn allocate_issues_sequence_numbers_and_take_issues_none() {
    // A reservation's seq is the SKU version its allocation produced:
    // define is version 0, the two receipts 1 and 2.
    let ledger = stocked();
    let first = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("first");
    assert_eq!((first.reservation, first.version), (res(3), 3));
    let sale = ledger.take(&AllocateRequest::new(SKU, 1)).expect("a sale in between");
    assert_eq!(sale.version, 4, "the sale is version 4");
    assert!(ledger.allocate(&AllocateRequest::new(SKU, 100)).is_err(), "a refusal issues nothing either");
    // The sale took version 4 and the refusal none: the next seq is 5.
    let second = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("second");
    assert_eq!((second.reservation, second.version), (res(5), 5));
    // The sale's version names no reservation: it was issued to no one, and
    // is not past the SKU's version, so it has `Ended` (never live).
    assert_eq!(ledger.reservation(res(4)), Err(QueryError::Ended { id: res(4) }));
    let held: Vec<ReservationId> = data(&ledger, SKU).reservations.iter().map(|r| r.id).collect();
    assert_eq!(held, vec![res(3), res(5)], "exactly the two allocations hold stock");
    // Each SKU has its own versions: receive is version 1 of OTHER.
    ledger.receive(OTHER, NewLot::new(LotId(1), 1)).expect("receive");
    let other = ledger.allocate(&AllocateRequest::new(OTHER, 1)).expect("other SKU");
    assert_eq!((other.reservation, other.version), (ReservationId::new(OTHER, 2), 2));
}

#[test]
fn take_moves_units_straight_to_committed_and_keeps_no_reservation() {
    let ledger = stocked();
    let sale = ledger.take(&AllocateRequest::new(SKU, 12)).expect("sale of 12");
    assert_eq!(sale, Sale::new(SKU, vec![line(1, 10), line(2, 2)], 3));
    assert_eq!(sale.quantity(), qty(12));
    let snapshot = data(&ledger, SKU);
    assert!(snapshot.reservations.is_empty());
    assert_eq!(snapshot.totals.committed, qty(12));
    assert_eq!(snapshot.totals.available, qty(3));
    assert_eq!(snapshot.totals.held, qty(0));
}

#[test]
fn fefo_draws_earliest_expiry_first_and_lots_without_expiry_last() {
    let ledger = ledger();
    let lots = [(1, Some(3_000)), (2, None), (3, Some(2_000)), (4, Some(4_000))];
    for (id, expiry) in lots {
        let lot = NewLot::new(LotId(id), 10);
        ledger.receive(SKU, if let Some(at) = expiry { lot.expires_at(Timestamp(at)) } else { lot }).expect("receive");
    }
    let order: Vec<LotId> = data(&ledger, SKU).lots.iter().map(|lot| lot.id).collect();
    assert_eq!(order, [LotId(3), LotId(1), LotId(4), LotId(2)], "snapshot lists lots in FEFO order");
    let allocation = ledger.allocate(&AllocateRequest::new(SKU, 35)).expect("allocate across four lots");
    assert_eq!(allocation.lines, vec![line(3, 10), line(1, 10), line(4, 10), line(2, 5)]);
}

#[test]
fn fefo_breaks_expiry_ties_by_receipt_then_arrival() {
    let ledger = ledger();
    let expiry = Timestamp(5_000);
    ledger.receive(SKU, NewLot::new(LotId(1), 1).expires_at(expiry).received_at(Timestamp(30))).expect("lot 1");
    ledger.receive(SKU, NewLot::new(LotId(2), 1).expires_at(expiry).received_at(Timestamp(20))).expect("lot 2");
    ledger.receive(SKU, NewLot::new(LotId(3), 1).expires_at(expiry).received_at(Timestamp(20))).expect("lot 3");
    let allocation = ledger.allocate(&AllocateRequest::new(SKU, 3)).expect("allocate all three");
    assert_eq!(allocation.lines, vec![line(2, 1), line(3, 1), line(1, 1)]);
}

#[test]
fn fifo_draws_earliest_receipt_first_regardless_of_expiry() {
    let ledger = ledger();
    let fifo = OTHER;
    ledger.receive(fifo, NewLot::new(LotId(1), 4).received_at(Timestamp(300)).expires_at(Timestamp(2_000))).expect("1");
    ledger.receive(fifo, NewLot::new(LotId(2), 4).received_at(Timestamp(100))).expect("2");
    ledger.receive(fifo, NewLot::new(LotId(3), 4).received_at(Timestamp(100)).expires_at(Timestamp(1_500))).expect("3");
    let order: Vec<LotId> = data(&ledger, fifo).lots.iter().map(|lot| lot.id).collect();
    assert_eq!(order, [LotId(2), LotId(3), LotId(1)], "snapshot lists lots in FIFO order");
    let sale = ledger.take(&AllocateRequest::new(fifo, 10)).expect("take 10");
    assert_eq!(sale.lines, vec![line(2, 4), line(3, 4), line(1, 2)]);
}

#[test]
fn request_policy_overrides_the_sku_policy_for_that_request_only() {
    let ledger = ledger();
    // Lot 1: received first, expires last. Lot 2: received later, expires first.
    ledger.receive(SKU, NewLot::new(LotId(1), 5).received_at(Timestamp(10)).expires_at(Timestamp(9_000))).expect("1");
    ledger.receive(SKU, NewLot::new(LotId(2), 5).received_at(Timestamp(20)).expires_at(Timestamp(5_000))).expect("2");
    let fifo = ledger.allocate(&AllocateRequest::new(SKU, 2).policy(AllocationPolicy::Fifo)).expect("FIFO request");
    assert_eq!(fifo.lines, vec![line(1, 2)]);
    let fefo = ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("SKU policy request");
    assert_eq!(fefo.lines, vec![line(2, 2)]);
    assert_eq!(data(&ledger, SKU).policy, AllocationPolicy::Fefo, "the SKU keeps its own policy");
}

#[test]
fn min_shelf_life_skips_lots_expiring_at_or_before_now_plus_shelf_life() {
    let ledger = ledger(); // now = 1000
    ledger.receive(SKU, NewLot::new(LotId(1), 5).expires_at(Timestamp(1_500))).expect("1");
    ledger.receive(SKU, NewLot::new(LotId(2), 5).expires_at(Timestamp(1_501))).expect("2");
    let shelf = Duration::from_millis(500);
    assert_eq!(ledger.available(SKU, shelf), Ok(qty(5)));
    let insufficient = AllocateError::Insufficient { sku: SKU, requested: qty(6), available: qty(5) };
    assert_refused(&ledger, insufficient, |l| l.allocate(&AllocateRequest::new(SKU, 6).min_shelf_life(shelf)));
    let allocation = ledger.allocate(&AllocateRequest::new(SKU, 5).min_shelf_life(shelf)).expect("lot 2 qualifies");
    assert_eq!(allocation.lines, vec![line(2, 5)], "lot 1 expires exactly at now + shelf life and is skipped");
    // An endless shelf life admits only lots that never expire.
    ledger.receive(SKU, NewLot::new(LotId(3), 1)).expect("3");
    let forever = AllocateRequest::new(SKU, 10).fill(FillMode::Partial).min_shelf_life(Duration::MAX);
    assert_eq!(ledger.take(&forever).expect("lot 3 has no expiry").lines, vec![line(3, 1)]);
}

#[test]
fn expired_lots_are_skipped_once_the_clock_reaches_their_expiry() {
    let (ledger, clock) = manual_ledger(1_000);
    ledger.define_sku(SKU, AllocationPolicy::Fefo).expect("define");
    ledger.receive(SKU, NewLot::new(LotId(1), 5).expires_at(Timestamp(1_100))).expect("1");
    ledger.receive(SKU, NewLot::new(LotId(2), 5).expires_at(Timestamp(9_000))).expect("2");
    clock.set(Timestamp(1_099));
    assert_eq!(ledger.available(SKU, Duration::ZERO), Ok(qty(10)));
    assert_eq!(ledger.take(&AllocateRequest::new(SKU, 1)).expect("lot 1 still good").lines, vec![line(1, 1)]);

    clock.advance(Duration::from_millis(1)); // now = 1100 = lot 1's expiry
    assert_eq!(ledger.available(SKU, Duration::ZERO), Ok(qty(5)));
    let insufficient = AllocateError::Insufficient { sku: SKU, requested: qty(6), available: qty(5) };
    assert_refused(&ledger, insufficient, |l| l.allocate(&AllocateRequest::new(SKU, 6)));
    let allocation = ledger.allocate(&AllocateRequest::new(SKU, 3)).expect("lot 2 only");
    assert_eq!(allocation.lines, vec![line(2, 3)]);
    // The expired lot's units are still on the books, counted as expired,
    // never as available.
    let expired = lot_quantities(&ledger, SKU, 1);
    assert_eq!((expired.available, expired.expired), (qty(0), qty(4)));
}

// ---------------------------------------------------------------- release

#[test]
fn release_returns_every_held_unit_and_ends_the_reservation() {
    let ledger = stocked();
    let allocation = ledger.allocate(&AllocateRequest::new(SKU, 12)).expect("allocate 12");
    let released = ledger.release(allocation.reservation).expect("release");
    // The allocation was version 3 (after two receipts): seq 3.
    assert_eq!(released, Released::new(res(3), vec![line(1, 10), line(2, 2)], 4));
    let snapshot = data(&ledger, SKU);
    assert!(snapshot.reservations.is_empty());
    assert_eq!(snapshot.totals.available, qty(15));
    assert_eq!(snapshot.totals.held, qty(0));
    assert_eq!(ledger.reservation(res(3)), Err(QueryError::Ended { id: res(3) }));
}

#[test]
fn release_of_undefined_sku_is_unknown_sku() {
    let ledger = stocked();
    let id = ReservationId::new(UNDEFINED, 1);
    assert_refused(&ledger, ReleaseError::UnknownSku { id }, |l| l.release(id));
}

#[test]
fn release_of_seq_zero_or_never_issued_is_unknown_reservation() {
    let ledger = stocked();
    let issued = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("issue seq 3").reservation;
    assert_eq!(issued, res(3), "two receipts, then the allocation: version 3");
    // Seq 0, and any seq past the SKU's version (3; OTHER is at 0).
    for id in [res(0), res(4), res(u64::MAX), ReservationId::new(OTHER, 1)] {
        assert_refused(&ledger, ReleaseError::UnknownReservation { id }, |l| l.release(id));
    }
}

#[test]
fn release_of_a_seq_that_was_another_change_is_ended() {
    let ledger = stocked();
    ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("issue seq 3");
    // Versions 1 and 2 were the receipts: issued to no reservation, not
    // past the SKU's version, so not live: `Ended`, never `Unknown`.
    for id in [res(1), res(2)] {
        assert_refused(&ledger, ReleaseError::Ended { id }, |l| l.release(id));
    }
}

#[test]
fn release_of_an_ended_reservation_is_ended() {
    let ledger = stocked();
    let released = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("seq 3").reservation;
    let committed = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("seq 4").reservation;
    assert_eq!((released, committed), (res(3), res(4)));
    ledger.release(released).expect("release seq 3");
    ledger.commit(committed, None).expect("commit seq 4");
    for id in [released, committed] {
        assert_refused(&ledger, ReleaseError::Ended { id }, |l| l.release(id));
    }
}

// ---------------------------------------------------------------- commit

#[test]
fn commit_all_moves_every_held_unit_out() {
    let ledger = stocked();
    ledger.allocate(&AllocateRequest::new(SKU, 12)).expect("allocate 12: version 3, seq 3");
    let committed = ledger.commit(res(3), None).expect("commit all");
    assert_eq!(committed, Committed::new(res(3), vec![line(1, 10), line(2, 2)], Lines::default(), 4));
    let snapshot = data(&ledger, SKU);
    assert_eq!(snapshot.totals.committed, qty(12));
    assert_eq!(snapshot.totals.held, qty(0));
    assert_eq!(snapshot.totals.available, qty(3));
    assert!(snapshot.reservations.is_empty());
}

#[test]
fn commit_partial_commits_lines_in_order_and_returns_the_remainder() {
    let ledger = stocked();
    ledger.allocate(&AllocateRequest::new(SKU, 13)).expect("allocate 10 + 3: seq 3");
    let committed = ledger.commit(res(3), Some(7)).expect("commit 7 of 13");
    assert_eq!(committed, Committed::new(res(3), vec![line(1, 7)], vec![line(1, 3), line(2, 3)], 4));
    assert_eq!(lot_quantities(&ledger, SKU, 1), quantities(10, 0, 3, 0, 7));
    assert_eq!(lot_quantities(&ledger, SKU, 2), quantities(5, 0, 5, 0, 0));
    assert_eq!(ledger.reservation(res(3)), Err(QueryError::Ended { id: res(3) }), "a partial commit ends it");
}

#[test]
fn commit_exactly_held_returns_nothing() {
    let ledger = stocked();
    ledger.allocate(&AllocateRequest::new(SKU, 12)).expect("allocate 12: seq 3");
    let committed = ledger.commit(res(3), Some(12)).expect("commit 12 of 12");
    assert_eq!(committed.committed, vec![line(1, 10), line(2, 2)]);
    assert!(committed.returned.is_empty());
}

#[test]
fn commit_of_zero_units_is_zero_quantity() {
    let ledger = stocked();
    ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("allocate seq 3");
    assert_refused(&ledger, CommitError::ZeroQuantity { id: res(3) }, |l| l.commit(res(3), Some(0)));
}

#[test]
fn commit_of_more_than_max_is_quantity_too_large() {
    let ledger = stocked();
    ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("allocate seq 3");
    for quantity in [MAX + 1, u64::MAX] {
        assert_refused(&ledger, CommitError::QuantityTooLarge { id: res(3), quantity }, |l| {
            l.commit(res(3), Some(quantity))
        });
    }
}

#[test]
fn commit_of_undefined_sku_is_unknown_sku() {
    let ledger = stocked();
    let id = ReservationId::new(UNDEFINED, 1);
    assert_refused(&ledger, CommitError::UnknownSku { id }, |l| l.commit(id, None));
    assert_refused(&ledger, CommitError::UnknownSku { id }, |l| l.commit(id, Some(1)));
}

#[test]
fn commit_of_seq_zero_or_never_issued_is_unknown_reservation() {
    let ledger = stocked();
    // SKU is at version 2 (two receipts), OTHER at 0.
    for id in [res(0), res(3), res(u64::MAX), ReservationId::new(OTHER, 1)] {
        assert_refused(&ledger, CommitError::UnknownReservation { id }, |l| l.commit(id, None));
    }
}

#[test]
fn commit_of_an_ended_reservation_is_ended() {
    let ledger = stocked();
    ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("seq 3");
    ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("seq 4");
    ledger.commit(res(3), Some(1)).expect("commit seq 3");
    ledger.release(res(4)).expect("release seq 4");
    // The two ended reservations, and a receipt's version (never a hold).
    for id in [res(3), res(4), res(1)] {
        assert_refused(&ledger, CommitError::Ended { id }, |l| l.commit(id, None));
    }
}

#[test]
fn commit_of_more_than_held_is_exceeds_held() {
    let ledger = stocked();
    ledger.allocate(&AllocateRequest::new(SKU, 4)).expect("allocate 4: seq 3");
    assert_refused(&ledger, CommitError::ExceedsHeld { id: res(3), requested: qty(5), held: qty(4) }, |l| {
        l.commit(res(3), Some(5))
    });
}

#[test]
fn commit_errors_follow_precedence_order() {
    let ledger = stocked();
    let undefined = ReservationId::new(UNDEFINED, 0);
    assert_refused(&ledger, CommitError::ZeroQuantity { id: undefined }, |l| l.commit(undefined, Some(0)));
    assert_refused(&ledger, CommitError::QuantityTooLarge { id: undefined, quantity: u64::MAX }, |l| {
        l.commit(undefined, Some(u64::MAX))
    });
    // The SKU is at version 2: seq 3 is not issued yet ...
    assert_refused(&ledger, CommitError::UnknownReservation { id: res(3) }, |l| l.commit(res(3), Some(99)));
    ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("seq 3");
    ledger.release(res(3)).expect("release seq 3");
    // ... and once issued and ended, `Ended` comes before `ExceedsHeld`.
    assert_refused(&ledger, CommitError::Ended { id: res(3) }, |l| l.commit(res(3), Some(99)));
}

// ---------------------------------------------------------------- adjust

#[test]
fn adjust_growth_adds_to_available() {
    let ledger = stocked();
    let adjusted = ledger.adjust(SKU, LotId(2), 7, AdjustmentReason::Receipt).expect("grow lot 2");
    let after = quantities(5, 7, 12, 0, 0);
    assert_eq!(adjusted, Adjusted::new(SKU, LotId(2), 7, AdjustmentReason::Receipt, after, vec![], 3));
    assert_eq!(lot_quantities(&ledger, SKU, 2), after);
    assert_eq!(data(&ledger, SKU).totals.adjusted, 7);
}

#[test]
fn adjust_shrink_within_available_shorts_nobody() {
    let ledger = stocked();
    ledger.allocate(&AllocateRequest::new(SKU, 4)).expect("hold 4 of lot 1");
    let adjusted = ledger.adjust(SKU, LotId(1), -6, AdjustmentReason::Damage).expect("shrink by the 6 available");
    assert!(adjusted.shortfalls.is_empty());
    assert_eq!(adjusted.quantities, quantities(10, -6, 0, 4, 0));
}

fn shortfall(seq: u64, lost: u64, resourced: Vec<Line>, shorted: u64) -> Shortfall {
    Shortfall::new(res(seq), qty(lost), resourced, qty(shorted))
}

fn reservation(seq: u64, lines: Vec<Line>, granted: u64, shorted: u64) -> Reservation {
    Reservation::new(res(seq), lines, qty(granted), qty(shorted), None)
}

#[test]
fn adjust_shrink_below_held_shorts_newest_reservations_first_when_no_lot_can_cover() {
    let ledger = ledger();
    ledger.receive(SKU, NewLot::new(LotId(1), 10).expires_at(Timestamp(5_000))).expect("lot 1");
    ledger.receive(SKU, NewLot::new(LotId(2), 1).expires_at(Timestamp(6_000))).expect("lot 2");
    // Two receipts are versions 1 and 2: the holds are seqs 3, 4, 5, 6.
    ledger.allocate(&AllocateRequest::new(SKU, 3)).expect("seq 3: 3 of lot 1");
    ledger.allocate(&AllocateRequest::new(SKU, 4)).expect("seq 4: 4 of lot 1");
    ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("seq 5: 2 of lot 1");
    // Lot 1 expires at 5000 = now + 4000 ms: too soon for this request.
    let skip_lot_1 = AllocateRequest::new(SKU, 1).min_shelf_life(Duration::from_secs(4));
    let fourth = ledger.allocate(&skip_lot_1).expect("seq 6: 1 of lot 2");
    assert_eq!((fourth.reservation, fourth.lines), (res(6), vec![line(2, 1)].into()));
    // Lot 1: available 1, held 9 (3 + 4 + 2); lot 2 has nothing left to
    // re-source from. Shrink by 8: 1 from available, then 7 from holds
    // newest first: seq 6 has no line on lot 1, seq 5 loses 2, seq 4 loses
    // 4, seq 3 loses 1, all shorted.
    let adjusted = ledger.adjust(SKU, LotId(1), -8, AdjustmentReason::Spoilage).expect("shrink lot 1 by 8");
    assert_eq!(
        adjusted.shortfalls,
        vec![shortfall(5, 2, vec![], 2), shortfall(4, 4, vec![], 4), shortfall(3, 1, vec![], 1)]
    );
    assert_eq!(adjusted.quantities, quantities(10, -8, 0, 2, 0));
    assert_eq!(adjusted.version, 7);
    let reservations = data(&ledger, SKU).reservations;
    assert_eq!(
        reservations,
        vec![
            reservation(3, vec![line(1, 2)], 3, 1),
            reservation(4, vec![], 4, 4),
            reservation(5, vec![], 2, 2),
            reservation(6, vec![line(2, 1)], 1, 0),
        ],
        "emptied lines are removed; a fully shorted reservation stays live"
    );
    // A fully shorted reservation still ends exactly once, with nothing to move.
    let committed = ledger.commit(res(4), None).expect("commit an emptied reservation");
    assert!(committed.committed.is_empty() && committed.returned.is_empty());
    assert_refused(&ledger, CommitError::Ended { id: res(4) }, |l| l.commit(res(4), None));
    assert_refused(&ledger, CommitError::ExceedsHeld { id: res(3), requested: qty(3), held: qty(2) }, |l| {
        l.commit(res(3), Some(3))
    });
    assert!(ledger.audit().is_clean(), "{:?}", ledger.audit().violations);
}

#[test]
fn adjust_shrink_below_held_resources_from_other_lots_by_policy_before_shorting() {
    let ledger = ledger();
    // FEFO order: lot 1 (5000), lot 3 (5500), lot 2 (6000), lot 4 expired.
    ledger.receive(SKU, NewLot::new(LotId(1), 10).expires_at(Timestamp(5_000))).expect("lot 1");
    ledger.receive(SKU, NewLot::new(LotId(2), 3).expires_at(Timestamp(6_000))).expect("lot 2");
    ledger.receive(SKU, NewLot::new(LotId(3), 2).expires_at(Timestamp(5_500))).expect("lot 3");
    ledger.receive(SKU, NewLot::new(LotId(4), 50).expires_at(Timestamp(1_000))).expect("lot 4, expired");
    // Four receipts are versions 1-4: the holds are seqs 5 and 6.
    ledger.allocate(&AllocateRequest::new(SKU, 4)).expect("seq 5: 4 of lot 1");
    ledger.allocate(&AllocateRequest::new(SKU, 6)).expect("seq 6: 6 of lot 1");
    // Lot 1 is fully held. Shrink it by 8: seq 6 loses 6 -> lot 3 gives 2,
    // lot 2 gives 3, 1 shorted; seq 5 loses 2 -> nothing left anywhere
    // eligible (lot 4 has expired): shorted 2.
    let adjusted = ledger.adjust(SKU, LotId(1), -8, AdjustmentReason::Damage).expect("shrink lot 1 by 8");
    assert_eq!(adjusted.shortfalls, vec![shortfall(6, 6, vec![line(3, 2), line(2, 3)], 1), shortfall(5, 2, vec![], 2)]);
    assert_eq!(
        data(&ledger, SKU).reservations,
        vec![reservation(5, vec![line(1, 2)], 4, 2), reservation(6, vec![line(3, 2), line(2, 3)], 6, 1)]
    );
    let totals = data(&ledger, SKU).totals;
    assert_eq!(
        (totals.available, totals.expired, totals.held),
        (qty(0), qty(50), qty(7)),
        "only the expired lot keeps free units, and they count as expired"
    );
    assert!(ledger.audit().is_clean(), "{:?}", ledger.audit().violations);
}

#[test]
fn resourcing_merges_into_an_existing_line_on_the_same_lot() {
    let ledger = ledger();
    ledger.receive(SKU, NewLot::new(LotId(1), 2).expires_at(Timestamp(5_000))).expect("lot 1");
    ledger.receive(SKU, NewLot::new(LotId(2), 5).expires_at(Timestamp(6_000))).expect("lot 2");
    ledger.allocate(&AllocateRequest::new(SKU, 3)).expect("seq 3: 2 of lot 1, 1 of lot 2");
    let adjusted = ledger.adjust(SKU, LotId(1), -2, AdjustmentReason::Damage).expect("lot 1 gone");
    assert_eq!(adjusted.shortfalls, vec![shortfall(3, 2, vec![line(2, 2)], 0)]);
    assert_eq!(data(&ledger, SKU).reservations, vec![reservation(3, vec![line(2, 3)], 3, 0)]);
}

#[test]
fn resourcing_appends_a_line_for_a_lot_whose_line_was_emptied_before() {
    // docs/semantics.md, adjust: a line that reaches 0 is removed; a
    // re-sourced lot with no line in the hold gets one appended. So a lot
    // whose line was emptied by an earlier shrink comes back at the end.
    let ledger = ledger();
    ledger.receive(SKU, NewLot::new(LotId(1), 5).expires_at(Timestamp(5_000))).expect("lot 1");
    ledger.receive(SKU, NewLot::new(LotId(2), 10).expires_at(Timestamp(6_000))).expect("lot 2");
    let hold = ledger.allocate(&AllocateRequest::new(SKU, 10)).expect("5 of lot 1, 5 of lot 2").reservation;
    assert_eq!(hold, res(3), "two receipts, then the allocation: version 3");
    // Lot 1 is all held: its line empties and is removed; lot 2 covers it.
    let emptied = ledger.adjust(SKU, LotId(1), -5, AdjustmentReason::Damage).expect("lot 1 emptied");
    assert_eq!(emptied.shortfalls, vec![shortfall(3, 5, vec![line(2, 5)], 0)]);
    assert_eq!(data(&ledger, SKU).reservations, vec![reservation(3, vec![line(2, 10)], 10, 0)]);
    ledger.adjust(SKU, LotId(1), 5, AdjustmentReason::Recount).expect("lot 1 found again");
    // Lot 2 is all held: 3 lost, re-sourced from lot 1 (first in FEFO
    // order), which has no line in the hold any more: appended after lot 2.
    let shrunk = ledger.adjust(SKU, LotId(2), -3, AdjustmentReason::Damage).expect("lot 2 shrinks");
    assert_eq!(shrunk.shortfalls, vec![shortfall(3, 3, vec![line(1, 3)], 0)]);
    assert_eq!(data(&ledger, SKU).reservations, vec![reservation(3, vec![line(2, 7), line(1, 3)], 10, 0)]);
    assert_eq!(ledger.reservation(res(3)).map(|r| r.lines.to_vec()), Ok(vec![line(2, 7), line(1, 3)]));
    assert!(ledger.audit().is_clean(), "{:?}", ledger.audit().violations);
}

#[test]
fn a_shrink_keeps_a_line_merged_by_resourcing_in_its_place() {
    // docs/semantics.md, adjust: re-sourced units are merged into the
    // hold's existing line on that lot; a later shrink of that lot takes
    // from the line (removing it only at 0). The hold's lines keep their
    // order throughout: a merged line is one line, in its first place.
    // (Found by the fuzz corpus, input 033120de…: the ledger moved the
    // shrunk lot's line after the others.)
    let ledger = ledger();
    ledger.define_sku(SkuId(3), AllocationPolicy::Fifo).expect("define a FIFO SKU");
    let fifo = SkuId(3);
    let id = |seq| ReservationId::new(fifo, seq);
    let hold =
        |seq, lines: Vec<Line>, granted, shorted| Reservation::new(id(seq), lines, qty(granted), qty(shorted), None);
    ledger.receive(fifo, NewLot::new(LotId(1), 10)).expect("lot 1");
    ledger.receive(fifo, NewLot::new(LotId(2), 10)).expect("lot 2");
    let allocation = ledger.allocate(&AllocateRequest::new(fifo, 15)).expect("10 of lot 1, 5 of lot 2");
    assert_eq!((allocation.reservation, allocation.lines.to_vec()), (id(3), vec![line(1, 10), line(2, 5)]));
    ledger.adjust(fifo, LotId(1), 5, AdjustmentReason::Recount).expect("lot 1: 5 more available");
    // Lot 2: 5 available, 5 held; shrink by 8: 3 from the hold, re-sourced
    // from lot 1 and merged into its line.
    let merged = ledger.adjust(fifo, LotId(2), -8, AdjustmentReason::Damage).expect("lot 2 shrinks");
    let moved = Shortfall::new(id(3), qty(3), vec![line(1, 3)], qty(0));
    assert_eq!(merged.shortfalls, vec![moved]);
    assert_eq!(data(&ledger, fifo).reservations, vec![hold(3, vec![line(1, 13), line(2, 2)], 15, 0)]);
    // Lot 1: 2 available, 13 held; shrink by 12: 10 from the hold's lot 1
    // line (13 -> 3), nothing left to re-source from: all 10 shorted.
    let shrunk = ledger.adjust(fifo, LotId(1), -12, AdjustmentReason::Damage).expect("lot 1 shrinks");
    let short = Shortfall::new(id(3), qty(10), Lines::default(), qty(10));
    assert_eq!(shrunk.shortfalls, vec![short]);
    assert_eq!(data(&ledger, fifo).reservations, vec![hold(3, vec![line(1, 3), line(2, 2)], 15, 10)]);
    assert!(ledger.audit().is_clean(), "{:?}", ledger.audit().violations);
}

#[test]
fn adjust_by_zero_is_zero_delta() {
    let ledger = stocked();
    assert_refused(&ledger, AdjustError::ZeroDelta { sku: SKU, lot: LotId(1) }, |l| {
        l.adjust(SKU, LotId(1), 0, AdjustmentReason::Other)
    });
}

#[test]
fn adjust_by_more_than_max_either_way_is_delta_too_large() {
    let ledger = stocked();
    let max = MAX as i64;
    for delta in [max + 1, -max - 1, i64::MAX, i64::MIN] {
        assert_refused(&ledger, AdjustError::DeltaTooLarge { sku: SKU, lot: LotId(1), delta }, |l| {
            l.adjust(SKU, LotId(1), delta, AdjustmentReason::Recalibration)
        });
    }
}

#[test]
fn adjust_of_undefined_sku_is_unknown_sku() {
    let ledger = stocked();
    assert_refused(&ledger, AdjustError::UnknownSku { sku: UNDEFINED }, |l| {
        l.adjust(UNDEFINED, LotId(1), 1, AdjustmentReason::Other)
    });
}

#[test]
fn adjust_of_a_missing_lot_is_unknown_lot() {
    let ledger = stocked();
    assert_refused(&ledger, AdjustError::UnknownLot { sku: SKU, lot: LotId(3) }, |l| {
        l.adjust(SKU, LotId(3), -1, AdjustmentReason::Other)
    });
    assert_refused(&ledger, AdjustError::UnknownLot { sku: OTHER, lot: LotId(1) }, |l| {
        l.adjust(OTHER, LotId(1), 1, AdjustmentReason::Other)
    });
}

#[test]
fn adjust_shrink_beyond_on_hand_is_out_of_range() {
    let ledger = stocked();
    ledger.allocate(&AllocateRequest::new(SKU, 4)).expect("hold 4 of lot 1");
    ledger.take(&AllocateRequest::new(SKU, 1)).expect("sell 1 of lot 1");
    // On hand: 5 available + 4 held; the committed unit is gone already.
    assert_refused(&ledger, AdjustError::OutOfRange { sku: SKU, lot: LotId(1), on_hand: qty(9), delta: -10 }, |l| {
        l.adjust(SKU, LotId(1), -10, AdjustmentReason::Spoilage)
    });
}

#[test]
fn adjust_growth_past_the_total_maximum_is_out_of_range() {
    let ledger = ledger();
    ledger.receive(SKU, NewLot::new(LotId(1), 10)).expect("lot 1");
    ledger.receive(SKU, NewLot::new(LotId(2), MAX - 20)).expect("lot 2");
    ledger.take(&AllocateRequest::new(SKU, 4)).expect("sell 4 of lot 1");
    let max = MAX as i64;
    assert_refused(&ledger, AdjustError::OutOfRange { sku: SKU, lot: LotId(1), on_hand: qty(6), delta: 11 }, |l| {
        l.adjust(SKU, LotId(1), 11, AdjustmentReason::Recount)
    });
    assert_refused(&ledger, AdjustError::OutOfRange { sku: SKU, lot: LotId(1), on_hand: qty(6), delta: max }, |l| {
        l.adjust(SKU, LotId(1), max, AdjustmentReason::Recount)
    });
    ledger.adjust(SKU, LotId(1), 10, AdjustmentReason::Recount).expect("inflow exactly MAX");
}

#[test]
fn adjust_errors_follow_precedence_order() {
    let ledger = stocked();
    assert_refused(&ledger, AdjustError::ZeroDelta { sku: UNDEFINED, lot: LotId(9) }, |l| {
        l.adjust(UNDEFINED, LotId(9), 0, AdjustmentReason::Other)
    });
    assert_refused(&ledger, AdjustError::DeltaTooLarge { sku: UNDEFINED, lot: LotId(9), delta: i64::MIN }, |l| {
        l.adjust(UNDEFINED, LotId(9), i64::MIN, AdjustmentReason::Other)
    });
    assert_refused(&ledger, AdjustError::UnknownSku { sku: UNDEFINED }, |l| {
        l.adjust(UNDEFINED, LotId(9), -1_000, AdjustmentReason::Other)
    });
    assert_refused(&ledger, AdjustError::UnknownLot { sku: SKU, lot: LotId(9) }, |l| {
        l.adjust(SKU, LotId(9), -1_000, AdjustmentReason::Other)
    });
}

// ---------------------------------------------------------------- queries

#[test]
fn queries_report_unknown_sku_unknown_reservation_and_ended() {
    let ledger = stocked();
    assert_eq!(ledger.snapshot(UNDEFINED).map(|s| s.version()), Err(QueryError::UnknownSku { sku: UNDEFINED }));
    assert_eq!(ledger.available(UNDEFINED, Duration::ZERO), Err(QueryError::UnknownSku { sku: UNDEFINED }));
    let undefined = ReservationId::new(UNDEFINED, 1);
    assert_eq!(ledger.reservation(undefined), Err(QueryError::UnknownSku { sku: UNDEFINED }));
    // The SKU is at version 2 (two receipts): seq 0 and seq 3 are unknown,
    // a receipt's version names no live hold.
    assert_eq!(ledger.reservation(res(0)), Err(QueryError::UnknownReservation { id: res(0) }));
    assert_eq!(ledger.reservation(res(3)), Err(QueryError::UnknownReservation { id: res(3) }));
    assert_eq!(ledger.reservation(res(2)), Err(QueryError::Ended { id: res(2) }));
    ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("seq 3");
    assert_eq!(ledger.reservation(res(3)), Ok(Reservation::new(res(3), vec![line(1, 2)], qty(2), qty(0), None)));
    assert_eq!(ledger.reservation(res(4)), Err(QueryError::UnknownReservation { id: res(4) }));
    ledger.release(res(3)).expect("release");
    assert_eq!(ledger.reservation(res(3)), Err(QueryError::Ended { id: res(3) }));
}

// ---------------------------------------------------------------- versions, transience, serde, execute

#[test]
fn every_successful_command_bumps_the_version_by_one() {
    let ledger = ledger();
    let versions = [
        ledger.receive(SKU, NewLot::new(LotId(1), 10)).expect("receive").version,
        ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("allocate").version,
        ledger.take(&AllocateRequest::new(SKU, 2)).expect("take").version,
        ledger.adjust(SKU, LotId(1), -1, AdjustmentReason::Damage).expect("adjust").version,
        // The first allocation was version 2: seq 2.
        ledger.release(res(2)).expect("release").version,
        ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("allocate").version,
        // The second allocation was version 6: seq 6.
        ledger.commit(res(6), Some(1)).expect("commit").version,
    ];
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(data(&ledger, SKU).version, 7);
    assert_eq!(data(&ledger, OTHER).version, 0, "other SKUs are untouched");
}

#[test]
fn is_transient_is_true_only_for_contention() {
    let id = res(1);
    let lot = LotId(1);
    let sku = SKU;
    let define = [(DefineError::AlreadyDefined { sku }, false)];
    let receive = [
        (ReceiveError::ZeroQuantity { sku, lot }, false),
        (ReceiveError::QuantityTooLarge { sku, lot, quantity: u64::MAX }, false),
        (ReceiveError::UnknownSku { sku }, false),
        (ReceiveError::DuplicateLot { sku, lot }, false),
        (ReceiveError::Overflow { sku, quantity: 1 }, false),
        (ReceiveError::Contended { sku, attempts: 1 }, true),
    ];
    let allocate = [
        (AllocateError::ZeroQuantity { sku }, false),
        (AllocateError::QuantityTooLarge { sku, quantity: u64::MAX }, false),
        (AllocateError::UnknownSku { sku }, false),
        (AllocateError::Insufficient { sku, requested: qty(2), available: qty(1) }, false),
        (AllocateError::Contended { sku, attempts: 1 }, true),
    ];
    let release = [
        (ReleaseError::UnknownSku { id }, false),
        (ReleaseError::UnknownReservation { id }, false),
        (ReleaseError::Ended { id }, false),
        (ReleaseError::Contended { id, attempts: 1 }, true),
    ];
    let commit = [
        (CommitError::ZeroQuantity { id }, false),
        (CommitError::QuantityTooLarge { id, quantity: u64::MAX }, false),
        (CommitError::UnknownSku { id }, false),
        (CommitError::UnknownReservation { id }, false),
        (CommitError::Ended { id }, false),
        (CommitError::ExceedsHeld { id, requested: qty(2), held: qty(1) }, false),
        (CommitError::Contended { id, attempts: 1 }, true),
    ];
    let adjust = [
        (AdjustError::ZeroDelta { sku, lot }, false),
        (AdjustError::DeltaTooLarge { sku, lot, delta: i64::MIN }, false),
        (AdjustError::UnknownSku { sku }, false),
        (AdjustError::UnknownLot { sku, lot }, false),
        (AdjustError::OutOfRange { sku, lot, on_hand: qty(1), delta: -2 }, false),
        (AdjustError::Contended { sku, attempts: 1 }, true),
    ];
    let mut all: Vec<(CommandError, bool)> = Vec::new();
    for (error, transient) in define {
        assert_eq!(error.is_transient(), transient, "{error:?}");
        all.push((error.into(), transient));
    }
    for (error, transient) in receive {
        assert_eq!(error.is_transient(), transient, "{error:?}");
        all.push((error.into(), transient));
    }
    for (error, transient) in allocate {
        assert_eq!(error.is_transient(), transient, "{error:?}");
        all.push((error.into(), transient));
    }
    for (error, transient) in release {
        assert_eq!(error.is_transient(), transient, "{error:?}");
        all.push((error.into(), transient));
    }
    for (error, transient) in commit {
        assert_eq!(error.is_transient(), transient, "{error:?}");
        all.push((error.into(), transient));
    }
    for (error, transient) in adjust {
        assert_eq!(error.is_transient(), transient, "{error:?}");
        all.push((error.into(), transient));
    }
    for (error, transient) in &all {
        assert_eq!(error.is_transient(), *transient, "CommandError wrapping {error:?}");
        let json = serde_json::to_string(error).expect("errors serialize");
        let back: CommandError = serde_json::from_str(&json).expect("errors deserialize");
        assert_eq!(&back, error, "serde round trip of {json}");
    }
}

#[track_caller]
fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = serde_json::to_string(value).expect("serializes");
    let back: T = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(&back, value, "serde round trip through {json}");
}

fn sample_commands() -> Vec<Command> {
    let attributes = LotAttributes::default().supplier("farm");
    vec![
        Command::DefineSku { sku: SKU, policy: AllocationPolicy::Fefo },
        Command::Receive {
            sku: SKU,
            lot: NewLot::new(LotId(1), 10)
                .expires_at(Timestamp(9_000))
                .received_at(Timestamp(3))
                .attributes(attributes),
        },
        Command::Receive { sku: SKU, lot: NewLot::new(LotId(2), 6) },
        Command::Allocate(
            AllocateRequest::new(SKU, 12)
                .fill(FillMode::Partial)
                .policy(AllocationPolicy::Fifo)
                .min_shelf_life(Duration::from_millis(5)),
        ),
        Command::Take(AllocateRequest::new(SKU, 1)),
        Command::Adjust {
            sku: SKU,
            lot: LotId(1),
            delta: -3,
            reason: AdjustmentReason::Spoilage,
            expected_version: None,
        },
        // On `ledger()`: the define is refused, the receipts are versions 1
        // and 2, the allocation 3 (seq 3), the sale 4, the adjustment 5.
        Command::Commit { reservation: res(3), quantity: Some(4) },
        // Version 7 (the commit was 6): seq 7, released, then ended.
        Command::Allocate(AllocateRequest::new(SKU, 2)),
        Command::Release { reservation: res(7) },
        Command::Commit { reservation: res(7), quantity: None },
        Command::Allocate(AllocateRequest::new(SKU, 0)),
    ]
}

#[test]
fn commands_outcomes_and_snapshots_survive_a_serde_json_round_trip() {
    let ledger = ledger();
    for command in sample_commands() {
        round_trip(&command);
        match ledger.execute(&command) {
            Ok(outcome) => round_trip(&outcome),
            Err(error) => round_trip(&error),
        }
    }
    let snapshot = data(&ledger, SKU);
    assert!(!snapshot.lots.is_empty() && snapshot.lots.iter().any(|lot| lot.attributes.is_some()));
    round_trip(&snapshot);
}

#[test]
fn deserializing_a_quantity_above_max_is_an_error() {
    let request = AllocateRequest::new(SKU, 1);
    let line_json = format!(r#"{{"lot":1,"quantity":{}}}"#, MAX + 1);
    assert!(serde_json::from_str::<Line>(&line_json).is_err(), "Line with quantity MAX + 1 must not deserialize");
    let ok_json = format!(r#"{{"lot":1,"quantity":{MAX}}}"#);
    assert_eq!(serde_json::from_str::<Line>(&ok_json).expect("MAX deserializes"), line(1, MAX));
    // Raw request quantities are validated by the ledger, not by serde.
    let json = serde_json::to_string(&request).expect("serializes").replace(r#""quantity":1"#, r#""quantity":0"#);
    let zero: AllocateRequest = serde_json::from_str(&json).expect("a raw zero deserializes");
    assert_eq!(zero.quantity, 0);
}

#[test]
fn execute_gives_the_same_outcomes_and_state_as_the_direct_calls() {
    let via_execute = ledger();
    let direct = ledger();
    for command in sample_commands() {
        let expected: Result<Outcome, CommandError> = match &command {
            Command::DefineSku { sku, policy } => {
                direct.define_sku(*sku, *policy).map(Outcome::SkuDefined).map_err(CommandError::from)
            }
            Command::Receive { sku, lot } => {
                direct.receive(*sku, lot.clone()).map(Outcome::Received).map_err(CommandError::from)
            }
            Command::Allocate(request) => direct.allocate(request).map(Outcome::Allocated).map_err(CommandError::from),
            Command::Take(request) => direct.take(request).map(Outcome::Sold).map_err(CommandError::from),
            Command::Release { reservation } => {
                direct.release(*reservation).map(Outcome::Released).map_err(CommandError::from)
            }
            Command::Commit { reservation, quantity } => {
                direct.commit(*reservation, *quantity).map(Outcome::Committed).map_err(CommandError::from)
            }
            Command::Adjust { sku, lot, delta, reason, expected_version: None } => {
                direct.adjust(*sku, *lot, *delta, *reason).map(Outcome::Adjusted).map_err(CommandError::from)
            }
            other => unreachable!("sample_commands has no {other:?}"),
        };
        assert_eq!(via_execute.execute(&command), expected, "{command:?}");
        assert_eq!(command.sku(), Some(SKU));
    }
    assert_eq!(everything(&via_execute), everything(&direct));
    assert!(via_execute.execute(&Command::DefineSku { sku: SKU, policy: AllocationPolicy::Fifo }).is_err());
}

#[test]
fn ledger_is_send_and_sync() {
    const fn assert_send_sync<T: Send + Sync>() {}
    const _: () = assert_send_sync::<Ledger>();
    const _: () = assert_send_sync::<stockroom::Snapshot>();
    // And it is usable from several threads at once.
    let ledger = stocked();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| ledger.take(&AllocateRequest::new(SKU, 1)).expect("two units of fifteen"));
        }
    });
    assert_eq!(data(&ledger, SKU).totals.committed, qty(2));
}
