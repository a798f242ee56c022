//! Locations: requests restrict or rank where units come from, split across
//! locations only when allowed, and availability is a query per location.

use std::time::Duration;
use stockroom::{
    AllocateError, AllocateRequest, AllocationPolicy, LOCATION_MAX, LOCATIONS_MAX, Ledger, LocationId, LocationStock,
    Locations, LocationsProblem, LotId, NewLot, OrderError, OrderLine, OrderRequest, Quantity, ReceiveError, SkuId,
};

const SKU: SkuId = SkuId(1);
const NORTH: LocationId = LocationId(1);
const SOUTH: LocationId = LocationId(2);

fn q(units: u64) -> Quantity {
    Quantity::new(units).expect("in range")
}

/// Lot 1: 5 at north, lot 2: 5 at south, lot 3: 5 without a location (FIFO:
/// drawn in that order).
fn ledger() -> Ledger {
    let ledger = Ledger::new();
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh");
    ledger.receive(SKU, NewLot::new(LotId(1), 5).at(NORTH)).expect("north");
    ledger.receive(SKU, NewLot::new(LotId(2), 5).at(SOUTH)).expect("south");
    ledger.receive(SKU, NewLot::new(LotId(3), 5)).expect("nowhere");
    ledger
}

fn lots(allocation: &stockroom::Allocation) -> Vec<(u64, u64)> {
    allocation.lines.iter().map(|line| (line.lot.0, line.quantity.get())).collect()
}

#[test]
fn only_restricts_and_ranked_orders_the_draw() {
    let ledger = ledger();
    let south = ledger.allocate(&AllocateRequest::new(SKU, 3).only(vec![SOUTH])).expect("south has 5");
    assert_eq!(lots(&south), [(2, 3)]);
    let refused = ledger.allocate(&AllocateRequest::new(SKU, 3).only(vec![SOUTH]));
    assert!(matches!(refused, Err(AllocateError::Insufficient { available, .. }) if available == q(2)));
    let ranked = ledger.allocate(&AllocateRequest::new(SKU, 2).ranked(vec![SOUTH, NORTH])).expect("south first");
    assert_eq!(lots(&ranked), [(2, 2)]);
    assert!(ledger.audit().is_clean());
}

#[test]
fn a_request_splits_across_locations_only_when_allowed() {
    let ledger = ledger();
    // 7 units: no location has 7, so unsplit it is refused …
    let unsplit = ledger.allocate(&AllocateRequest::new(SKU, 7));
    assert!(matches!(unsplit, Err(AllocateError::Insufficient { available, .. }) if available == q(5)));
    // … partial takes the most one location has, in policy order …
    let partial = ledger
        .allocate(&AllocateRequest::new(SKU, 7).fill(stockroom::FillMode::Partial))
        .expect("one location's worth");
    assert_eq!(lots(&partial), [(1, 5)]);
    ledger.release(partial.reservation).expect("released");
    // … and split it drains locations in policy order, or in rank order.
    let split = ledger.allocate(&AllocateRequest::new(SKU, 7).split(true)).expect("split");
    assert_eq!(lots(&split), [(1, 5), (2, 2)]);
    ledger.release(split.reservation).expect("released");
    let ranked = ledger.allocate(&AllocateRequest::new(SKU, 12).ranked(vec![SOUTH]).split(true)).expect("split");
    assert_eq!(lots(&ranked), [(2, 5), (1, 5), (3, 2)]);
    assert!(ledger.audit().is_clean());
}

#[test]
fn availability_is_a_query_per_location() {
    let ledger = ledger();
    ledger.allocate(&AllocateRequest::new(SKU, 4).only(vec![NORTH])).expect("north");
    let stock = ledger.available_by_location(SKU, Duration::ZERO).expect("defined");
    let figures: Vec<(Option<LocationId>, u64)> =
        stock.iter().map(|entry: &LocationStock| (entry.location, entry.available.get())).collect();
    assert_eq!(figures, [(Some(NORTH), 1), (Some(SOUTH), 5), (None, 5)]);
}

#[test]
fn an_unsplit_order_takes_every_part_from_one_location() {
    let ledger = ledger();
    let other = SkuId(2);
    ledger.define_sku(other, AllocationPolicy::Fifo).expect("fresh");
    ledger.receive(other, NewLot::new(LotId(1), 1).at(NORTH)).expect("north has 1");
    ledger.receive(other, NewLot::new(LotId(2), 9).at(SOUTH)).expect("south has 9");
    let order = OrderRequest::new(vec![OrderLine::new(SKU, 4), OrderLine::new(other, 2)]);
    let held = ledger.allocate_order(&order).expect("south covers both");
    let lots: Vec<u64> = held.allocations.iter().flat_map(|part| part.lines.iter().map(|line| line.lot.0)).collect();
    assert_eq!(lots, [2, 2], "both parts from south's lots");
    // Nothing covers 6 of SKU 1 in one place: refused, nothing held.
    let too_much = OrderRequest::new(vec![OrderLine::new(SKU, 6), OrderLine::new(other, 1)]);
    assert!(matches!(ledger.allocate_order(&too_much), Err(OrderError::Line { index: 0, .. })));
    assert_eq!(ledger.snapshot(other).expect("defined").totals().held, q(2));
    // Split, it goes through.
    ledger.allocate_order(&too_much.split(true)).expect("split across locations");
    assert!(ledger.audit().is_clean());
}

#[test]
fn invalid_locations_are_refused_and_change_nothing() {
    let ledger = ledger();
    let before = ledger.snapshot(SKU).expect("defined").version();
    let invalid = |locations: Locations| {
        let mut request = AllocateRequest::new(SKU, 1);
        request.locations = locations;
        match ledger.allocate(&request) {
            Err(AllocateError::InvalidLocations { problem, .. }) => problem,
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    assert_eq!(invalid(Locations::Only(vec![])), LocationsProblem::Empty);
    assert_eq!(invalid(Locations::Ranked(vec![NORTH, NORTH])), LocationsProblem::Repeated { location: NORTH });
    let far = LocationId(LOCATION_MAX + 1);
    assert_eq!(invalid(Locations::Only(vec![far])), LocationsProblem::OutOfRange { location: far, max: LOCATION_MAX });
    let many = (0..=LOCATIONS_MAX as u32).map(LocationId).collect();
    assert_eq!(
        invalid(Locations::Ranked(many)),
        LocationsProblem::TooMany { count: LOCATIONS_MAX + 1, max: LOCATIONS_MAX }
    );
    assert_eq!(
        ledger.allocate(&AllocateRequest::new(SKU, 1).only(vec![NORTH]).backordered()),
        Err(AllocateError::BackorderWithLocations { sku: SKU })
    );
    assert_eq!(
        ledger.receive(SKU, NewLot::new(LotId(9), 1).at(far)),
        Err(ReceiveError::LocationOutOfRange { sku: SKU, lot: LotId(9), location: far, max: LOCATION_MAX })
    );
    assert_eq!(ledger.snapshot(SKU).expect("defined").version(), before, "refusals change nothing");
}
