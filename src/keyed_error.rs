//! The error of a keyed command.
//!
//! Owns: [`KeyedError`], what
//! [`Ledger::execute_keyed`](crate::Ledger::execute_keyed) answers when it
//! applies nothing.
//!
//! Must never: hide the command's own refusal. A refusal is the
//! [`source()`](std::error::Error::source) of the keyed error and gives it
//! its [`kind()`](KeyedError::kind).
//!
//! Sits beside the idempotency store, above the values: it names an
//! [`IdempotencyKey`], and the value module of errors (`error.rs`) imports
//! nothing above the values it describes.

use crate::error::{CommandError, ErrorKind, questions};
use crate::idempotency::IdempotencyKey;

/// A keyed command ([`Ledger::execute_keyed`](crate::Ledger::execute_keyed))
/// was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum KeyedError {
    /// The key is remembered (or in flight) with a different command;
    /// nothing was applied.
    #[error("idempotency key {key} was first used for a command that differs in `{field}`")]
    KeyReused {
        /// The key.
        key: IdempotencyKey,
        /// The first field in which this command differs from the first
        /// one (`"command"` for a different kind of command).
        field: String,
    },
    /// The key is new and the ledger already remembers
    /// [`KeyWindow::keys_max`](crate::KeyWindow::keys_max) keys, none past
    /// its window: nothing was applied and nothing is remembered. A key is
    /// never forgotten early to make room (a retry of it would apply
    /// twice); retry once older keys' windows have passed, or raise the
    /// bound.
    #[error("idempotency key {key} refused: {keys_max} keys are remembered, none past its window")]
    KeysFull {
        /// The key.
        key: IdempotencyKey,
        /// The bound.
        keys_max: usize,
    },
    /// The command was refused. A final refusal is remembered for the key:
    /// every retry with it gets the same refusal, marked as a replay. A
    /// transient one (`Contended`) is not: a retry may apply.
    #[error("{}", if *replay { "the keyed command was refused (the first refusal, replayed)" } else { "the keyed command was refused" })]
    Refused {
        /// Why (also the error's [`source()`](std::error::Error::source)).
        #[source]
        error: CommandError,
        /// True when this is the first call's refusal, replayed.
        replay: bool,
    },
}

impl KeyedError {
    /// The command's own refusal, for [`KeyedError::Refused`].
    pub fn command_error(&self) -> Option<&CommandError> {
        match self {
            KeyedError::Refused { error, .. } => Some(error),
            KeyedError::KeyReused { .. } | KeyedError::KeysFull { .. } => None,
        }
    }
}

impl KeyedError {
    /// What kind of refusal this is (see [`ErrorKind`]): a reused key is a
    /// [`Conflict`](ErrorKind::Conflict); a refused command has its
    /// refusal's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            KeyedError::KeyReused { .. } => ErrorKind::Conflict,
            KeyedError::KeysFull { .. } => ErrorKind::Limit,
            KeyedError::Refused { error, .. } => error.kind(),
        }
    }
}

questions!(@transient KeyedError);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::kind::tests::{chain, check, command_cases};
    use crate::error::{AllocateError, OrderError};
    use crate::ids::SkuId;
    use crate::quantity::Quantity;
    use ErrorKind::Conflict;
    use std::error::Error;

    #[test]
    fn keyed_errors_take_their_refusal_s_kind() {
        let key = IdempotencyKey::new("k").expect("short");
        let mut cases = vec![
            (KeyedError::KeyReused { key: key.clone(), field: "quantity".to_owned() }, Conflict),
            (KeyedError::KeysFull { key, keys_max: 3 }, ErrorKind::Limit),
        ];
        for (error, kind) in command_cases() {
            cases.push((KeyedError::Refused { error: error.clone(), replay: false }, kind));
            cases.push((KeyedError::Refused { error, replay: true }, kind));
        }
        check(
            &cases,
            |e| match e {
                KeyedError::KeyReused { .. } => "KeyReused",
                KeyedError::KeysFull { .. } => "KeysFull",
                KeyedError::Refused { .. } => "Refused",
            },
            &["KeyReused", "KeysFull", "Refused"],
        );
    }

    #[test]
    fn a_refused_keyed_command_hands_out_the_command_s_error_as_its_source() {
        let quantity = |units| Quantity::new(units).expect("small");
        let insufficient =
            AllocateError::Insufficient { sku: SkuId(1), requested: quantity(5), available: quantity(2) };
        let command = CommandError::from(OrderError::Line { index: 1, error: insufficient });
        let keyed = KeyedError::Refused { error: command.clone(), replay: true };
        assert_eq!(
            chain(&keyed),
            [
                "the keyed command was refused (the first refusal, replayed)",
                "the order was refused",
                "order line 1 was refused",
                "sku:1: 5 requested, 2 available",
            ]
        );
        assert_eq!(keyed.source().and_then(|e| e.downcast_ref::<CommandError>()), Some(&command));
        assert_eq!(keyed.command_error(), Some(&command));
        let first = KeyedError::Refused { error: command, replay: false };
        assert_eq!(first.to_string(), "the keyed command was refused");
        let reused = KeyedError::KeyReused { key: IdempotencyKey::new("k").expect("short"), field: "sku".into() };
        assert!(reused.source().is_none() && reused.command_error().is_none());
        assert_eq!(reused.to_string(), "idempotency key k was first used for a command that differs in `sku`");
    }
}
