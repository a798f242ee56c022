//! Ledger images: a whole ledger as data, and a ledger built back from one
//! — the same SKUs, lots, counters, live reservations (same ids, slots and
//! deadlines), versions, thresholds, backorders, kits, orders and
//! idempotency keys with their recorded outcomes.
//!
//! Owns: [`LedgerImage`], [`Ledger::image`] (and its [`ImageError`]),
//! [`LedgerBuilder::restore`] (and its [`RestoreError`]).
//!
//! Must never: let a restored ledger differ from the imaged one in anything
//! a later command could observe, or build a ledger from an image it has
//! not checked. Each SKU's part is that SKU's own words at one version
//! (see the cell's `image` module); restoring checks every word, then
//! audits the result, and refuses the whole image if anything is wrong:
//! nothing half restored is ever handed out.
//!
//! # Consistency
//!
//! Each SKU is imaged at one version, read without stopping its writers
//! (a read that meets a newer word reads again). SKUs are imaged one
//! after another, so an image taken while commands run is consistent per
//! SKU, not across SKUs: an order being made or committed may be caught
//! with some parts done. An image taken between commands (after the
//! intake drained, say) is the ledger exactly. Reads do not sweep: a hold
//! past its deadline when the image is taken is imaged live and lapses at
//! the restored ledger's first look, exactly as it would have.
//!
//! Time: the image carries the latest instant the ledger had used
//! ([`LedgerImage::taken_at`]); the restored ledger's clock floor starts
//! there, so time does not run backwards across a restore.

use crate::cell::SkuCell;
use crate::cell::image::{self, SkuImage};
use crate::clock::Timestamp;
use crate::command::Command;
use crate::command::Outcome;
use crate::error::CommandError;
use crate::idempotency::{KeyRecord, RestoreKeysError};
use crate::ids::SkuId;
use crate::kits::{KitComponent, KitError};
use crate::ledger::{Entry, Ledger, LedgerBuildError, LedgerBuilder};
use crate::orders::{OrderBook, OrderBookImage};
use crate::sku_table::InsertError;

/// A whole ledger as data (see the module docs); serializable with the
/// `serde` feature. Its contents are the engine's own representation,
/// checked when restored, so they are not public fields.
///
/// ```
/// use stockroom::{AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, SkuId};
///
/// let ledger = Ledger::new();
/// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
/// ledger.receive(SkuId(1), NewLot::new(LotId(1), 10)).unwrap();
/// let held = ledger.allocate(&AllocateRequest::new(SkuId(1), 3)).unwrap();
///
/// let image = ledger.image().unwrap();
/// let restored = Ledger::builder().restore(image).unwrap();
/// assert_eq!(restored.snapshot(SkuId(1)).unwrap().version(), 2);
/// // The reservation is the same one: committing it works.
/// restored.commit(held.reservation, None).unwrap();
/// assert_eq!(restored.snapshot(SkuId(1)).unwrap().totals().committed.get(), 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LedgerImage {
    format: u32,
    pub(crate) taken_at: Timestamp,
    pub(crate) skus: Vec<SkuImage>,
    pub(crate) kits: Vec<(SkuId, Vec<KitComponent>)>,
    pub(crate) orders: OrderBookImage,
    pub(crate) keys: Vec<KeyRecord<Command, Result<Outcome, CommandError>>>,
}

impl LedgerImage {
    /// The image of a ledger with nothing in it.
    #[cfg_attr(not(feature = "journal"), allow(dead_code))]
    pub(crate) fn empty() -> LedgerImage {
        LedgerImage {
            format: LedgerImage::FORMAT,
            taken_at: Timestamp(0),
            skus: Vec::new(),
            kits: Vec::new(),
            orders: OrderBookImage::default(),
            keys: Vec::new(),
        }
    }

    /// The image format this build writes and reads.
    pub const FORMAT: u32 = 1;

    /// The latest instant the imaged ledger had used.
    pub fn taken_at(&self) -> Timestamp {
        self.taken_at
    }

    /// SKUs in the image (kits not counted).
    pub fn sku_count(&self) -> usize {
        self.skus.len()
    }

    /// Idempotency keys in the image: recorded and inside their window
    /// when it was taken.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Orders in the image (live and finished ones the ledger still kept).
    pub fn order_count(&self) -> usize {
        self.orders.len()
    }
}

/// [`Ledger::image`] could not read a SKU.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ImageError {
    /// Writers moved the SKU on every one of the bounded reads: try again
    /// when it is quieter.
    #[error("{sku} changed on every read while being imaged")]
    Contended {
        /// The SKU.
        sku: SkuId,
    },
}

