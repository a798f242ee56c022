//! Tracing hooks: spans and events on commands, sweeps and the intake,
//! behind the `tracing` feature.
//!
//! Owns: the crate's tracing macros and [`Entered`], the guard a command's
//! span lives in. With the feature on they call the `tracing` crate (target
//! `stockroom`; commands at `DEBUG`, sweeps and the intake's sheds and
//! drains at `DEBUG`/`INFO`); with it off every macro expands to nothing
//! (or to `()`), so a build without the feature carries no trace of them:
//! no branch, no field evaluated.
//!
//! Must never: evaluate a field expression when the feature is off, or
//! decide anything (a span is an observation, never a control path).

/// The guard a command's span lives in while the command runs: the
/// `tracing` crate's entered span with the feature, nothing without it.
#[cfg(feature = "tracing")]
pub(crate) type Entered = tracing::span::EnteredSpan;
/// The guard a command's span lives in (nothing: the feature is off).
#[cfg(not(feature = "tracing"))]
pub(crate) type Entered = ();

/// Enters a `DEBUG` span named after a command, with the given fields;
/// evaluates to its [`Entered`] guard (`()` without the feature).
#[cfg(feature = "tracing")]
macro_rules! command_span {
    ($name:literal $(, $($field:tt)*)?) => {
        ::tracing::debug_span!(target: "stockroom", $name $(, $($field)*)?).entered()
    };
}
#[cfg(not(feature = "tracing"))]
macro_rules! command_span {
    ($($anything:tt)*) => {
        ()
    };
}

/// An event at `DEBUG` (commands' outcomes, sweeps).
#[cfg(feature = "tracing")]
macro_rules! debug {
    ($($arguments:tt)*) => {
        ::tracing::debug!(target: "stockroom", $($arguments)*)
    };
}
#[cfg(not(feature = "tracing"))]
macro_rules! debug {
    ($($arguments:tt)*) => {};
}

/// An event at `INFO` (the intake's shutdown and drain).
#[cfg(feature = "tracing")]
macro_rules! info {
    ($($arguments:tt)*) => {
        ::tracing::info!(target: "stockroom", $($arguments)*)
    };
}
#[cfg(not(feature = "tracing"))]
macro_rules! info {
    ($($arguments:tt)*) => {};
}

pub(crate) use {command_span, debug, info};
