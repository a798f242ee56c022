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
        let quantities = state.lots.get(arrival);
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
