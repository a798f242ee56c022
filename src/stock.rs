//! Stock levels: what a SKU has, lot by lot, without listing its
//! reservations.
//!
//! Owns: [`StockLevels`], [`LotLevel`] and [`Ledger::stock`].
//!
//! Must never: change anything, or cost what a snapshot costs. A
//! [`Snapshot`](crate::Snapshot) lists every live reservation (to give
//! each lot its held units), O(live holds) per read; a stock read is what a
//! dashboard or a storefront polls, so it reads the lots' words and the
//! SKU's held total only: O(lots) when the ledger keeps events (the cell
//! then keeps an `(available, held)` totals word with every version), and
//! O(lots + live holds) otherwise (held is then summed from the holds).
//! Held units per lot are not kept anywhere but in the holds, so a lot's
//! level says how many units left its available count
//! ([`LotLevel::held_or_committed`]), not how they split.

use crate::cell::read::holds;
use crate::cell::view::{Stale, View};
use crate::clock::Timestamp;
use crate::ids::{LocationId, LotId, SkuId};
use crate::ledger::{Ledger, QueryError};
use crate::quantity::Quantity;

/// One lot's level (see [`StockLevels`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LotLevel {
    /// The lot.
    pub lot: LotId,
    /// Where it is kept.
    pub location: Option<LocationId>,
    /// When it expires.
    pub expires_at: Option<Timestamp>,
    /// Units not held, sellable at the reading instant (zero for a lot past
    /// its expiry).
    pub available: Quantity,
    /// Units not held on a lot past its expiry at the reading instant.
    pub expired: Quantity,
    /// Units held or committed from this lot: its on-hand units that are
    /// neither available nor expired (held and committed are told apart
    /// only in the SKU's totals).
    pub held_or_committed: Quantity,
}

/// A SKU's stock at one version: totals and each lot's level, in the SKU's
/// policy order ([`Ledger::stock`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct StockLevels {
    /// The SKU.
    pub sku: SkuId,
    /// The version read.
    pub version: u64,
    /// Units sellable now (as a snapshot's `totals().available`).
    pub available: Quantity,
    /// Units on lots past their expiry, not written off.
    pub expired: Quantity,
    /// Units held by live reservations.
    pub held: Quantity,
    /// Units that left: sold or committed, less what came back.
    pub committed: Quantity,
    /// Each lot's level.
    pub lots: Vec<LotLevel>,
}

impl Ledger {
    /// The SKU's stock levels at its current version (reservations past
    /// their deadline already swept, as for a snapshot): the same totals a
    /// [`snapshot`](Self::snapshot) reports, without listing reservations.
    /// O(lots) with events on, O(lots + live holds) otherwise (see the
    /// module docs). Never blocks a command.
    ///
    /// ```
    /// use stockroom::{AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, SkuId};
    ///
    /// let ledger = Ledger::builder().events(true).build()?;
    /// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
    /// ledger.receive(SkuId(1), NewLot::new(LotId(1), 10))?;
    /// ledger.allocate(&AllocateRequest::new(SkuId(1), 3))?;
    /// let stock = ledger.stock(SkuId(1))?;
    /// assert_eq!((stock.available.get(), stock.held.get()), (7, 3));
    /// assert_eq!(stock.lots[0].held_or_committed.get(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `UnknownSku`; `Contended` if the SKU kept changing under every read.
    pub fn stock(&self, sku: SkuId) -> Result<StockLevels, QueryError> {
        let moment = self.moment();
        let now = moment.now();
        let (levels, _) = self.read(sku, &moment, |view| levels(view, sku, now))?;
        Ok(levels)
    }
}

/// The levels of the version `view` reads, lots past their expiry at `now`
/// counted as expired.
fn levels(view: &View, sku: SkuId, now: Timestamp) -> Result<StockLevels, Stale> {
    let held = match view.totals()? {
        Some((_, held)) => held.get(),
        None => holds(view)?.iter().flat_map(|hold| hold.lines.iter()).map(|line| line.quantity.get()).sum(),
    };
    let count = view.head.lots;
    let mut lots = Vec::with_capacity(count as usize);
    let (mut available, mut expired, mut out) = (0u64, 0u64, 0u64);
    for arrival in view.structure()?.order.iter_from(count, 0) {
        let facts = view.facts(arrival);
        let counts = view.counts(arrival)?;
        let past = facts.expires_at.is_some_and(|expiry| expiry <= now);
        // A lot's net is at most Quantity::MAX and its available at most
        // its net in a sound state; saturate rather than trust it here.
        let left = counts.net.get().saturating_sub(counts.available.get());
        let (lot_available, lot_expired) =
            if past { (Quantity::ZERO, counts.available) } else { (counts.available, Quantity::ZERO) };
        available += lot_available.get();
        expired += lot_expired.get();
        out += left;
        lots.push(LotLevel {
            lot: facts.id,
            location: facts.location,
            expires_at: facts.expires_at,
            available: lot_available,
            expired: lot_expired,
            held_or_committed: quantity(left),
        });
    }
    Ok(StockLevels {
        sku,
        version: view.version(),
        available: quantity(available),
        expired: quantity(expired),
        held: quantity(held),
        committed: quantity(out.saturating_sub(held)),
        lots,
    })
}

/// A sum of a SKU's lots as a quantity (the SKU's inflow is bounded by
/// [`Quantity::MAX`], so a sound state never saturates).
fn quantity(units: u64) -> Quantity {
    Quantity::new(units).unwrap_or(Quantity::MAX)
}
