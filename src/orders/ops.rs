//! The order commands (see the module docs of [`super`]).
//!
//! Owns: how an order is allocated (lines validated, kits expanded, one
//! hold per SKU, rolled back on a refusal), committed (pin, then commit),
//! released, extended and read.
//!
//! Must never: act on an order without holding its phase, or return with
//! a part changed by a refused command.

use super::record::{OrderRecord, Phase};
use super::{OrderChangeError, OrderCommitted, OrderExtended, OrderReleased};
use super::{OrderState, OrderStatus, PartFailure, PartState, PartStatus};
use crate::cell::Demand;
use crate::cell::ops::{EndRefusal, HoldSpec};
use crate::cell::slots::Marks;
use crate::clock::Timestamp;
use crate::command::{AllocateRequest, OrderRequest};
use crate::error::{AllocateError, CommitError, ExtendError, OrderError, ReleaseError};
use crate::events::Change;
use crate::ids::{LocationId, OrderId, ReservationId, SkuId};
use crate::ledger::{Ledger, QueryError};
use crate::metrics::{CommandKind, Tallied};
use crate::outcome::{Allocation, OrderAllocation, Pinned};
use crate::policy::{FillMode, Locations};
use crate::trace;
use std::collections::BTreeMap;
use std::time::Duration;

/// Rounds an order command retries a part's change that keeps losing
/// races before it stops: each lost round means other changes of that SKU
/// landed, so reaching this is a bug to stop at (the order would be left
/// half done otherwise).
const PART_ROUNDS_MAX: u32 = 1 << 12;

