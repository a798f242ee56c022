//! The reference's shop features, from the "Shop features" section of
//! `docs/semantics.md` (and the public docs of the types they answer):
//! an order's commit, release and extension as one unit, kits, returns,
//! and the order and kit queries. Part of [`super`] (the reference
//! ledger), split off for length; it works on the same `State`.

use super::*;
use stockroom::{
    KIT_COMPONENTS_MAX, KitDefined, KitError, OrderChangeError, OrderCommitted, OrderExtended, OrderLine,
    OrderReleased, OrderState, PartFailure, PartState, PartStatus, ReturnError, ReturnInto, ReturnRequest, Returned,
};

/// Where an order is: held (live), or ended one way or the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Live,
    Committed,
    Released,
}

/// An order the reference made: its tag, its parts (one reservation per
/// SKU, by SKU id), the deadline its parts were made with, and its phase.
#[derive(Clone, Debug)]
pub(super) struct RefOrder {
    tag: u64,
    parts: Vec<ReservationId>,
    deadline: Option<Timestamp>,
    phase: Phase,
}

impl RefOrder {
    pub(super) fn new(tag: u64, parts: Vec<ReservationId>, deadline: Option<Timestamp>) -> RefOrder {
        RefOrder { tag, parts, deadline, phase: Phase::Live }
    }
}

/// The SKU lines order line `index` stands for: `(index, sku, units)`, the
/// line itself, or a kit's components (in the order given) times the
/// line's quantity. A kit line of zero kits, or whose components would
/// pass the maximum, is refused naming the kit.
pub(super) fn kit_lines(state: &State, index: usize, line: &OrderLine) -> Result<Vec<(usize, SkuId, u64)>, OrderError> {
    let Some(components) = state.kits.get(&line.sku) else {
        return Ok(vec![(index, line.sku, line.quantity)]);
    };
    let kit = line.sku;
    if line.quantity == 0 {
        return Err(OrderError::Line { index, error: AllocateError::ZeroQuantity { sku: kit } });
    }
    components
        .iter()
        .map(|component| match component.quantity.checked_mul(line.quantity) {
            Some(units) if units <= MAX => Ok((index, component.sku, units)),
            _ => {
                let error = AllocateError::QuantityTooLarge { sku: kit, quantity: line.quantity };
                Err(OrderError::Line { index, error })
            }
        })
        .collect()
}

/// The order, if it is live: `UnknownOrder`, or `Ended` with how it ended.
fn live_order(state: &State, order: OrderId) -> Result<Vec<ReservationId>, OrderChangeError> {
    let record = state.orders.get(&order.0).ok_or(OrderChangeError::UnknownOrder { order })?;
    match record.phase {
        Phase::Live => Ok(record.parts.clone()),
        Phase::Committed => Err(OrderChangeError::Ended { order, state: OrderState::Committed }),
        Phase::Released => Err(OrderChangeError::Ended { order, state: OrderState::Released }),
    }
}

fn set_phase(state: &mut State, order: OrderId, phase: Phase) {
    state.orders.get_mut(&order.0).expect("a live order").phase = phase;
}

/// Sets part `part`'s deadline to `deadline` (`None`: pins it, so it cannot
/// lapse), as one version of its SKU (after the SKU's sweep); the deadline
/// it had. Pinning is refused for a part that lapsed (by this very sweep),
/// ended, waits (a backorder) or was shorted.
fn pin(
    state: &mut State,
    part: ReservationId,
    order: OrderId,
    deadline: Option<Timestamp>,
    now: Timestamp,
) -> Result<Option<Timestamp>, PartFailure> {
    let entry = state.skus.get_mut(&part.sku).ok_or(PartFailure::Ended)?;
    let swept = entry.sweep(now, false);
    let hold = match entry.lookup(part.seq, &swept) {
        Ok(hold) if hold.order != order.0 => return Err(PartFailure::Ended),
        Ok(hold) => hold,
        Err(NotLive::Expired(deadline)) => return Err(PartFailure::Lapsed { deadline }),
        Err(NotLive::Unknown | NotLive::Ended) => return Err(PartFailure::Ended),
    };
    if deadline.is_none() {
        if hold.backordered > 0 {
            return Err(PartFailure::Waiting { outstanding: q(hold.backordered) });
        }
        if hold.shorted > 0 {
            return Err(PartFailure::Shorted { held: q(hold.held()), granted: q(hold.granted) });
        }
    }
    let before = hold.deadline;
    entry.holds.get_mut(&part.seq).expect("looked up above").deadline = deadline;
    entry.version += 1;
    Ok(before)
}

