//! The audit: every invariant of the design, checked over live state.
//!
//! Owns: [`AuditReport`], [`Violation`], and the checks themselves.
//!
//! Must never: trust the counters it checks, or repair anything. A lot
//! stores `available` and `net`; units held are the sum of its live
//! reservation lines and units committed are what is left, so conservation
//! (`received + adjusted = available + held + committed`) holds by
//! construction. What can still break, and is checked: committed units
//! going negative (units appeared), lots' net units exceeding what the SKU
//! ever took in (a second source: the inflow counter), reservations that
//! hold more than they were granted or name no lot, and stock the cursor
//! would skip.

use crate::cell::SkuData;
use crate::ids::{LotId, ReservationId, SkuId};
use crate::lot::LotQuantities;
use crate::snapshot::quantities;

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
#[non_exhaustive]
pub enum Violation {
    /// A lot holds more units available and held than it has in the
    /// building and gone (`available + held > received + adjusted`):
    /// units appeared, or committed units would be negative.
    Conservation {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// Its counters (`committed` clamped at zero).
        quantities: LotQuantities,
    },
    /// The lots' net units add up to more than the SKU ever took in
    /// (receipts plus growth adjustments).
    InflowExceeded {
        /// The SKU.
        sku: SkuId,
        /// The sum of the lots' `received + adjusted`.
        net: u64,
        /// Receipts plus growth adjustments.
        inflow: u64,
    },
    /// A reservation's lines do not add up to at most what it was granted,
    /// or name a lot the SKU does not have, or it has no line (and is not
    /// a backorder still waiting).
    ReservationMismatch {
        /// The reservation.
        reservation: ReservationId,
    },
    /// A lot the allocator skips (before the cursor) still has units, or
    /// the cursor's lot is empty while another lot is not.
    SkippedStock {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
    },
}

/// Appends every violation in one SKU version to `report`.
pub(crate) fn audit_sku(state: &SkuData, report: &mut AuditReport) {
    let sku = state.sku;
    report.skus += 1;
    report.lots += state.lots.len();
    report.reservations += state.holds.len();

    for hold in &state.holds {
        // A preorder waiting for all of its units holds no line yet.
        let sound = (!hold.lines.is_empty() || !hold.outstanding.is_zero())
            && hold.seq <= state.version
            && hold.held() <= hold.granted
            && hold.lines.iter().all(|line| state.lot(line.lot).is_some());
        if !sound {
            report.violations.push(Violation::ReservationMismatch { reservation: hold.id(sku) });
        }
    }

    let mut net: u128 = 0;
    let cursor_empty = state.lot(state.cursor).is_none_or(|lot| lot.counts.available.is_zero());
    let mut before_cursor = !state.lots.is_empty();
    for lot in &state.lots {
        if lot.arrival == state.cursor {
            before_cursor = false;
        }
        net += u128::from(lot.counts.net.get());
        if lot.committed() < 0 {
            report.violations.push(Violation::Conservation {
                sku,
                lot: lot.facts.id,
                quantities: quantities(lot, None),
            });
        }
        if (before_cursor || cursor_empty) && !lot.counts.available.is_zero() {
            report.violations.push(Violation::SkippedStock { sku, lot: lot.facts.id });
        }
    }
    if net > u128::from(state.inflow.get()) {
        let net = u64::try_from(net).unwrap_or(u64::MAX);
        report.violations.push(Violation::InflowExceeded { sku, net, inflow: state.inflow.get() });
    }
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    //! Each check fires on a state corrupted the way it is meant to catch.
    use super::{AuditReport, Violation, audit_sku};
    use crate::cell::lots::{Counts, LotFacts};
    use crate::cell::read::HoldLine;
    use crate::cell::{HoldData, LotData, SkuData};
    use crate::clock::Timestamp;
    use crate::ids::{LotId, SkuId};
    use crate::policy::AllocationPolicy;
    use crate::quantity::Quantity;

    fn q(units: u64) -> Quantity {
        Quantity::new(units).unwrap()
    }

    /// One lot of 10: 6 available, 3 held by one hold, 1 committed.
    fn sound() -> SkuData {
        let facts = LotFacts {
            id: LotId(7),
            received_at: Timestamp(0),
            expires_at: None,
            received: q(10),
            has_attributes: false,
            location: None,
        };
        let lot = LotData {
            arrival: 0,
            facts,
            counts: Counts { available: q(6), net: q(10) },
            held: q(3),
            attributes: None,
            ext: Default::default(),
        };
        let hold = HoldData {
            seq: 2,
            slot: 0,
            lines: [HoldLine { slot: 0, lot: 0, quantity: q(3), removed: false }].into_iter().collect(),
            granted: q(3),
            deadline: None,
            latest: u64::MAX,
            marks: crate::cell::slots::Marks::default(),
            outstanding: Quantity::ZERO,
        };
        SkuData {
            sku: SkuId(1),
            version: 3,
            policy: AllocationPolicy::Fefo,
            lots: vec![lot],
            holds: vec![hold],
            cursor: 0,
            inflow: q(10),
            at: None,
        }
    }

    fn audit(state: &SkuData) -> AuditReport {
        let mut report = AuditReport::default();
        audit_sku(state, &mut report);
        report
    }

    #[test]
    fn a_sound_sku_is_clean() {
        assert!(audit(&sound()).is_clean(), "{:?}", audit(&sound()));
    }

    #[test]
    fn units_appearing_in_a_lot_break_conservation() {
        let mut state = sound();
        state.lots[0].counts.available = q(8);
        let report = audit(&state);
        assert!(matches!(report.violations[..], [Violation::Conservation { lot: LotId(7), .. }]), "{report:?}");
    }

    #[test]
    fn net_above_inflow_is_caught() {
        let mut state = sound();
        state.lots[0].counts.net = q(11);
        let report = audit(&state);
        assert!(report.violations.iter().any(|v| matches!(v, Violation::InflowExceeded { net: 11, .. })), "{report:?}");
    }

    #[test]
    fn a_hold_holding_more_than_granted_or_a_missing_lot_is_caught() {
        let mut state = sound();
        state.holds[0].granted = q(2);
        assert!(matches!(audit(&state).violations[..], [Violation::ReservationMismatch { .. }]));
        let mut state = sound();
        state.holds[0].lines[0].lot = 5;
        assert!(matches!(audit(&state).violations[..], [Violation::ReservationMismatch { .. }]));
        // No line at all: a mismatch, unless it is a backorder still waiting.
        // (The lot's counts are left as they were: only the verdict on the
        // reservation is looked at.)
        let mismatch = |state: &SkuData| {
            audit(state).violations.iter().any(|v| matches!(v, Violation::ReservationMismatch { .. }))
        };
        let mut state = sound();
        state.holds[0].lines.clear();
        assert!(mismatch(&state), "{:?}", audit(&state));
        state.holds[0].outstanding = state.holds[0].granted;
        assert!(!mismatch(&state), "{:?}", audit(&state));
    }

    #[test]
    fn stock_the_cursor_skips_is_caught() {
        let mut state = sound();
        state.lots[0].counts.available = q(0);
        state.lots[0].held = q(3);
        let mut second = state.lots[0].clone();
        second.arrival = 1;
        second.facts.id = LotId(8);
        second.counts = Counts { available: q(4), net: q(4) };
        second.held = Quantity::ZERO;
        state.lots.push(second);
        state.inflow = q(14);
        let report = audit(&state);
        assert!(matches!(report.violations[..], [Violation::SkippedStock { lot: LotId(8), .. }]), "{report:?}");
    }
}
