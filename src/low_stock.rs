//! Low-stock rules: when a SKU counts as low, and when a notice about it
//! may fire again.
//!
//! Owns: [`LowStock`] (a threshold, a re-arm margin, what counts as stock)
//! and [`LowStockBasis`], and the one decision made from them,
//! [`LowStock::decide`]: given the stock a version leaves and whether the
//! rule is armed, does the version fire a notice, and is the rule armed
//! after it.
//!
//! Must never: fire twice for one crossing. A rule is armed while stock is
//! above its threshold; the version that takes stock to or below the
//! threshold fires [`Notice::LowStock`](crate::Notice::LowStock) and
//! disarms it; it re-arms only on a version that leaves stock above
//! threshold + margin. The armed bit lives in the SKU's head word, which
//! every change compare-and-swaps, so two versions can never both see it
//! armed (see `cell::head::DISARMED`). Setting a rule fires nothing: a new
//! rule starts armed exactly when stock is above its threshold, and setting
//! the rule already in force changes nothing (a host that re-sends its
//! settings does not re-arm a rule that has fired).

use crate::quantity::Quantity;
use core::fmt;

/// What a low-stock rule counts as stock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum LowStockBasis {
    /// Units no reservation holds (`totals().available`): a hold makes
    /// stock low as a sale does. The default.
    #[default]
    Available,
    /// Units on hand, held or not (`available + held`): only units that
    /// leave (sales, commits, shrinks, write-offs) make stock low.
    OnHand,
}

/// A SKU's low-stock rule (see [`Ledger::set_low_stock_rule`](crate::Ledger::set_low_stock_rule)).
///
/// Fields are raw numbers, as a command carries them; the ledger refuses
/// a threshold or margin above [`Quantity::MAX`] with a typed error.
///
/// ```
/// use stockroom::{LowStock, LowStockBasis};
///
/// // Low at 10 or fewer on hand; told again only after stock was above 15.
/// let rule = LowStock::new(10).rearm_margin(5).basis(LowStockBasis::OnHand);
/// assert_eq!(rule.to_string(), "at or below 10 on hand, re-armed above 15");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LowStock {
    /// Stock at or below this is low.
    pub threshold: u64,
    /// After a notice, stock must rise above `threshold + margin` before
    /// another can fire (0: above the threshold is enough).
    #[cfg_attr(feature = "serde", serde(default))]
    pub margin: u64,
    /// What counts as stock.
    #[cfg_attr(feature = "serde", serde(default))]
    pub basis: LowStockBasis,
}

/// What one version does to a rule: fire or not, and armed after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) fire: bool,
    pub(crate) armed: bool,
}

impl LowStock {
    /// Low at `threshold` or fewer available units, re-armed as soon as
    /// stock is above it again.
    pub fn new(threshold: u64) -> LowStock {
        LowStock { threshold, margin: 0, basis: LowStockBasis::Available }
    }

    /// Sets the re-arm margin.
    #[must_use]
    pub fn rearm_margin(mut self, margin: u64) -> LowStock {
        self.margin = margin;
        self
    }

    /// Sets what counts as stock.
    #[must_use]
    pub fn basis(mut self, basis: LowStockBasis) -> LowStock {
        self.basis = basis;
        self
    }

    /// The stock this rule watches, from a SKU's available and held units.
    pub(crate) fn stock(&self, available: Quantity, held: Quantity) -> u64 {
        match self.basis {
            LowStockBasis::Available => available.get(),
            // Both are at most Quantity::MAX, and 2 * MAX fits in a u64.
            LowStockBasis::OnHand => available.get() + held.get(),
        }
    }

    /// Whether a rule armed as `armed` fires on a version that leaves
    /// `stock`, and whether it is armed after that version.
    pub(crate) fn decide(&self, armed: bool, stock: u64) -> Decision {
        let low = stock <= self.threshold;
        // u128: threshold and margin are each at most u64::MAX here.
        let rearms = u128::from(stock) > u128::from(self.threshold) + u128::from(self.margin);
        match (armed, low) {
            (true, true) => Decision { fire: true, armed: false },
            (true, false) => Decision { fire: false, armed: true },
            (false, _) => Decision { fire: false, armed: rearms },
        }
    }

    /// The state a newly set rule starts in: armed when stock is above the
    /// threshold (setting a rule never fires).
    pub(crate) fn armed_at(&self, stock: u64) -> bool {
        stock > self.threshold
    }
}

impl fmt::Display for LowStockBasis {
    /// `available` or `on hand`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LowStockBasis::Available => "available",
            LowStockBasis::OnHand => "on hand",
        })
    }
}

impl fmt::Display for LowStock {
    /// `at or below 10 available`, with `, re-armed above 15` when there
    /// is a margin.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at or below {} {}", self.threshold, self.basis)?;
        if self.margin > 0 {
            write!(f, ", re-armed above {}", u128::from(self.threshold) + u128::from(self.margin))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_fires_once_per_crossing_and_rearms_only_past_the_margin() {
        let rule = LowStock::new(10).rearm_margin(5);
        let mut armed = rule.armed_at(20);
        assert!(armed);
        let mut fired = Vec::new();
        for stock in [12, 10, 9, 11, 10, 15, 10, 16, 16, 3] {
            let decision = rule.decide(armed, stock);
            armed = decision.armed;
            if decision.fire {
                fired.push(stock);
            }
        }
        // 10 fires; 11 and 15 do not re-arm (not above 15); 16 does; 3 fires.
        assert_eq!(fired, [10, 3]);
    }

    #[test]
    fn setting_a_rule_below_its_threshold_starts_disarmed() {
        let rule = LowStock::new(10);
        assert!(!rule.armed_at(10));
        assert!(!rule.decide(false, 4).fire);
        assert!(rule.decide(false, 11).armed);
    }

    #[test]
    fn the_basis_chooses_whether_holds_count() {
        let q = |n| Quantity::new(n).unwrap();
        assert_eq!(LowStock::new(1).stock(q(3), q(4)), 3);
        assert_eq!(LowStock::new(1).basis(LowStockBasis::OnHand).stock(q(3), q(4)), 7);
        let max = LowStock::new(u64::MAX).rearm_margin(u64::MAX);
        assert!(!max.decide(false, u64::MAX).armed, "no overflow at the edges");
    }

    #[test]
    fn display() {
        assert_eq!(LowStock::new(3).to_string(), "at or below 3 available");
        assert_eq!(LowStock::new(3).rearm_margin(2).to_string(), "at or below 3 available, re-armed above 5");
    }
}