/// `commit_order`: every part pinned (a version each), then committed (a
/// version each); a part that cannot be pinned gives every part pinned so
/// far its deadline back (a version each, in reverse) and names itself.
///
/// As the page says, every part is pinned, with a deadline or without:
/// the pin is also the check that the part is whole (not shorted, not
/// waiting), so no part commits before every part is known whole.
pub(super) fn commit_order(
    state: &mut State,
    order: OrderId,
    now: Timestamp,
) -> Result<OrderCommitted, OrderChangeError> {
    let parts = live_order(state, order)?;
    let mut pinned: Vec<(ReservationId, Option<Timestamp>)> = Vec::new();
    for (index, &part) in parts.iter().enumerate() {
        match pin(state, part, order, None, now) {
            Ok(before) => pinned.push((part, before)),
            Err(failure) => {
                for &(part, before) in pinned.iter().rev() {
                    let _ = pin(state, part, order, before, now);
                }
                return Err(OrderChangeError::Part { order, index, reservation: part, failure });
            }
        }
    }
    let mut committed = Vec::new();
    for &part in &parts {
        committed.push(commit_as(state, part, None, order.0, now).expect("a pinned part commits"));
    }
    set_phase(state, order, Phase::Committed);
    Ok(OrderCommitted { order, parts: committed })
}

/// `release_order`: every part still held released (a version each);
/// parts that lapsed or ended already are listed as such.
pub(super) fn release_order(
    state: &mut State,
    order: OrderId,
    now: Timestamp,
) -> Result<OrderReleased, OrderChangeError> {
    let parts = live_order(state, order)?;
    let mut released = OrderReleased { order, parts: Vec::new(), already_ended: Vec::new() };
    for part in parts {
        match release_as(state, part, order.0, now) {
            Ok(outcome) => released.parts.push(outcome),
            Err(_) => released.already_ended.push(part),
        }
    }
    set_phase(state, order, Phase::Released);
    Ok(released)
}

/// `extend_order`: every part's deadline moved `by` later (a version
/// each), or none: a part that cannot be extended gives the parts
/// extended before it their old deadline back (a version each, in
/// reverse) and names itself.
pub(super) fn extend_order(
    state: &mut State,
    order: OrderId,
    by: Duration,
    now: Timestamp,
) -> Result<OrderExtended, OrderChangeError> {
    if by < Duration::from_millis(1) {
        return Err(OrderChangeError::ZeroDuration { order });
    }
    let parts = live_order(state, order)?;
    let mut extended: Vec<(Extended, Option<Timestamp>)> = Vec::new();
    for (index, &part) in parts.iter().enumerate() {
        // The deadline it has before the extension (to give back).
        let old = state.skus.get(&part.sku).and_then(|entry| entry.holds.get(&part.seq)).and_then(|hold| hold.deadline);
        match extend_as(state, part, by, order.0, now) {
            Ok(outcome) => extended.push((outcome, old)),
            Err(error) => {
                let failure = match error {
                    ExtendError::Expired { deadline, .. } => PartFailure::Lapsed { deadline },
                    ExtendError::NoDeadline { .. } => PartFailure::NoDeadline,
                    ExtendError::BeyondMaximum { latest, .. } => PartFailure::BeyondMaximum { latest },
                    _ => PartFailure::Ended,
                };
                for (outcome, old) in extended.iter().rev() {
                    let _ = pin(state, outcome.reservation, order, *old, now);
                }
                return Err(OrderChangeError::Part { order, index, reservation: part, failure });
            }
        }
    }
    Ok(OrderExtended { order, parts: extended.into_iter().map(|(outcome, _)| outcome).collect() })
}

