//! Kits and bundles: a SKU made of other SKUs.
//!
//! Owns: the kits in the ledger's catalog (a kit id's entry holds its
//! components, in the same table as the SKUs), [`Ledger::define_kit`],
//! [`Ledger::kit`], and how an order line of a kit expands into its
//! components' lines.
//!
//! Must never: store a kit's stock. A kit has no lots and no cell; its
//! availability is derived from its components' at the moment it is read
//! (the least, over components, of what the component has divided by the
//! units one kit needs), and allocating a kit is an order over its
//! components ([`Ledger::allocate_order`]), all or nothing like any order.
//! Kits of kits are refused: a component is a plain SKU.

use crate::command::OrderLine;
use crate::error::AllocateError;
use crate::ids::SkuId;
use crate::ledger::{Entry, Ledger, QueryError};
use crate::quantity::Quantity;
use crate::sku_table::InsertError;
use crate::sku_table::table::LEN_MAX;
use crate::sync::Arc;
use smallvec::SmallVec;
use std::time::Duration;

/// The most components one kit may have.
pub const KIT_COMPONENTS_MAX: usize = 32;

/// One component of a kit: `quantity` units of `sku` per kit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KitComponent {
    /// The component SKU (a plain SKU, not a kit).
    pub sku: SkuId,
    /// Units of it one kit takes (at least one).
    pub quantity: u64,
}

impl KitComponent {
    /// `quantity` units of `sku` per kit.
    pub fn new(sku: SkuId, quantity: u64) -> KitComponent {
        KitComponent { sku, quantity }
    }
}

/// A kit was defined.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KitDefined {
    /// The kit.
    pub kit: SkuId,
    /// Its components, in the order given.
    pub components: Vec<KitComponent>,
}

/// A kit as [`Ledger::kit`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Kit {
    /// The kit.
    pub kit: SkuId,
    /// Its components.
    pub components: Vec<KitComponent>,
    /// Whole kits its components could make right now (each component read
    /// at its own current version: a derived figure, not a reservation).
    pub available: Quantity,
}

/// Defining a kit was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum KitError {
    /// A kit with no components.
    #[error("{kit}: a kit needs at least one component")]
    Empty {
        /// The kit.
        kit: SkuId,
    },
    /// More components than [`KIT_COMPONENTS_MAX`].
    #[error("{kit}: {components} components exceed the maximum of {max}")]
    TooManyComponents {
        /// The kit.
        kit: SkuId,
        /// Components given.
        components: usize,
        /// The most allowed.
        max: usize,
    },
    /// A component of zero units, or more than [`Quantity::MAX`].
    #[error("{kit}: component {sku} has an invalid quantity {quantity}")]
    InvalidQuantity {
        /// The kit.
        kit: SkuId,
        /// The component.
        sku: SkuId,
        /// The rejected quantity.
        quantity: u64,
    },
    /// The same component listed twice.
    #[error("{kit}: component {sku} is listed twice")]
    DuplicateComponent {
        /// The kit.
        kit: SkuId,
        /// The component.
        sku: SkuId,
    },
    /// A component that is not a defined SKU (or is a kit, or the kit
    /// itself).
    #[error("{kit}: component {sku} is not a defined SKU")]
    UnknownComponent {
        /// The kit.
        kit: SkuId,
        /// The component.
        sku: SkuId,
    },
    /// The id is already a SKU or a kit.
    #[error("{kit} is already defined")]
    AlreadyDefined {
        /// The kit.
        kit: SkuId,
    },
    /// The catalog holds the most SKUs and kits a ledger may have.
    #[error("{kit}: the catalog is full ({max} SKUs and kits)")]
    CatalogFull {
        /// The kit.
        kit: SkuId,
        /// The most SKUs and kits a ledger may have.
        max: usize,
    },
}

