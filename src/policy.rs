//! Allocation policies: the order lots are drawn from, and which lots may
//! be drawn at all.
//!
//! Owns: [`AllocationPolicy`], [`FillMode`], [`Locations`], the sort key
//! each policy puts lots in, and the eligibility rule (expired and
//! too-soon-to-expire lots are skipped under every policy).
//!
//! Must never: look at quantities. A policy orders and filters lots by their
//! fixed facts (receipt, expiry, arrival); how much to take is the SKU
//! cell's business.

use crate::clock::Timestamp;
use crate::ids::LocationId;
use core::fmt;
use std::time::Duration;

/// The order a SKU's lots are drawn from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum AllocationPolicy {
    /// First expired, first out: earliest expiry first; lots without an
    /// expiry come last. Ties go to the earlier receipt, then to the lot
    /// received into the ledger first.
    #[default]
    Fefo,
    /// First in, first out: earliest receipt first; ties go to the lot
    /// received into the ledger first.
    Fifo,
}

/// What an allocation does when the SKU cannot supply all of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum FillMode {
    /// All or nothing: refuse unless every requested unit can be allocated.
    #[default]
    FillOrKill,
    /// Take what the eligible lots have, at least one unit.
    Partial,
}

/// The most locations one request may name.
pub const LOCATIONS_MAX: usize = 16;

/// Which locations a request may draw from, and in what order. Within one
/// location, lots go in the SKU's policy order. Whether one request may
/// take units from more than one location is its `split` setting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Locations {
    /// Any lot (lots without a location form a location of their own).
    #[default]
    Any,
    /// Only lots at these locations (at most [`LOCATIONS_MAX`], no
    /// repeats).
    Only(Vec<LocationId>),
    /// Lots at these locations first, in this order (the nearest or
    /// preferred first), then every other lot (at most
    /// [`LOCATIONS_MAX`], no repeats).
    Ranked(Vec<LocationId>),
}

impl Locations {
    /// Whether a lot at `location` may serve the request at all.
    pub(crate) fn admits(&self, location: Option<LocationId>) -> bool {
        match self {
            Locations::Any | Locations::Ranked(_) => true,
            Locations::Only(set) => location.is_some_and(|location| set.contains(&location)),
        }
    }

    /// The listed locations (empty for `Any`).
    pub(crate) fn listed(&self) -> &[LocationId] {
        match self {
            Locations::Any => &[],
            Locations::Only(list) | Locations::Ranked(list) => list,
        }
    }
}

impl fmt::Display for AllocationPolicy {
    /// `FEFO` or `FIFO`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllocationPolicy::Fefo => "FEFO",
            AllocationPolicy::Fifo => "FIFO",
        })
    }
}

impl fmt::Display for FillMode {
    /// `fill-or-kill` or `partial`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FillMode::FillOrKill => "fill-or-kill",
            FillMode::Partial => "partial",
        })
    }
}

/// The fixed facts of a lot a policy orders by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LotFacts {
    pub(crate) received_at: Timestamp,
    pub(crate) expires_at: Option<Timestamp>,
    /// Position in the SKU's arrival order: the final tie-breaker.
    pub(crate) arrival: u32,
}

impl AllocationPolicy {
    /// The key lots are sorted by under this policy: smaller is drawn first.
    ///
    /// Under FEFO a lot without an expiry sorts after every lot with one,
    /// even one expiring at the end of time, so the lots an allocation must
    /// skip as expiring too soon are always a prefix of the order.
    pub(crate) fn sort_key(self, lot: &LotFacts) -> (bool, u64, u64, u32) {
        match self {
            AllocationPolicy::Fefo => match lot.expires_at {
                Some(expiry) => (false, expiry.as_millis(), lot.received_at.as_millis(), lot.arrival),
                None => (true, 0, lot.received_at.as_millis(), lot.arrival),
            },
            AllocationPolicy::Fifo => (false, lot.received_at.as_millis(), 0, lot.arrival),
        }
    }
}

/// Which lots an allocation at `now` may draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Eligibility {
    /// Lots expiring at or before this instant are skipped.
    cutoff: Timestamp,
}

impl Eligibility {
    /// A lot is eligible when it has no expiry, or when it expires strictly
    /// after `now + min_shelf_life` (a lot expiring exactly at `now` has
    /// expired).
    pub(crate) fn at(now: Timestamp, min_shelf_life: Duration) -> Eligibility {
        Eligibility { cutoff: now.saturating_add(min_shelf_life) }
    }

    pub(crate) fn admits(self, expires_at: Option<Timestamp>) -> bool {
        expires_at.is_none_or(|expiry| expiry > self.cutoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lot(received: u64, expires: Option<u64>, arrival: u32) -> LotFacts {
        LotFacts { received_at: Timestamp(received), expires_at: expires.map(Timestamp), arrival }
    }

    #[test]
    fn fefo_puts_earliest_expiry_first_and_no_expiry_last() {
        let mut lots = [lot(1, None, 0), lot(2, Some(50), 1), lot(3, Some(10), 2), lot(0, Some(50), 3)];
        lots.sort_by_key(|l| AllocationPolicy::Fefo.sort_key(l));
        let arrivals: Vec<u32> = lots.iter().map(|l| l.arrival).collect();
        assert_eq!(arrivals, [2, 3, 1, 0]);
    }

    #[test]
    fn fefo_puts_no_expiry_after_the_end_of_time() {
        let mut lots = [lot(0, None, 0), lot(9, Some(u64::MAX), 1)];
        lots.sort_by_key(|l| AllocationPolicy::Fefo.sort_key(l));
        let arrivals: Vec<u32> = lots.iter().map(|l| l.arrival).collect();
        assert_eq!(arrivals, [1, 0]);
    }

    #[test]
    fn fifo_puts_earliest_receipt_first() {
        let mut lots = [lot(5, Some(1), 0), lot(1, None, 1), lot(5, Some(0), 2)];
        lots.sort_by_key(|l| AllocationPolicy::Fifo.sort_key(l));
        let arrivals: Vec<u32> = lots.iter().map(|l| l.arrival).collect();
        assert_eq!(arrivals, [1, 0, 2]);
    }

    #[test]
    fn policies_print_as_one_word() {
        let printed = |policy: AllocationPolicy| match policy {
            // No wildcard: a new policy fails to compile here until it prints.
            AllocationPolicy::Fefo | AllocationPolicy::Fifo => policy.to_string(),
        };
        assert_eq!(printed(AllocationPolicy::Fefo), "FEFO");
        assert_eq!(printed(AllocationPolicy::Fifo), "FIFO");
        let fill = |mode: FillMode| match mode {
            FillMode::FillOrKill | FillMode::Partial => mode.to_string(),
        };
        assert_eq!(fill(FillMode::FillOrKill), "fill-or-kill");
        assert_eq!(fill(FillMode::Partial), "partial");
    }

    #[test]
    fn expired_and_too_soon_lots_are_not_eligible() {
        let now = Timestamp(100);
        let plain = Eligibility::at(now, Duration::ZERO);
        assert!(!plain.admits(Some(Timestamp(100))), "expiring at now means expired");
        assert!(plain.admits(Some(Timestamp(101))));
        assert!(plain.admits(None));
        let shelf = Eligibility::at(now, Duration::from_millis(50));
        assert!(!shelf.admits(Some(Timestamp(150))));
        assert!(shelf.admits(Some(Timestamp(151))));
    }
}
