//! The reference's locations and backorders, from the "Shop features"
//! section of `docs/semantics.md` ("Locations", "Backorders") and the
//! public docs of the types they answer (`AllocateRequest::{locations,
//! split, backorder}`, `Locations`, `OrderRequest::{locations, split}`,
//! `Allocation::backordered`, `Reservation::backordered`,
//! `Ledger::available_by_location`, `LocationStock`). Part of [`super`]
//! (the reference ledger), split off for length; it works on the same
//! `RefSku`.
//!
//! Where the page and those docs are silent the reference follows what the
//! ledger does, each such choice marked "(silent)" below.

use super::*;
use stockroom::{LOCATION_MAX, LOCATIONS_MAX, LocationStock, Locations, LocationsProblem};

/// The most backorders one SKU keeps waiting (the page: "at most 1,024
/// waiting per SKU").
pub(super) const BACKORDERS_MAX: usize = 1_024;

/// `InvalidLocations` checks of a request's list (the order of the checks
/// is silent: count, an empty `only`, then each location in turn: past
/// `LOCATION_MAX`, else named before).
pub(super) fn check_locations(sku: SkuId, locations: &Locations) -> Result<(), AllocateError> {
    let listed: &[LocationId] = match locations {
        Locations::Only(list) | Locations::Ranked(list) => list,
        _ => &[],
    };
    let invalid = |problem| Err(AllocateError::InvalidLocations { sku, problem });
    if listed.len() > LOCATIONS_MAX {
        return invalid(LocationsProblem::TooMany { count: listed.len(), max: LOCATIONS_MAX });
    }
    if matches!(locations, Locations::Only(list) if list.is_empty()) {
        return invalid(LocationsProblem::Empty);
    }
    for (at, &location) in listed.iter().enumerate() {
        if location.0 > LOCATION_MAX {
            return invalid(LocationsProblem::OutOfRange { location, max: LOCATION_MAX });
        }
        if listed[..at].contains(&location) {
            return invalid(LocationsProblem::Repeated { location });
        }
    }
    Ok(())
}

/// A lot's location as the receipt checks it.
pub(super) fn check_lot_location(sku: SkuId, lot: &NewLot) -> Result<(), ReceiveError> {
    match lot.location {
        Some(location) if location.0 > LOCATION_MAX => {
            Err(ReceiveError::LocationOutOfRange { sku, lot: lot.id, location, max: LOCATION_MAX })
        }
        _ => Ok(()),
    }
}

/// Where a draw may come from and how: the request's locations and split,
/// and for an unsplit order trying one location at a time, that location
/// (`Some(None)`: the lots without one).
#[derive(Clone, Debug)]
pub(super) struct Scope<'a> {
    pub(super) locations: &'a Locations,
    pub(super) split: bool,
    pub(super) exact: Option<Option<LocationId>>,
}

impl Scope<'_> {
    /// Every lot, one walk (no location matters).
    pub(super) const ANYWHERE: Scope<'static> = Scope { locations: &Locations::Any, split: true, exact: None };
}

impl RefSku {
    /// [`walk`](RefSku::walk) over the lots whose location `admit` admits.
    fn walk_at(
        &self,
        available: &[u64],
        policy: AllocationPolicy,
        shelf_life: Duration,
        wanted: u64,
        now: Timestamp,
        admit: &dyn Fn(Option<LocationId>) -> bool,
    ) -> (Vec<(usize, u64)>, u64) {
        let mut masked = available.to_vec();
        for (i, lot) in self.lots.iter().enumerate() {
            if !admit(lot.location) {
                masked[i] = 0;
            }
        }
        self.walk(&masked, policy, shelf_life, wanted, now, None)
    }