impl Ledger {
    /// Defines `kit` as `components`: allocating one kit holds every
    /// component's units, all or nothing, as an order
    /// ([`allocate_order`](Self::allocate_order) with an
    /// [`OrderLine`] of the kit); its availability is derived from its
    /// components ([`kit`](Self::kit)). A kit id shares the SKU ids' space:
    /// it may not be a defined SKU, and a SKU may not later be defined
    /// with it.
    ///
    /// ```
    /// use stockroom::{AllocationPolicy, KitComponent, Ledger, LotId, NewLot, OrderLine, OrderRequest, SkuId};
    ///
    /// let ledger = Ledger::new();
    /// let (pasta, sauce, dinner) = (SkuId(1), SkuId(2), SkuId(100));
    /// for (sku, units) in [(pasta, 10), (sauce, 3)] {
    ///     ledger.define_sku(sku, AllocationPolicy::Fifo)?;
    ///     ledger.receive(sku, NewLot::new(LotId(1), units))?;
    /// }
    /// ledger.define_kit(dinner, &[KitComponent::new(pasta, 2), KitComponent::new(sauce, 1)])?;
    /// assert_eq!(ledger.kit(dinner)?.available.get(), 3); // sauce runs out first
    /// let order = ledger.allocate_order(&OrderRequest::new(vec![OrderLine::new(dinner, 2)]))?;
    /// assert_eq!(order.allocations.len(), 2); // one part per component
    /// assert_eq!(ledger.kit(dinner)?.available.get(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn define_kit(&self, kit: SkuId, components: &[KitComponent]) -> Result<KitDefined, KitError> {
        if components.is_empty() {
            return Err(KitError::Empty { kit });
        }
        if components.len() > KIT_COMPONENTS_MAX {
            return Err(KitError::TooManyComponents { kit, components: components.len(), max: KIT_COMPONENTS_MAX });
        }
        let mut parts: Vec<(SkuId, Quantity)> = Vec::with_capacity(components.len());
        for component in components {
            let quantity = Quantity::new(component.quantity)
                .ok()
                .filter(|quantity| !quantity.is_zero())
                .ok_or(KitError::InvalidQuantity { kit, sku: component.sku, quantity: component.quantity })?;
            if parts.iter().any(|&(sku, _)| sku == component.sku) {
                return Err(KitError::DuplicateComponent { kit, sku: component.sku });
            }
            parts.push((component.sku, quantity));
        }
        for &(sku, _) in &parts {
            if sku == kit || !self.is_defined(sku) {
                return Err(KitError::UnknownComponent { kit, sku });
            }
        }
        let parts: Arc<[(SkuId, Quantity)]> = parts.into();
        match self.catalog().insert(kit, Entry::Kit(parts)) {
            #[cfg(feature = "journal")]
            Ok(()) => self.record_kit(kit, components),
            #[cfg(not(feature = "journal"))]
            Ok(()) => {}
            Err(InsertError::AlreadyDefined(_)) => return Err(KitError::AlreadyDefined { kit }),
            Err(InsertError::Full(_)) => return Err(KitError::CatalogFull { kit, max: LEN_MAX }),
        }
        Ok(KitDefined { kit, components: components.to_vec() })
    }

    /// A kit's components and how many whole kits they could make now.
    pub fn kit(&self, kit: SkuId) -> Result<Kit, QueryError> {
        let parts = self.kit_parts(kit).ok_or(QueryError::UnknownSku { sku: kit })?;
        let mut available = u64::MAX;
        for &(sku, per_kit) in parts.iter() {
            let has = self.available(sku, Duration::ZERO)?;
            available = available.min(has.get() / per_kit.get());
        }
        Ok(Kit {
            kit,
            components: parts.iter().map(|&(sku, quantity)| KitComponent { sku, quantity: quantity.get() }).collect(),
            available: Quantity::new(available).unwrap_or(Quantity::MAX),
        })
    }

    /// A kit's components, if `kit` is one.
    pub(crate) fn kit_parts(&self, kit: SkuId) -> Option<Arc<[(SkuId, Quantity)]>> {
        match self.catalog().get(kit) {
            Some(Entry::Kit(parts)) => Some(Arc::clone(parts)),
            _ => None,
        }
    }

    /// The SKU lines an order line stands for: the line itself, or a kit's
    /// components times the line's quantity.
    pub(crate) fn kit_lines(&self, line: &OrderLine) -> Result<SmallVec<[(SkuId, u64); 2]>, AllocateError> {
        let Some(parts) = self.kit_parts(line.sku) else {
            let mut one = SmallVec::new();
            one.push((line.sku, line.quantity));
            return Ok(one);
        };
        if line.quantity == 0 {
            return Err(AllocateError::ZeroQuantity { sku: line.sku });
        }
        parts
            .iter()
            .map(|&(sku, per_kit)| match per_kit.get().checked_mul(line.quantity) {
                Some(units) if units <= Quantity::MAX.get() => Ok((sku, units)),
                _ => Err(AllocateError::QuantityTooLarge { sku: line.sku, quantity: line.quantity }),
            })
            .collect()
    }
}