/// `order(id)`: each part read as `reservation` reads it (sweeping its
/// SKU): held (with its units), lapsed (by this read's sweep) or ended.
/// A live order with a part not holding anything is broken.
pub(super) fn order_status(state: &mut State, order: OrderId, now: Timestamp) -> Result<OrderStatus, QueryError> {
    let record = state.orders.get(&order.0).ok_or(QueryError::UnknownOrder { order })?.clone();
    let mut parts = Vec::new();
    for &part in &record.parts {
        let state = match query_reservation(state, part, now) {
            Ok(reservation) => PartState::Held { held: reservation.held() },
            Err(QueryError::Expired { .. }) => PartState::Lapsed,
            Err(_) => PartState::Ended,
        };
        parts.push(PartStatus { reservation: part, state });
    }
    let broken = parts.iter().any(|part| !matches!(part.state, PartState::Held { held } if !held.is_zero()));
    let state = match record.phase {
        Phase::Committed => OrderState::Committed,
        Phase::Released => OrderState::Released,
        Phase::Live if broken => OrderState::Broken,
        Phase::Live => OrderState::Held,
    };
    Ok(OrderStatus { order, tag: record.tag, state, deadline: record.deadline, parts })
}

/// `define_kit(kit, components)`: 1..=`KIT_COMPONENTS_MAX` components, each
/// of 1..=MAX units, none twice, each a defined SKU other than the kit;
/// then the id must be free (neither a SKU nor a kit). No version.
pub(super) fn define_kit(state: &mut State, kit: SkuId, components: &[KitComponent]) -> Result<KitDefined, KitError> {
    if components.is_empty() {
        return Err(KitError::Empty { kit });
    }
    if components.len() > KIT_COMPONENTS_MAX {
        return Err(KitError::TooManyComponents { kit, components: components.len(), max: KIT_COMPONENTS_MAX });
    }
    for (at, component) in components.iter().enumerate() {
        if check(component.quantity).is_err() {
            return Err(KitError::InvalidQuantity { kit, sku: component.sku, quantity: component.quantity });
        }
        if components[..at].iter().any(|earlier| earlier.sku == component.sku) {
            return Err(KitError::DuplicateComponent { kit, sku: component.sku });
        }
    }
    for component in components {
        if component.sku == kit || !state.skus.contains_key(&component.sku) {
            return Err(KitError::UnknownComponent { kit, sku: component.sku });
        }
    }
    if state.skus.contains_key(&kit) || state.kits.contains_key(&kit) {
        return Err(KitError::AlreadyDefined { kit });
    }
    state.kits.insert(kit, components.to_vec());
    Ok(KitDefined { kit, components: components.to_vec() })
}

/// `kit(id)`: its components, and the least over them of the component's
/// available units (read as `available` reads them, sweeping) divided by
/// the units one kit takes.
pub(super) fn kit(state: &mut State, kit: SkuId, now: Timestamp) -> Result<Kit, QueryError> {
    let components = state.kits.get(&kit).ok_or(QueryError::UnknownSku { sku: kit })?.clone();
    let mut available = u64::MAX;
    for component in &components {
        let has = query_available(state, component.sku, now, Duration::ZERO)?;
        available = available.min(has.get() / component.quantity);
    }
    Ok(Kit { kit, components, available: Quantity::new(available).unwrap_or(Quantity::MAX) })
}