    /// The draw of `wanted` units within `scope` (the page: "`only(list)`
    /// draws only from lots at those locations; `ranked(list)` walks
    /// locations in the given order (the policy's order within each, then
    /// every other lot); a request is covered from one location unless
    /// `split(true)`"): `(lot index, units)` in draw order, and what is
    /// still wanted.
    ///
    /// Unsplit, `AllocateRequest::split` says the units come from "the
    /// first, in rank order, that covers the whole request". Which other
    /// location counts as first is silent: the reference (as the ledger)
    /// takes the one whose lots, walked in policy order, cover the request
    /// at the earliest lot of that walk. If none covers, the draw is what
    /// the location with the most has (the first of them, listed ones
    /// first, then in the order the walk meets them): a fill-or-kill
    /// request is refused with that as `available`, a partial one gets it
    /// (silent; tests/locations.rs says "partial takes the most one
    /// location has").
    pub(super) fn scoped_walk(
        &self,
        available: &[u64],
        policy: AllocationPolicy,
        shelf_life: Duration,
        wanted: u64,
        now: Timestamp,
        scope: &Scope<'_>,
    ) -> (Vec<(usize, u64)>, u64) {
        if let Some(location) = scope.exact {
            return self.walk_at(available, policy, shelf_life, wanted, now, &|at| at == location);
        }
        let listed: Vec<LocationId> = match scope.locations {
            Locations::Only(list) | Locations::Ranked(list) => list.clone(),
            _ => Vec::new(),
        };
        let ranked = matches!(scope.locations, Locations::Ranked(_));
        let only = matches!(scope.locations, Locations::Only(_));
        let in_list = |at: Option<LocationId>| at.is_some_and(|at| listed.contains(&at));
        if scope.split {
            if !ranked {
                return self.walk_at(available, policy, shelf_life, wanted, now, &|at| !only || in_list(at));
            }
            let mut plan = Vec::new();
            let mut remaining = wanted;
            for &location in &listed {
                let (more, left) =
                    self.walk_at(available, policy, shelf_life, remaining, now, &|at| at == Some(location));
                plan.extend(more);
                remaining = left;
            }
            let (more, left) = self.walk_at(available, policy, shelf_life, remaining, now, &|at| !in_list(at));
            plan.extend(more);
            return (plan, left);
        }
        // Candidates: each listed location of a ranking in its order, then
        // the locations the policy walk meets (admitted ones only).
        let mut best: Option<(Vec<(usize, u64)>, u64)> = None;
        let better = |best: &Option<(Vec<(usize, u64)>, u64)>, left: u64| best.as_ref().is_none_or(|b| left < b.1);
        if ranked {
            for &location in &listed {
                let (plan, left) = self.walk_at(available, policy, shelf_life, wanted, now, &|at| at == Some(location));
                if left == 0 {
                    return (plan, left);
                }
                if better(&best, left) {
                    best = Some((plan, left));
                }
            }
        }
        let admitted = |at: Option<LocationId>| if ranked { !in_list(at) } else { !only || in_list(at) };
        // The locations in the order the walk meets them (lots with units
        // eligible for the request), each one's draw on its own, and the
        // walk position at which it covers the request.
        let mut met: Vec<Option<LocationId>> = Vec::new();
        for i in self.order(policy) {
            let lot = &self.lots[i];
            if available[i] > 0
                && lot.eligible(now, shelf_life)
                && admitted(lot.location)
                && !met.contains(&lot.location)
            {
                met.push(lot.location);
            }
        }
        let position: BTreeMap<usize, usize> =
            self.order(policy).into_iter().enumerate().map(|(p, i)| (i, p)).collect();
        let mut covering: Option<(usize, Vec<(usize, u64)>)> = None;
        let mut draws = Vec::new();
        for &location in &met {
            let (plan, left) = self.walk_at(available, policy, shelf_life, wanted, now, &|at| at == location);
            if left == 0 {
                let at = position[&plan.last().expect("a covering draw has lines").0];
                if covering.as_ref().is_none_or(|(first, _)| at < *first) {
                    covering = Some((at, plan.clone()));
                }
            }
            draws.push((plan, left));
        }
        if let Some((_, plan)) = covering {
            return (plan, 0);
        }
        for (plan, left) in draws {
            if better(&best, left) {
                best = Some((plan, left));
            }
        }
        best.unwrap_or((Vec::new(), wanted))
    }

    /// Backorders waiting, oldest first: their seqs.
    fn waiting(&self) -> Vec<u64> {
        self.holds.iter().filter(|(_, hold)| hold.backordered > 0).map(|(&seq, _)| seq).collect()
    }