impl Ledger {
    /// Holds every line of a multi-line order as one order, or nothing.
    ///
    /// Lines of one SKU count as their combined demand and become one
    /// reservation, the order's part for that SKU; a line of a kit
    /// ([`define_kit`](Self::define_kit)) stands for its components. Parts
    /// are made one SKU at a time, in ascending id order; if a SKU cannot
    /// cover its lines, the parts already made are released (in reverse
    /// order) before the error returns, so no unit stays held by a refused
    /// order. See [`orders`](crate::orders) for what a concurrent observer
    /// can see meanwhile.
    ///
    /// The parts commit, release and extend only with their order
    /// ([`commit_order`](Self::commit_order), …); a command on one part
    /// alone is refused with `OrderPart`.
    ///
    /// ```
    /// use stockroom::{AllocationPolicy, Ledger, LotId, NewLot, OrderError, OrderLine, OrderRequest, SkuId};
    ///
    /// let ledger = Ledger::new();
    /// for sku in [SkuId(1), SkuId(2)] {
    ///     ledger.define_sku(sku, AllocationPolicy::Fifo)?;
    ///     ledger.receive(sku, NewLot::new(LotId(1), 3))?;
    /// }
    /// let too_much = OrderRequest::new(vec![OrderLine::new(SkuId(1), 2), OrderLine::new(SkuId(2), 4)]);
    /// assert!(matches!(ledger.allocate_order(&too_much), Err(OrderError::Line { index: 1, .. })));
    /// // Nothing stayed held on SKU 1.
    /// assert_eq!(ledger.snapshot(SkuId(1))?.totals().held.get(), 0);
    ///
    /// let order = ledger.allocate_order(&OrderRequest::new(vec![OrderLine::new(SkuId(1), 2), OrderLine::new(SkuId(2), 1)]))?;
    /// let committed = ledger.commit_order(order.order)?;
    /// assert_eq!(committed.parts.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allocate_order(&self, order: &OrderRequest) -> Result<OrderAllocation, OrderError> {
        let probe = self.metrics.probe(CommandKind::AllocateOrder, trace::command_span!("allocate_order"));
        self.allocate_order_inner(order).tallied(probe)
    }

    fn allocate_order_inner(&self, order: &OrderRequest) -> Result<OrderAllocation, OrderError> {
        if order.lines.is_empty() {
            return Err(OrderError::Empty);
        }
        if order.lines.len() > OrderRequest::LINES_MAX {
            return Err(OrderError::TooManyLines { lines: order.lines.len(), max: OrderRequest::LINES_MAX });
        }
        let terms = self.hold_terms(order.hold_for).map_err(|rejected| match rejected {
            None => OrderError::ZeroHold,
            Some(requested) => OrderError::HoldTooLong { requested, max: self.hold_max() },
        })?;
        let moment = self.moment();
        // Every line's input (kits expanded), then every SKU's existence,
        // before any stock.
        let mut requests: Vec<(usize, AllocateRequest)> = Vec::with_capacity(order.lines.len());
        for (index, line) in order.lines.iter().enumerate() {
            let components = self.kit_lines(line).map_err(|error| OrderError::Line { index, error })?;
            for (sku, quantity) in components {
                let request = AllocateRequest {
                    policy: line.policy,
                    min_shelf_life: line.min_shelf_life,
                    locations: order.locations.clone(),
                    split: order.split,
                    ..AllocateRequest::new(sku, quantity)
                };
                requests.push((index, request));
            }
        }
        let mut groups: BTreeMap<SkuId, (Vec<usize>, Vec<Demand<'_>>)> = BTreeMap::new();
        for (index, request) in &requests {
            let demand = self.demand(request, &moment).map_err(|error| OrderError::Line { index: *index, error })?;
            let group = groups.entry(request.sku).or_default();
            group.0.push(*index);
            group.1.push(Demand { fill: FillMode::FillOrKill, ..demand });
        }
        for (index, line) in order.lines.iter().enumerate() {
            // A kit's components are defined SKUs (checked when it was
            // defined; SKUs are never removed).
            if !self.is_defined(line.sku) && self.kit_parts(line.sku).is_none() {
                return Err(OrderError::Line { index, error: AllocateError::UnknownSku { sku: line.sku } });
            }
        }
        let id = self.orders().next_id();
        let marks = Marks { tag: order.tag, order: id.0 };
        // Unsplit, every part comes from one location: each candidate in
        // turn (when the parts' lots are at more than one).
        let candidates = if order.split { Vec::new() } else { self.order_locations(order, groups.keys()) };
        let mut first_refusal = None;
        for at in candidates.iter().map(Some).chain(candidates.is_empty().then_some(None)) {
            for (_, demands) in groups.values_mut() {
                for demand in demands.iter_mut() {
                    demand.exact = at.copied();
                }
            }
            match self.hold_parts(&groups, &moment, HoldSpec { terms, marks, ..HoldSpec::default() }) {
                Ok(held) => {
                    let parts: Box<[ReservationId]> = held.iter().map(|allocation| allocation.reservation).collect();
                    let deadline = held.first().and_then(|allocation| allocation.deadline);
                    #[cfg(feature = "journal")]
                    let made = super::OrderImage::new(id, order.tag, &parts, deadline);
                    self.orders().insert(OrderRecord::new(id, order.tag, parts, deadline));
                    // After the book took it: a checkpoint that misses it
                    // covers no record of it.
                    #[cfg(feature = "journal")]
                    self.record_order(&made);
                    self.orders().forget_finished(|record| record.is_final() || self.every_part_ended(record));
                    return Ok(OrderAllocation { order: id, allocations: held });
                }
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        Err(first_refusal.expect("at least one attempt"))
    }

    /// Holds each SKU's part, ascending SKU id; on a refusal releases the
    /// parts made (in reverse) and names the line that stopped it.
    fn hold_parts(
        &self,
        groups: &BTreeMap<SkuId, (Vec<usize>, Vec<Demand<'_>>)>,
        moment: &crate::clock::Moment,
        spec: HoldSpec,
    ) -> Result<Vec<Allocation>, OrderError> {
        let mut held: Vec<Allocation> = Vec::with_capacity(groups.len());
        for (&sku, (indices, demands)) in groups {
            let unknown = Err((indices[0], AllocateError::UnknownSku { sku }));
            let result = self.on(sku, moment, unknown, |cell, ctx| {
                let mut landed =
                    self.on_landed(sku, |allocation: &Allocation| Change::Allocated(allocation.clone()), None);
                cell.hold(ctx, demands, spec, &mut landed).map_err(|(at, error)| (indices[at], error))
            });
            match result {
                Ok(allocation) => held.push(allocation),
                Err((index, error)) => {
                    for allocation in held.iter().rev() {
                        self.roll_back(allocation.reservation, spec.marks.order);
                    }
                    return Err(OrderError::Line { index, error });
                }
            }
        }
        Ok(held)
    }

    /// The locations an unsplit order tries, in order: its ranked or only
    /// list first (as given), then, unless restricted, every other location
    /// its SKUs have lots at (by id; lots without a location last). Empty
    /// when the SKUs' lots are all at one location (any draw is then from
    /// one location).
    fn order_locations<'s>(
        &self,
        order: &OrderRequest,
        skus: impl Iterator<Item = &'s SkuId>,
    ) -> Vec<Option<LocationId>> {
        let mut seen: std::collections::BTreeSet<(bool, u32)> = std::collections::BTreeSet::new();
        for &sku in skus {
            for location in self.lot_locations(sku) {
                seen.insert(location.map_or((true, 0), |at| (false, at.0)));
            }
        }
        let present: Vec<Option<LocationId>> =
            seen.into_iter().map(|(none, at)| (!none).then_some(LocationId(at))).collect();
        let mut candidates: Vec<Option<LocationId>> = order.locations.listed().iter().copied().map(Some).collect();
        if !matches!(order.locations, Locations::Only(_)) {
            for at in present.iter().copied() {
                if !candidates.contains(&at) {
                    candidates.push(at);
                }
            }
        }
        if matches!(order.locations, Locations::Any) && present.len() <= 1 {
            return Vec::new();
        }
        candidates
    }

    /// Releases a hold its maker cannot keep (a part of `order` whose order
    /// failed, or a guard's hold with `order` 0). Retries while contended
    /// (see [`PART_ROUNDS_MAX`]); any other outcome means the hold already
    /// ended (it lapsed, or was ended by id), so its units are not ours.
    pub(crate) fn roll_back(&self, id: ReservationId, order: u64) {
        for _ in 0..PART_ROUNDS_MAX {
            if !matches!(self.release_as(id, order), Err(ReleaseError::Contended { .. })) {
                return;
            }
        }
        unreachable!("{id}: {PART_ROUNDS_MAX} rounds of contention releasing one hold");
    }

    /// Commits every part of `order`, or none (see [`crate::orders`]: each
    /// part with a deadline is pinned first, then every part commits).
    ///
    /// Refused with [`OrderChangeError::Part`] when a part lapsed, ended,
    /// lost units to a shrink, or is a backorder still waiting; the parts
    /// pinned before it get their deadline back and the order stays live.
    pub fn commit_order(&self, order: OrderId) -> Result<OrderCommitted, OrderChangeError> {
        let record = self.claim_order(order, Phase::Committing)?;
        let mut pinned: Vec<(ReservationId, Option<Timestamp>)> = Vec::new();
        for (index, &part) in record.parts.iter().enumerate() {
            let failure = match self.pin_part(part, order, None) {
                Ok(before) => {
                    pinned.push((part, before));
                    continue;
                }
                Err(failure) => failure,
            };
            for &(part, before) in pinned.iter().rev() {
                // Its own deadline back; a part that cannot take it back
                // has ended, which is all a restore could have led to.
                let _ = self.pin_part(part, order, before);
            }
            record.leave(Phase::Live);
            return Err(OrderChangeError::Part { order, index, reservation: part, failure });
        }
        let mut parts = Vec::with_capacity(record.parts.len());
        for &part in record.parts.iter() {
            parts.push(self.commit_part(part, order));
        }
        record.leave(Phase::Committed);
        #[cfg(feature = "journal")]
        self.record_order_finished(order, true);
        Ok(OrderCommitted { order, parts })
    }

    /// Releases every part of `order` that is still held (parts that
    /// lapsed are listed as already ended).
    pub fn release_order(&self, order: OrderId) -> Result<OrderReleased, OrderChangeError> {
        let record = self.claim_order(order, Phase::Releasing)?;
        let mut released = OrderReleased { order, parts: Vec::new(), already_ended: Vec::new() };
        for &part in record.parts.iter() {
            let mut rounds = 0;
            loop {
                match self.release_as(part, order.0) {
                    Ok(outcome) => released.parts.push(outcome),
                    Err(ReleaseError::Contended { .. }) if rounds < PART_ROUNDS_MAX => {
                        rounds += 1;
                        continue;
                    }
                    Err(ReleaseError::Contended { .. }) => {
                        unreachable!("{part} of {order}: {PART_ROUNDS_MAX} rounds of contention")
                    }
                    Err(_) => released.already_ended.push(part),
                }
                break;
            }
        }
        record.leave(Phase::Released);
        #[cfg(feature = "journal")]
        self.record_order_finished(order, false);
        Ok(released)
    }

    /// Moves every part's deadline `by` later, or none: a part that cannot
    /// be extended (it lapsed, ended, or would pass its latest) stops it,
    /// and the parts extended before it get their old deadline back.
    pub fn extend_order(&self, order: OrderId, by: Duration) -> Result<OrderExtended, OrderChangeError> {
        if by < Duration::from_millis(1) {
            return Err(OrderChangeError::ZeroDuration { order });
        }
        let record = self.claim_order(order, Phase::Extending)?;
        let mut parts = Vec::with_capacity(record.parts.len());
        for (index, &part) in record.parts.iter().enumerate() {
            match self.extend_part(part, order, by) {
                Ok(extended) => parts.push(extended),
                Err(failure) => {
                    for extended in parts.iter().rev() {
                        // An extension moved the deadline exactly `by`.
                        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
                        let old = Timestamp(extended.deadline.as_millis().saturating_sub(by));
                        let _ = self.pin_part(extended.reservation, order, Some(old));
                    }
                    record.leave(Phase::Live);
                    return Err(OrderChangeError::Part { order, index, reservation: part, failure });
                }
            }
        }
        record.leave(Phase::Live);
        Ok(OrderExtended { order, parts })
    }

    /// How `order` stands: its state and every part's.
    pub fn order(&self, order: OrderId) -> Result<OrderStatus, QueryError> {
        let record = self.orders().get(order).ok_or(QueryError::UnknownOrder { order })?;
        let phase = record.phase();
        let mut parts = Vec::with_capacity(record.parts.len());
        for &part in record.parts.iter() {
            let state = match self.reservation(part) {
                Ok(reservation) => PartState::Held { held: reservation.held() },
                Err(QueryError::Expired { .. }) => PartState::Lapsed,
                Err(_) => PartState::Ended,
            };
            parts.push(PartStatus { reservation: part, state });
        }
        let broken = parts.iter().any(|part| !matches!(part.state, PartState::Held { held } if !held.is_zero()));
        let state = match phase {
            Phase::Committed => OrderState::Committed,
            Phase::Released => OrderState::Released,
            phase if phase.is_busy() => OrderState::Busy,
            _ if broken => OrderState::Broken,
            _ => OrderState::Held,
        };
        Ok(OrderStatus { order, tag: record.tag, state, deadline: record.deadline, parts })
    }

    /// The order's record, claimed for `working`.
    fn claim_order(&self, order: OrderId, working: Phase) -> Result<std::sync::Arc<OrderRecord>, OrderChangeError> {
        let record = self.orders().get(order).ok_or(OrderChangeError::UnknownOrder { order })?;
        match record.claim(working) {
            Ok(()) => Ok(record),
            Err(Phase::Committed) => Err(OrderChangeError::Ended { order, state: OrderState::Committed }),
            Err(Phase::Released) => Err(OrderChangeError::Ended { order, state: OrderState::Released }),
            Err(_) => Err(OrderChangeError::Busy { order }),
        }
    }

    /// Whether every part of `record` has ended (it can be forgotten).
    fn every_part_ended(&self, record: &OrderRecord) -> bool {
        record.parts.iter().all(|&part| self.reservation(part).is_err())
    }

    /// Sets a part's deadline (`None`: pins it); the deadline it had.
    fn pin_part(
        &self,
        part: ReservationId,
        order: OrderId,
        deadline: Option<Timestamp>,
    ) -> Result<Option<Timestamp>, PartFailure> {
        let moment = self.moment();
        for _ in 0..PART_ROUNDS_MAX {
            let result = self.on(part.sku, &moment, Err(EndRefusal::Unknown), |cell, ctx| {
                let mut landed = self.on_landed(part.sku, |pinned: &Pinned| Change::Pinned(pinned.clone()), None);
                cell.pin(ctx, part, order.0, deadline, &mut landed)
            });
            return match result {
                Ok((_, before)) => Ok(before),
                Err(EndRefusal::Contended(_)) => continue,
                Err(EndRefusal::Expired(deadline)) => Err(PartFailure::Lapsed { deadline }),
                Err(EndRefusal::Shorted { held, granted }) => Err(PartFailure::Shorted { held, granted }),
                Err(EndRefusal::Waiting(outstanding)) => Err(PartFailure::Waiting { outstanding }),
                Err(_) => Err(PartFailure::Ended),
            };
        }
        unreachable!("{part} of {order}: {PART_ROUNDS_MAX} rounds of contention pinning one part")
    }

    /// Commits a pinned part: nobody else can end it (see the module docs),
    /// so only contention can delay it.
    fn commit_part(&self, part: ReservationId, order: OrderId) -> crate::outcome::Committed {
        for _ in 0..PART_ROUNDS_MAX {
            match self.commit_as(part, order.0, None) {
                Ok(committed) => return committed,
                Err(CommitError::Contended { .. }) => continue,
                Err(error) => unreachable!("{part} of {order} was pinned, yet its commit was refused: {error}"),
            }
        }
        unreachable!("{part} of {order}: {PART_ROUNDS_MAX} rounds of contention committing one part")
    }

    fn extend_part(
        &self,
        part: ReservationId,
        order: OrderId,
        by: Duration,
    ) -> Result<crate::outcome::Extended, PartFailure> {
        for _ in 0..PART_ROUNDS_MAX {
            return match self.extend_as(part, order.0, by) {
                Ok(extended) => Ok(extended),
                Err(ExtendError::Contended { .. }) => continue,
                Err(ExtendError::Expired { deadline, .. }) => Err(PartFailure::Lapsed { deadline }),
                Err(ExtendError::NoDeadline { .. }) => Err(PartFailure::NoDeadline),
                Err(ExtendError::BeyondMaximum { latest, .. }) => Err(PartFailure::BeyondMaximum { latest }),
                Err(_) => Err(PartFailure::Ended),
            };
        }
        unreachable!("{part} of {order}: {PART_ROUNDS_MAX} rounds of contention extending one part")
    }
}