/// [`LedgerBuilder::restore`] refused an image; nothing was built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The builder's own settings are out of range.
    #[error(transparent)]
    Build(#[from] LedgerBuildError),
    /// The image was written in a format this build does not read.
    #[error("image format {format} is not the supported format {supported}")]
    UnknownFormat {
        /// The image's format.
        format: u32,
        /// The format this build reads ([`LedgerImage::FORMAT`]).
        supported: u32,
    },
    /// A SKU's part contradicts what a SKU can be.
    #[error("{sku} in the image is invalid: {reason}")]
    InvalidSku {
        /// The SKU.
        sku: SkuId,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two SKUs (or a SKU and a kit) with one id, or more than the
    /// catalog holds.
    #[error("{sku} cannot be added to the catalog: {reason}")]
    Catalog {
        /// The SKU or kit.
        sku: SkuId,
        /// What is wrong.
        reason: &'static str,
    },
    /// A kit was refused as [`Ledger::define_kit`] would refuse it.
    #[error("a kit in the image is invalid: {0}")]
    Kit(KitError),
    /// The order book contradicts itself.
    #[error("the image's orders are invalid: {reason}")]
    Orders {
        /// What is wrong.
        reason: &'static str,
    },
    /// More keys than the builder's [`KeyWindow::keys_max`](crate::KeyWindow::keys_max):
    /// restoring would forget keys inside their window.
    #[error("the image remembers {keys} idempotency keys, more than the {keys_max} this ledger may")]
    TooManyKeys {
        /// Keys in the image.
        keys: usize,
        /// The builder's bound.
        keys_max: usize,
    },
    /// One idempotency key recorded twice.
    #[error("the image records one idempotency key twice")]
    DuplicateKey,
    /// The restored state fails the audit: the image's counts do not add
    /// up.
    #[error("the restored ledger fails its audit: {violations:?}")]
    Audit {
        /// What the audit found.
        violations: Vec<crate::audit::Violation>,
    },
}

impl Ledger {
    /// The whole ledger as data, for [`LedgerBuilder::restore`]. Reads
    /// only: it sweeps nothing and changes no version (a hold past its
    /// deadline is imaged live and lapses at the restored ledger's first
    /// look). Writers are not stopped: each SKU is imaged at one version,
    /// SKUs one after another, so an image taken while commands run is
    /// exact per SKU but may catch an order with some parts done; take it
    /// between commands (after the intake drained, say) for an exact copy.
    /// It carries the latest instant the ledger used, so time does not run
    /// backwards across a restore.
    pub fn image(&self) -> Result<LedgerImage, ImageError> {
        let taken_at = self.now();
        let mut skus = Vec::new();
        let mut kits = Vec::new();
        let mut failed = None;
        self.catalog().for_each(|sku, entry| match entry {
            Entry::Sku(cell) => match cell.image(self.registry()) {
                Ok(image) => skus.push(image),
                // Reading a live cell fails only by contention.
                Err(_) => failed = Some(sku),
            },
            Entry::Kit(parts) => {
                let components = parts.iter().map(|&(part, quantity)| KitComponent::new(part, quantity.get()));
                kits.push((sku, components.collect()));
            }
        });
        if let Some(sku) = failed {
            return Err(ImageError::Contended { sku });
        }
        skus.sort_unstable_by_key(|image| image.sku);
        kits.sort_unstable_by_key(|&(kit, _)| kit);
        Ok(LedgerImage {
            format: LedgerImage::FORMAT,
            taken_at,
            skus,
            kits,
            orders: self.orders().image(),
            keys: self.keys().recorded(taken_at),
        })
    }
}

impl LedgerBuilder {
    /// A ledger with these settings holding `image`'s contents (the same
    /// SKUs, lots, counters, live reservations with their ids and
    /// deadlines, versions, thresholds, backorders, kits, orders and
    /// idempotency keys), or why it cannot be: every part is checked and
    /// the result audited before it is returned; nothing half restored is
    /// handed out. The settings are the builder's, not the image's: a
    /// restored ledger may keep keys longer, or turn events on; keys whose
    /// window (the builder's) has passed by now are forgotten.
    pub fn restore(self, image: LedgerImage) -> Result<Ledger, RestoreError> {
        if image.format != LedgerImage::FORMAT {
            return Err(RestoreError::UnknownFormat { format: image.format, supported: LedgerImage::FORMAT });
        }
        let mut ledger = self.build()?;
        ledger.floor().clamp(image.taken_at);
        for sku in &image.skus {
            let cell = SkuCell::from_image(sku, ledger.events_on()).map_err(|error| match error {
                image::ImageError::Invalid(reason) => RestoreError::InvalidSku { sku: sku.sku, reason },
                image::ImageError::Contended => unreachable!("building a cell contends with nobody"),
            })?;
            ledger.restored_at(sku.sku, sku.version());
            // A journal, if one is attached, already has it all.
            cell.journaled_through(sku.version());
            ledger.catalog().insert(sku.sku, Entry::Sku(cell)).map_err(|error| {
                let reason = match error {
                    InsertError::AlreadyDefined(_) => "the id is taken twice",
                    InsertError::Full(_) => "the catalog is full",
                };
                RestoreError::Catalog { sku: sku.sku, reason }
            })?;
        }
        for (kit, components) in &image.kits {
            ledger.define_kit(*kit, components).map_err(RestoreError::Kit)?;
        }
        let orders = OrderBook::restored(&image.orders).map_err(|reason| RestoreError::Orders { reason })?;
        ledger.replace_orders(orders);
        // Keys whose window passed by now (while the ledger was down, say)
        // are forgotten, as a running ledger would have.
        let now = ledger.now();
        let window = ledger.keys().window().window;
        let mut keys = image.keys;
        keys.retain(|record| now < record.recorded_at.saturating_add(window));
        ledger.keys().restore(keys).map_err(|error| match error {
            RestoreKeysError::TooMany { records, keys_max } => RestoreError::TooManyKeys { keys: records, keys_max },
            RestoreKeysError::Duplicate => RestoreError::DuplicateKey,
        })?;
        let report = ledger.audit();
        if !report.is_clean() {
            return Err(RestoreError::Audit { violations: report.violations });
        }
        Ok(ledger)
    }
}