    /// Whether another backorder may wait.
    pub(super) fn has_backorder_room(&self) -> bool {
        self.waiting().len() < BACKORDERS_MAX
    }

    /// The page: "units that come in (receipt, growth, release, lapse,
    /// return) fill waiting backorders oldest first, in the same version,
    /// before any later request can take them". Each waiting backorder, by
    /// seq, draws up to what it still waits for from the available units
    /// eligible for it (its minimum shelf life at `now`; a younger one may
    /// take units an older one cannot use), by the SKU's policy and from
    /// any location (`AllocateError::BackorderWithLocations`: "backorders
    /// are filled from any location, by the SKU's policy"). The drawn
    /// units join its lines (merged per lot, as every reservation's lines
    /// read).
    ///
    /// Called at the end of every change that put units back (a receipt,
    /// a growth, a release or lapse of a hold with lines, a commit that
    /// returned some, a return), at the operation's clock reading.
    pub(super) fn fill_waiting(&mut self, now: Timestamp) {
        for seq in self.waiting() {
            let hold = &self.holds[&seq];
            let (plan, left) =
                self.walk(&self.available_now(), self.policy, hold.shelf_life, hold.backordered, now, None);
            for &(i, units) in &plan {
                self.lots[i].available -= units;
                self.lots[i].held += units;
                let lot = self.lots[i].id;
                self.holds.get_mut(&seq).expect("listed above").add(lot, units);
            }
            self.holds.get_mut(&seq).expect("listed above").backordered = left;
        }
    }

    /// `available_by_location(shelf_life)` once swept: per location any
    /// lot is at (by id, lots without a location last), the available
    /// units of its lots eligible with `shelf_life`, and as `unsellable`
    /// those of the others (expired, or expiring within the shelf life).
    pub(super) fn by_location(&self, now: Timestamp, shelf_life: Duration) -> Vec<LocationStock> {
        let mut stock: BTreeMap<(bool, u32), (u64, u64)> = BTreeMap::new();
        for lot in &self.lots {
            let key = lot.location.map_or((true, 0), |at| (false, at.0));
            let entry = stock.entry(key).or_default();
            if lot.eligible(now, shelf_life) {
                entry.0 += lot.available;
            } else {
                entry.1 += lot.available;
            }
        }
        stock
            .into_iter()
            .map(|((none, at), (available, unsellable))| LocationStock {
                location: (!none).then_some(LocationId(at)),
                available: q(available),
                unsellable: q(unsellable),
            })
            .collect()
    }

    /// Every location the SKU's lots are at (all of them, sold out or
    /// expired too).
    pub(super) fn lot_locations(&self) -> Vec<Option<LocationId>> {
        self.lots.iter().map(|lot| lot.location).collect()
    }
}

/// The locations an unsplit order tries, one at a time, every part from
/// that location: the listed ones as given, then (unless `only`) every
/// other location the order's SKUs have lots at, by id, lots without a
/// location last (silent, as the ledger). Empty (one attempt, no location
/// named) when the order is split, or names no locations and its SKUs'
/// lots are all at one location.
pub(super) fn order_candidates(state: &State, order: &OrderRequest, skus: &[SkuId]) -> Vec<Option<LocationId>> {
    if order.split {
        return Vec::new();
    }
    let mut present: Vec<(bool, u32)> = Vec::new();
    for sku in skus {
        for location in state.skus.get(sku).map(RefSku::lot_locations).unwrap_or_default() {
            let key = location.map_or((true, 0), |at| (false, at.0));
            if !present.contains(&key) {
                present.push(key);
            }
        }
    }
    present.sort();
    let present: Vec<Option<LocationId>> =
        present.into_iter().map(|(none, at)| (!none).then_some(LocationId(at))).collect();
    let (listed, only): (&[LocationId], bool) = match &order.locations {
        Locations::Only(list) => (list, true),
        Locations::Ranked(list) => (list, false),
        _ => (&[], false),
    };
    if matches!(order.locations, Locations::Any) && present.len() <= 1 {
        return Vec::new();
    }
    let mut candidates: Vec<Option<LocationId>> = listed.iter().copied().map(Some).collect();
    if !only {
        for at in present {
            if !candidates.contains(&at) {
                candidates.push(at);
            }
        }
    }
    candidates
}
