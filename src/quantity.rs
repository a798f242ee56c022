//! Quantities: whole units of a SKU's base unit, never floats.
//!
//! Owns: the [`Quantity`] type, its maximum and the checked arithmetic the
//! engine is allowed to do with it.
//!
//! Must never: wrap, saturate silently or hold a value above
//! [`Quantity::MAX`]. Every sum the engine forms of two quantities fits in a
//! `u64` because `2 * MAX < u64::MAX`, and every signed delta fits in an
//! `i64` for the same reason.

use core::fmt;

/// A count of units in a SKU's base unit (pieces, grams, hundredths of a
/// pound), at most [`Quantity::MAX`].
///
/// ```
/// use stockroom::Quantity;
/// assert_eq!(Quantity::new(1_500).unwrap().get(), 1_500);
/// assert!(Quantity::new(Quantity::MAX.get() + 1).is_err());
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(try_from = "u64", into = "u64"))]
pub struct Quantity(u64);

/// A raw value above [`Quantity::MAX`] was offered as a quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("quantity {value} exceeds the maximum {max}", max = Quantity::MAX.0)]
#[non_exhaustive]
pub struct QuantityTooLarge {
    /// The rejected value.
    pub value: u64,
}

const _: () = assert!(Quantity::MAX.0.checked_mul(2).is_some());
const _: () = assert!(Quantity::MAX.0 <= i64::MAX as u64);

impl Quantity {
    /// No units.
    pub const ZERO: Quantity = Quantity(0);
    /// The largest quantity a lot, a SKU total or a request may hold:
    /// 2^40 - 1 (about 1.1 × 10^12 base units: 11 million tonnes in
    /// grams). A lot's counters share one 16-byte word with the version
    /// that wrote them, 40 bits each.
    pub const MAX: Quantity = Quantity((1 << 40) - 1);

    /// Checks `value` against [`Quantity::MAX`].
    pub const fn new(value: u64) -> Result<Quantity, QuantityTooLarge> {
        if value > Self::MAX.0 { Err(QuantityTooLarge { value }) } else { Ok(Quantity(value)) }
    }

    /// The number of units.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// True for zero units.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` past [`Quantity::MAX`].
    pub const fn checked_add(self, other: Quantity) -> Option<Quantity> {
        match Quantity::new(self.0 + other.0) {
            Ok(sum) => Some(sum),
            Err(_) => None,
        }
    }

    /// `self - other`, or `None` below zero.
    pub const fn checked_sub(self, other: Quantity) -> Option<Quantity> {
        match self.0.checked_sub(other.0) {
            Some(difference) => Some(Quantity(difference)),
            None => None,
        }
    }

    /// `self + other` where the caller's invariant keeps the sum in range
    /// (the engine's counters never exceed a SKU's inflow, itself capped at
    /// `MAX`).
    pub(crate) fn plus(self, other: Quantity) -> Quantity {
        debug_assert!(self.0 + other.0 <= Self::MAX.0, "{self:?} + {other:?} out of range");
        Quantity(self.0 + other.0)
    }

    /// `self - other` where the caller has checked `other <= self`.
    pub(crate) fn minus(self, other: Quantity) -> Quantity {
        debug_assert!(other.0 <= self.0, "{self:?} - {other:?} below zero");
        Quantity(self.0 - other.0)
    }

    /// The smaller of two quantities.
    pub fn min(self, other: Quantity) -> Quantity {
        Ord::min(self, other)
    }
}

impl TryFrom<u64> for Quantity {
    type Error = QuantityTooLarge;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Quantity::new(value)
    }
}

impl From<Quantity> for u64 {
    fn from(quantity: Quantity) -> u64 {
        quantity.0
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maximum_is_enforced_at_construction() {
        assert_eq!(Quantity::new(Quantity::MAX.get()), Ok(Quantity::MAX));
        assert_eq!(Quantity::new(Quantity::MAX.get() + 1), Err(QuantityTooLarge { value: Quantity::MAX.get() + 1 }));
        assert!(Quantity::new(u64::MAX).is_err());
    }

    #[test]
    fn checked_arithmetic_stops_at_the_bounds() {
        let one = Quantity::new(1).unwrap();
        assert_eq!(Quantity::MAX.checked_add(one), None);
        assert_eq!(Quantity::ZERO.checked_sub(one), None);
        assert_eq!(one.checked_add(one).map(Quantity::get), Some(2));
        assert_eq!(one.checked_sub(one), Some(Quantity::ZERO));
    }
}
