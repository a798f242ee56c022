//! What every example's command line shares: reading the number that
//! follows a `--flag`. (A directory, not `examples/common.rs`, so cargo does
//! not take it for an example of its own.)

/// The whole number after `flag`, taken from `args`; on a missing or
/// malformed value, `usage` explains and exits.
pub(crate) fn number(args: &mut impl Iterator<Item = String>, flag: &str, usage: fn(&str) -> !) -> u64 {
    let value = args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
    value.parse().unwrap_or_else(|_| usage(&format!("{flag}: {value:?} is not a whole number")))
}
