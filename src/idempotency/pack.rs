//! How the key store keeps what it remembers small: the [`Pack`] trait a
//! store's command type implements, turning a command (in flight) and a
//! command with its final result (recorded) into compact forms and back.
//!
//! Owns: the trait, and its identity implementation for the store's own
//! tests and models (a `u32` command).
//!
//! Must never: lose information. `unpack(pack(c)) == c` and the record's
//! command and result come back equal to what was packed; the store compares
//! and replays the unpacked values, so a lossy packing would replay a wrong
//! outcome or miss a conflict.

/// A command the key store can remember, packed. `R` is the store's result
/// type.
///
/// The store unpacks on the paths that look at what it remembered (a
/// replay, a conflict, a ledger image); a first attempt only packs.
pub(crate) trait Pack<R>: Sized {
    /// The command alone, while its attempt is in flight.
    type Packed;
    /// The command with its final result, once recorded.
    type Record;

    /// Packs the command for an in-flight entry.
    fn pack(&self) -> Self::Packed;
    /// The command `pack` packed.
    fn unpack(packed: &Self::Packed) -> Self;
    /// Packs the command with its final result.
    fn pack_record(&self, result: &R) -> Self::Record;
    /// The command `pack_record` packed.
    fn record_command(record: &Self::Record) -> Self;
    /// The result `pack_record` packed.
    fn record_result(record: &Self::Record) -> R;
}

/// The store's tests and models: a `u32` command, kept as it is.
#[cfg(test)]
impl<R: Clone> Pack<R> for u32 {
    type Packed = u32;
    type Record = (u32, R);

    fn pack(&self) -> u32 {
        *self
    }

    fn unpack(packed: &u32) -> u32 {
        *packed
    }

    fn pack_record(&self, result: &R) -> (u32, R) {
        (*self, result.clone())
    }

    fn record_command(record: &(u32, R)) -> u32 {
        record.0
    }

    fn record_result(record: &(u32, R)) -> R {
        record.1.clone()
    }
}
