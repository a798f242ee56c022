//! How the ledger's keyed commands sit in its key store: a command and its
//! final result packed into one small heap block, so that a remembered key
//! costs what its data needs, not the size of the largest `Command` and
//! `Outcome` variants (144 and 128 bytes inline, most of them padding for a
//! one-unit sale).
//!
//! Owns: the [`Pack`] implementation for [`Command`] with the ledger's
//! result type. With the `serde` feature (a default) the forms are postcard
//! bytes (varints; a one-unit take and its sale take about 20 bytes);
//! without it, the values boxed as they are.
//!
//! Must never: pack lossily. Postcard's encoding of these types round-trips
//! exactly (the journal stores the same types the same way, and recovery
//! depends on it); a failure to decode our own bytes is a bug, stopped at.

use crate::command::{Command, Outcome};
use crate::error::CommandError;
use crate::idempotency::Pack;

/// The ledger's recorded result for a keyed command.
type KeyedResult = Result<Outcome, CommandError>;

#[cfg(feature = "serde")]
impl Pack<KeyedResult> for Command {
    type Packed = Box<[u8]>;
    type Record = Box<[u8]>;

    fn pack(&self) -> Box<[u8]> {
        postcard::to_allocvec(self).expect("a command encodes").into_boxed_slice()
    }

    fn unpack(packed: &Box<[u8]>) -> Command {
        postcard::from_bytes(packed).expect("a packed command decodes")
    }

    fn pack_record(&self, result: &KeyedResult) -> Box<[u8]> {
        postcard::to_allocvec(&(self, result)).expect("a command and its result encode").into_boxed_slice()
    }

    fn record_command(record: &Box<[u8]>) -> Command {
        // The tuple's first element: a prefix of the bytes.
        postcard::take_from_bytes(record).expect("a packed record's command decodes").0
    }

    fn record_result(record: &Box<[u8]>) -> KeyedResult {
        let (_command, result): (Command, KeyedResult) = postcard::from_bytes(record).expect("a packed record decodes");
        result
    }
}

#[cfg(not(feature = "serde"))]
impl Pack<KeyedResult> for Command {
    type Packed = Box<Command>;
    type Record = Box<(Command, KeyedResult)>;

    fn pack(&self) -> Box<Command> {
        Box::new(self.clone())
    }

    fn unpack(packed: &Box<Command>) -> Command {
        Command::clone(packed)
    }

    fn pack_record(&self, result: &KeyedResult) -> Self::Record {
        Box::new((self.clone(), result.clone()))
    }

    fn record_command(record: &Self::Record) -> Command {
        record.0.clone()
    }

    fn record_result(record: &Self::Record) -> KeyedResult {
        record.1.clone()
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;
    use crate::command::{AllocateRequest, OrderLine, OrderRequest};
    use crate::ids::SkuId;
    use std::time::Duration;

    /// Commands of several shapes, and results both ways, come back equal
    /// from a record and from an in-flight pack.
    #[test]
    fn packing_round_trips_commands_and_results() {
        let ledger = crate::ledger::Ledger::new();
        ledger.define_sku(SkuId(1), crate::policy::AllocationPolicy::Fefo).expect("fresh");
        ledger.receive(SkuId(1), crate::lot::NewLot::new(crate::ids::LotId(7), 10)).expect("stocked");
        let commands = [
            Command::Take(AllocateRequest::new(SkuId(1), 1)),
            Command::Allocate(AllocateRequest::new(SkuId(1), 2).hold_for(Duration::from_secs(900)).tag(42)),
            Command::AllocateOrder(OrderRequest::new(vec![OrderLine::new(SkuId(1), 1), OrderLine::new(SkuId(1), 1)])),
            Command::Take(AllocateRequest::new(SkuId(9), 1)),
        ];
        for command in commands {
            let result = ledger.execute(&command);
            assert_eq!(Command::unpack(&command.pack()), command);
            let record = command.pack_record(&result);
            assert_eq!(Command::record_command(&record), command);
            assert_eq!(Command::record_result(&record), result);
        }
    }

    /// The point of packing: a one-unit take and its sale fit in a few
    /// dozen bytes, against 272 inline.
    #[test]
    fn a_one_unit_take_packs_small() {
        let ledger = crate::ledger::Ledger::new();
        ledger.define_sku(SkuId(1), crate::policy::AllocationPolicy::Fefo).expect("fresh");
        ledger.receive(SkuId(1), crate::lot::NewLot::new(crate::ids::LotId(7), 10)).expect("stocked");
        let take = Command::Take(AllocateRequest::new(SkuId(1), 1));
        let result = ledger.execute(&take);
        let packed = take.pack_record(&result).len();
        assert!(packed <= 48, "a one-unit take packs into {packed} bytes");
    }
}
