//! How values print on one line: durations, counts and bounded lists, the
//! pieces every `Display` of a command or an outcome is made of.
//!
//! Owns: [`Span`] (a duration in its largest exact unit), [`Count`] (a
//! number with its noun, singular or plural) and [`List`] (at most
//! [`LIST_MAX`] items, then how many more).
//!
//! Must never: print a line break, or print without a bound. A list of a
//! thousand lots prints eight and a count; strings are never printed here
//! (their owners print them quoted, with escapes, and only within their
//! stated maximum).

use core::fmt;
use std::time::Duration;

/// The most items a [`List`] prints before it only counts the rest.
pub(crate) const LIST_MAX: usize = 8;

/// A duration in its largest exact unit: `3d`, `2h`, `15min`, `30s`,
/// `250ms`; below a millisecond, as `Debug` prints it (`1.5µs`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span(pub(crate) Duration);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u128, &str); 5] =
            [(86_400_000, "d"), (3_600_000, "h"), (60_000, "min"), (1_000, "s"), (1, "ms")];
        if self.0.subsec_nanos() % 1_000_000 != 0 {
            return write!(f, "{:?}", self.0);
        }
        let millis = self.0.as_millis();
        if millis == 0 {
            return f.write_str("0s");
        }
        let (size, unit) = UNITS.iter().find(|(size, _)| millis % size == 0).copied().unwrap_or((1, "ms"));
        write!(f, "{}{unit}", millis / size)
    }
}

/// `n` and its noun: `1 lot`, `2 lots`, `0 lots`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Count(pub(crate) usize, pub(crate) &'static str, pub(crate) &'static str);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Count(n, one, many) = *self;
        write!(f, "{n} {}", if n == 1 { one } else { many })
    }
}

/// Items separated by `separator`: at most [`LIST_MAX`] of them, then
/// `… and N more`.
#[derive(Debug)]
pub(crate) struct List<'a, T>(pub(crate) &'a [T], pub(crate) &'static str);

impl<T: fmt::Display> fmt::Display for List<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let List(items, separator) = *self;
        for (index, item) in items.iter().take(LIST_MAX).enumerate() {
            if index > 0 {
                f.write_str(separator)?;
            }
            write!(f, "{item}")?;
        }
        if items.len() > LIST_MAX {
            write!(f, "{separator}… and {} more", items.len() - LIST_MAX)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_print_in_their_largest_exact_unit() {
        let span = |duration: Duration| Span(duration).to_string();
        assert_eq!(span(Duration::from_secs(3 * 86_400)), "3d");
        assert_eq!(span(Duration::from_secs(2 * 3_600)), "2h");
        assert_eq!(span(Duration::from_secs(90 * 60)), "90min");
        assert_eq!(span(Duration::from_secs(61)), "61s");
        assert_eq!(span(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(span(Duration::ZERO), "0s");
        assert_eq!(span(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(span(Duration::MAX), format!("{:?}", Duration::MAX));
    }

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(Count(0, "lot", "lots").to_string(), "0 lots");
        assert_eq!(Count(1, "lot", "lots").to_string(), "1 lot");
        assert_eq!(Count(2, "lot", "lots").to_string(), "2 lots");
    }

    #[test]
    fn lists_stop_after_their_maximum() {
        let short: Vec<u32> = (1..=3).collect();
        assert_eq!(List(&short, ", ").to_string(), "1, 2, 3");
        assert_eq!(List::<u32>(&[], ", ").to_string(), "");
        let long: Vec<u32> = (1..=1_000).collect();
        assert_eq!(List(&long, "; ").to_string(), "1; 2; 3; 4; 5; 6; 7; 8; … and 992 more");
        let exact: Vec<u32> = (1..=LIST_MAX as u32).collect();
        assert!(!List(&exact, ", ").to_string().contains("more"));
    }
}
