//! The audit: every invariant of the design, checked over live state.
//!
//! Owns: [`AuditReport`], [`Violation`], and the checks themselves.
//!
//! Must never: trust the counters it checks. Each check recomputes a
//! quantity from a second source (lot counters against the conservation
//! law, lot `held` against the holds, totals against the lots) and
//! reports a disagreement; none of them repairs anything.

use crate::cell::SkuState;
use crate::ids::{LotId, ReservationId, SkuId};
use crate::lot::LotQuantities;

/// What [`Ledger::audit`](crate::Ledger::audit) found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AuditReport {
    /// SKUs checked.
    pub skus: usize,
    /// Lots checked.
    pub lots: usize,
    /// Live reservations checked.
    pub reservations: usize,
    /// Every broken invariant found; empty when the ledger is sound.
    pub violations: Vec<Violation>,
}

impl AuditReport {
    /// True when no invariant is broken.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Violation {
    /// `received + adjusted != available + held + committed` on a lot: units
    /// appeared or vanished.
    Conservation {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// Its counters.
        quantities: LotQuantities,
    },
    /// A lot's `held` differs from the sum of the reservations on it.
    HeldMismatch {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// What the lot says is held.
        lot_held: u64,
        /// What the reservations add up to.
        reservations_held: u64,
    },
    /// A SKU's totals differ from the sum of its lots.
    TotalsMismatch {
        /// The SKU.
        sku: SkuId,
        /// The stored totals.
        totals: LotQuantities,
        /// The sum of the lots.
        sum_of_lots: LotQuantities,
    },
    /// A reservation's lines do not add up to `granted - shorted`, or one
    /// of them is empty.
    ReservationMismatch {
        /// The reservation.
        reservation: ReservationId,
    },
    /// A lot the allocator skips (before the cursor) still has units.
    SkippedStock {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
    },
}

/// Appends every violation in one SKU version to `report`.
pub(crate) fn audit_sku(state: &SkuState, report: &mut AuditReport) {
    let sku = state.sku;
    let catalog = &state.catalog;
    let lot_count = catalog.len();
    report.skus += 1;
    report.lots += lot_count;
    report.reservations += state.holds.len();

    let mut held_by_reservations = vec![0u64; lot_count];
    for (&seq, hold) in state.holds.iter() {
        let mut sum = 0u64;
        let mut sound = seq < state.next_seq && hold.shorted <= hold.granted;
        for line in &hold.lines {
            sound &= !line.quantity.is_zero() && (line.lot as usize) < lot_count;
            if let Some(slot) = held_by_reservations.get_mut(line.lot as usize) {
                *slot += line.quantity.get();
            }
            sum += line.quantity.get();
        }
        if !sound || sum + hold.shorted.get() != hold.granted.get() {
            report.violations.push(Violation::ReservationMismatch { reservation: ReservationId { sku, seq } });
        }
    }

    let mut sum = Sums::default();
    for (position, &arrival) in catalog.order().iter().enumerate() {
        let lot = catalog.meta(arrival).id;
        let quantities = state.quantities(arrival);
        let inflow = i128::from(quantities.received.get()) + i128::from(quantities.adjusted);
        let outflow = i128::from(quantities.available.get())
            + i128::from(quantities.held.get())
            + i128::from(quantities.committed.get());
        if inflow != outflow {
            report.violations.push(Violation::Conservation { sku, lot, quantities });
        }
        let reservations_held = held_by_reservations[arrival as usize];
        if quantities.held.get() != reservations_held {
            report.violations.push(Violation::HeldMismatch {
                sku,
                lot,
                lot_held: quantities.held.get(),
                reservations_held,
            });
        }
        if position < state.cursor as usize && !quantities.available.is_zero() {
            report.violations.push(Violation::SkippedStock { sku, lot });
        }
        sum.add(&quantities);
    }
    if !sum.matches(&state.totals) {
        report.violations.push(Violation::TotalsMismatch { sku, totals: state.totals, sum_of_lots: sum.saturated() });
    }
}

/// Wide sums, so that a corrupted counter cannot overflow the audit.
#[derive(Default)]
struct Sums {
    received: u128,
    adjusted: i128,
    available: u128,
    held: u128,
    committed: u128,
}

impl Sums {
    fn add(&mut self, lot: &LotQuantities) {
        self.received += u128::from(lot.received.get());
        self.adjusted += i128::from(lot.adjusted);
        self.available += u128::from(lot.available.get());
        self.held += u128::from(lot.held.get());
        self.committed += u128::from(lot.committed.get());
    }

    fn matches(&self, totals: &LotQuantities) -> bool {
        self.received == u128::from(totals.received.get())
            && self.adjusted == i128::from(totals.adjusted)
            && self.available == u128::from(totals.available.get())
            && self.held == u128::from(totals.held.get())
            && self.committed == u128::from(totals.committed.get())
    }

    fn saturated(&self) -> LotQuantities {
        let clamp = |value: u128| {
            crate::quantity::Quantity::new(u64::try_from(value).unwrap_or(u64::MAX))
                .unwrap_or(crate::quantity::Quantity::MAX)
        };
        LotQuantities {
            received: clamp(self.received),
            adjusted: i64::try_from(self.adjusted).unwrap_or(if self.adjusted < 0 { i64::MIN } else { i64::MAX }),
            available: clamp(self.available),
            held: clamp(self.held),
            committed: clamp(self.committed),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The audit reads `adjusted` as `net - received`; these check that a
    //! unit appearing or vanishing in a lot still shows as a violation.
    use super::{AuditReport, Violation, audit_sku};
    use crate::cell::{Counts, SkuState};
    use crate::clock::Timestamp;
    use crate::ids::{LotId, SkuId};
    use crate::lot::NewLot;
    use crate::policy::AllocationPolicy;
    use crate::quantity::Quantity;

    fn stocked() -> SkuState {
        let empty = SkuState::defined(SkuId(1), AllocationPolicy::Fefo);
        let (state, _) = empty.receive(&NewLot::new(LotId(7), 10), Quantity::new(10).unwrap(), Timestamp(0)).unwrap();
        state
    }

    fn audit(state: &SkuState) -> AuditReport {
        let mut report = AuditReport::default();
        audit_sku(state, &mut report);
        report
    }

    fn corrupt(state: &mut SkuState, change: impl FnOnce(&mut Counts)) {
        let mut counts = state.counts(0);
        change(&mut counts);
        state.lots.set(0, counts.pack());
    }

    #[test]
    fn a_sound_lot_is_clean() {
        assert!(audit(&stocked()).is_clean());
    }

    #[test]
    fn a_unit_vanishing_from_a_lot_breaks_conservation() {
        let mut state = stocked();
        corrupt(&mut state, |lot| lot.available = lot.available.minus(Quantity::new(1).unwrap()));
        let report = audit(&state);
        assert!(
            report
                .violations
                .iter()
                .any(|violation| matches!(violation, Violation::Conservation { lot: LotId(7), .. })),
            "{report:?}"
        );
    }

    #[test]
    fn an_adjustment_not_counted_in_the_totals_is_caught() {
        let mut state = stocked();
        corrupt(&mut state, |lot| {
            lot.available = lot.available.plus(Quantity::new(1).unwrap());
            lot.net = lot.net.plus(Quantity::new(1).unwrap());
        });
        let report = audit(&state);
        assert!(
            report.violations.iter().any(|violation| matches!(violation, Violation::TotalsMismatch { .. })),
            "{report:?}"
        );
    }
}
