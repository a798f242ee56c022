//! A linearizability checker for stockroom's concurrent histories:
//! `checker` (Wing–Gong search with Lowe's memoization, generic over a
//! sequential model), `history` (recording call/return tickets, splitting
//! per SKU, reports), `ledger` (the ledger as a model, backed by a
//! sequential spec such as the reference ledger), and `toy` (the checker's
//! own tests on register and counter histories).

pub(crate) mod checker;
pub(crate) mod history;
pub(crate) mod ledger;
mod toy;