/// `return_units(request)`: input first (the quantity, a new lot's
/// quantity and attributes), then the link (read as the reservation and
/// order queries read it), then the SKU (swept), the lot, the per-lot bound
/// (at most its committed units not yet come back), and where the units
/// go: the original lot unless it has expired, or a new lot validated as
/// a receipt. One version.
pub(super) fn return_units(
    state: &mut State,
    request: &ReturnRequest,
    now: Timestamp,
) -> Result<Returned, ReturnError> {
    let sku = request.sku;
    let units =
        check(request.quantity).map_err(|_| ReturnError::InvalidQuantity { sku, quantity: request.quantity })?;
    if let ReturnInto::NewLot(lot) = &request.into {
        if lot.quantity != request.quantity {
            return Err(ReturnError::LotQuantityMismatch {
                sku,
                lot_quantity: lot.quantity,
                quantity: request.quantity,
            });
        }
        let supplier =
            lot.attributes.as_ref().and_then(|attributes| attributes.supplier.as_deref()).map_or(0, str::len);
        if supplier > LotAttributes::SUPPLIER_LEN_MAX {
            let (field, max) = (LotAttribute::Supplier, LotAttributes::SUPPLIER_LEN_MAX);
            let cause = ReceiveError::AttributeTooLong { sku, lot: lot.id, field, len: supplier, max };
            return Err(ReturnError::NewLot { sku, cause });
        }
        stock::check_lot_location(sku, lot).map_err(|cause| ReturnError::NewLot { sku, cause })?;
    }
    let invalid = ReturnError::InvalidSource { sku, link: request.source };
    match request.source {
        ReturnSource::Reservation(id) if id.sku != sku => return Err(invalid),
        ReturnSource::Reservation(id) => match query_reservation(state, id, now) {
            Err(QueryError::Ended { .. } | QueryError::Expired { .. }) => {}
            _ => return Err(invalid),
        },
        ReturnSource::Order(order) => match order_status(state, order, now) {
            Ok(status)
                if status.state == OrderState::Committed
                    && status.parts.iter().any(|part| part.reservation.sku == sku) => {}
            _ => return Err(invalid),
        },
        _ => {}
    }
    let entry = state.skus.get_mut(&sku).ok_or(ReturnError::UnknownSku { sku })?;
    entry.sweep(now, false);
    let from = entry.index_of(request.lot).ok_or(ReturnError::UnknownLot { sku, lot: request.lot })?;
    let left = entry.lots[from].committed - entry.lots[from].came_back.min(entry.lots[from].committed);
    if units > left {
        return Err(ReturnError::MoreThanLeft { sku, lot: request.lot, quantity: q(units), left: q(left) });
    }
    let into = match &request.into {
        ReturnInto::NewLot(lot) => {
            if entry.index_of(lot.id).is_some() {
                return Err(ReturnError::NewLot { sku, cause: ReceiveError::DuplicateLot { sku, lot: lot.id } });
            }
            if entry.inflow + units > MAX {
                return Err(ReturnError::NewLot { sku, cause: ReceiveError::Overflow { sku, quantity: units } });
            }
            entry.lots.push(RefLot {
                id: lot.id,
                arrival: entry.lots.len(),
                received_at: lot.received_at.unwrap_or(now),
                expires_at: lot.expires_at,
                attributes: lot.attributes.clone(),
                location: lot.location,
                received: 0,
                adjusted: 0,
                available: units,
                held: 0,
                committed: 0,
                written_off: 0,
                returned: units,
                came_back: 0,
            });
            entry.lots.len() - 1
        }
        _ => {
            if let Some(expired_at) = entry.lots[from].expires_at.filter(|&expiry| expiry <= now) {
                return Err(ReturnError::LotExpired { sku, lot: request.lot, expired_at });
            }
            if entry.inflow + units > MAX {
                return Err(ReturnError::NewLot { sku, cause: ReceiveError::Overflow { sku, quantity: units } });
            }
            entry.lots[from].available += units;
            entry.lots[from].returned += units;
            from
        }
    };
    entry.inflow += units;
    entry.lots[from].came_back += units;
    entry.fill_waiting(now);
    entry.version += 1;
    let into_lot = entry.lots[into].id;
    Ok(returned(sku, request, into_lot, q(units), entry.version))
}

/// A `Returned` of these fields. It is `#[non_exhaustive]` with no
/// constructor, so it is built through its serde form (every consumer of
/// the reference has `serde_json`), each field serialized from a value of
/// its own type.
fn returned(sku: SkuId, request: &ReturnRequest, into_lot: LotId, quantity: Quantity, version: u64) -> Returned {
    let value = |field: Result<serde_json::Value, serde_json::Error>| field.expect("stockroom's types serialize");
    let fields = serde_json::json!({
        "sku": value(serde_json::to_value(sku)),
        "from_lot": value(serde_json::to_value(request.lot)),
        "into_lot": value(serde_json::to_value(into_lot)),
        "quantity": value(serde_json::to_value(quantity)),
        "reason": value(serde_json::to_value(request.reason)),
        "source": value(serde_json::to_value(request.source)),
        "version": version,
    });
    let built: Returned = serde_json::from_value(fields).expect("a Returned's serde form");
    built
}
